"""One write transaction: ``with immediate_transaction(conn): ...``.

Every write to a memobs file goes through this context manager, so the
whole block commits or none of it does. ``BEGIN IMMEDIATE`` takes the write
lock up front: two processes cannot both read, then both try to upgrade to
writing and deadlock (SQLite would fail one with "database is locked" midway).
The connection must be in autocommit mode (``isolation_level=None``), as
every connection :mod:`memobs_otel.store.connection` opens is.

It does not retry; callers wrap the whole ``with`` block in
:func:`memobs_otel.store.connection.with_retry` when a busy file is worth
waiting for, so a retry replays the complete transaction.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def immediate_transaction(conn: sqlite3.Connection,
                          on_rollback: Callable[[], None] | None = None) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction; roll back on any exception.

    ``on_rollback`` is called after a rollback (the block or the COMMIT
    failed), not when ``BEGIN`` itself fails: a cache of what the block
    wrote is dropped there.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (e.g. on SQLITE_FULL); a second
        # ROLLBACK would raise and hide the error that matters
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if on_rollback is not None:
            on_rollback()
        raise
