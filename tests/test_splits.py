"""Split properties on the 1400-image shape of the real data (58 positives from 39 patients)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter, defaultdict

import pytest

from covid_ct_scan_images.groups import patient_of, source_of, split_groups
from covid_ct_scan_images.reference import reference_entries
from covid_ct_scan_images.splits import HELD_OUT_FRACTION, assign_splits, manifest_text


@pytest.fixture(scope="module")
def full_shape() -> tuple[list[str], list[int], list[str]]:
    entries = sorted(reference_entries().values(), key=lambda entry: entry.file_name)
    names = [entry.file_name for entry in entries]
    return names, [entry.label for entry in entries], [patient_of(name) for name in names]


@pytest.fixture(scope="module")
def rows(full_shape):
    names, labels, patients = full_shape
    return assign_splits(names, labels, patients, patients)


def test_reference_shape_matches_the_real_download(full_shape):
    names, labels, patients = full_shape
    assert len(names) == 1400 and sum(labels) == 58
    assert len({p for p, label in zip(patients, labels, strict=True) if label == 1}) == 39
    negative_group_sizes = Counter(Counter(p for p, label in zip(patients, labels, strict=True) if label == 0).values())
    assert set(negative_group_sizes) == {1, 2, 3, 4}


def test_default_split_is_70_15_15_with_positives_within_one_of_exact(rows):
    sizes = Counter(row.split for row in rows)
    positives = Counter(row.split for row in rows if row.label == 1)
    for split in ("validation", "test"):
        assert abs(sizes[split] - HELD_OUT_FRACTION * 1400) <= 0.01 * 1400
        assert abs(positives[split] - HELD_OUT_FRACTION * 58) <= 1
    assert abs(positives["train"] - 0.7 * 58) <= 1
    assert abs(sizes["train"] - 0.7 * 1400) <= 0.02 * 1400


def test_no_patient_in_two_splits_or_two_folds(rows):
    splits_of, folds_of = defaultdict(set), defaultdict(set)
    for row in rows:
        splits_of[row.patient_id].add(row.split)
        folds_of[row.patient_id].add(row.fold)
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert all(len(folds) == 1 for folds in folds_of.values())


def test_folds_are_stratified(rows):
    positives = Counter(row.fold for row in rows if row.label == 1)
    sizes = Counter(row.fold for row in rows)
    assert sorted(positives) == [0, 1, 2, 3, 4]
    assert max(positives.values()) - min(positives.values()) <= 2
    assert max(sizes.values()) - min(sizes.values()) <= 0.02 * 1400


def test_assignment_ignores_input_order(full_shape, rows):
    names, labels, patients = full_shape
    reference = manifest_text(rows)
    order = list(range(len(names)))
    random.Random(1).shuffle(order)
    shuffled = assign_splits(
        [names[i] for i in order],
        [labels[i] for i in order],
        [patients[i] for i in order],
        [patients[i] for i in order],
    )
    assert manifest_text(shuffled) == reference


def test_assignment_is_the_same_in_another_process_with_another_hash_seed(rows):
    here = manifest_text(rows)
    code = (
        "from covid_ct_scan_images.reference import reference_entries\n"
        "from covid_ct_scan_images.groups import patient_of\n"
        "from covid_ct_scan_images.splits import assign_splits, manifest_text\n"
        "e = sorted(reference_entries().values(), key=lambda x: x.file_name)\n"
        "n = [x.file_name for x in e]; p = [patient_of(x) for x in n]\n"
        "import sys; sys.stdout.write(manifest_text(assign_splits(n, [x.label for x in e], p, p)))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345"}
    ).stdout
    assert other == here


def test_linked_images_share_a_split(full_shape, rows):
    names, labels, patients = full_shape
    first = names.index("IM-0115-0001.jpeg")
    far = [i for i, label in enumerate(labels) if label == 0 and patients[i] != patients[first]]
    apart = next(i for i in far if rows[i].split != rows[first].split)
    groups = split_groups(patients, [(first, apart)])
    linked = assign_splits(names, labels, patients, groups)
    assert linked[first].split == linked[apart].split
    assert linked[first].fold == linked[apart].fold


@pytest.mark.parametrize(
    ("name", "patient", "source"),
    [
        ("IM-0115-0001.jpeg", "kermany-IM-0115", "kermany"),
        ("IM-9999-0002.jpeg", "kermany-IM-9999", "kermany"),
        ("im-9999-0001-0001.JPEG", "kermany-IM-9999", "kermany"),
        ("NORMAL2-IM-9999-0001.jpeg", "kermany-NORMAL2-IM-9999", "kermany"),
        ("E63574A7-4188-4C8D-8D17-9D67A18A1AFA.jpeg", "cohen-51", "cohen"),
        ("F051E018-DAD1-4506-AD43-BE4CA29E960B.jpeg", "cohen-38", "cohen"),
        ("holiday photo.png", "file-holiday photo.png", "unknown"),
    ],
)
def test_patient_and_source_from_file_names(name, patient, source):
    assert patient_of(name) == patient
    assert source_of(name) == source
