"""Making deleted rows unreadable: what ``purge_user`` does after its DELETEs.

A DELETE only unlinks rows. Their bytes stay readable in three places:
freed cells inside live pages and free pages (SQLite reuses them, it does
not clear them; rows removed earlier by retention or by the writer's own
updates are there too), the main file's old page images (until a
checkpoint overwrites them), and the ``-wal`` file (old page images until it
is checkpointed and truncated). So after the deletes a purge:

1. marks the file ``purge_pending = 2`` in ``_memobs_state`` (in the same
   transaction as the deletes: a crash cannot lose the promise);
2. runs ``VACUUM``: every page of the file is rebuilt from the rows left, so
   no freed cell or free page survives (it needs free disk space about the
   size of the file, in the temp folder and in the WAL, and time in
   proportion to the file);
3. sets ``purge_pending = 1`` and checkpoints with ``TRUNCATE``: the main
   file becomes the vacuumed image and the WAL is cut to zero bytes;
4. clears the mark (``0``) only when that checkpoint copied everything.

Step 3 cannot finish while another connection holds a read transaction on
the WAL (its snapshot still needs the old pages). The purge then says so
(:class:`PurgePending`, ``memobs purge`` exits 3) and the mark stays: the
next purge, :meth:`Store.finish_purge`, or the next writer opening the file
(``connect_for_write``, checkpoint only, never blocking) finishes it. The
mark carries no user id: it must not itself be a byte of the purged user.
"""

from __future__ import annotations

import sqlite3

from . import state
from .connection import StoreError, with_retry
from .transaction import immediate_transaction

PENDING_KEY = "purge_pending"
NEEDS_VACUUM = 2
NEEDS_CHECKPOINT = 1


class PurgePending(StoreError):
    """The rows are deleted but their bytes are still in the file or its WAL.

    ``counts`` holds the deleted rows per table, ``reason`` what is in the
    way. Nothing is lost by waiting: rerun the purge (or
    :meth:`~memobs_otel.store.Store.finish_purge`) when the reader is done,
    or let the next writer finish it.
    """

    def __init__(self, path: str, reason: str, counts: dict[str, int] | None = None):
        self.path = path
        self.reason = reason
        self.counts = dict(counts or {})
        deleted = f"{sum(self.counts.values())} rows deleted, but " if counts is not None else ""
        super().__init__(
            f"{path}: purge pending: {deleted}their bytes stay in the file until {reason}; "
            "run the purge again then (the next writer to open the file also finishes it)"
        )


def pending_stage(conn: sqlite3.Connection) -> int:
    """0 when no purge is pending, else what is left (:data:`NEEDS_VACUUM`/…)."""
    if not state.has_state(conn):
        return 0
    return int(state.read(conn, PENDING_KEY, 0) or 0)


def mark(conn: sqlite3.Connection, stage: int = NEEDS_VACUUM) -> None:
    """Record the pending stage (inside the caller's write transaction)."""
    state.write(conn, **{PENDING_KEY: stage})


def _set(conn: sqlite3.Connection, stage: int) -> None:
    def run() -> None:
        with immediate_transaction(conn):
            mark(conn, stage)

    with_retry(run)


def _vacuum(conn: sqlite3.Connection) -> None:
    # writers keep temp tables in memory; VACUUM's temp copy of the whole
    # file must go to disk, not to RAM
    previous = conn.execute("PRAGMA temp_store").fetchone()[0]
    conn.execute("PRAGMA temp_store = FILE")
    try:
        with_retry(lambda: conn.execute("VACUUM"))
    finally:
        conn.execute(f"PRAGMA temp_store = {int(previous)}")


def _checkpoint(conn: sqlite3.Connection) -> bool:
    busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    # TRUNCATE succeeded only when nothing blocked it and the WAL is empty;
    # (0, -1, -1) is the answer of a file not in WAL mode (nothing to copy)
    return busy == 0 and (log, done) in ((0, 0), (-1, -1))


def finish(conn: sqlite3.Connection, path: str, vacuum: bool = True) -> str | None:
    """Finish a pending purge on the write connection ``conn``.

    Returns ``None`` when nothing is pending any more, else the reason in
    words. ``vacuum=False`` (the writer opening the file) only checkpoints:
    a VACUUM left over from a failed purge waits for the next purge.
    """
    stage = pending_stage(conn)
    if stage >= NEEDS_VACUUM:
        if not vacuum:
            return "the purge runs again (its VACUUM did not complete)"
        try:
            _vacuum(conn)
        except sqlite3.Error as exc:
            return f"VACUUM can run ({exc})"
        _set(conn, NEEDS_CHECKPOINT)
        stage = NEEDS_CHECKPOINT
    if stage >= NEEDS_CHECKPOINT:
        if not _checkpoint(conn):
            return "no other connection holds a read transaction on its WAL"
        _set(conn, 0)
        # clearing the mark wrote one page (no user data) to the WAL: empty
        # it again when we can, harmless when a new reader prevents it
        _checkpoint(conn)
    return None
