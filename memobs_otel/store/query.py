"""The SQL side of the query API: windowed aggregation per entity.

All aggregation happens in SQLite over covering indexes
(``injections_entity``, ``injections_user``, ``citations_entity``,
``citations_user``); Python only sees one row per entity.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from .catalog import simhash_from_db
from .results import InjectionStat
from .timeparse import now_ns, ns_to_datetime

NS_PER_DAY = 86_400 * 1_000_000_000


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
        SELECT en.entity_type, en.entity_id, inj.n, inj.tokens, inj.sessions,
               inj.first_ns, inj.last_ns, COALESCE(cit.n, 0)
        FROM (SELECT entity_pk, COUNT(*) AS n, TOTAL(tokens) AS tokens,
                     COUNT(DISTINCT session_id) AS sessions,
                     MIN(time_ns) AS first_ns, MAX(time_ns) AS last_ns
              FROM injections
              WHERE time_ns BETWEEN :start AND :end{user_filter}
              GROUP BY entity_pk) AS inj
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


def review_facts(
    conn: sqlite3.Connection, start: int, end: int, user_id: str | None = None
) -> list[EntityFacts]:
    if user_id is None:
        known = "SELECT pk AS entity_pk FROM entities WHERE first_seen_ns <= :end"
        user_filter = ""
    else:
        known = (
            "SELECT entity_pk FROM injections WHERE user_id = :user AND time_ns <= :end"
            " UNION SELECT entity_pk FROM writes WHERE user_id = :user AND time_ns <= :end"
        )
        user_filter = " AND user_id = :user"
    rows = conn.execute(
        f"""
        SELECT en.entity_type, en.entity_id, en.title, en.content_head, en.content_hash,
               en.simhash, en.status, en.parent_id, en.superseded_by,
               (en.created_t IS NOT NULL OR en.updated_t IS NOT NULL),
               en.created_ns, en.updated_ns, en.first_seen_ns,
               COALESCE(inj.n, 0), COALESCE(inj.tokens, 0), inj.last_ns, COALESCE(cit.n, 0)
        FROM ({known}) AS known
        JOIN entities en ON en.pk = known.entity_pk
        LEFT JOIN (SELECT entity_pk, SUM(time_ns >= :start) AS n,
                          TOTAL(CASE WHEN time_ns >= :start THEN tokens END) AS tokens,
                          MAX(time_ns) AS last_ns
                   FROM injections WHERE time_ns <= :end{user_filter}
                   GROUP BY entity_pk) AS inj ON inj.entity_pk = en.pk
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
