"""What was learned about each image file, kept between commands and keyed by the file's content.

``covid-ct audit``, ``prepare``, ``shortcuts`` and ``export`` all inspect the same images; decoding
them is most of their cost. This store keeps each result (the inspection record with the perceptual
hash, the shortcut features) under the SHA-256 of the file's bytes plus the options that shaped the
result, so a renamed or moved file is found again and a file with new bytes never is, whatever its
size or modification time. Each kind of result carries a *version*: the library version and the
policy values it depends on (hash size, feature sizes, ...); entries of another version are deleted
when the store is opened, so an upgrade never reuses stale results.

The store is one SQLite database in WAL mode, so several processes may read and write it at once
(each write is one transaction; a writer waits for another up to :data:`BUSY_TIMEOUT_S`). It is
bounded: beyond :data:`DEFAULT_MAX_BYTES` of values the least recently used entries are evicted.
It lives in ``~/.cache/covid_ct_scan_images/filestore`` unless ``$COVID_CT_STORE`` names another
folder; ``COVID_CT_STORE=off`` disables it. It is only a cache: when it cannot be opened or written
(read-only folder, damaged file) the commands warn once and compute everything as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import closing
from functools import cache
from pathlib import Path

#: Environment variable naming the store's folder; ``off`` (or ``0``, ``false``, ``no``) disables the store.
STORE_ENV = "COVID_CT_STORE"

#: Where the store lives when ``$COVID_CT_STORE`` is not set.
DEFAULT_STORE_DIR = Path("~/.cache/covid_ct_scan_images/filestore").expanduser()

#: File name of the database inside the store folder.
DATABASE_NAME = "files.sqlite3"

#: Default bound on the stored values; least recently used entries beyond it are evicted.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

#: How long a writer waits for another process's write before giving up on this write.
BUSY_TIMEOUT_S = 30.0

_DISABLED_VALUES = frozenset({"off", "0", "false", "no", "none", "disabled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    value BLOB NOT NULL,
    size INTEGER NOT NULL,
    used REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used);
"""


def _set_up(connection: sqlite3.Connection) -> None:
    """Put the database in WAL mode (once: the mode is kept in the file) and create the tables if missing.

    The tables are created inside ``BEGIN IMMEDIATE``, which takes the write lock first (waiting for it), so the
    statements never have to upgrade a read lock: an upgrade is where SQLite answers "database is locked" at once.
    """
    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            connection.execute(statement)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _when_unlocked(action: Callable[[], None], patience_s: float = BUSY_TIMEOUT_S) -> None:
    """Run ``action``, again after a pause while SQLite says the database is locked (up to ``patience_s``).

    Two processes opening a new store at once both switch it to WAL mode; SQLite refuses one of them at once
    instead of waiting (waiting could deadlock), so the refused one waits here and tries again.
    """
    deadline, pause = time.monotonic() + patience_s, 0.01
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as error:
            if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


