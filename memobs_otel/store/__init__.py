"""The memobs store: read API over the SQLite file the exporter writes.

    import memobs_otel as memobs
    store = memobs.open_store("memobs.db")
    store.injection_stats(days_back=30)          # -> [InjectionStat, ...]
    store.memory_review(days_back=30)            # -> [ReviewCandidate, ...]
    store.purge_user("alice")                    # -> {"spans": 3, "events": 9, ...}
    store.apply_retention(max_age_days=90)       # -> deleted rows per table

Every method takes ``now=`` (a ``datetime``; naive means UTC; default the
current time) so results are reproducible. Reading never creates or changes
the file: a missing file or a file that is not a memobs database raises
:class:`StoreError`. ``purge_user`` and ``apply_retention`` open a separate
write connection (and upgrade an older schema first).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime

from . import query, signals
from .connection import (
    NotAMemobsDatabase,
    StoreError,
    connect_for_write,
    connect_read_only,
    schema_version,
    with_retry,
)
from .deletion import delete_where
from .results import InjectionStat, ReviewCandidate
from .retention import apply_retention, retention_from_env

__all__ = [
    "InjectionStat",
    "NotAMemobsDatabase",
    "ReviewCandidate",
    "Store",
    "StoreError",
    "open_store",
]


class Store:
    """Read API over one memobs file. Use :func:`open_store`."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._conn = connect_read_only(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's SQLite connection, opened read-only (``mode=ro``), for
        queries beyond this API. Closed by :meth:`close`; autocommit (each
        statement is its own snapshot unless you ``BEGIN`` a read)."""
        return self._conn

    @property
    def schema_version(self) -> tuple[int, int]:
        """(migrations applied in the file, migrations this library knows)."""
        return schema_version(self._conn)

    def injection_stats(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        entity_type: str | None = None,
        now: datetime | None = None,
    ) -> list[InjectionStat]:
        """Per-entity injections, tokens, sessions and citations in the window.

        Sorted by surfaced_count desc, then total_prompt_tokens desc, then key.
        """
        start, end = query.window(days_back, now)
        return query.injection_stats(self._conn, start, end, user_id, entity_type)

    def memory_review(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        signal_filter=None,
        min_injections: int = 3,
        max_cite_rate: float = 0.5,
        now: datetime | None = None,
    ) -> list[ReviewCandidate]:
        """Entities a human should look at, with the signals that fired.

        Sorted by score desc, then wasted_tokens desc, then key.
        """
        start, end = query.window(days_back, now)
        wanted = signals.validate_signal_filter(signal_filter)
        if wanted is not None and not wanted:
            return []
        for name, value in (("min_injections", min_injections), ("max_cite_rate", max_cite_rate)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        facts = query.review_facts(self._conn, start, end, user_id)
        return signals.review(facts, start, end, min_injections, max_cite_rate, wanted)

    def purge_user(self, user_id: str) -> dict[str, int]:
        """Delete every span, event, injection, citation and write carrying ``user_id``.

        Returns deleted rows per table. Deleted pages are zeroed
        (``secure_delete``) and the WAL is checkpointed, so the data is gone
        from the file, not just unlinked.
        """
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                counts = delete_where(
                    conn, "SELECT pk FROM spans WHERE user_id = ?", (user_id,), user_id=user_id
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return counts

        return self._with_writer(run, secure=True)

    def apply_retention(
        self,
        max_age_days: float | None = None,
        max_rows: int | None = None,
        now: datetime | None = None,
    ) -> dict[str, int]:
        """Delete spans older than ``max_age_days`` and the oldest spans past
        ``max_rows`` rows (spans + events). With neither given, the limits come
        from ``MEMOBS_RETENTION_DAYS`` / ``MEMOBS_RETENTION_MAX_ROWS``.
        """
        if max_age_days is None and max_rows is None:
            max_age_days, max_rows = retention_from_env() or (None, None)
        return self._with_writer(
            lambda conn: apply_retention(conn, max_age_days, max_rows, now=now)
        )

    def _with_writer(self, fn, secure: bool = False):
        conn = connect_for_write(self.path)
        try:
            if secure:
                conn.execute("PRAGMA secure_delete = ON")
            counts = with_retry(lambda: fn(conn)) if secure else fn(conn)
            if secure:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return counts
        finally:
            conn.close()


def open_store(path: str | os.PathLike = "memobs.db") -> Store:
    """Open a memobs file for querying; :class:`StoreError` if it is not one."""
    return Store(path)
