"""Writes that leave all or nothing: a file, a folder, a Parquet stream that a full disk cannot abort.

A reader (a person, a later command, the Hub upload) never meets a half-written report or export, and running
out of space is one plain error rather than a partial folder or a crashed process.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DatasetError


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed over it: never a partial file."""
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # as a plain open() would make it, not the temporary file's 0o600
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


class HeldErrorFile(io.RawIOBase):
    """A file pyarrow can write to that never fails under it: the first write error is kept for :meth:`close`.

    pyarrow aborts the whole process (``Check failed``) when a write fails in the middle of a Parquet column,
    e.g. on a full disk; holding the error back (and dropping the writes after it) lets the writer finish, and
    the error surfaces afterwards as an ordinary :class:`OSError`.
    """

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.error: OSError | None = None
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        size = memoryview(data).nbytes
        if self.error is None:
            try:
                self.file.write(data)
            except OSError as error:
                self.error = error
        self.position += size
        return size

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        """Close the file, then raise the first write error, if any."""
        if self.closed:
            return
        super().close()
        try:
            self.file.close()
        except OSError as error:
            self.error = self.error or error
        if self.error is not None:
            raise self.error


def _disk_full(folder: Path, needed: int, what: str) -> DatasetError:
    free = shutil.disk_usage(folder).free
    return DatasetError(
        f"not enough space in {folder}: {what} needs about {needed / 1e6:,.0f} MB and {free / 1e6:,.0f} MB "
        "are free; free some space or choose an output folder on another disk. Nothing was left behind."
    )


@contextlib.contextmanager
def staged_folder(target: Path, needed: int, what: str) -> Iterator[Path]:
    """A hidden folder next to ``target``: it replaces ``target`` when the block succeeds, and is removed otherwise.

    ``needed`` bytes must be free first; running out of space inside the block gives the same one-line error,
    which says that ``what`` (e.g. "the export") needs that space.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < needed:
        raise _disk_full(target.parent, needed, what)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise _disk_full(target.parent, needed, what) from error
        raise
    if target.exists():  # the caller decided it may be replaced: swap first, then remove it
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)
