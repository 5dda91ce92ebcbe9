"""Shared fixtures: synthetic raw downloads, the real sample when present, an isolated cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from export_support import TEST_BOOTSTRAP, TEST_REPO, make_messy_download

from covid_ct_scan_images.export import ExportResult, export_dataset
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


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A valid synthetic download for a test to break; its dataset root.

    30 negatives and 10 positives (enough patient groups for 20 folds), up to 300 px, so each test is quick.
    """
    return make_synthetic_download(tmp_path / "download", n_negative=30, n_positive=10, max_side=300)


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """The 48-image real sample in the raw layout; skipped when this checkout does not have it."""
    if not REAL_SAMPLE.is_dir():
        pytest.skip(f"real sample not present at {REAL_SAMPLE} (only in the project's shared data, not in a clone)")
    return REAL_SAMPLE


@pytest.fixture
def writable_real_root(real_sample: Path, tmp_path: Path) -> Path:
    """A writable copy of the real sample's dataset root (the shared copy is read-only), under ``tmp_path/real``."""
    import shutil

    source = next(path for path in real_sample.iterdir() if path.is_dir())
    root = tmp_path / "real" / source.name
    shutil.copytree(source, root)
    for folder, _, names in os.walk(root):
        os.chmod(folder, 0o755)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o644)
    return root


@pytest.fixture
def small_disk(tmp_path: Path):
    """A factory of tiny real file systems (tmpfs of ``size`` bytes), to fill a disk for real; skipped without mount."""
    import subprocess

    mounted: list[Path] = []

    def make(size: int) -> Path:
        folder = tmp_path / f"small-disk-{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random ViT and ConvNeXt checkpoints (32 px) with their image processors, saved like Hub checkpoints."""
    pytest.importorskip("transformers")
    from random_checkpoints import save_random_checkpoints  # baselines/ is on pytest's pythonpath

    return save_random_checkpoints(tmp_path_factory.mktemp("tiny-checkpoints"), "tiny")


@pytest.fixture(scope="session")
def baseline_download(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic raw download for the baselines (45 negatives, 15 positives, 250-600 px), built once."""
    return make_synthetic_download(
        tmp_path_factory.mktemp("baseline-download"), n_negative=45, n_positive=15, min_side=250, max_side=600, seed=0
    )


@pytest.fixture(scope="session")
def messy_export(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """A synthetic download with a byte-identical copy and a broken file, exported once for ``TEST_REPO``."""
    base = tmp_path_factory.mktemp("messy-export")
    root = make_messy_download(base / "download")
    return export_dataset(
        root, base / "export", cache_dir=base / "hf-cache", n_bootstrap=TEST_BOOTSTRAP, repo_id=TEST_REPO
    )


@pytest.fixture(scope="session")
def planted_mark_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny ConvNeXt runs trained on images whose label is a bright mark near a corner (``corner``) or in the centre.

    Run folders as ``finetune.py`` writes them (threshold folded into the model, ``transform.json``, ``metrics.json``,
    ``predictions.csv``); see ``tests/planted_marks.py``.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("evaluate")
    from planted_marks import train_planted_run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster than several, and immune to a busy machine
    try:
        return {mark: train_planted_run(tmp_path_factory.mktemp(mark), mark) for mark in ("corner", "centre")}
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def cli_in_fresh_interpreter() -> Callable[[list[str], str], tuple[int, bool, str]]:
    """Runs ``covid-ct ARGS`` in a new Python process: its exit code, whether it imported ``module``, its stderr."""

    def run(args: list[str], module: str) -> tuple[int, bool, str]:
        code = (
            "import sys\n"
            "from covid_ct_scan_images.cli import main\n"
            f"code = main({[str(arg) for arg in args]!r})\n"
            f"print(code, {module!r} in sys.modules)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        exit_code, imported = result.stdout.split()[-2:]
        return int(exit_code), imported == "True", result.stderr

    return run
