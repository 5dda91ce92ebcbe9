"""Split membership never changes silently: golden manifest hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from covid_ct_scan_images import prepare
from covid_ct_scan_images.groups import patient_of
from covid_ct_scan_images.reference import reference_entries
from covid_ct_scan_images.splits import assign_splits, manifest_sha256

#: SHA-256 of ``splits_manifest.csv`` for the real 48-image sample (the same for every config).
REAL_SAMPLE_MANIFEST_SHA256 = "08aff804283e48d4cc7be9c1e2b130935ba87265dd7e940a5bca936941b2c54f"

#: SHA-256 of the manifest of the 1400 file names and labels of the real download (also the manifest of
#: ``make_synthetic_download(root, 1342, 58)``, which uses those names).
FULL_SHAPE_MANIFEST_SHA256 = "ab31b840f176f329ff58e60fa2ac06e8d081612864db93bac2c406f401f50acf"

CHANGED = (
    "the split assignment changed: every published split and fold moves. If that is intended, it is a new "
    "dataset version; otherwise find what changed (splits.stratified_group_folds against scikit-learn's "
    "StratifiedGroupKFold, the group hashing, the fold picking) and restore the old assignment"
)


def test_real_sample_manifest_is_byte_identical_to_the_published_one(real_sample: Path, cache_dir: Path) -> None:
    manifest = prepare(real_sample, cache_dir=cache_dir).manifest_path
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == REAL_SAMPLE_MANIFEST_SHA256, CHANGED


def test_manifest_of_the_full_download_shape_is_unchanged() -> None:
    entries = sorted(reference_entries().values(), key=lambda entry: entry.file_name)
    names = [entry.file_name for entry in entries]
    patients = [patient_of(name) for name in names]
    assignments = assign_splits(names, [entry.label for entry in entries], patients, patients)
    assert manifest_sha256(assignments) == FULL_SHAPE_MANIFEST_SHA256, CHANGED
