"""From a located raw download to the list of images, each with its label, patient, split and fold.

:func:`check_download` runs every check (first, by every build; :func:`audit` runs it on a path alone,
for ``covid-ct audit``);
:func:`plan_dataset` adds patients, groups and the split assignment (or a pinned manifest).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .audit_report import Report
from .checks import CheckedInput, LabelSource, find_problems
from .errors import DatasetError
from .groups import patient_of, source_of, split_groups
from .inventory import DEFAULT_MAX_IMAGE_PIXELS, ImageFile, take_inventory
from .locate import DatasetRoot, locate, resolve_data_dir, stray_images
from .sheet import SheetListing, read_sheet
from .splits import Assignment, assign_splits, patients_in_two_places, read_manifest
from .synthetic import SYNTHETIC_MARKER


@dataclass
class BuildOptions:
    """Every choice a user can make about how the raw download is read and checked.

    The builder's config inherits these fields, so they are declared here only.
    """

    strict: bool = False
    label_source: LabelSource = "check"
    splits_manifest: str | None = None
    name_column: str | None = None
    label_column: str | None = None
    full_decode: bool = False
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class PlannedImage:
    """One image of the dataset: its file, its row of the split manifest and its source."""

    file: ImageFile
    #: Label, patient, split and fold, as the split manifest records them.
    assignment: Assignment
    #: ``kermany``, ``cohen`` or ``unknown`` (:func:`~covid_ct_scan_images.groups.source_of`).
    source: str


@dataclass
class DatasetPlan:
    """The images of the dataset and the report of how they were chosen."""

    images: list[PlannedImage]
    report: Report
    #: relative path -> SHA-256 of every file read (recorded with the cache, see :mod:`.freshness`).
    file_hashes: dict[str, str] = field(default_factory=dict)

    def assignments(self) -> list[Assignment]:
        """The split manifest rows."""
        return [image.assignment for image in self.images]


def images_in_row_order(images: list[PlannedImage]) -> list[PlannedImage]:
    """``images`` in the order every split of the dataset holds its rows: by file name (the ``image_id``)."""
    return sorted(images, key=lambda image: image.file.file_name)


class BuildStopped(DatasetError):
    """The checks found problems that stop the build; ``report`` holds all of them."""

    def __init__(self, report: Report, strict: bool):
        self.report = report
        blocking = report.blocking(strict)
        lines = [
            f"the build stopped: {len(blocking)} problem(s) must be fixed first" + (" (--strict)" if strict else "")
        ]
        for problem in blocking:
            lines.append(f"  [{problem.kind}] {problem.message}")
            lines.extend(f"      {name}" for name in problem.files[:20])
            if len(problem.files) > 20:
                lines.append(f"      ... and {len(problem.files) - 20} more")
        lines.append("Run `covid-ct audit PATH` for the full report.")
        super().__init__("\n".join(lines))


def check_download(located: DatasetRoot, options: BuildOptions, shortcut_features: bool = False) -> CheckedInput:
    """Read the download (inventory of the class folders, the sheet) and run every check on it.

    The one entry point of the checks: every build runs it first, and :func:`audit` runs it alone. With
    ``shortcut_features``, the inspection also keeps each image's shortcut features in the file store.
    """
    inventory = take_inventory(
        located.class_dirs,
        located.root,
        max_image_pixels=options.max_image_pixels,
        full_decode=options.full_decode,
        shortcut_features=shortcut_features,
    )
    inventory.unseen.extend(stray_images(located, already_read={image.path.resolve() for image in inventory.files}))
    sheet: SheetListing | None = None
    sheet_error: DatasetError | None = None
    if located.sheet is not None:
        names = [image.file_name for image in inventory.files]
        try:
            sheet = read_sheet(located.sheet, names, options.name_column, options.label_column)
        except DatasetError as error:
            sheet_error = error
    checked = find_problems(located, inventory, sheet, sheet_error, label_source=options.label_source)
    checked.file_hashes = {image.relative_path: image.sha256 for image in inventory.files}
    checked.report.synthetic = (located.root / SYNTHETIC_MARKER).exists()
    return checked


def audit(
    data_dir: str | os.PathLike[str] | None, options: BuildOptions | None = None, work_dir: str | Path | None = None
) -> CheckedInput:
    """Locate the raw download at ``data_dir`` and run every check on it; nothing is built or cached.

    ``data_dir`` is resolved as for a build (``$COVID_CT_DATA_DIR``, then the default folder, when ``None``).
    A ``.zip`` is extracted (safely) under ``work_dir``: by default a temporary folder removed afterwards.
    ``checked.report`` holds everything found; ``checked.kept`` the images a build would use.
    The audit comes first in the usual flow, so its decode also leaves the shortcut features in the file
    store (a build does not: that would slow every cold build for a command it may never run).
    """
    raw = resolve_data_dir(data_dir)
    if work_dir is not None:
        return check_download(locate(raw, Path(work_dir)), options or BuildOptions(), shortcut_features=True)
    with tempfile.TemporaryDirectory(prefix="covid-ct-audit-") as scratch:
        return check_download(locate(raw, Path(scratch)), options or BuildOptions(), shortcut_features=True)


def _pin_to_manifest(
    planned: list[PlannedImage], manifest_path: Path, pinned: dict[str, Assignment], report: Report
) -> list[PlannedImage]:
    """The planned images that the pinned manifest lists, with its split and fold; what disagrees is reported."""
    kept = _take_pinned_splits(planned, manifest_path, pinned, report)
    if not kept:
        raise _no_image_in_manifest(planned, manifest_path, pinned)
    leaks = patients_in_two_places([image.assignment for image in kept])
    if leaks:
        report.add(
            "manifest_conflict",
            "stop",
            f"the pinned splits manifest {manifest_path} puts one patient's images in two splits or folds",
            leaks,
        )
    present = {image.file.file_name for image in planned}
    absent = sorted(set(pinned) - present)
    if absent:
        report.add(
            "manifest_missing_image",
            "warning",
            f"in the pinned splits manifest {manifest_path} but not in the data",
            absent,
        )
    return kept


def _take_pinned_splits(
    planned: list[PlannedImage], manifest_path: Path, pinned: dict[str, Assignment], report: Report
) -> list[PlannedImage]:
    """Each planned image the manifest lists, moved to the manifest's split and fold; the others are left out."""
    kept = []
    not_pinned = []
    relabelled = []
    for image in planned:
        row = pinned.get(image.file.file_name)
        if row is None:
            not_pinned.append(image.file.relative_path)
            continue
        label = image.assignment.label
        if row.label != label:
            relabelled.append(f"{image.file.relative_path} (manifest: {row.label}, data: {label})")
        kept.append(PlannedImage(image.file, replace(image.assignment, split=row.split, fold=row.fold), image.source))
    if not_pinned:
        report.add(
            "not_in_manifest", "left_out", f"image not in the pinned splits manifest {manifest_path}", not_pinned
        )
    if relabelled:
        report.add(
            "manifest_conflict", "stop", f"label differs from the pinned splits manifest {manifest_path}", relabelled
        )
    return kept


