"""Find the dataset root in what the user points at: the folder, a parent folder, or the zip.

Folder names are matched leniently (case, spaces, dashes and underscores ignored) so that a
download renamed by hand or re-zipped on another system is still found; every lenient match is
recorded as a note. Zip archives are extracted safely by :mod:`covid_ct_scan_images.archive`.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DatasetError, ManualDownloadError, UsageError
from .layout import CLASS_FOLDERS, CLASS_NAMES, DATASET_FOLDER, HOMEPAGE, IMAGE_EXTENSIONS, SHEET_NAME, folder_for_label

#: Environment variable naming the raw download when no path is given.
DATA_DIR_ENV = "COVID_CT_DATA_DIR"

#: Where the library looks when neither a path nor ``$COVID_CT_DATA_DIR`` is given.
DEFAULT_DATA_DIR = Path("~/.cache/covid_ct_scan_images/manual").expanduser()

#: How deep below the given path the dataset root is searched for.
_MAX_SEARCH_DEPTH = 3

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
The raw "COVID-19-CT SCAN IMAGES" download needs a Tianchi login, so this library never
downloads it. To get it:
  1. Sign in at {HOMEPAGE} and download the dataset (a .zip archive).
  2. Put the .zip, or the folder extracted from it, in one of:
       - any folder you then pass as data_dir / PATH;
       - the folder named by the environment variable ${DATA_DIR_ENV};
       - {DEFAULT_DATA_DIR}
The expected layout (the library also accepts a parent folder or the .zip itself):
  {DATASET_FOLDER}/
      {folder_for_label(0)}/   (1342 images, label negative)
      {folder_for_label(1)}/   (58 images, label positive)
      {SHEET_NAME}   (the list of image names)
"""


def normalise_name(name: str) -> str:
    """Fold a folder or file name for lenient matching: lower case, no spaces, dashes or underscores."""
    return re.sub(r"[\s_\-]+", "", name).lower()


_CLASS_KEYS = {normalise_name(folder): label for folder, label in CLASS_FOLDERS.items()}


