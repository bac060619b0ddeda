"""Opening a memobs file: for writing (create + migrate) or strictly for reading.

Writers use WAL journaling, a busy timeout and a retry loop so several
processes can export into one file at once without losing a row. Readers
open ``file:…?mode=ro``: a missing file or a file that is not a memobs
database raises :class:`StoreError` and is never created or touched.

Errors say what is wrong, in one line, as :class:`StoreError` subclasses:
:class:`NotAMemobsDatabase`, :class:`CorruptDatabase` (a table its schema
promises is missing, or SQLite finds damaged pages while reading) and
:class:`DatabaseLocked` (another process holds a lock past the busy timeout,
e.g. a connection in ``locking_mode=EXCLUSIVE``). :func:`store_error` maps a
``sqlite3`` error met while reading to one of them.

A file in a folder this user cannot write (or on a full disk) opens
read-only all the same: a WAL-mode file needs its ``-shm`` file, which
cannot be created there, so when
there is no ``-wal`` file (no writer is active and nothing is unsaved) it is
opened ``immutable`` — SQLite then takes no locks, so the reader assumes no
one writes the file meanwhile (no one can create its ``-wal`` in that folder
with our permissions). With a ``-wal`` file left there and no ``-shm``,
opening fails with one line saying so.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

from .integrity import missing_tables
from .schema import MIGRATIONS_TABLE, SCHEMA_VERSION, applied_migrations, migrate

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 5
CACHE_KIB = 64 * 1024
READ_MMAP_BYTES = 256 * 1024 * 1024
WAL_CHECKPOINT_PAGES = 10_000  # ~40 MB of 4 KiB pages
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class StoreError(Exception):
    """The file cannot be used as a memobs store (missing, not a memobs database, …)."""


class NotAMemobsDatabase(StoreError):
    """The file exists but is not a memobs database."""


class CorruptDatabase(StoreError):
    """The file is a memobs database but damaged (missing table, bad pages).

    ``problem`` is the finding alone, without the advice to run ``doctor``.
    """

    def __init__(self, path: str, detail: str):
        self.problem = f"{path}: damaged memobs database ({detail})"
        super().__init__(f"{self.problem}; `memobs doctor --db {path}` checks it")


class DatabaseLocked(StoreError):
    """Another process holds a lock on the file longer than the busy timeout."""


def store_error(path: str, exc: BaseException) -> StoreError:
    """The one-line :class:`StoreError` for a ``sqlite3`` error met reading ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if is_busy(exc):
        return DatabaseLocked(f"{path}: locked by another process ({text}); try again when it is done")
    # a missing table is found at open (integrity.missing_tables); a "no
    # such column" here would be a query/schema-version mismatch, not damage
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text:
        return CorruptDatabase(path, text)
    return StoreError(f"{path}: cannot read ({type(exc).__name__}: {text})")


def is_busy(exc: BaseException) -> bool:
    """True for the transient 'database is locked / busy' errors worth a retry."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def with_retry(fn: Callable[[], T], retries: int = DEFAULT_RETRIES, backoff_s: float = 0.05) -> T:
    """Call ``fn``; on a busy/locked error wait and try again, ``retries`` more times."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == retries:
                raise
            time.sleep(backoff_s * (2**attempt))
    raise AssertionError("unreachable")


