"""One record per file in the class folders: what it is, how big, its hash, and whether it is usable.

Inspection reads each file once (sha256 over the bytes, the image header, a cheap integrity
check and a perceptual hash from a reduced-size decode) and runs on all cores. Files that are not
images are classified here; deciding what to do about them is :mod:`covid_ct_scan_images.checks`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cores import usable_cores
from .filestore import ContentMemo, content_key, kind_version, open_memo
from .layout import IMAGE_EXTENSIONS
from .progress import progress

if TYPE_CHECKING:  # Pillow is imported where images are opened, so `import covid_ct_scan_images` stays light
    from PIL import Image

#: Default limit on width x height; larger images are refused unread (decompression-bomb guard).
#: The largest real image is 4248 x 3480 (14.8 megapixels). Raise with ``max_image_pixels``.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

#: Operating-system litter that is ignored (and counted), never treated as images.
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})

#: Side of the perceptual hash (``imagehash.phash``): 16 gives a 256-bit hash, 64 hex digits. The usual
#: 64-bit hash cannot tell radiographs of different children apart (2 bits on the real sample);
#: see docs/near_duplicates.md.
PHASH_SIZE = 16

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
    #: (relative path, why) for folders that could not be listed (their files are not in ``files``).
    unlisted_folders: list[tuple[str, str]] = field(default_factory=list)
    #: (relative path, why) for links not followed and image files outside the class folders: never read.
    unseen: list[tuple[str, str]] = field(default_factory=list)

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


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside the folder ``root`` (links resolved)."""
    return path.resolve().is_relative_to(root.resolve())


