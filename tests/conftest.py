"""Shared fixtures: synthetic raw downloads, the real sample when present, an isolated cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from covid_ct_scan_images.synthetic import make_synthetic_download

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_sample"


@pytest.fixture(scope="session", autouse=True)
def _isolated_file_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test, not even a module- or session-scoped fixture, reads or writes the user's file store."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COVID_CT_STORE", str(tmp_path_factory.mktemp("session-filestore")))
        yield


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No network, no test reads a real download from the user's environment or uses their file store."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COVID_CT_STORE", str(tmp_path_factory.mktemp("filestore")))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("COVID_CT_DATA_DIR", raising=False)
    monkeypatch.setattr(
        "covid_ct_scan_images.locate.DEFAULT_DATA_DIR", tmp_path_factory.mktemp("no-default-download") / "manual"
    )


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A fresh datasets cache folder for one test."""
    return tmp_path / "hf-cache"


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A small synthetic raw download (45 negatives, 15 positives, JPEG/PNG, L/RGB/RGBA, 250-600 px)."""
    return make_synthetic_download(tmp_path / "download", n_negative=45, n_positive=15, max_side=600)


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """The 48-image real sample in the raw layout; skipped when this checkout does not have it."""
    if not REAL_SAMPLE.is_dir():
        pytest.skip(f"real sample not present at {REAL_SAMPLE} (only in the project's shared data, not in a clone)")
    return REAL_SAMPLE
