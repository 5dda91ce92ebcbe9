"""Fixed, stratified, patient-grouped splits and folds, and the manifest that records them.

The assignment depends only on the set of (image id, label, group) triples: groups are ordered by
the SHA-256 of their key (a fixed pseudo-random order with no seed), then scikit-learn's
``StratifiedGroupKFold`` algorithm (without shuffling; here in numpy, :func:`stratified_group_folds`) deals
them into folds. Nothing depends on file-system order, the OS, ``PYTHONHASHSEED``, the number of processes
or where the folder lives.

* ``default``: 20 folds of 5 %; three go to test and three to validation (70/15/15). The three
  folds of each held-out split are the combination whose positive count is nearest the exact
  proportion (ties: the lowest fold numbers), so small classes are split as evenly as possible.
* ``full``: 5 folds for cross-validation.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from .errors import DatasetError, UsageError

SPLIT_NAMES = ("train", "validation", "test")
HELD_OUT_FRACTION = 0.15
N_CV_FOLDS = 5
_N_SMALL_FOLDS = 20
_FOLDS_PER_HELD_OUT = round(HELD_OUT_FRACTION * _N_SMALL_FOLDS)

MANIFEST_COLUMNS = ("image_id", "label", "patient_id", "split", "fold")


@dataclass(frozen=True)
class Assignment:
    """Split (``default`` config) and cross-validation fold (``full`` config) of one image."""

    image_id: str
    label: int
    patient_id: str
    split: str
    fold: int


def _canonical_order(image_ids: list[str]) -> np.ndarray:
    return np.array(sorted(range(len(image_ids)), key=lambda index: image_ids[index]))


def _best_fold(y_counts_per_fold: np.ndarray, y_cnt: np.ndarray, group_y_counts: np.ndarray) -> int:
    """The fold a group joins: the one that leaves the class proportions most even across folds.

    Each candidate fold is scored as scikit-learn's ``StratifiedGroupKFold._find_best_fold`` scores it (the
    mean over classes of the standard deviation across folds of each class's share), all folds at once with
    the same numpy operations, so every score is bitwise the same. The rule is the same too: lowest score;
    within ``np.isclose`` of it, fewest samples; ties to the lowest fold.
    """
    n_folds = len(y_counts_per_fold)
    trial = np.repeat(y_counts_per_fold[np.newaxis], n_folds, axis=0)
    diagonal = np.arange(n_folds)
    trial[diagonal, diagonal] += group_y_counts  # trial[i]: the folds with the group added to fold i
    scores = np.mean(np.std(trial / y_cnt.reshape(1, 1, -1), axis=1), axis=1).tolist()
    samples = y_counts_per_fold.sum(axis=1).tolist()
    best_fold, min_eval, min_samples = 0, np.inf, np.inf
    for fold, (score, size) in enumerate(zip(scores, samples, strict=True)):
        # np.isclose(score, min_eval) with its default tolerances, on Python floats
        close = abs(score - min_eval) <= 1e-08 + 1e-05 * abs(min_eval)
        if score < min_eval or (close and size < min_samples):
            best_fold, min_eval, min_samples = fold, score, size
    return best_fold


def stratified_group_folds(labels: np.ndarray, groups: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index per sample: the folds of scikit-learn's ``StratifiedGroupKFold(n_folds, shuffle=False)``.

    The same algorithm in numpy alone, so that a build does not import scikit-learn (about a second,
    most of it scipy.stats): groups are taken in order of falling standard deviation of their class
    counts (a stable sort over the sorted group keys) and each joins :func:`_best_fold`.
    ``tests/test_stratified_group_folds.py`` compares it with scikit-learn's class on many random inputs.
    Raises ``ValueError`` where scikit-learn does: more folds than groups, or than the members of every class.
    """
    _, y_inv, y_cnt = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    if np.all(n_folds > y_cnt):
        raise ValueError(f"n_splits={n_folds} cannot be greater than the number of members in each class.")
    _, groups_inv, groups_cnt = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    if n_folds > len(groups_cnt):
        raise ValueError(
            f"Cannot have number of splits n_splits={n_folds} greater than the number of groups: {len(groups_cnt)}."
        )
    y_counts_per_group = np.zeros((len(groups_cnt), len(y_cnt)))
    np.add.at(y_counts_per_group, (groups_inv.ravel(), y_inv.ravel()), 1)
    y_counts_per_fold = np.zeros((n_folds, len(y_cnt)))
    fold_of_group = np.empty(len(groups_cnt), dtype=np.int64)
    for group in np.argsort(-np.std(y_counts_per_group, axis=1), kind="stable"):
        group_y_counts = y_counts_per_group[group]
        fold = _best_fold(y_counts_per_fold, y_cnt, group_y_counts)
        y_counts_per_fold[fold] += group_y_counts
        fold_of_group[group] = fold
    return fold_of_group[groups_inv.ravel()]


