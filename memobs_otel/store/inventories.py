"""Complete inventories: the entities a whole-store snapshot lacks are deleted.

``memobs.record_inventory(..., complete=True)`` (see ``memobs_otel/inventory.py``)
records a span with ``memobs.inventory.complete = true``. When the writer
stores such a span it calls :func:`mark_absent`, in the same transaction,
after the batch's rows are in:

- *present*: the entities of the snapshot's ``inventory`` writes, on the
  span itself and on its ``memobs.inventory.overflow`` children already
  stored (children end before their parent, so the SDK's processors hand
  them over first or in the same batch);
- *known*: entities of the snapshot's type, not already deleted, with a write
  or inventory of the same store (``gen_ai.memory.store.id`` of the write's
  span; none = none) before the snapshot started — by the same user when the
  snapshot carries one, and with an id starting with one of
  ``memobs.inventory.id_prefixes`` when it lists some — and no create, update
  or inventory write *after* it started (a later snapshot or write stored
  first, or in the same batch, says the entity is there);
- each known entity not present gets a derived ``delete`` write: an
  ``events`` row (``memobs.entity.write``, op ``delete``,
  ``memobs.inventory.absent = true``) and its ``writes`` row on the snapshot's
  span, timestamped at the span's start, and its catalog status ``deleted``
  (when no newer status is stored).

The start time matters: every item of the snapshot is timestamped after it,
so an item on an overflow span that arrives after its parent (an OTLP file
ingested out of order) is newer than the derived delete and puts the entity
back to ``active``. The rows are ordinary writes: ``catalog.rebuild`` after
retention or a purge recomputes the same status from them, and they are
removed with the snapshot's span.
"""

from __future__ import annotations

import json
import sqlite3
from typing import NamedTuple

from .. import semconv as sc
from .catalog import LIVE_OPS
from .entity_cache import EntityCache

_STORE_KEY = f'$."{sc.GEN_AI_MEMORY_STORE_ID}"'  # the JSON path of the span's store id
# ops that say "it is there": an entity with one newer than the snapshot is not absent
# (the catalog's status time is when its value was first seen, so it cannot tell)
_LIVE = ", ".join(f"'{op}'" for op in sorted(LIVE_OPS))


class CompleteInventory(NamedTuple):
    span_pk: int
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    store: str  # '' = none
    entity_type: str
    user_id: str | None
    session_id: str | None
    request_id: str | None
    id_prefixes: tuple[str, ...]


def of_span(span_pk: int, row: tuple, attrs: dict) -> CompleteInventory | None:
    """The complete inventory a stored span is, or None. ``row`` is the writer's span row."""
    if attrs.get(sc.INVENTORY_COMPLETE) is not True:
        return None
    entity_type = attrs.get(sc.INVENTORY_ENTITY_TYPE)
    if not isinstance(entity_type, str) or not entity_type:
        return None  # a callable type: each entity has its own, no single scope to complete
    prefixes = attrs.get(sc.INVENTORY_ID_PREFIXES) or ()
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    store = attrs.get(sc.GEN_AI_MEMORY_STORE_ID)
    return CompleteInventory(span_pk, row[1], row[2], int(row[6]), int(row[7]),
                             "" if store is None else str(store), entity_type,
                             row[9], row[10], row[11], tuple(str(p) for p in prefixes))


def mark_absent(conn: sqlite3.Connection, cache: EntityCache, inventory: CompleteInventory) -> int:
    """Derive a delete write for each known entity ``inventory`` lacks; return how many."""
    present = {pk for (pk,) in conn.execute(
        "SELECT w.entity_pk FROM spans s JOIN writes w ON w.span_pk = s.pk"
        " WHERE s.start_ns BETWEEN ? AND ? AND s.trace_id = ? AND (s.pk = ? OR s.parent_span_id = ?)"
        " AND w.op = ?",
        (inventory.start_ns, inventory.end_ns, inventory.trace_id, inventory.span_pk, inventory.span_id,
         sc.WRITE_OP_INVENTORY))}
    user_filter = " AND w.user_id = :user" if inventory.user_id else ""
    known = conn.execute(
        f"""SELECT e.pk, e.entity_id FROM entities e
            WHERE e.entity_type = :type AND (e.status IS NULL OR e.status != 'deleted')
              AND EXISTS (SELECT 1 FROM writes w JOIN spans s ON s.pk = w.span_pk
                          WHERE w.entity_pk = e.pk AND w.time_ns < :start{user_filter}
                            AND COALESCE(json_extract(s.attributes, '{_STORE_KEY}'), '') = :store)
              AND NOT EXISTS (SELECT 1 FROM writes w WHERE w.entity_pk = e.pk AND w.time_ns > :start
                              AND w.op IN ({_LIVE}))""",
        {"type": inventory.entity_type, "start": inventory.start_ns, "user": inventory.user_id,
         "store": inventory.store}).fetchall()
    prefixes = inventory.id_prefixes
    absent = [(pk, entity_id) for pk, entity_id in known
              if pk not in present and (not prefixes or entity_id.startswith(prefixes))]
    if not absent:
        return 0
    event_pk = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    at = inventory.start_ns
    events, writes = [], []
    for pk, entity_id in absent:
        event_pk += 1
        attrs = {sc.ENTITY_TYPE: inventory.entity_type, sc.ENTITY_ID: entity_id,
                 sc.WRITE_OP: "delete", sc.INVENTORY_ABSENT: True}
        events.append((event_pk, inventory.span_pk, sc.EVENT_WRITE, at, inventory.user_id,
                       json.dumps(attrs, separators=(",", ":"), ensure_ascii=False)))
        writes.append((event_pk, inventory.span_pk, inventory.trace_id, at, pk, "delete", "deleted",
                       inventory.user_id, inventory.session_id, inventory.request_id))
    conn.executemany("INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
                     " VALUES (?, ?, ?, ?, ?, ?)", events)
    conn.executemany("INSERT INTO writes (event_pk, span_pk, trace_id, time_ns, entity_pk, op, status,"
                     " user_id, session_id, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", writes)
    # the catalog's status group, as an event at ``at`` would set it (newer stored status wins)
    conn.executemany("UPDATE entities SET status = 'deleted', status_t = ?"
                     " WHERE pk = ? AND (status_t IS NULL OR status_t <= ?)",
                     [(at, pk, at) for pk, _ in absent])
    for pk, _ in absent:  # the writer's copies of these rows are out of date
        cache.rows.pop(pk, None)
        cache.core.pop(pk, None)
    return len(absent)
