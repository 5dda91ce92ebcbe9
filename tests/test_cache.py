"""The build cache: a hit never reads a raw image, and a file changing mid-build is refused.

No timings here (timings are in ``benchmarks/``); these tests check the behaviour the fast path relies on.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from covid_ct_scan_images import builder as builder_module
from covid_ct_scan_images import prepare
from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.layout import SHEET_NAME

_OPENS_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "opens.py"


def _opens_module():
    """``benchmarks/opens.py``, the audit hook the reload benchmark uses (loaded by path: not a package)."""
    spec = importlib.util.spec_from_file_location("benchmark_opens", _OPENS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cache_hit_opens_no_raw_image(synthetic_root, cache_dir):
    opens = _opens_module()
    with opens.recording_opens(synthetic_root) as first_build:
        first = prepare(synthetic_root, cache_dir=cache_dir)
    assert not first.reused
    assert len(opens.image_paths(first_build)) >= 60  # the recorder sees the images a build reads
    with opens.recording_opens(synthetic_root) as opened:
        second = prepare(synthetic_root, cache_dir=cache_dir)
        rows = sum(len(split) for split in second.dataset.values())
        second.dataset["train"][0]["image"].load()  # decoding comes from the Arrow cache, not the raw folder
    assert second.reused and rows == 60
    assert opens.image_paths(opened) == []
    assert {Path(path).name for path in opened} <= {SHEET_NAME}  # only the sheet, hashed for the fingerprint


def test_a_file_changed_during_the_build_is_refused_and_nothing_is_published(synthetic_root, cache_dir, monkeypatch):
    victim = next(path for path in sorted(synthetic_root.rglob("*.jpeg")))
    real_plan = builder_module.plan_dataset

    def plan_then_touch(located, options):
        plan = real_plan(located, options)
        status = victim.stat()  # same size, new modification time: only the fingerprint check can tell
        os.utime(victim, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
        return plan

    monkeypatch.setattr(builder_module, "plan_dataset", plan_then_touch)
    with pytest.raises(DatasetError, match="changed while the dataset was being built"):
        prepare(synthetic_root, cache_dir=cache_dir)
    monkeypatch.setattr(builder_module, "plan_dataset", real_plan)
    rebuilt = prepare(synthetic_root, cache_dir=cache_dir)
    assert not rebuilt.reused  # the refused build left nothing that looks complete