@dataclass
class DatasetRoot:
    """Where the raw download lies and what was noticed while finding it."""

    root: Path
    class_dirs: dict[int, Path]
    sheet: Path | None
    notes: list[str] = field(default_factory=list)
    #: Archive members that were not extracted: (member name, reason).
    skipped_members: list[tuple[str, str]] = field(default_factory=list)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """Return the path to read: ``data_dir``, else ``$COVID_CT_DATA_DIR``, else the default folder.

    Raises :class:`ManualDownloadError` with download instructions when nothing is there.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder.\n\n{MANUAL_DOWNLOAD_INSTRUCTIONS}")
        return path
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.exists():
            raise ManualDownloadError(
                f"${DATA_DIR_ENV} is set to {path}, which does not exist.\n\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return path
    if DEFAULT_DATA_DIR.exists() and any(DEFAULT_DATA_DIR.iterdir()):
        return DEFAULT_DATA_DIR
    raise ManualDownloadError(
        f"No data_dir was given, ${DATA_DIR_ENV} is not set and {DEFAULT_DATA_DIR} is empty or missing.\n\n"
        f"{MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )


def _class_dirs_in(folder: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for child in sorted(folder.iterdir()):
        label = _CLASS_KEYS.get(normalise_name(child.name))
        if label is not None and child.is_dir() and label not in found:
            found[label] = child
    return found


def _candidate_folders(start: Path) -> Iterator[Path]:
    """Folders at and below ``start``, breadth first and sorted, skipping hidden and ``__MACOSX``.

    Lazy, so that the search stops at the first folder holding a class folder without listing
    the thousands of images below it.
    """
    level = [start]
    for _depth in range(_MAX_SEARCH_DEPTH + 1):
        yield from level
        next_level: list[Path] = []
        for folder in level:
            try:
                children = sorted(folder.iterdir())
            except OSError:
                continue
            next_level.extend(
                child for child in children if child.is_dir() and not child.name.startswith((".", "__MACOSX"))
            )
        level = next_level


def _find_sheet(root: Path) -> Path | None:
    """``Train.xls`` in ``root``, matched leniently; also ``Train.xlsx`` (a re-saved sheet)."""
    wanted = normalise_name(SHEET_NAME)
    candidates = [child for child in sorted(root.iterdir()) if child.is_file()]
    for accepted in (wanted, wanted + "x"):
        for child in candidates:
            if normalise_name(child.name) == accepted:
                return child
    return None


def find_dataset_root(path: Path) -> DatasetRoot:
    """Find the folder that holds the class folders at or below ``path`` (a folder).

    Raises :class:`DatasetError` naming the expected folders and what was found instead.
    """
    try:
        listing = sorted(path.iterdir())
    except OSError as error:
        reason = error.strerror or error
        raise DatasetError(f"{path}: cannot read this folder ({reason}); check its permissions.") from error
    for folder in _candidate_folders(path):
        try:
            class_dirs = _class_dirs_in(folder)
        except OSError:
            continue
        if not class_dirs:
            continue
        notes = []
        if folder != path:
            notes.append(f"dataset root found at {folder} (below the given {path})")
        for label, class_dir in class_dirs.items():
            expected = folder_for_label(label)
            if class_dir.name != expected:
                notes.append(f"class folder {class_dir.name!r} used as {expected!r}")
        sheet = _find_sheet(folder)
        if sheet is not None and sheet.name != SHEET_NAME:
            notes.append(f"sheet {sheet.name!r} used as {SHEET_NAME!r}")
        return DatasetRoot(root=folder, class_dirs=class_dirs, sheet=sheet, notes=notes)
    shown = [child.name + ("/" if child.is_dir() else "") for child in listing][:20]
    raise DatasetError(
        f"{path}: found neither class folder. Expected a folder {DATASET_FOLDER!r} holding "
        f"{' and '.join(repr(name) for name in CLASS_FOLDERS)} (up to {_MAX_SEARCH_DEPTH} levels down). "
        f"Found: {', '.join(shown) if shown else 'an empty folder'}.\n\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )


def stray_images(located: DatasetRoot, already_read: set[Path]) -> list[tuple[str, str]]:
    """(relative path, why) for every image file under the dataset root that is not read from a class folder.

    Such files are never read: images lying in the root itself or in another folder (their label is
    unknown), and images in a second folder whose name matches a class folder's leniently (only the
    first, in sorted order, is read). Hidden folders and ``__MACOSX`` are skipped, links not followed.
    ``already_read`` holds the resolved paths of the files read (some through links into other folders).
    """
    used = {folder.resolve() for folder in located.class_dirs.values()}
    stray: list[tuple[str, str]] = []
    for folder, dir_names, file_names in os.walk(located.root):
        folder_path = Path(folder)
        dir_names[:] = sorted(
            name
            for name in dir_names
            if not name.startswith((".", "__MACOSX")) and (folder_path / name).resolve() not in used
        )
        for name in sorted(file_names):
            path = folder_path / name
            if path.suffix.lower() not in IMAGE_EXTENSIONS or name.startswith(".") or path.resolve() in already_read:
                continue
            relative = path.relative_to(located.root)
            label = _CLASS_KEYS.get(normalise_name(relative.parts[0])) if len(relative.parts) > 1 else None
            if label is not None:
                reason = (
                    f"in a second {CLASS_NAMES[label]} class folder {relative.parts[0]!r}: only "
                    f"{located.class_dirs[label].name!r} is read; move these files into it"
                )
            elif len(relative.parts) == 1:
                reason = "in the dataset root, not in a class folder (label unknown); move it into its class folder"
            else:
                reason = f"in {relative.parts[0]!r}, not a class folder (label unknown); move it into its class folder"
            stray.append((relative.as_posix(), reason))
    return stray


def locate(path: Path, work_dir: Path | Callable[[], Path]) -> DatasetRoot:
    """Locate the dataset root in a folder, a parent folder or a ``.zip`` (extracted under ``work_dir``).

    ``work_dir`` may be a function giving the folder, called only for a zip (finding the datasets cache imports
    datasets, which a folder does not need).
    """
    from .archive import extract_zip

    if path.is_dir():
        return find_dataset_root(path)
    if not path.is_file():  # a FIFO would block zipfile.is_zipfile forever; a device or socket is no download
        raise UsageError(
            f"{path}: is neither a folder nor a regular file (a pipe, socket or device). Give the dataset folder, "
            "a folder that contains it, or the downloaded .zip."
        )
    if zipfile.is_zipfile(path):
        extracted = extract_zip(path, work_dir if isinstance(work_dir, Path) else work_dir())
        try:
            located = find_dataset_root(extracted.folder)
        except DatasetError as error:
            if not extracted.skipped:
                raise
            skipped = "; ".join(f"{name}: {reason}" for name, reason in extracted.skipped[:5])
            raise DatasetError(f"{path}: members of the zip were not extracted: {skipped}.\n{error}") from error
        located.notes = [f"extracted {path} to {extracted.folder}", *extracted.notes, *located.notes]
        located.skipped_members = extracted.skipped
        return located
    if path.suffix.lower() == ".zip":
        raise DatasetError(
            f"{path}: is named .zip but is not a readable zip archive (an unfinished or corrupt download?). "
            "Download it again, or extract it with another tool and pass the folder."
        )
    raise UsageError(
        f"{path}: is a file but not a zip archive. Expected the dataset folder {DATASET_FOLDER!r}, "
        f"a folder that contains it, or the .zip as downloaded.\n\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