def _no_image_in_manifest(
    planned: list[PlannedImage], manifest_path: Path, pinned: dict[str, Assignment]
) -> DatasetError:
    """The error for a manifest that matches no file, naming ids that differ from file names only in letter case."""
    by_lower = {name.lower(): name for name in pinned}
    case_only = [
        f"{by_lower[image.file.file_name.lower()]} (data: {image.file.file_name})"
        for image in planned
        if image.file.file_name.lower() in by_lower
    ]
    hint = (
        f"; {len(case_only)} id(s) differ from the file names only in letter case (ids are case-sensitive), "
        f"e.g. {', '.join(case_only[:3])}"
        if case_only
        else ""
    )
    return DatasetError(
        f"{manifest_path}: no image id of the splits manifest matches a file in the data{hint}. "
        "Give the manifest of a build of this download."
    )


def remembered_splits(names: list[str], labels: list[int], patients: list[str], groups: list[str]) -> list[Assignment]:
    """:func:`~covid_ct_scan_images.splits.assign_splits`, kept in the file store under a hash of its input.

    The assignment depends only on these four lists, so a rebuild of the same images (another config,
    a fix to a file that leaves the groups as they were) reuses it without importing scikit-learn.
    """
    import hashlib
    import json

    from .filestore import kind_version, open_memo

    key = hashlib.sha256(json.dumps([names, labels, patients, groups]).encode()).hexdigest()
    memo = open_memo("splits", kind_version(), keys=[key])
    stored = memo.recall(key)
    if stored is not None:
        rows = zip(names, labels, patients, json.loads(stored), strict=True)
        assignments = [Assignment(name, int(label), patient, *split_fold) for name, label, patient, split_fold in rows]
    else:
        assignments = assign_splits(names, labels, patients, groups)
        memo.learn(key, json.dumps([[row.split, row.fold] for row in assignments]).encode())
    memo.save()
    return assignments


def plan_dataset(located: DatasetRoot, options: BuildOptions) -> DatasetPlan:
    """Check the download and assign every kept image a patient, split and fold.

    Raises :class:`BuildStopped` when the checks (under ``options.strict`` or not) stop the build.
    """
    pinned = None if options.splits_manifest is None else read_manifest(Path(options.splits_manifest))
    checked = check_download(located, options)
    report = checked.report
    if report.blocking(options.strict):
        raise BuildStopped(report, options.strict)
    names = [item.file.file_name for item in checked.kept]
    labels = [item.label for item in checked.kept]
    patients = [patient_of(name) for name in names]
    groups = split_groups(patients, checked.links)
    assignments = remembered_splits(names, labels, patients, groups)
    planned = [
        PlannedImage(item.file, row, source_of(row.image_id))
        for item, row in zip(checked.kept, assignments, strict=True)
    ]
    if options.splits_manifest is not None and pinned is not None:
        planned = _pin_to_manifest(planned, Path(options.splits_manifest), pinned, report)
        if report.blocking(options.strict):
            raise BuildStopped(report, options.strict)
    return DatasetPlan(images=planned, report=report, file_hashes=checked.file_hashes)
