"""Whether a finished cache still holds the bytes of the raw files it was built from.

The cache key (:mod:`covid_ct_scan_images.fingerprint`) sees size and modification time only, and
``cp -p``, ``rsync -a`` and ``unzip`` give a replaced file the old ones. The inode change time
(``ctime``) cannot be set by such tools, so every build records, per file, size, mtime, ctime and
SHA-256 (:data:`RECORD_FILENAME`, next to the cache). Before a cache is reused, files whose ctime
changed are hashed again (cheap: usually none); with ``verify`` every file is. A file whose bytes
differ from the record makes the cache stale, and the build is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .inventory import walk_class_folder
from .locate import DatasetRoot

#: Per-file record saved next to every build: relative path -> [size, mtime_ns, ctime_ns, sha256].
RECORD_FILENAME = "input_files.json"


def _listing(located: DatasetRoot) -> dict[str, tuple[Path, os.stat_result]]:
    """Relative path -> (path, stat) of every file under the class folders."""
    found: dict[str, tuple[Path, os.stat_result]] = {}
    for class_dir in located.class_dirs.values():
        for folder, _, names in walk_class_folder(class_dir, located.root, not_followed=[]):
            for name in names:
                path = folder / name
                try:
                    found[path.relative_to(located.root).as_posix()] = (path, path.stat())
                except OSError:
                    continue
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def input_record(located: DatasetRoot, hashes: dict[str, str]) -> str:
    """The record (JSON) of the files now under the class folders, with the ``hashes`` the build read."""
    record = {
        relative: [status.st_size, status.st_mtime_ns, status.st_ctime_ns, hashes.get(relative, "")]
        for relative, (_, status) in sorted(_listing(located).items())
    }
    return json.dumps(record, indent=0)  # ASCII escapes keep names in other encodings (surrogates) intact


def changed_files(cache_dir: Path, located: DatasetRoot, verify: bool) -> list[str]:
    """Files whose bytes differ from those the cache at ``cache_dir`` was built from (empty: reuse it).

    Without ``verify`` only files whose ctime changed are hashed; with it, every file. A cache without a
    record (built by an older version) is reported stale only under ``verify``.
    """
    try:
        record = json.loads((cache_dir / RECORD_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["(this cache has no record of the files' hashes)"] if verify else []
    changed = []
    for relative, (path, status) in sorted(_listing(located).items()):
        recorded = record.get(relative)
        if recorded is None:
            continue  # an added file changes the cache key already
        _, _, ctime, sha256 = recorded
        if (verify or status.st_ctime_ns != ctime) and _sha256(path) != sha256:
            changed.append(relative)
    return changed