def connect_for_write(
    path: str | os.PathLike,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
) -> sqlite3.Connection:
    """Open (creating if needed) and migrate a memobs file for writing."""
    path = str(path)
    if os.path.exists(path) and os.path.getsize(path) > 0 and not _is_empty_sqlite(path):
        _check_memobs_file(path)  # never write our tables into someone else's database
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        with_retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), retries)
        # NORMAL is durable across application crashes in WAL mode and much
        # faster than FULL; an OS crash may lose the last transactions only.
        conn.execute("PRAGMA synchronous = NORMAL")
        # a deleted or rewritten row is overwritten with zeros, not merely
        # unlinked, whatever the SQLite build's default (Debian's is on,
        # python.org's and macOS's off): retention and purge rely on it
        conn.execute("PRAGMA secure_delete = ON")
        # random-key index inserts (per entity, per user) need the index
        # pages in memory; SQLite's default 2 MB cache thrashes past ~100k rows
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # the writer stages every batch in temp tables: keep them off the disk
        conn.execute("PRAGMA temp_store = MEMORY")
        # one exported batch writes ~1,500 WAL pages, so SQLite's default
        # (a checkpoint past 1,000 pages) checkpointed, and synced, after
        # every commit; index pages dirtied again by the next batches are
        # copied once per checkpoint instead. The WAL file is cut back to
        # WAL_SIZE_LIMIT after a checkpoint.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        with_retry(lambda: migrate(conn), retries)
        _finish_pending_purge(conn, path, timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _finish_pending_purge(conn: sqlite3.Connection, path: str, timeout: float) -> None:
    """A purge a reader kept from finishing is finished by the next writer:
    checkpoint only (never a VACUUM here), never waiting for readers, and
    never failing the open (the mark stays for the next try)."""
    from . import scrub  # scrub builds on this module

    try:
        if not scrub.pending_stage(conn):
            return
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            scrub.finish(conn, path, vacuum=False)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    except sqlite3.Error:
        pass


def connect_read_only(path: str | os.PathLike) -> sqlite3.Connection:
    """Open an existing memobs file read-only; :class:`StoreError` otherwise."""
    conn = _open_checked(str(path))
    try:
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # queries scan the per-entity copy whole: read it mapped rather than
        # copied page by page through the page cache
        conn.execute(f"PRAGMA mmap_size = {READ_MMAP_BYTES}")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_memobs_file(path: str) -> None:
    _open_checked(path).close()


def _connect_ro(path: str, immutable: bool = False) -> sqlite3.Connection:
    uri = Path(path).resolve().as_uri() + "?mode=ro" + ("&immutable=1" if immutable else "")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(DEFAULT_TIMEOUT_S * 1000)}")
    return conn


def _cannot_open(exc: BaseException) -> bool:
    """SQLite could not open the file or create its ``-shm`` (a read-only
    folder: CANTOPEN; a full disk: IOERR_SHMSIZE and kin)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR)) or (
        "unable to open" in str(exc)
    )


def _open_checked(path: str) -> sqlite3.Connection:
    """A read-only connection to ``path`` after checking it is a whole memobs file."""
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such file")
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory, not a memobs database")
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if header != b"SQLite format 3\x00":
        raise NotAMemobsDatabase(f"{path}: not a memobs database (not an SQLite file)")
    conn = None
    try:
        try:
            conn = _connect_ro(path)
            names = applied_migrations(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
                conn = None
            if not _cannot_open(exc):
                raise
            wal = path + "-wal"
            if os.path.exists(wal) and os.path.getsize(wal) > 0:
                raise StoreError(
                    f"{path}: cannot open read-only ({exc}): its -wal file holds unsaved changes "
                    "and the -shm file SQLite needs to read it cannot be created here"
                ) from None
            # the folder is read-only or the disk full (no -shm can be created)
            # and nothing is pending in a WAL: read the file as it is (see the
            # module doc)
            conn = _connect_ro(path, immutable=True)
            names = applied_migrations(conn)
        if not names:
            raise NotAMemobsDatabase(f"{path}: not a memobs database (no {MIGRATIONS_TABLE} table)")
        missing = missing_tables(conn, names)
        if missing:
            raise CorruptDatabase(path, f"table {', '.join(missing)} missing")
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        if is_busy(exc):
            raise DatabaseLocked(
                f"{path}: locked by another process ({exc}); try again when it is done"
            ) from None
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_CORRUPT:
            raise CorruptDatabase(path, str(exc)) from None
        if _cannot_open(exc):
            raise StoreError(f"{path}: cannot open ({exc})") from None
        raise NotAMemobsDatabase(f"{path}: not a memobs database ({exc})") from None
    return conn


def _is_empty_sqlite(path: str) -> bool:
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def schema_version(conn: sqlite3.Connection) -> tuple[int, int]:
    """(migrations applied in the file, migrations this library knows)."""
    return len(applied_migrations(conn)), SCHEMA_VERSION
