"""Cache and speed: a hit never reads a raw image, a file changing mid-build is refused, speed-ups change nothing.

No timings here (timings are in ``benchmarks/``); these tests check the behaviour the fast paths rely on.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from covid_ct_scan_images import builder as builder_module
from covid_ct_scan_images import prepare
from covid_ct_scan_images.errors import DatasetError
from covid_ct_scan_images.layout import SHEET_NAME
from covid_ct_scan_images.splits import grouped_stratified_kfold

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


def test_vectorised_fold_choice_equals_scikit_learn():
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(0)
    for _ in range(12):
        n_images = int(rng.integers(60, 1500))
        labels = (rng.random(n_images) < rng.uniform(0.03, 0.3)).astype(int)
        labels[:3] = 1
        groups = rng.integers(0, max(25, int(n_images * rng.uniform(0.3, 0.95))), n_images).astype(str)
        for n_folds in (5, 20):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                ours = list(grouped_stratified_kfold(n_folds).split(np.zeros(n_images), labels, groups))
                stock = list(StratifiedGroupKFold(n_folds, shuffle=False).split(np.zeros(n_images), labels, groups))
            assert [list(test) for _, test in ours] == [list(test) for _, test in stock]


def test_importing_the_package_loads_no_heavy_library():
    code = (
        "import sys, covid_ct_scan_images\n"
        "heavy = {'PIL', 'sklearn', 'torch', 'imagehash', 'scipy', 'xlrd', 'matplotlib', 'transformers'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_resized_config_keeps_the_default_splits_with_small_upright_images(synthetic_root, cache_dir):
    from covid_ct_scan_images.resized import RESIZED_MAX_SIDE

    default = prepare(synthetic_root, cache_dir=cache_dir).dataset
    resized = prepare(synthetic_root, config="resized", cache_dir=cache_dir).dataset
    assert list(resized) == list(default)
    for split in default:
        assert resized[split]["image_id"] == default[split]["image_id"]
        assert resized[split]["sha256"] == default[split]["sha256"]  # the original file's hash
        for row in resized[split]:
            image = row["image"]
            assert image.mode == "RGB"  # decoded as RGB like every config; the stored JPEG is 8-bit L or RGB
            assert max(image.size) <= RESIZED_MAX_SIDE
            if max(row["width"], row["height"]) <= RESIZED_MAX_SIDE:
                assert image.size in {(row["width"], row["height"]), (row["height"], row["width"])}
