"""The SQL side of the query API: windowed aggregation per entity.

All aggregation happens in SQLite; Python only sees one row per entity.
Injections are read per entity from ``injections_by_entity`` (the merged,
entity-ordered copy, schema m003) plus the tail of ``injections`` not yet
merged (a rowid range), in one statement so both come from one snapshot;
see :mod:`memobs_otel.store.entity_index`. Files from before m003 (readers
never upgrade) are read through their ``injections_entity`` /
``injections_user`` indexes. Citations are read by time window and grouped
by entity: through ``citations_time`` / ``citations_user_time`` (m005), on
older files through their ``citations_entity`` / ``citations_user``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from .catalog import simhash_from_db
from .schema import ENTITY_INDEX_TABLE, MERGED_PK_KEY, STATE_TABLE
from .results import InjectionStat
from .timeparse import NS_PER_DAY, now_ns, ns_to_datetime


def window(days_back, now: datetime | None) -> tuple[int, int]:
    """``(start_ns, end_ns)`` of the last ``days_back`` days before ``now``."""
    if isinstance(days_back, bool) or not isinstance(days_back, (int, float)):
        raise ValueError(f"days_back must be a number of days, got {days_back!r}")
    if not days_back > 0:
        raise ValueError(f"days_back must be greater than 0, got {days_back!r}")
    end = now_ns(now)
    return end - int(days_back * NS_PER_DAY), end


def citation_rate(citations: int, surfaced: int) -> float:
    return min(1.0, citations / surfaced) if surfaced else 0.0


def has_entity_index(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE_TABLE,)
    ).fetchone() is not None


# the tail: injections rows past the merge mark, read by rowid range
_MARK = (
    f"mark AS (SELECT COALESCE((SELECT value FROM {STATE_TABLE}"
    f" WHERE key = '{MERGED_PK_KEY}'), 0) AS pk)"
)


def injection_rows_sql(conn: sqlite3.Connection, where: str) -> str:
    """A parenthesised subquery (for a ``FROM``) over the injection rows that
    match ``where``, through the per-entity access path: columns
    ``entity_pk, session_id, time_ns, tokens, user_id``.

    ``where`` is an SQL condition over ``entity_pk``, ``time_ns`` and
    ``user_id`` only (it is applied to each part: the merged copy and the
    tail; on a file from before m003, to ``injections`` through its
    indexes). ``session_id`` is NULL for none ('' too: the merged copy
    cannot tell them apart). One statement reads both parts from one
    snapshot.
    """
    if not has_entity_index(conn):
        return f"""(SELECT entity_pk, NULLIF(session_id, '') AS session_id, time_ns, tokens, user_id
              FROM injections WHERE ({where}))"""
    return f"""(SELECT entity_pk, NULLIF(session_key, '') AS session_id, time_ns, tokens, user_id
              FROM {ENTITY_INDEX_TABLE} WHERE ({where})
              UNION ALL
              SELECT entity_pk, NULLIF(session_id, ''), time_ns, tokens, user_id
              FROM injections
              WHERE pk > (SELECT COALESCE((SELECT value FROM {STATE_TABLE}
                                           WHERE key = '{MERGED_PK_KEY}'), 0))
                AND ({where}))"""


def _window_injections_sql(conn: sqlite3.Connection, user_filter: str) -> str:
    """CTEs ending in ``inj(entity_pk, n, tokens, sessions, first_ns, last_ns)``:
    injections in ``[:start, :end]`` per entity."""
    if not has_entity_index(conn):
        return f"""inj AS (
              SELECT entity_pk, COUNT(*) AS n, TOTAL(tokens) AS tokens,
                     COUNT(DISTINCT session_id) AS sessions,
                     MIN(time_ns) AS first_ns, MAX(time_ns) AS last_ns
              FROM injections
              WHERE time_ns BETWEEN :start AND :end{user_filter}
              GROUP BY entity_pk)"""
    # A tail session counts when the merged rows of the entity do not already
    # have it in the window (distinct sessions do not add up otherwise).
    b_user = " AND b.user_id = :user" if user_filter else ""
    return f"""{_MARK},
        merged AS (
              SELECT entity_pk, COUNT(*) AS n, TOTAL(tokens) AS tokens,
                     -- '' (no session) sorts first: drop it from the count
                     COUNT(DISTINCT session_key) - (MIN(session_key) = '') AS sessions,
                     MIN(time_ns) AS first_ns, MAX(time_ns) AS last_ns
              FROM {ENTITY_INDEX_TABLE}
              WHERE time_ns BETWEEN :start AND :end{user_filter}
              GROUP BY entity_pk),
        tail AS (
              SELECT t.entity_pk, COUNT(*) AS n, TOTAL(t.tokens) AS tokens,
                     COUNT(DISTINCT CASE WHEN NOT EXISTS (
                         SELECT 1 FROM {ENTITY_INDEX_TABLE} b
                         WHERE b.entity_pk = t.entity_pk AND b.session_key = t.session_id
                           AND b.time_ns BETWEEN :start AND :end{b_user})
                       THEN t.session_id END) AS sessions,
                     MIN(t.time_ns) AS first_ns, MAX(t.time_ns) AS last_ns
              FROM injections t
              WHERE t.pk > (SELECT pk FROM mark)
                AND t.time_ns BETWEEN :start AND :end{user_filter.replace("user_id", "t.user_id")}
              GROUP BY t.entity_pk),
        inj AS (
              SELECT entity_pk, SUM(n) AS n, TOTAL(tokens) AS tokens, SUM(sessions) AS sessions,
                     MIN(first_ns) AS first_ns, MAX(last_ns) AS last_ns
              FROM (SELECT * FROM merged UNION ALL SELECT * FROM tail)
              GROUP BY entity_pk)"""


def _known_injections_sql(conn: sqlite3.Connection, user_filter: str) -> str:
    """CTEs ending in ``inj(entity_pk, n, tokens, last_ns)``: injections in the
    window (``n``, ``tokens``) and the last one up to ``:end`` per entity."""
    if not has_entity_index(conn):
        return f"""inj AS MATERIALIZED (
              SELECT entity_pk, SUM(time_ns >= :start) AS n,
                     TOTAL(CASE WHEN time_ns >= :start THEN tokens END) AS tokens,
                     MAX(time_ns) AS last_ns
              FROM injections WHERE time_ns <= :end{user_filter}
              GROUP BY entity_pk)"""
    return f"""{_MARK},
        parts AS (
              SELECT entity_pk, SUM(time_ns >= :start) AS n,
                     TOTAL(CASE WHEN time_ns >= :start THEN tokens END) AS tokens,
                     MAX(time_ns) AS last_ns
              FROM {ENTITY_INDEX_TABLE} WHERE time_ns <= :end{user_filter}
              GROUP BY entity_pk
              UNION ALL
              SELECT entity_pk, SUM(time_ns >= :start),
                     TOTAL(CASE WHEN time_ns >= :start THEN tokens END), MAX(time_ns)
              FROM injections
              WHERE pk > (SELECT pk FROM mark) AND time_ns <= :end{user_filter}
              GROUP BY entity_pk),
        inj AS MATERIALIZED (
              SELECT entity_pk, SUM(n) AS n, TOTAL(tokens) AS tokens, MAX(last_ns) AS last_ns
              FROM parts GROUP BY entity_pk)"""


def injection_stats(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    user_id: str | None = None,
    entity_type: str | None = None,
) -> list[InjectionStat]:
    user_filter = " AND user_id = :user" if user_id is not None else ""
    type_filter = " WHERE en.entity_type = :type" if entity_type is not None else ""
    rows = conn.execute(
        f"""
        WITH {_window_injections_sql(conn, user_filter)}
        SELECT en.entity_type, en.entity_id, inj.n, inj.tokens, inj.sessions,
               inj.first_ns, inj.last_ns, COALESCE(cit.n, 0)
        FROM inj
        JOIN entities en ON en.pk = inj.entity_pk
        LEFT JOIN (SELECT entity_pk, COUNT(DISTINCT trace_id) AS n
                   FROM citations
                   WHERE time_ns BETWEEN :start AND :end{user_filter}
                   GROUP BY entity_pk) AS cit ON cit.entity_pk = inj.entity_pk
        {type_filter}
        ORDER BY inj.n DESC, inj.tokens DESC, en.entity_type, en.entity_id
        """,
        {"start": start, "end": end, "user": user_id, "type": entity_type},
    ).fetchall()
    return [
        InjectionStat(
            entity_type=etype,
            entity_id=eid,
            surfaced_count=n,
            total_prompt_tokens=int(tokens),
            distinct_session_count=sessions,
            citation_count=cites,
            citation_rate=citation_rate(cites, n),
            first_injected_at=ns_to_datetime(first),
            last_injected_at=ns_to_datetime(last),
        )
        for etype, eid, n, tokens, sessions, first, last, cites in rows
    ]


@dataclass(slots=True)
class EntityFacts:
    """What the review signals need to know about one known entity."""

    entity_type: str
    entity_id: str
    title: str | None
    content_head: str | None
    content_hash: str | None
    simhash: int | None
    status: str | None
    parent_id: str | None
    superseded_by: str | None
    reported_time: bool  # the entity reported created_at or updated_at
    created_ns: int | None
    updated_ns: int | None
    first_seen_ns: int | None
    injections: int  # in the window
    tokens: int  # in the window
    last_injected_ns: int | None  # ever, up to now
    citations: int  # in the window, once per trace
    minhash: bytes | None = None  # m007; None on older rows: the simhash is used


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def review_facts(
    conn: sqlite3.Connection, start: int, end: int, user_id: str | None = None
) -> list[EntityFacts]:
    if user_id is None:
        user_filter = ""
        known = """known AS (
              SELECT en.pk AS entity_pk, inj.n, inj.tokens, inj.last_ns
              FROM entities en LEFT JOIN inj ON inj.entity_pk = en.pk
              WHERE en.first_seen_ns <= :end)"""
    else:
        user_filter = " AND user_id = :user"
        # injected for the user up to now (a row of ``inj``), or written by them
        known = """known AS (
              SELECT entity_pk, n, tokens, last_ns FROM inj
              UNION ALL
              SELECT DISTINCT entity_pk, 0, 0.0, NULL FROM writes
              WHERE user_id = :user AND time_ns <= :end
                AND entity_pk NOT IN (SELECT entity_pk FROM inj))"""
    # files from before m007 (readers never upgrade) have no MinHash column
    minhash = "en.minhash" if has_column(conn, "entities", "minhash") else "NULL"
    rows = conn.execute(
        f"""
        WITH {_known_injections_sql(conn, user_filter)}, {known}
        SELECT en.entity_type, en.entity_id, en.title, en.content_head, en.content_hash,
               en.simhash, en.status, en.parent_id, en.superseded_by,
               (en.created_t IS NOT NULL OR en.updated_t IS NOT NULL),
               en.created_ns, en.updated_ns, en.first_seen_ns,
               COALESCE(known.n, 0), COALESCE(known.tokens, 0), known.last_ns, COALESCE(cit.n, 0),
               {minhash}
        FROM known
        JOIN entities en ON en.pk = known.entity_pk
        LEFT JOIN (SELECT entity_pk, COUNT(DISTINCT trace_id) AS n
                   FROM citations
                   WHERE time_ns BETWEEN :start AND :end{user_filter}
                   GROUP BY entity_pk) AS cit ON cit.entity_pk = en.pk
        """,
        {"start": start, "end": end, "user": user_id},
    ).fetchall()
    facts = []
    for row in rows:
        fact = EntityFacts(*row)
        fact.simhash = simhash_from_db(fact.simhash)
        fact.reported_time = bool(fact.reported_time)
        fact.tokens = int(fact.tokens)
        facts.append(fact)
    return facts
