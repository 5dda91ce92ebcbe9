"""One record per file in the class folders: what it is, how big, its hash, and whether it is usable.

Inspection reads each file once (sha256 over the bytes, the image header, a cheap integrity
check and a perceptual hash from a reduced-size decode) and runs on all cores. Files that are not
images are classified here; deciding what to do about them is :mod:`covid_ct_scan_images.checks`.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .layout import IMAGE_EXTENSIONS

#: Default limit on width x height; larger images are refused unread (decompression-bomb guard).
#: The largest real image is 4248 x 3480 (14.8 megapixels). Raise with ``max_image_pixels``.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

#: Operating-system litter that is ignored (and counted), never treated as images.
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})

_FORMAT_EXTENSIONS = {"JPEG": {".jpg", ".jpeg"}, "PNG": {".png"}}
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageFile:
    """What inspection learned about one file in a class folder."""

    path: Path
    relative_path: str
    folder_label: int
    size_bytes: int
    sha256: str = ""
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    exif_orientation: int = 1
    phash: str = ""
    #: Why the file cannot be used (``None`` when it can).
    problem: str | None = None
    #: Things worth knowing that do not stop the file being used.
    notes: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        """The file's name without folders: the ``image_id`` of the dataset."""
        return self.path.name


@dataclass
class Inventory:
    """Every file found in the class folders, and the litter that was ignored."""

    files: list[ImageFile]
    #: (relative path, why ignored) for OS litter, hidden files and empty folders.
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def usable(self) -> list[ImageFile]:
        """The files that are usable images."""
        return [image for image in self.files if image.problem is None]


def ignore_reason(relative_parts: tuple[str, ...]) -> str | None:
    """Why a path (split into parts) is litter to ignore, or ``None`` when it is a real file."""
    if any(part == "__MACOSX" for part in relative_parts):
        return "macOS archive metadata (__MACOSX)"
    name = relative_parts[-1]
    if name.lower() in JUNK_NAMES:
        return f"operating-system file ({name})"
    if name.startswith("._"):
        return "macOS resource fork (._*)"
    if any(part.startswith(".") for part in relative_parts):
        return "hidden file"
    return None


def _walk(class_dir: Path, root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    files: list[Path] = []
    ignored: list[tuple[str, str]] = []
    for folder, dir_names, file_names in os.walk(class_dir):
        dir_names.sort()
        folder_path = Path(folder)
        if not dir_names and not file_names:
            ignored.append((folder_path.relative_to(root).as_posix() + "/", "empty folder"))
        for name in sorted(file_names):
            path = folder_path / name
            relative = path.relative_to(root)
            reason = ignore_reason(relative.parts)
            if reason is None:
                files.append(path)
            else:
                ignored.append((relative.as_posix(), reason))
    return files, ignored


def _looks_like_text(data: bytes) -> bool:
    head = data[:512].lstrip()
    return head[:1] == b"<" or all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head[:64])


def _ends_cleanly(data: bytes, image_format: str) -> bool:
    tail = data.rstrip(b"\x00\r\n ")
    if image_format == "JPEG":
        return tail.endswith(b"\xff\xd9")
    if image_format == "PNG":
        return b"IEND" in data[-32:]
    return True


def inspect_file(
    path: Path,
    root: Path,
    folder_label: int,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    full_decode: bool = False,
) -> ImageFile:
    """Inspect one file: read it, hash it, read its header and check it is a usable image.

    Never raises for a bad file: the returned record's ``problem`` says what is wrong.
    """
    import imagehash
    from PIL import Image, UnidentifiedImageError

    relative = path.relative_to(root).as_posix()
    base = {"path": path, "relative_path": relative, "folder_label": folder_label}
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        size = path.stat().st_size
        return ImageFile(
            **base, size_bytes=size, problem=f"extension {path.suffix or '(none)'!r} is not .png/.jpg/.jpeg"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        return ImageFile(**base, size_bytes=0, problem=f"unreadable: {error.strerror or error}")
    record = {**base, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if not data:
        return ImageFile(**record, problem="empty file (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        return ImageFile(**record, problem=f"decompression bomb refused: {error}")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = "text or HTML, not an image" if _looks_like_text(data) else "not an image Pillow can read"
        return ImageFile(**record, problem=kind)
    with image:
        record.update(format=image.format or "", mode=image.mode, width=image.width, height=image.height)
        if image.format not in _FORMAT_EXTENSIONS:
            return ImageFile(**record, problem=f"unsupported image format {image.format} (expected JPEG or PNG)")
        if path.suffix.lower() not in _FORMAT_EXTENSIONS[image.format]:
            notes.append(f"{image.format} data with a {path.suffix} extension")
        if image.width * image.height > max_image_pixels:
            return ImageFile(
                **record,
                problem=(
                    f"declares {image.width} x {image.height} pixels, more than the limit of {max_image_pixels:,} "
                    "(decompression-bomb guard; raise max_image_pixels if the image is genuine)"
                ),
            )
        record["exif_orientation"] = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)
        try:
            if full_decode or not _ends_cleanly(data, image.format):
                image.load()
            if image.format == "JPEG":
                image.draft("L", (64, 64))
            record["phash"] = str(imagehash.phash(image.convert("L")))
        except (OSError, SyntaxError, ValueError) as error:
            return ImageFile(**record, problem=f"truncated or corrupt {image.format} data: {error}")
    return ImageFile(**record, notes=tuple(notes))


def take_inventory(
    class_dirs: dict[int, Path],
    root: Path,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    full_decode: bool = False,
    workers: int | None = None,
) -> Inventory:
    """Inspect every file under the class folders, in parallel, in a fixed (sorted) order."""
    paths: list[tuple[Path, int]] = []
    ignored: list[tuple[str, str]] = []
    for label, class_dir in sorted(class_dirs.items()):
        files, litter = _walk(class_dir, root)
        paths.extend((path, label) for path in files)
        ignored.extend(litter)

    def inspect(item: tuple[Path, int]) -> ImageFile:
        return inspect_file(item[0], root, item[1], max_image_pixels=max_image_pixels, full_decode=full_decode)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        files = list(pool.map(inspect, paths))
    return Inventory(files=files, ignored=ignored)


def stat_listing(class_dirs: Iterable[Path], root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under ``class_dirs``: cheap change detection."""
    listing = []
    for class_dir in class_dirs:
        for folder, dir_names, file_names in os.walk(class_dir):
            dir_names.sort()
            for name in sorted(file_names):
                path = Path(folder) / name
                try:
                    status = path.stat()
                except OSError:
                    listing.append((path.relative_to(root).as_posix(), -1, -1))
                    continue
                listing.append((path.relative_to(root).as_posix(), status.st_size, status.st_mtime_ns))
    return listing