def _fold_of(labels: np.ndarray, groups: list[str], n_folds: int) -> np.ndarray:
    """Fold index per image from the stratified group folds over hash-ordered groups."""
    group_keys = np.array([hashlib.sha256(group.encode("utf-8")).hexdigest() for group in groups])
    n_groups = len(set(group_keys))
    if n_groups < n_folds:
        raise DatasetError(f"only {n_groups} patient groups; at least {n_folds} are needed to make {n_folds} folds")
    return stratified_group_folds(labels, group_keys, n_folds)


def _pick_folds(positives_per_fold: list[int], candidates: list[int], target: float) -> tuple[int, ...]:
    return min(
        combinations(candidates, _FOLDS_PER_HELD_OUT),
        key=lambda chosen: (abs(sum(positives_per_fold[fold] for fold in chosen) - target), chosen),
    )


def assign_splits(image_ids: list[str], labels: list[int], patients: list[str], groups: list[str]) -> list[Assignment]:
    """Assign every image a split and a fold; the result is in the order of ``image_ids``."""
    if len(set(image_ids)) != len(image_ids):
        raise DatasetError("image ids must be unique to assign splits")
    order = _canonical_order(image_ids)
    sorted_labels = np.asarray(labels)[order]
    sorted_groups = [groups[index] for index in order]
    small_folds = _fold_of(sorted_labels, sorted_groups, _N_SMALL_FOLDS)
    cv_folds = _fold_of(sorted_labels, sorted_groups, N_CV_FOLDS)
    positives = [int(sorted_labels[small_folds == fold].sum()) for fold in range(_N_SMALL_FOLDS)]
    target = HELD_OUT_FRACTION * int(sorted_labels.sum())
    test = _pick_folds(positives, list(range(_N_SMALL_FOLDS)), target)
    validation = _pick_folds(positives, [fold for fold in range(_N_SMALL_FOLDS) if fold not in test], target)
    split_of_fold = {fold: "test" for fold in test} | {fold: "validation" for fold in validation}
    result: list[Assignment | None] = [None] * len(image_ids)
    for position, index in enumerate(order):
        result[index] = Assignment(
            image_id=image_ids[index],
            label=int(labels[index]),
            patient_id=patients[index],
            split=split_of_fold.get(int(small_folds[position]), "train"),
            fold=int(cv_folds[position]),
        )
    return [assignment for assignment in result if assignment is not None]


def manifest_text(assignments: list[Assignment]) -> str:
    """The manifest as CSV text, rows sorted by image id (the form that is hashed and published)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in sorted(assignments, key=lambda assignment: assignment.image_id):
        writer.writerow([row.image_id, row.label, row.patient_id, row.split, row.fold])
    return buffer.getvalue()


def manifest_sha256(assignments: list[Assignment]) -> str:
    """SHA-256 of :func:`manifest_text`: identifies a split assignment."""
    return hashlib.sha256(manifest_text(assignments).encode("utf-8")).hexdigest()


#: Rows named in one manifest error message, at most.
_ROWS_SHOWN = 8


def _rows_text(problems: list[str]) -> str:
    shown = "; ".join(problems[:_ROWS_SHOWN])
    return shown + (f"; ... and {len(problems) - _ROWS_SHOWN} more" if len(problems) > _ROWS_SHOWN else "")


def _manifest_delimiter(header_line: str) -> str:
    """``,`` as written by :func:`manifest_text`; ``;`` when a spreadsheet re-saved it that way."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def _parse_manifest_row(row: dict[str | None, str | None]) -> tuple[Assignment | None, str | None]:
    """The row as an :class:`Assignment`, or why it is not one."""
    if None in row:
        return None, "more fields than the header"
    values = {column: row.get(column) for column in MANIFEST_COLUMNS}
    empty = [column for column, value in values.items() if value is None or not value.strip()]
    if empty:
        return None, f"missing or empty {', '.join(empty)}"
    try:
        label, fold = int(values["label"]), int(values["fold"])
    except ValueError:
        return None, f"label {values['label']!r} and fold {values['fold']!r} must be whole numbers"
    if label not in (0, 1):
        return None, f"label {label} is not 0 or 1"
    if not -1 <= fold < N_CV_FOLDS:
        return None, f"fold {fold} is out of range (-1 to {N_CV_FOLDS - 1})"
    if values["split"] not in SPLIT_NAMES:
        return None, f"unknown split {values['split']!r} (expected one of {', '.join(SPLIT_NAMES)})"
    assignment = Assignment(values["image_id"].strip(), label, values["patient_id"].strip(), values["split"], fold)
    return assignment, None


