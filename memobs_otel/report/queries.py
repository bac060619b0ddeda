"""Read-only aggregate queries the report needs beyond the Store API.

Each function takes the store's read-only connection and returns small
aggregates (one row per time bucket, per entity or per session), never raw
injection rows, so a report over a million events stays small. The
queries run over the store's covering indexes (``injections_entity``,
``injections_user``, ``citations_*``); nothing here writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterable

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
    for index, n, total in conn.execute(
        f"""SELECT (time_ns - :origin) / :width AS b, COUNT(*), TOTAL(tokens)
            FROM injections WHERE time_ns BETWEEN :start AND :end{_user_filter(user_id)}
            GROUP BY b""",
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
        sql = (
            "SELECT COUNT(*) FROM (SELECT entity_pk FROM injections WHERE user_id = :user AND time_ns <= :end"
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
        for pk, index, n in conn.execute(
            f"""SELECT entity_pk, (time_ns - :origin) / :width AS b, COUNT(*)
                FROM injections
                WHERE entity_pk IN ({marks}) AND time_ns BETWEEN :start AND :end{_user_filter(user_id)}
                GROUP BY entity_pk, b""",
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


def recent_sessions(
    conn: sqlite3.Connection,
    pk: int,
    start: int,
    end: int,
    user_id: str | None = None,
    limit: int = 5,
) -> list[SessionUse]:
    """The sessions that injected entity ``pk`` most recently in the window."""
    rows = conn.execute(
        f"""SELECT session_id, COUNT(*), MAX(time_ns) AS last FROM injections
            WHERE entity_pk = :pk AND time_ns BETWEEN :start AND :end{_user_filter(user_id)}
            GROUP BY session_id ORDER BY last DESC, session_id LIMIT :limit""",
        {"pk": pk, "start": start, "end": end, "user": user_id, "limit": limit},
    ).fetchall()
    return [SessionUse(*row) for row in rows]


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
