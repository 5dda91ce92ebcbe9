"""A fingerprint of the raw input that decides whether a cached build can be reused.

It covers every file under the class folders (path, size, modification time), the sheet, the
pinned manifest's bytes, the dataset and library versions and every policy value that changes the
output (:func:`build_policy`): a file added, removed or changed, or a library whose checks changed,
gives a new fingerprint and so a rebuild. Only ``stat`` is called: the images are not read (a file
rewritten with the same size and modification time is caught by :mod:`covid_ct_scan_images.freshness`).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .checks import NEAR_DUPLICATE_MAX_DISTANCE
from .inventory import DEFAULT_MAX_IMAGE_PIXELS, JUNK_NAMES, PHASH_SIZE, stat_listing
from .layout import IMAGE_EXTENSIONS
from .locate import DatasetRoot
from .resized import RESIZED_JPEG_QUALITY, RESIZED_MAX_SIDE
from .splits import _N_SMALL_FOLDS, HELD_OUT_FRACTION, N_CV_FOLDS, SPLIT_NAMES


def build_policy() -> dict[str, object]:
    """The library version and the constants that decide what a build contains (add new ones here)."""
    try:
        library = version("covid_ct_scan_images")
    except PackageNotFoundError:  # a source tree that is not installed
        library = "source"
    return {
        "library": library,
        "near_duplicate_max_distance": NEAR_DUPLICATE_MAX_DISTANCE,
        "phash_size": PHASH_SIZE,
        "default_max_image_pixels": DEFAULT_MAX_IMAGE_PIXELS,
        "junk_names": sorted(JUNK_NAMES),
        "image_extensions": sorted(IMAGE_EXTENSIONS),
        "held_out_fraction": HELD_OUT_FRACTION,
        "cv_folds": N_CV_FOLDS,
        "small_folds": _N_SMALL_FOLDS,
        "splits": list(SPLIT_NAMES),
        "resized": [RESIZED_MAX_SIDE, RESIZED_JPEG_QUALITY],
    }


def input_fingerprint(located: DatasetRoot, splits_manifest: str | None, library_version: str) -> str:
    """Hex digest identifying the input as far as the built dataset depends on it."""
    digest = hashlib.sha256()
    digest.update(f"library {library_version}\n".encode())
    digest.update(json.dumps(build_policy(), sort_keys=True).encode())
    for label, class_dir in sorted(located.class_dirs.items()):
        digest.update(f"class {label} {class_dir.name}\n".encode(errors="surrogateescape"))
        for relative, size, mtime in stat_listing([class_dir], located.root):
            # surrogateescape: a file name in another encoding (GBK) is hashed as the bytes it is
            digest.update(f"{relative}\t{size}\t{mtime}\n".encode(errors="surrogateescape"))
    for extra in (located.sheet, Path(splits_manifest) if splits_manifest else None):
        if extra is None:
            digest.update(b"none\n")
        elif extra.exists():
            digest.update(hashlib.sha256(extra.read_bytes()).digest())
        else:
            digest.update(f"absent {extra}\n".encode(errors="surrogateescape"))
    for member, reason in located.skipped_members:
        digest.update(f"skipped {member}\t{reason}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()[:16]