def read_manifest(path: Path) -> dict[str, Assignment]:
    """Read and validate a manifest written by :func:`manifest_text`, keyed by image id.

    A UTF-8 byte-order mark and ``;`` separators (a spreadsheet's re-save) are accepted. Raises
    :class:`DatasetError` naming the rows when a row is short, malformed or out of range, when one
    image id is given two different assignments, or when one patient is in two splits or two folds
    (that would leak a patient between training and evaluation).
    """
    if not path.is_file():
        raise UsageError(f"--splits-manifest {path}: no such file (give the splits_manifest.csv of a build)")
    rows: dict[str, Assignment] = {}
    line_of: dict[str, int] = {}
    bad: list[str] = []
    conflicting: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            delimiter = _manifest_delimiter(handle.readline())
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=delimiter)
            missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise DatasetError(
                    f"{path}: not a splits manifest; missing columns {sorted(missing)} in the header "
                    f"{reader.fieldnames or '(empty file)'}; expected {','.join(MANIFEST_COLUMNS)}"
                )
            for row in reader:
                assignment, reason = _parse_manifest_row(row)
                if assignment is None:
                    bad.append(f"line {reader.line_num}: {reason}")
                    continue
                earlier = rows.get(assignment.image_id)
                if earlier is not None and earlier != assignment:
                    conflicting.append(
                        f"{assignment.image_id} (line {line_of[assignment.image_id]}: {earlier.split} fold "
                        f"{earlier.fold}; line {reader.line_num}: {assignment.split} fold {assignment.fold})"
                    )
                    continue
                rows[assignment.image_id] = assignment
                line_of.setdefault(assignment.image_id, reader.line_num)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the splits manifest ({error.strerror or error})") from error
    except UnicodeDecodeError as error:
        reason = error.reason
        raise DatasetError(f"{path}: the splits manifest is not UTF-8 text ({reason}); save it as UTF-8") from error
    except csv.Error as error:
        raise DatasetError(f"{path}: malformed splits manifest at line {reader.line_num + 1} ({error})") from error
    if bad:
        raise DatasetError(f"{path}: {len(bad)} malformed row(s) in the splits manifest: {_rows_text(bad)}")
    if conflicting:
        raise DatasetError(
            f"{path}: {len(conflicting)} image id(s) appear twice with different assignments: "
            f"{_rows_text(conflicting)}. Keep one row per image."
        )
    if not rows:
        raise DatasetError(f"{path}: the splits manifest has a header but no rows")
    leaks = patients_in_two_places(list(rows.values()))
    if leaks:
        raise DatasetError(
            f"{path}: {len(leaks)} patient(s) are in more than one split or fold, which leaks them between "
            f"training and evaluation: {_rows_text(leaks)}. Put all images of a patient in one split and fold."
        )
    return rows


def patients_in_two_places(assignments: list[Assignment]) -> list[str]:
    """One line per patient whose images are in more than one split, or more than one fold (-1 = no fold)."""
    places: dict[str, dict[str, set]] = {}
    for row in assignments:
        seen = places.setdefault(row.patient_id, {"split": set(), "fold": set()})
        seen["split"].add(row.split)
        if row.fold >= 0:
            seen["fold"].add(row.fold)
    return [
        f"patient {patient} in splits {sorted(seen['split'])}"
        if len(seen["split"]) > 1
        else f"patient {patient} in folds {sorted(seen['fold'])}"
        for patient, seen in sorted(places.items())
        if len(seen["split"]) > 1 or len(seen["fold"]) > 1
    ]