@cache
def library_version() -> str:
    """The installed version of this library (part of every entry's version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("covid_ct_scan_images")
    except PackageNotFoundError:  # a source tree that is not installed
        return "source"


def kind_version(**policy: object) -> str:
    """A version string for one kind of result: the library version plus the policy values it depends on."""
    text = json.dumps({"library": library_version(), **policy}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FileStore:
    """A bounded, content-keyed key-value store shared by processes (see the module docstring).

    Values are bytes; keys are strings the caller derives from a file's SHA-256. Every method
    swallows SQLite errors after warning once, so a broken store slows a command down, never stops it.
    """

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DATABASE_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._purged: set[tuple[str, str]] = set()
        self._broken = False

    def _connect(self) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            _when_unlocked(lambda: _set_up(connection))
        except BaseException:
            connection.close()
            raise
        return connection

    def _failed(self, error: Exception) -> None:
        if not self._broken:
            warnings.warn(
                f"the file store {self.path} cannot be used ({error}); results are computed without it. "
                f"Delete the folder or set {STORE_ENV}=off to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )
        self._broken = True

    def _purge_other_versions(self, connection: sqlite3.Connection, kind: str, version: str) -> None:
        """Delete the entries of ``kind`` written by another version (once per kind and version per process)."""
        if (kind, version) in self._purged:
            return
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("DELETE FROM entries WHERE kind = ? AND version != ?", (kind, version))
        connection.execute("COMMIT")
        self._purged.add((kind, version))

    def get_many(self, kind: str, version: str, keys: Iterable[str] | None = None) -> dict[str, bytes]:
        """The stored values of ``kind`` at ``version`` for ``keys`` (every one of them when ``keys`` is ``None``)."""
        if self._broken:
            return {}
        wanted = None if keys is None else list(dict.fromkeys(keys))
        try:
            with self._lock, closing(self._connect()) as connection:
                self._purge_other_versions(connection, kind, version)
                found: dict[str, bytes] = {}
                if wanted is None:
                    rows = connection.execute("SELECT key, value FROM entries WHERE kind = ?", (kind,))
                    found.update((key, bytes(value)) for key, value in rows)
                else:
                    for start in range(0, len(wanted), 500):
                        chunk = wanted[start : start + 500]
                        marks = ",".join("?" * len(chunk))
                        rows = connection.execute(
                            f"SELECT key, value FROM entries WHERE kind = ? AND key IN ({marks})", (kind, *chunk)
                        )
                        found.update((key, bytes(value)) for key, value in rows)
                return found
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
            return {}

    def put_many(self, kind: str, version: str, values: dict[str, bytes], used: Iterable[str] = ()) -> None:
        """Store ``values`` of ``kind`` at ``version`` (replacing equal keys) and mark the ``used`` keys as just
        used, in one transaction; then evict the least recently used entries beyond the bound."""
        used = [key for key in used if key not in values]
        if self._broken or not (values or used):
            return
        now = time.time()
        rows = [(kind, key, version, value, len(value), now) for key, value in values.items()]
        try:
            with self._lock, closing(self._connect()) as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)
                connection.executemany(
                    "UPDATE entries SET used = ? WHERE kind = ? AND key = ?", [(now, kind, key) for key in used]
                )
                self._evict(connection)
                connection.execute("COMMIT")
        except (sqlite3.Error, OSError) as error:
            self._failed(error)

    def _evict(self, connection: sqlite3.Connection) -> None:
        """Delete the least recently used entries until the values fit in ``max_bytes`` (inside a transaction)."""
        (total,) = connection.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
        if total <= self.max_bytes:
            return
        excess = total - self.max_bytes
        victims, freed = [], 0
        for rowid, size in connection.execute("SELECT rowid, size FROM entries ORDER BY used, rowid"):
            victims.append((rowid,))
            freed += size
            if freed >= excess:
                break
        connection.executemany("DELETE FROM entries WHERE rowid = ?", victims)

    def stored_bytes(self) -> int:
        """Total size of the stored values."""
        try:
            with self._lock, closing(self._connect()) as connection:
                return int(connection.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        except (sqlite3.Error, OSError) as error:
            self._failed(error)
            return 0


class ContentMemo:
    """The results of one kind, loaded from the store at the start of a step and saved at its end.

    ``recall`` and ``learn`` are plain dictionary operations, safe from worker threads; nothing
    touches the database between :func:`open_memo` and :meth:`save`.
    """

    def __init__(self, store: FileStore | None, kind: str, version: str, keys: Iterable[str] | None = None) -> None:
        self.store, self.kind, self.version = store, kind, version
        self._known = {} if store is None else store.get_many(kind, version, keys)
        self._learned: dict[str, bytes] = {}
        self._recalled: set[str] = set()

    def recall(self, key: str) -> bytes | None:
        """The stored value for ``key``, or ``None``."""
        value = self._known.get(key)
        if value is not None:
            self._recalled.add(key)
        return value

    def learn(self, key: str, value: bytes) -> None:
        """Remember ``value`` for ``key`` (written to the store by :meth:`save`)."""
        self._learned[key] = value

    @property
    def hits(self) -> int:
        """How many values were found in the store so far."""
        return len(self._recalled)

    def save(self) -> None:
        """Write what was learned (and when the recalled values were last used) to the store, in one transaction."""
        if self.store is not None:
            self.store.put_many(self.kind, self.version, self._learned, used=self._recalled)
        self._known.update(self._learned)
        self._learned, self._recalled = {}, set()


def store_folder() -> Path | None:
    """The store folder ``$COVID_CT_STORE`` names (default :data:`DEFAULT_STORE_DIR`), or ``None`` when disabled."""
    setting = os.environ.get(STORE_ENV)
    if setting is None:
        return DEFAULT_STORE_DIR
    if setting.strip().lower() in _DISABLED_VALUES or not setting.strip():
        return None
    return Path(setting).expanduser()


def default_store() -> FileStore | None:
    """The store of this user (see :func:`store_folder`), or ``None`` when disabled."""
    folder = store_folder()
    return None if folder is None else FileStore(folder)


def open_memo(kind: str, version: str, keys: Iterable[str] | None = None) -> ContentMemo:
    """A :class:`ContentMemo` of ``kind`` at ``version`` over the default store (empty when it is disabled)."""
    return ContentMemo(default_store(), kind, version, keys)


def content_key(sha256: str, *qualifiers: object) -> str:
    """A store key: the file's SHA-256, then whatever else (extension, options) shaped the result."""
    return ":".join([sha256, *(str(item) for item in qualifiers)])
