"""Record which files a piece of code opens, with a Python audit hook (``sys.addaudithook``).

Used by ``bench_reload.py`` and ``tests/test_cache.py`` to show that a cache hit never opens a raw
image. Every ``open()``, ``io.open``, ``Path.read_bytes`` and ``os.open`` raises the ``"open"``
audit event, so nothing that reads a file through Python escapes it. Audit hooks cannot be removed,
so one hook is installed per process and records only while :func:`recording_opens` is active.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_recorders: list[tuple[str, list[str]]] = []
_installed = False


def _hook(event: str, args: tuple) -> None:
    if event != "open" or not _recorders or not isinstance(args[0], str | bytes | os.PathLike):
        return
    path = os.path.realpath(os.fsdecode(args[0]))
    for prefix, opened in _recorders:
        if path == prefix or path.startswith(prefix + os.sep):
            opened.append(path)


@contextmanager
def recording_opens(folder: str | os.PathLike[str]) -> Iterator[list[str]]:
    """Yield a list that fills with the absolute path of every file under ``folder`` opened meanwhile."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    entry = (os.path.realpath(folder), [])
    _recorders.append(entry)
    try:
        yield entry[1]
    finally:
        _recorders.remove(entry)


def image_paths(paths: list[str]) -> list[str]:
    """The paths among ``paths`` that are images (by extension)."""
    return [path for path in paths if Path(path).suffix.lower() in {".png", ".jpg", ".jpeg"}]
