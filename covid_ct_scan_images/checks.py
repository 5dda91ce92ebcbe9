"""Decide, per file, keep / leave out / stop, and record why in the :class:`Report`.

The default policy is safe but usable: problems that make the ground truth uncertain (label
conflicts) stop the build; files that cannot be used are left out and listed. ``label_source``
(``"folder"`` or ``"sheet"``) resolves label conflicts explicitly; ``strict`` turns every
problem into a stop (the caller enforces it with :meth:`Report.blocking`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .audit_report import Report
from .errors import DatasetError
from .inventory import ImageFile, Inventory
from .layout import CLASS_NAMES, SHEET_NAME, folder_for_label
from .locate import DatasetRoot
from .sheet import SheetListing

LabelSource = Literal["check", "folder", "sheet"]

#: Largest Hamming distance between 256-bit perceptual hashes (``inventory.PHASH_SIZE`` 16) that counts as a
#: near-duplicate. Measured on the real sample (``benchmarks/near_duplicates.py``; docs/near_duplicates.md):
#: re-encoded, resized or format-changed copies are at most 10 bits from the original, a same-patient
#: follow-up film 16, radiographs of different children at least 64 (mean 108).
NEAR_DUPLICATE_MAX_DISTANCE = 24


@dataclass
class KeptImage:
    """An image that goes into the dataset, with the label decided for it."""

    file: ImageFile
    label: int


@dataclass
class CheckedInput:
    """The images kept, pairs of them that must share a split, and the report."""

    kept: list[KeptImage]
    links: list[tuple[int, int]] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    #: relative path -> SHA-256 of every file read ("" when it could not be read).
    file_hashes: dict[str, str] = field(default_factory=dict)


def _resolution_hint(label_source: LabelSource) -> str:
    if label_source == "check":
        return " Fix the files, or choose explicitly with label_source / --label-source folder|sheet."
    return ""


def near_duplicate_pairs(hashes: list[str], max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every pair of hex perceptual hashes (all of one length) at most ``max_distance`` apart.

    Empty hashes (files that could not be hashed) are never paired.
    """
    present = [index for index, value in enumerate(hashes) if value]
    if len(present) < 2:
        return []
    bits = np.unpackbits(np.array([list(bytes.fromhex(hashes[index])) for index in present], dtype=np.uint8), axis=1)
    pairs = []
    for position in range(len(present) - 1):
        distances = (bits[position + 1 :] != bits[position]).sum(axis=1)
        pairs.extend(
            (present[position], present[position + 1 + int(offset)], int(distances[offset]))
            for offset in np.flatnonzero(distances <= max_distance)
        )
    return pairs


def _drop_unusable(inventory: Inventory, report: Report) -> list[ImageFile]:
    by_reason: dict[str, list[str]] = defaultdict(list)
    for image in inventory.files:
        if image.problem is not None:
            by_reason[image.problem].append(image.relative_path)
        for note in image.notes:
            report.add("format_note", "note", note, [image.relative_path])
    for reason, files in sorted(by_reason.items()):
        report.add("unusable_file", "left_out", reason, files)
    return inventory.usable


def _drop_exact_duplicates(
    images: list[ImageFile], label_source: LabelSource, report: Report
) -> tuple[list[ImageFile], list[tuple[str, str]]]:
    """Keep one copy per (bytes, class); return the kept files and cross-class same-bytes pairs."""
    by_hash: dict[str, list[ImageFile]] = defaultdict(list)
    for image in images:
        by_hash[image.sha256].append(image)
    kept: list[ImageFile] = []
    cross_class: list[tuple[str, str]] = []
    for copies in by_hash.values():
        per_class: dict[int, list[ImageFile]] = defaultdict(list)
        for image in sorted(copies, key=lambda item: item.relative_path):
            per_class[image.folder_label].append(image)
        for same_class in per_class.values():
            kept.append(same_class[0])
            if len(same_class) > 1:
                report.add(
                    "duplicate_bytes",
                    "left_out",
                    f"identical bytes to {same_class[0].relative_path} (kept once)",
                    [image.relative_path for image in same_class[1:]],
                )
        if len(per_class) > 1:
            names = [per_class[label][0].relative_path for label in sorted(per_class)]
            if per_class[0][0].file_name.lower() == per_class[1][0].file_name.lower():
                continue  # same name in both folders: reported once, as such, by _one_per_name
            cross_class.append((per_class[0][0].file_name, per_class[1][0].file_name))
            severity = "stop" if label_source == "check" else "warning"
            report.add(
                "label_conflict",
                severity,
                "identical bytes in both class folders" + _resolution_hint(label_source),
                names,
            )
    kept.sort(key=lambda item: item.relative_path)
    return kept, cross_class


