"""A fingerprint of the raw input that decides whether a cached build can be reused.

It covers every file under the class folders (path, size, modification time), the sheet, the
pinned manifest's bytes and the library version; a file added, removed or changed gives a new
fingerprint and so a rebuild. Only ``stat`` is called: the images are not read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .inventory import stat_listing
from .locate import DatasetRoot


def input_fingerprint(located: DatasetRoot, splits_manifest: str | None, library_version: str) -> str:
    """Hex digest identifying the input as far as the built dataset depends on it."""
    digest = hashlib.sha256()
    digest.update(f"library {library_version}\n".encode())
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
