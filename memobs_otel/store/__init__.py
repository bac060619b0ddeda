"""The memobs store: read API over the SQLite file the exporter writes.

    import memobs_otel as memobs
    store = memobs.open_store("memobs.db")
    store.injection_stats(days_back=30)          # -> [InjectionStat, ...]
    store.memory_review(days_back=30)            # -> [ReviewCandidate, ...]
    store.context_budget(days_back=30)           # -> ContextBudget (share of the prompt that is memory)
    store.dismiss("doc", "kb-7", note="merged")  # hide a handled candidate (decisions.py)
    store.undismiss("doc", "kb-7")
    store.purge_user("alice")                    # -> {"spans": 3, "events": 9, ...}
    store.apply_retention(max_age_days=90)       # -> deleted rows per table

Every method takes ``now=`` (a ``datetime``; naive means UTC; default the
current time) so results are reproducible. Reading never creates or changes
the file: a missing file, a file that is not a memobs database, a damaged
one or one locked by another process raises a :class:`StoreError` (one
line; subclasses :class:`NotAMemobsDatabase`, :class:`CorruptDatabase`,
:class:`DatabaseLocked`), at open or when a query meets the damage.
``purge_user`` and ``apply_retention`` open a separate write connection (and
upgrade an older schema first).

``purge_user`` leaves no byte of the user in the file or its WAL (see
:mod:`memobs_otel.store.scrub`): it deletes, VACUUMs and checkpoints. When
another connection's read transaction keeps the WAL from being emptied, it
raises :class:`PurgePending` (rows deleted, bytes not yet gone) instead of
returning; ``finish_purge()``, a second purge or the next writer finishes.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime

from . import budget, decisions, query, scrub, signals
from .connection import (
    CorruptDatabase,
    DatabaseLocked,
    NotAMemobsDatabase,
    StoreError,
    connect_for_write,
    connect_read_only,
    schema_version,
    store_error,
    with_retry,
)
from .deletion import delete_where
from .results import ContextBudget, InjectionStat, ReviewCandidate
from .retention import apply_retention, retention_from_env
from .scrub import PurgePending
from .transaction import immediate_transaction

__all__ = [
    "ContextBudget",
    "CorruptDatabase",
    "DatabaseLocked",
    "InjectionStat",
    "NotAMemobsDatabase",
    "PurgePending",
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
        return self._read(schema_version, self._conn)

    @property
    def purge_pending(self) -> bool:
        """True while a purge's deleted rows may still be readable in the file
        or its WAL (a reader kept it from finishing); see :meth:`finish_purge`."""
        return bool(self._read(scrub.pending_stage, self._conn))

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
        return self._read(query.injection_stats, self._conn, start, end, user_id, entity_type)

    def context_budget(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        now: datetime | None = None,
    ) -> ContextBudget:
        """What share of the window's prompts is memory, cited and uncited (SPEC §6b;
        see :mod:`memobs_otel.store.budget`)."""
        start, end = query.window(days_back, now)
        prompts, memory = self._read(budget.sqlite_facts, self._conn, start, end, user_id)
        return budget.compute(prompts, memory, days_back, user_id)

    def memory_review(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        signal_filter=None,
        min_injections: int = 3,
        max_cite_rate: float = 0.5,
        now: datetime | None = None,
        min_wasted_tokens: float = 1000,
        include_dismissed: bool = False,
    ) -> list[ReviewCandidate]:
        """Entities a human should look at, with the signals that fired.

        Sorted by score desc, then wasted_tokens desc, then key. Dismissed
        candidates (:meth:`dismiss`) are left out unless ``include_dismissed``
        (then ``dismissed=True``).
        """
        start, end = query.window(days_back, now)
        wanted = signals.validate_signal_filter(signal_filter)
        if wanted is not None and not wanted:
            return []
        for name, value in (("min_injections", min_injections), ("max_cite_rate", max_cite_rate),
                            ("min_wasted_tokens", min_wasted_tokens)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        facts = self._read(query.review_facts, self._conn, start, end, user_id)
        dismissals = self._read(decisions.load, self._conn)
        return signals.review(facts, start, end, min_injections, max_cite_rate, wanted,
                              min_wasted_tokens, dismissals, include_dismissed)

    def dismiss(
        self,
        entity_type: str,
        entity_id: str,
        signals=None,
        until=None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> decisions.Decision:
        """Hide a review candidate: for the listed ``signals`` (None = all),
        until ``until`` (a date/datetime, naive = UTC; None = for good).

        It comes back when a signal fires that was not dismissed, or from
        ``until`` on. Stored in the file (``review_decisions``) with the time
        and ``note``; a new dismissal replaces the entity's previous one.
        ``ValueError`` for an entity the file does not know, an unknown or
        empty signal list, or an unreadable ``until``.
        """
        key = self._entity_key(entity_type, entity_id)
        wanted = None if signals is None else _signal_names(signals)
        decision = decisions.Decision(
            key[0], key[1], wanted, decisions.until_ns(until),
            None if note is None else str(note), query.now_ns(now),
        )

        def run(conn: sqlite3.Connection) -> None:
            with immediate_transaction(conn):
                decisions.save(conn, decision)

        self._with_writer(lambda conn: with_retry(lambda: run(conn)))
        return decision

    def undismiss(self, entity_type: str, entity_id: str) -> bool:
        """Take a dismissal back; True if there was one."""
        if not isinstance(entity_type, str) or not isinstance(entity_id, str):
            raise ValueError("entity_type and entity_id must be strings")
        if not self._read(decisions.has_table, self._conn):
            return False

        def run(conn: sqlite3.Connection) -> bool:
            with immediate_transaction(conn):
                return decisions.delete(conn, entity_type, entity_id)

        return self._with_writer(lambda conn: with_retry(lambda: run(conn)))

    def dismissals(self) -> list[decisions.Decision]:
        """Every recorded dismissal, by key (in force or not)."""
        found = self._read(decisions.load, self._conn)
        return [found[key] for key in sorted(found)]

    def _entity_key(self, entity_type, entity_id) -> tuple[str, str]:
        if not isinstance(entity_type, str) or not entity_type or not isinstance(entity_id, str) or not entity_id:
            raise ValueError("entity_type and entity_id must be non-empty strings")
        known = self._read(
            lambda: self._conn.execute(
                "SELECT 1 FROM entities WHERE entity_type = ? AND entity_id = ?", (entity_type, entity_id)
            ).fetchone()
        )
        if known is None:
            raise ValueError(f"no entity {entity_type} {entity_id} in {self.path}")
        return entity_type, entity_id

    def _read(self, fn, *args):
        # a damaged page or a lock met mid-query is a StoreError in one line
        # (CorruptDatabase / DatabaseLocked), like the same problem at open
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from None

    def purge_user(self, user_id: str) -> dict[str, int]:
        """Delete every span, event, injection, citation and write carrying ``user_id``.

        Returns deleted rows per table once no byte of them is left: deleted
        cells are zeroed (``secure_delete``), the file is rebuilt (``VACUUM``:
        free pages and cells freed earlier, by retention too, are gone) and
        the WAL checkpointed and truncated. Raises :class:`PurgePending`
        (``.counts``, ``.reason``) when the rows are deleted but another
        connection's read transaction keeps their old pages in the file or
        the WAL; it is finished later (see :meth:`finish_purge`), never
        reported done early. Takes time and free disk space in proportion
        to the file (VACUUM writes a copy of it).
        """
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            with immediate_transaction(conn):
                counts = delete_where(
                    conn, "SELECT pk FROM spans WHERE user_id = ?", (user_id,), user_id=user_id
                )
                # in the same transaction: the promise to scrub survives a crash
                scrub.mark(conn, scrub.NEEDS_VACUUM)
            return counts

        def purge(conn: sqlite3.Connection) -> dict[str, int]:
            counts = with_retry(lambda: run(conn))
            reason = scrub.finish(conn, self.path)
            if reason is not None:
                raise PurgePending(self.path, reason, counts)
            return counts

        return self._with_writer(purge, secure=True)

    def finish_purge(self) -> None:
        """Finish a purge that raised :class:`PurgePending`; raises it again
        while a reader still holds the WAL. Nothing to do is fine."""

        def finish(conn: sqlite3.Connection) -> None:
            reason = scrub.finish(conn, self.path)
            if reason is not None:
                raise PurgePending(self.path, reason)

        self._with_writer(finish, secure=True)

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
            return fn(conn)
        finally:
            conn.close()


def _signal_names(names) -> frozenset[str]:
    wanted = signals.validate_signal_filter(names)
    if not wanted:
        raise ValueError("signals must name at least one signal (or be None for all)")
    return wanted


def open_store(path: str | os.PathLike = "memobs.db") -> Store:
    """Open a memobs file for querying; :class:`StoreError` if it is not one.

    A ``chdb:///dir?table=…`` or ``clickhouse://user:password@host:8123/db?table=…``
    URL opens the Collector's ClickHouse traces table instead, with the same
    read API (:mod:`memobs_otel.store.clickhouse`, SPEC 6a).
    """
    from .clickhouse.url import is_clickhouse_url

    if is_clickhouse_url(path):
        from .clickhouse import ClickHouseStore

        return ClickHouseStore(path)
    return Store(path)