def _one_per_name(
    images: list[ImageFile], sheet: SheetListing | None, label_source: LabelSource, report: Report
) -> list[ImageFile]:
    """Resolve file names that occur more than once (case-insensitively)."""
    by_name: dict[str, list[ImageFile]] = defaultdict(list)
    for image in images:
        by_name[image.file_name.lower()].append(image)
    sheet_labels = _sheet_labels(sheet)
    kept = []
    for copies in by_name.values():
        if len(copies) == 1:
            kept.append(copies[0])
            continue
        labels = {image.folder_label for image in copies}
        files = [image.relative_path for image in copies]
        if len(labels) == 1:
            kept.append(copies[0])
            report.add(
                "duplicate_name", "left_out", f"same file name as {files[0]} in the same class (kept once)", files[1:]
            )
            continue
        wanted = sheet_labels.get(copies[0].file_name.lower())
        if label_source == "sheet" and wanted is not None:
            chosen = [image for image in copies if image.folder_label == wanted]
            kept.append(chosen[0])
            others = [image.relative_path for image in copies if image is not chosen[0]]
            report.add(
                "label_conflict",
                "warning",
                f"file name in both class folders; the sheet says {CLASS_NAMES[wanted]}",
                files,
            )
            report.add("duplicate_name", "left_out", "copy in the class folder the sheet disagrees with", others)
            continue
        report.add(
            "label_conflict",
            "stop",
            "the same file name is in both class folders. Remove one copy, or use label_source / "
            "--label-source sheet to keep the copy in the folder the sheet agrees with",
            files,
        )
    return sorted(kept, key=lambda item: item.relative_path)


def _sheet_labels(sheet: SheetListing | None) -> dict[str, int]:
    if sheet is None or sheet.labels is None:
        return {}
    return {name.lower(): label for name, label in zip(sheet.names, sheet.labels, strict=True) if label is not None}


def _reconcile_sheet(
    images: list[ImageFile],
    all_names: set[str],
    sheet: SheetListing | None,
    label_source: LabelSource,
    report: Report,
) -> list[KeptImage]:
    """Compare the kept files with the sheet; ``all_names`` are every file name found (lower case)."""
    if sheet is None:
        return [KeptImage(file=image, label=image.folder_label) for image in images]
    _report_sheet_rows(sheet, report)
    _report_unmatched_rows_and_files(images, all_names, sheet, report)
    return _decide_labels(images, sheet, label_source, report)


def _report_sheet_rows(sheet: SheetListing, report: Report) -> None:
    """Problems of the sheet alone: label cells that are not a label, names listed twice (with other labels)."""
    listed = defaultdict(set)
    for index, name in enumerate(sheet.names):
        listed[name.lower()].add(sheet.labels[index] if sheet.labels is not None else None)
    if sheet.unreadable_labels:
        report.add(
            "sheet_label_unreadable",
            "warning",
            f"{sheet.path.name} column {sheet.label_column!r}: these label cells are not a label (0/1, "
            "positive/negative); their images keep their folder label and are not cross-checked",
            [f"row {row}: {name}: {value}" for row, name, value in sheet.unreadable_labels],
        )
    contradictory = sorted(name for name, labels in listed.items() if len(labels - {None}) > 1)
    if contradictory:
        report.add(
            "sheet_conflict", "stop", f"{sheet.path.name} lists these names twice with different labels", contradictory
        )
    repeated = sorted({name for name, count in Counter(sheet.names).items() if count > 1} - set(contradictory))
    if repeated:
        report.add("sheet_repeat", "note", f"{sheet.path.name} lists these names more than once", repeated)


def _report_unmatched_rows_and_files(
    images: list[ImageFile], all_names: set[str], sheet: SheetListing, report: Report
) -> None:
    """Rows of the sheet with no image file, and kept image files with no row."""
    missing = sorted({name for name in sheet.names if name.lower() not in all_names})
    if missing:
        report.add("listed_but_missing", "warning", f"listed in {sheet.path.name} but no such image file", missing)
    listed = {name.lower() for name in sheet.names}
    unlisted = [image.relative_path for image in images if image.file_name.lower() not in listed]
    if unlisted:
        report.add(
            "not_in_sheet",
            "warning",
            f"image file has no row in {sheet.path.name}; kept with its folder label",
            unlisted,
        )


def _decide_labels(
    images: list[ImageFile], sheet: SheetListing, label_source: LabelSource, report: Report
) -> list[KeptImage]:
    """Each image with its label: the folder's, or the sheet's where they disagree and ``label_source`` says so."""
    sheet_labels = _sheet_labels(sheet)
    kept = []
    disagreements = []
    for image in images:
        label = image.folder_label
        wanted = sheet_labels.get(image.file_name.lower())
        if wanted is not None and wanted != image.folder_label:
            disagreements.append(f"{image.relative_path} (folder: {CLASS_NAMES[label]}, sheet: {CLASS_NAMES[wanted]})")
            if label_source == "sheet":
                label = wanted
        kept.append(KeptImage(file=image, label=label))
    if disagreements:
        decided = {"check": "", "folder": "; the folder label is used", "sheet": "; the sheet label is used"}
        report.add(
            "label_conflict",
            "stop" if label_source == "check" else "warning",
            f"{sheet.path.name} and the class folder disagree on the label{decided[label_source]}."
            + _resolution_hint(label_source),
            disagreements,
        )
    return kept