def walk_class_folder(
    class_dir: Path, root: Path, not_followed: list[tuple[str, str]], onerror=None
) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` of ``class_dir`` that follows links to folders inside ``root`` only, each folder once.

    Links to folders or files outside ``root``, and links to a folder already walked (a loop), are not
    followed: each is appended to ``not_followed`` as (relative path, why) and left out of the listing.
    """
    walked = {class_dir.resolve()}
    for folder, dir_names, file_names in os.walk(class_dir, onerror=onerror, followlinks=True):
        folder_path = Path(folder)
        for name in sorted(dir_names):
            child = folder_path / name
            relative = child.relative_to(root).as_posix() + "/"
            if child.is_symlink() and not _inside(child, root):
                not_followed.append((relative, f"link to a folder outside the dataset root ({child.resolve()})"))
                dir_names.remove(name)
            elif child.resolve() in walked:
                not_followed.append((relative, "folder already read through another path (a link or a loop)"))
                dir_names.remove(name)
            else:
                walked.add(child.resolve())
        dir_names.sort()
        kept_files = []
        for name in sorted(file_names):
            path = folder_path / name
            if path.is_symlink() and path.exists() and not _inside(path, root):
                relative = path.relative_to(root).as_posix()
                not_followed.append((relative, f"link to a file outside the dataset root ({path.resolve()})"))
            else:
                kept_files.append(name)
        yield folder_path, dir_names, kept_files


def _walk(
    class_dir: Path, root: Path
) -> tuple[list[Path], list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Files under ``class_dir``: the files, litter ignored (with why), folders that could not be listed
    (with why) and links not followed (with why)."""
    files: list[Path] = []
    ignored: list[tuple[str, str]] = []
    unlisted: list[tuple[str, str]] = []
    not_followed: list[tuple[str, str]] = []

    def not_listed(error: OSError) -> None:
        folder = Path(error.filename).relative_to(root).as_posix() + "/"
        unlisted.append((folder, error.strerror or str(error)))

    for folder_path, dir_names, file_names in walk_class_folder(class_dir, root, not_followed, onerror=not_listed):
        if not dir_names and not file_names:
            ignored.append((folder_path.relative_to(root).as_posix() + "/", "empty folder"))
        for name in file_names:
            path = folder_path / name
            relative = path.relative_to(root)
            reason = ignore_reason(relative.parts)
            if reason is None:
                files.append(path)
            else:
                ignored.append((relative.as_posix(), reason))
    return files, ignored, unlisted, not_followed


def _is_utf8(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (undecodable bytes arrive as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _too_many_pixels(declared: str, max_image_pixels: int) -> str:
    return (
        f"declares {declared} pixels, more than the limit of {max_image_pixels:,} pixels; refused unread "
        "(decompression-bomb guard: raise max_image_pixels / --max-image-pixels if the image is genuine)"
    )


def perceptual_hash(image: Image.Image, hash_size: int = PHASH_SIZE) -> str:
    """Hex perceptual hash (DCT ``phash``) of an opened image, from a reduced-size grayscale decode.

    A JPEG not yet loaded is decoded at reduced size (``draft``), which is much faster and gives
    the same hash to within a bit or two; the hash only needs ``4 * hash_size`` pixels a side.
    """
    import imagehash
    import numpy as np

    from .imaging import HIGH_BIT_DEPTH_MODES, scale_to_8bit

    if image.format == "JPEG":
        image.draft("L", (16 * hash_size, 16 * hash_size))
    gray = scale_to_8bit(image) if image.mode in HIGH_BIT_DEPTH_MODES else image.convert("L")
    bits = imagehash.phash(gray, hash_size=hash_size).hash.ravel()
    if bits.size % 8:  # imagehash's own hex (a Python loop over the bits) for sizes that do not fill whole bytes
        return str(imagehash.ImageHash(bits))
    return np.packbits(bits).tobytes().hex()  # the same hex digits as str(ImageHash), without a loop per bit


#: The fields of :class:`ImageFile` that the file's bytes (and the inspection options) decide, kept in the store.
_CONTENT_FIELDS = ("size_bytes", "sha256", "format", "mode", "width", "height", "exif_orientation", "phash", "problem")


def inspection_memo() -> ContentMemo:
    """The stored inspection records (see :mod:`covid_ct_scan_images.filestore`), valid for this hash size."""
    return open_memo("inspection", kind_version(phash_size=PHASH_SIZE, formats=sorted(_FORMAT_EXTENSIONS)))


def _recall_inspection(memo: ContentMemo, key: str, base: dict) -> ImageFile | None:
    stored = memo.recall(key)
    if stored is None:
        return None
    fields = json.loads(stored)
    return ImageFile(**base, **{name: fields[name] for name in _CONTENT_FIELDS}, notes=tuple(fields["notes"]))


def _learn_inspection(memo: ContentMemo, key: str, inspected: ImageFile) -> None:
    fields = {name: getattr(inspected, name) for name in _CONTENT_FIELDS}
    memo.learn(key, json.dumps({**fields, "notes": list(inspected.notes)}).encode())


def inspect_file(
    path: Path,
    root: Path,
    folder_label: int,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    full_decode: bool = False,
    memo: ContentMemo | None = None,
    features: ContentMemo | None = None,
) -> ImageFile:
    """Inspect one file: read it, hash it, read its header and check it is a usable image.

    With ``memo`` (see :func:`inspection_memo`), a file whose bytes were inspected before under the same
    options and extension is not decoded again: the stored record is used, whatever the file's name.
    With ``features`` as well, a file that is decoded leaves its shortcut features there too.
    Never raises for a bad file: the returned record's ``problem`` says what is wrong.
    """
    base = {"path": path, "relative_path": path.relative_to(root).as_posix(), "folder_label": folder_label}
    try:
        return _inspect(path, base, max_image_pixels, full_decode, memo, features)
    except Exception as error:  # a decoder failing in a way not foreseen must not stop the whole inventory
        return ImageFile(**base, size_bytes=0, problem=f"could not be inspected ({type(error).__name__}: {error})")


def _inspect(
    path: Path,
    base: dict,
    max_image_pixels: int,
    full_decode: bool,
    memo: ContentMemo | None,
    features: ContentMemo | None = None,
) -> ImageFile:
    """:func:`inspect_file` for the expected kinds of bad file; ``base`` holds the record's identity fields."""
    try:
        status = path.stat()
    except OSError as error:  # a dangling link, or a file removed while the folder was read
        return ImageFile(**base, size_bytes=0, problem=f"unreadable: {error.strerror or error}")
    if not stat.S_ISREG(status.st_mode):
        return ImageFile(**base, size_bytes=0, problem="not a regular file (a pipe, socket or device); not read")
    if not _is_utf8(path.name):  # the name becomes the image_id, an Arrow (UTF-8) string
        return ImageFile(
            **base,
            size_bytes=status.st_size,
            problem="file name is not UTF-8 (unzip of an archive from a Chinese Windows?); rename it to UTF-8, "
            "e.g. `convmv -f gbk -t utf-8 --notest -r FOLDER`, to include it",
        )
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return ImageFile(
            **base, size_bytes=status.st_size, problem=f"extension {path.suffix or '(none)'!r} is not .png/.jpg/.jpeg"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        return ImageFile(**base, size_bytes=status.st_size, problem=f"unreadable: {error.strerror or error}")
    record = {**base, "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if memo is None:
        return _inspect_data(data, record, path.suffix, max_image_pixels, full_decode)
    key = content_key(record["sha256"], path.suffix.lower(), max_image_pixels, int(full_decode))
    recalled = _recall_inspection(memo, key, base)
    if recalled is not None:
        return recalled
    inspected = _inspect_data(data, record, path.suffix, max_image_pixels, full_decode, features)
    _learn_inspection(memo, key, inspected)
    return inspected


def _inspect_data(
    data: bytes,
    record: dict,
    suffix: str,
    max_image_pixels: int,
    full_decode: bool,
    features: ContentMemo | None = None,
) -> ImageFile:
    """Header, integrity and perceptual hash of a file's ``data``; ``record`` holds its identity, size and hash.

    With ``features`` (see :func:`~covid_ct_scan_images.shortcuts.features.features_memo`), the shortcut
    features are computed from the same decode as the hash and kept there, so that no later command decodes
    the image for them.
    """
    from PIL import Image, UnidentifiedImageError

    from .imaging import plain_decode_caveat

    if not data:
        return ImageFile(**record, problem="empty file (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))
        count = f"{int(declared.group(1)):,}" if declared else "too many"
        return ImageFile(**record, problem=_too_many_pixels(count, max_image_pixels))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = "text or HTML, not an image" if _looks_like_text(data) else "not an image Pillow can read"
        return ImageFile(**record, problem=kind)
    with image:
        record.update(format=image.format or "", mode=image.mode, width=image.width, height=image.height)
        if image.format not in _FORMAT_EXTENSIONS:
            return ImageFile(**record, problem=f"unsupported image format {image.format} (expected JPEG or PNG)")
        if suffix.lower() not in _FORMAT_EXTENSIONS[image.format]:
            notes.append(f"{image.format} data with a {suffix} extension")
        if image.width * image.height > max_image_pixels:
            return ImageFile(**record, problem=_too_many_pixels(f"{image.width} x {image.height}", max_image_pixels))
        try:
            record["exif_orientation"] = _exif_orientation(image)
            # The hash always comes from the reduced decode, so near-duplicate links (and so the
            # splits) do not depend on --full-decode; the full decode is a separate integrity check.
            if features is None:
                record["phash"] = perceptual_hash(image)
            else:
                from .shortcuts.features import features_beside, learn_features

                record["phash"], row = features_beside(image, data, perceptual_hash)
                if row is not None:
                    learn_features(features, record["sha256"], row)
            caveat = plain_decode_caveat(image)
            if caveat is not None:
                notes.append(caveat)
            if full_decode or not _ends_cleanly(data, image.format):
                with Image.open(io.BytesIO(data)) as complete:
                    complete.load()
        except (OSError, SyntaxError, ValueError) as error:
            return ImageFile(**record, problem=f"truncated or corrupt {image.format} data: {error}")
    return ImageFile(**record, notes=tuple(notes))


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8); 1 when absent or not a valid value."""
    value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def take_inventory(
    class_dirs: dict[int, Path],
    root: Path,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    full_decode: bool = False,
    workers: int | None = None,
    shortcut_features: bool = False,
) -> Inventory:
    """Inspect every file under the class folders, in parallel, in a fixed (sorted) order.

    Files inspected before (same bytes, any name) are taken from the file store instead of being decoded.
    With ``shortcut_features``, the files that are decoded leave their shortcut features there as well,
    computed in the same decode, so that ``covid-ct shortcuts`` does not decode them again.
    """
    paths: list[tuple[Path, int]] = []
    ignored: list[tuple[str, str]] = []
    unlisted: list[tuple[str, str]] = []
    unseen: list[tuple[str, str]] = []
    for label, class_dir in sorted(class_dirs.items()):
        files, litter, not_listed, not_followed = _walk(class_dir, root)
        paths.extend((path, label) for path in files)
        ignored.extend(litter)
        unlisted.extend(not_listed)
        unseen.extend(not_followed)

    memo = inspection_memo()
    features = None
    if shortcut_features and memo.store is not None:  # without a store they would be computed for nothing
        from .shortcuts.features import features_memo

        features = features_memo()

    def inspect(item: tuple[Path, int]) -> ImageFile:
        return inspect_file(
            item[0],
            root,
            item[1],
            max_image_pixels=max_image_pixels,
            full_decode=full_decode,
            memo=memo,
            features=features,
        )

    with _pillow_pixel_limit(max_image_pixels), ThreadPoolExecutor(max_workers=workers or usable_cores()) as pool:
        files = list(progress(pool.map(inspect, paths), "checking images", total=len(paths), unit="file"))
    memo.save()
    if features is not None:
        features.save()
    return Inventory(files=files, ignored=ignored, unlisted_folders=unlisted, unseen=unseen)


@contextmanager
def _pillow_pixel_limit(max_image_pixels: int) -> Iterator[None]:
    """Let ``max_image_pixels`` decide: raise Pillow's own guard (refusing at twice its limit) to at least it."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    if previous is not None and previous < max_image_pixels:
        Image.MAX_IMAGE_PIXELS = max_image_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def stat_listing(class_dirs: Iterable[Path], root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under ``class_dirs``: cheap change detection."""
    listing = []
    for class_dir in class_dirs:
        for folder, _, file_names in walk_class_folder(class_dir, root, not_followed=[]):
            for name in file_names:
                path = folder / name
                try:
                    status = path.stat()
                except OSError:
                    listing.append((path.relative_to(root).as_posix(), -1, -1))
                    continue
                listing.append((path.relative_to(root).as_posix(), status.st_size, status.st_mtime_ns))
    return listing
