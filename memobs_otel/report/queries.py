"""Read-only aggregate queries the report needs beyond the Store API.

Each function takes the store's read-only connection
(:attr:`Store.connection <memobs_otel.store.Store.connection>`) and returns
small aggregates (one row per time bucket, per entity or per session), never
raw injection rows, so a report over a million events stays small. Nothing
here writes.

Per entity and per user, injections are read through the same access
path as the Store API (:func:`memobs_otel.store.query.injection_rows_sql`):
the merged, entity-ordered ``injections_by_entity`` plus the unmerged tail
of ``injections`` (a rowid range), in one statement; on a file from before
schema m003, ``injections`` through its ``injections_entity`` /
``injections_user`` indexes. Since m003 ``injections`` has no index on
entity, user or time: a lookup on it would scan the whole table. The time
series over all users reads every row anyway: it scans ``injections`` in
rowid order (roughly time order, so its sort is cheap; no rowid range is
assumed for the window, since batches may arrive late).
Citations are read by time window (``citations_time`` / ``citations_user_time``,
schema m005; older files: ``citations_entity`` / ``citations_user``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable

from ..store.query import injection_rows_sql

TABLES = ("spans", "events", "entities", "injections", "citations", "writes")


@dataclass(frozen=True)
class Buckets:
    """Fixed-width time buckets covering a window: bucket ``i`` starts at
    ``origin_ns + i * width_ns``."""

    origin_ns: int
    width_ns: int
    count: int

    def start_of(self, index: int) -> int:
        return self.origin_ns + index * self.width_ns


def _user_filter(user_id: str | None) -> str:
    return " AND user_id = :user" if user_id is not None else ""


def series(
    conn: sqlite3.Connection, buckets: Buckets, start: int, end: int, user_id: str | None = None
) -> tuple[list[int], list[int], list[int]]:
    """Injections, injected tokens and citations per bucket (dense lists)."""
    params = {"start": start, "end": end, "user": user_id,
              "origin": buckets.origin_ns, "width": buckets.width_ns}
    injections = [0] * buckets.count
    tokens = [0] * buckets.count
    citations = [0] * buckets.count
    if user_id is None:
        # every row: a scan of ``injections`` in rowid order, which is roughly
        # time order, so the GROUP BY sort is cheap (~0.45 s at 1M rows; the
        # entity-ordered merged copy gives the sorter random times: ~0.8 s).
        # Late batches only cost sort time, never a wrong count.
        rows = "(SELECT time_ns, tokens FROM injections WHERE time_ns BETWEEN :start AND :end)"
    else:
        rows = injection_rows_sql(conn, "time_ns BETWEEN :start AND :end AND user_id = :user")
    for index, n, total in conn.execute(
        f"""SELECT (time_ns - :origin) / :width AS b, COUNT(*), TOTAL(tokens)
            FROM {rows} GROUP BY b""",
        params,
    ):
        if 0 <= index < buckets.count:
            injections[index] += n
            tokens[index] += int(total)
    for index, n in conn.execute(
        f"""SELECT (time_ns - :origin) / :width AS b, COUNT(*)
            FROM citations WHERE time_ns BETWEEN :start AND :end{_user_filter(user_id)}
            GROUP BY b""",
        params,
    ):
        if 0 <= index < buckets.count:
            citations[index] += n
    return injections, tokens, citations


def known_entity_count(conn: sqlite3.Connection, end: int, user_id: str | None = None) -> int:
    """Entities seen in any injection or write up to ``end`` (the review's "known")."""
    if user_id is None:
        sql = "SELECT COUNT(*) FROM entities WHERE first_seen_ns <= :end"
    else:
        rows = injection_rows_sql(conn, "user_id = :user AND time_ns <= :end")
        sql = (
            f"SELECT COUNT(*) FROM (SELECT entity_pk FROM {rows}"
            " UNION SELECT entity_pk FROM writes WHERE user_id = :user AND time_ns <= :end)"
        )
    return conn.execute(sql, {"end": end, "user": user_id}).fetchone()[0]


@dataclass
class EntityRow:
    pk: int
    title: str | None
    content_head: str | None
    status: str | None
    first_seen_ns: int | None
    last_seen_ns: int | None


def entity_rows(conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], EntityRow]:
    """Catalog rows for ``(entity_type, entity_id)`` keys (missing keys are absent)."""
    found: dict[tuple[str, str], EntityRow] = {}
    for key in keys:
        row = conn.execute(
            "SELECT pk, title, content_head, status, first_seen_ns, last_seen_ns"
            " FROM entities WHERE entity_type = ? AND entity_id = ?",
            key,
        ).fetchone()
        if row is not None:
            found[key] = EntityRow(*row)
    return found