def find_problems(
    located: DatasetRoot,
    inventory: Inventory,
    sheet: SheetListing | None,
    sheet_error: DatasetError | None = None,
    label_source: LabelSource = "check",
    near_duplicate_distance: int = NEAR_DUPLICATE_MAX_DISTANCE,
) -> CheckedInput:
    """Apply every check to an inventory and a sheet already read; return what to keep and the report.

    Reads no file: :func:`covid_ct_scan_images.plan.check_download` reads the download and calls this.
    """
    report = Report(root=str(located.root), ignored=list(inventory.ignored))
    _note_how_the_download_was_read(located, sheet, sheet_error, report)
    usable = _drop_unusable(inventory, report)
    unique, cross_class = _drop_exact_duplicates(usable, label_source, report)
    named = _one_per_name(unique, sheet, label_source, report)
    all_names = {image.file_name.lower() for image in inventory.files}
    kept = _reconcile_sheet(named, all_names, sheet, label_source, report)
    links = _same_split_links(kept, cross_class, near_duplicate_distance, report)
    _require_both_classes(located, kept, report)
    _report_unseen(inventory, report)
    report.counts = _counts(inventory, kept, report)
    return CheckedInput(kept=kept, links=links, report=report)


def _note_how_the_download_was_read(
    located: DatasetRoot, sheet: SheetListing | None, sheet_error: DatasetError | None, report: Report
) -> None:
    """Layout notes, zip members not extracted, and whether the sheet was found and read."""
    for note in located.notes:
        report.add("layout", "note", note)
    skipped: dict[str, list[str]] = defaultdict(list)
    for member, reason in located.skipped_members:
        skipped[reason].append(member)
    for reason, members in sorted(skipped.items()):
        report.add("zip_member_skipped", "left_out", reason, members)
    if sheet_error is not None:
        report.add("sheet_unreadable", "stop", str(sheet_error))
    elif located.sheet is None:
        report.add("sheet_missing", "warning", f"no {SHEET_NAME} found; labels come from the class folders alone")
    if sheet is not None:
        for note in sheet.notes:
            report.add("sheet_note", "note", note)


def _same_split_links(
    kept: list[KeptImage], cross_class: list[tuple[str, str]], max_distance: int, report: Report
) -> list[tuple[int, int]]:
    """Index pairs of ``kept`` that must share a split: same bytes in both classes, and near-duplicates."""
    index_of = {item.file.file_name: position for position, item in enumerate(kept)}
    links = [(index_of[a], index_of[b]) for a, b in cross_class if a in index_of and b in index_of]
    hashes = [item.file.phash for item in kept]
    for first, second, distance in near_duplicate_pairs(hashes, max_distance):
        links.append((first, second))
        a, b = kept[first], kept[second]
        if a.file.sha256 == b.file.sha256:
            continue  # identical bytes: already reported as a label conflict
        across = a.label != b.label
        report.add(
            "near_duplicate",
            "warning" if across else "note",
            f"perceptual hashes {distance} bits apart"
            + ("; labels differ" if across else "")
            + "; kept in the same split",
            [a.file.relative_path, b.file.relative_path],
        )
    return links


def _require_both_classes(located: DatasetRoot, kept: list[KeptImage], report: Report) -> None:
    """Stop when a class folder is missing or none of its images was kept."""
    for label, name in enumerate(CLASS_NAMES):
        if label not in located.class_dirs:
            report.add(
                "class_missing",
                "stop",
                f"no {folder_for_label(label)!r} folder ({name} images) next to "
                f"{', '.join(repr(folder.name) for folder in located.class_dirs.values())} in {located.root}",
            )
        elif not any(item.label == label for item in kept):
            report.add("class_missing", "stop", f"no usable {name} image in {located.class_dirs[label]}")


def _report_unseen(inventory: Inventory, report: Report) -> None:
    """Images outside the class folders, and folders that could not be listed."""
    not_read: dict[str, list[str]] = defaultdict(list)
    for path, reason in inventory.unseen:
        not_read[reason].append(path)
    for reason, paths in sorted(not_read.items()):
        report.add("not_read", "left_out", f"not read: {reason}", paths)
    for folder, reason in inventory.unlisted_folders:
        message = f"folder cannot be listed ({reason}); its files are not seen"
        report.add("unreadable_folder", "left_out", message, [folder])


def _counts(inventory: Inventory, kept: list[KeptImage], report: Report) -> dict[str, int]:
    """Files found per class, images kept per class, files left out and ignored."""
    return {
        "files": len(inventory.files),
        **{
            f"{name} files": sum(image.folder_label == label for image in inventory.files)
            for label, name in enumerate(CLASS_NAMES)
        },
        **{f"{name} kept": sum(item.label == label for item in kept) for label, name in enumerate(CLASS_NAMES)},
        "left out": len(report.left_out_files()),
        "ignored": len(inventory.ignored),
    }
