"""Delete spans, events and their derived rows together, keeping the catalog true.

Shared by ``purge_user`` and retention. Deleted spans take their events and
derived rows with them; the catalog rows of the entities concerned are then
rebuilt from what is left, so no field survives whose only source is gone.
"""

from __future__ import annotations

import sqlite3

from . import catalog, entity_index
from .schema import LLM_CALLS_TABLE, TURN_INJECTIONS_TABLE

TABLES = ("spans", "events", "injections", "citations", "writes")


def delete_where(
    conn: sqlite3.Connection,
    span_sql: str,
    span_params: tuple = (),
    user_id: str | None = None,
) -> dict[str, int]:
    """Delete the spans selected by ``span_sql`` (a ``SELECT pk FROM spans …``)
    and, when ``user_id`` is given, every event and derived row carrying it.

    Runs inside the caller's transaction; returns deleted row counts per table.
    """
    # the catalog rebuild reads injections per entity through the merged copy
    entity_index.merge_all(conn)
    conn.execute("DROP TABLE IF EXISTS temp._doomed_spans")
    conn.execute("DROP TABLE IF EXISTS temp._doomed_events")
    conn.execute("DROP TABLE IF EXISTS temp._touched_entities")
    conn.execute(f"CREATE TEMP TABLE _doomed_spans AS {span_sql}", span_params)
    conn.execute("CREATE INDEX temp._doomed_spans_pk ON _doomed_spans (pk)")
    by_user = " OR user_id = :user" if user_id is not None else ""
    params = {"user": user_id}
    conn.execute(
        "CREATE TEMP TABLE _doomed_events AS SELECT pk FROM events"
        f" WHERE span_pk IN (SELECT pk FROM temp._doomed_spans){by_user}",
        params,
    )
    conn.execute("CREATE INDEX temp._doomed_events_pk ON _doomed_events (pk)")
    by_span = "span_pk IN (SELECT pk FROM temp._doomed_spans)" + by_user
    by_event = by_span + " OR event_pk IN (SELECT pk FROM temp._doomed_events)"
    where = {"injections": by_span, "citations": by_event, "writes": by_event}
    conn.execute(
        "CREATE TEMP TABLE _touched_entities AS "
        + " UNION ".join(f"SELECT entity_pk FROM {t} WHERE {w}" for t, w in where.items()),
        params,
    )
    counts: dict[str, int] = {}
    for table, condition in where.items():
        counts[table] = conn.execute(f"DELETE FROM {table} WHERE {condition}", params).rowcount
    counts["events"] = conn.execute(
        "DELETE FROM events WHERE pk IN (SELECT pk FROM temp._doomed_events)"
    ).rowcount
    counts["spans"] = conn.execute(
        "DELETE FROM spans WHERE pk IN (SELECT pk FROM temp._doomed_spans)"
    ).rowcount
    # m008's per-span rows of the context budget go with their spans (and the user)
    for table in (LLM_CALLS_TABLE, TURN_INJECTIONS_TABLE):
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
            conn.execute(f"DELETE FROM {table} WHERE {by_span}", params)
    touched = [row[0] for row in conn.execute("SELECT entity_pk FROM temp._touched_entities")]
    catalog.rebuild(conn, touched)
    entity_index.recount(conn)
    for name in ("_doomed_spans", "_doomed_events", "_touched_entities"):
        conn.execute(f"DROP TABLE temp.{name}")
    return {table: counts[table] for table in TABLES}