def entity_series(
    conn: sqlite3.Connection,
    pks: list[int],
    buckets: Buckets,
    start: int,
    end: int,
    user_id: str | None = None,
) -> dict[int, list[int]]:
    """Injections per bucket for each entity in ``pks``."""
    result = {pk: [0] * buckets.count for pk in pks}
    params = {"start": start, "end": end, "user": user_id,
              "origin": buckets.origin_ns, "width": buckets.width_ns}
    for chunk_start in range(0, len(pks), 500):
        chunk = pks[chunk_start:chunk_start + 500]
        marks = ", ".join(str(int(pk)) for pk in chunk)  # ints from our own query
        rows = injection_rows_sql(
            conn, f"entity_pk IN ({marks}) AND time_ns BETWEEN :start AND :end{_user_filter(user_id)}"
        )
        for pk, index, n in conn.execute(
            f"""SELECT entity_pk, (time_ns - :origin) / :width AS b, COUNT(*)
                FROM {rows} GROUP BY entity_pk, b""",
            params,
        ):
            if 0 <= index < buckets.count:
                result[pk][index] += n
    return result


@dataclass(frozen=True)
class SessionUse:
    session_id: str | None
    injections: int
    last_ns: int


def recent_sessions_by_entity(
    conn: sqlite3.Connection,
    pks: list[int],
    start: int,
    end: int,
    user_id: str | None = None,
    limit: int = 5,
) -> dict[int, list[SessionUse]]:
    """For each entity in ``pks``, the ``limit`` sessions that injected it
    most recently in the window (latest first; ties by session id, no
    session first). One statement per 500 entities: the tail of
    ``injections`` is read once, not once per entity."""
    result: dict[int, list[SessionUse]] = {pk: [] for pk in pks}
    params = {"start": start, "end": end, "user": user_id, "limit": limit}
    for chunk_start in range(0, len(pks), 500):
        chunk = pks[chunk_start:chunk_start + 500]
        marks = ", ".join(str(int(pk)) for pk in chunk)  # ints from our own query
        rows = injection_rows_sql(
            conn, f"entity_pk IN ({marks}) AND time_ns BETWEEN :start AND :end{_user_filter(user_id)}"
        )
        for pk, session_id, n, last in conn.execute(
            f"""SELECT entity_pk, session_id, n, last FROM (
                    SELECT entity_pk, session_id, n, last,
                           ROW_NUMBER() OVER (PARTITION BY entity_pk
                                              ORDER BY last DESC, session_id) AS place
                    FROM (SELECT entity_pk, session_id, COUNT(*) AS n, MAX(time_ns) AS last
                          FROM {rows} GROUP BY entity_pk, session_id))
                WHERE place <= :limit
                ORDER BY entity_pk, place""",
            params,
        ):
            result[pk].append(SessionUse(session_id, n, last))
    return result


def recent_sessions(
    conn: sqlite3.Connection,
    pk: int,
    start: int,
    end: int,
    user_id: str | None = None,
    limit: int = 5,
) -> list[SessionUse]:
    """The sessions that injected entity ``pk`` most recently in the window."""
    return recent_sessions_by_entity(conn, [pk], start, end, user_id, limit)[pk]


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per store table (the tables a memobs file has; others are skipped)."""
    present = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    return {
        table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in TABLES
        if table in present
    }
