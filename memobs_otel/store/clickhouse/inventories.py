"""Complete inventories on ClickHouse: the entities a whole-store snapshot lacks are deleted.

The SQLite writer derives a ``delete`` write, at the snapshot span's start,
for every entity a complete inventory lacks (:mod:`memobs_otel.store.inventories`
states the rule: entities of the snapshot's type, not already deleted, with
a write or inventory of the same store before the snapshot — by the
snapshot's user when it has one, with an id under one of its
``id_prefixes`` when it lists some — that are not among its items). The
Collector's table holds no derived rows, so this store derives the same
deletes when it reads, and applies them to the facts' status (a derived
delete wins unless a newer status was reported, as in SQLite).

Only the latest complete snapshot of each scope (type, store, user,
prefixes) is evaluated: an entity an older snapshot lacked is either
lacked by the latest one too (deleted either way), or came back since with
a newer write (which beats the older delete either way), or was already
deleted when the latest one was taken. So the cost is a few small
statements per scope, not per snapshot. Snapshot spans are found through
the span attributes of ``otel_traces`` (the exporter's bloom-filter index on
their keys lets ClickHouse skip the other granules); the narrow table does
not carry span attributes. The store keeps the result a minute
(``ClickHouseStore.derived_deletes``).
"""

from __future__ import annotations

import json
from typing import NamedTuple

from ... import semconv as sc

CIT = f"'{sc.EVENT_CITATION}'"

INV = f"'{sc.WRITE_OP_INVENTORY}'"
WRITE = f"'{sc.EVENT_WRITE}'"


class Snapshot(NamedTuple):
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    store: str
    entity_type: str
    user_id: str
    id_prefixes: tuple[str, ...]


def _prefixes(text: str) -> tuple[str, ...]:
    # a str[] attribute is exported as its JSON text; a plain string is one prefix
    if not text:
        return ()
    try:
        value = json.loads(text)
    except ValueError:
        return (text,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (text,)


def latest_snapshots(store) -> list[Snapshot]:
    """The latest complete snapshot of each scope, oldest first."""
    rows = store._client.rows(
        f"SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), toUnixTimestamp64Nano(Timestamp) + Duration,"
        f" SpanAttributes['{sc.GEN_AI_MEMORY_STORE_ID}'], SpanAttributes['{sc.INVENTORY_ENTITY_TYPE}'],"
        f" SpanAttributes['{sc.USER_ID}'], SpanAttributes['{sc.INVENTORY_ID_PREFIXES}']"
        f" FROM {store.traces_table}"
        f" WHERE mapContains(SpanAttributes, '{sc.INVENTORY_COMPLETE}')"
        f" AND SpanAttributes['{sc.INVENTORY_COMPLETE}'] = 'true'"
        f" AND SpanAttributes['{sc.INVENTORY_ENTITY_TYPE}'] != ''"
    )
    latest: dict[tuple, Snapshot] = {}
    for trace, span, start, end, store_id, etype, user, prefixes in rows:
        snapshot = Snapshot(trace, span, start, end, store_id, etype, user, _prefixes(prefixes))
        scope = (etype, store_id, user, snapshot.id_prefixes)
        if scope not in latest or (start, span) > (latest[scope].start_ns, latest[scope].span_id):
            latest[scope] = snapshot
    return sorted(latest.values(), key=lambda s: (s.start_ns, s.span_id))


def _absent(store, snapshot: Snapshot) -> list[str]:
    """Ids of the entities ``snapshot`` lacks (see the module docstring)."""
    params = {"trace": snapshot.trace_id, "span": snapshot.span_id, "start": snapshot.start_ns,
              "end": snapshot.end_ns, "type": snapshot.entity_type, "store": snapshot.store,
              "user": snapshot.user_id}
    present = {eid for (eid,) in store._client.rows(
        f"SELECT DISTINCT ev.Attributes['{sc.ENTITY_ID}'] FROM {store.traces_table} ARRAY JOIN Events AS ev"
        " WHERE TraceId = {trace:String} AND (SpanId = {span:String} OR ParentSpanId = {span:String})"
        " AND Timestamp >= fromUnixTimestamp64Nano({start:Int64})"
        " AND Timestamp <= fromUnixTimestamp64Nano({end:Int64})"
        f" AND ev.Name = {WRITE} AND ev.Attributes['{sc.WRITE_OP}'] = {INV}"
        f" AND ev.Attributes['{sc.ENTITY_TYPE}'] = {{type:String}}",
        params,
    )}
    user = (f" AND if(ev.Attributes['{sc.USER_ID}'] != '', ev.Attributes['{sc.USER_ID}'],"
            f" SpanAttributes['{sc.USER_ID}']) = {{user:String}}") if snapshot.user_id else ""
    known = [eid for (eid,) in store._client.rows(
        f"SELECT DISTINCT ev.Attributes['{sc.ENTITY_ID}'] FROM {store.traces_table} ARRAY JOIN Events AS ev"
        f" WHERE has(Events.Name, {WRITE}) AND ev.Name = {WRITE}"
        f" AND ev.Attributes['{sc.ENTITY_TYPE}'] = {{type:String}} AND ev.Attributes['{sc.ENTITY_ID}'] != ''"
        " AND ev.Timestamp < fromUnixTimestamp64Nano({start:Int64})"
        f" AND SpanAttributes['{sc.GEN_AI_MEMORY_STORE_ID}'] = {{store:String}}{user}",
        params,
    )]
    prefixes = snapshot.id_prefixes
    candidates = [eid for eid in known if eid not in present and (not prefixes or eid.startswith(prefixes))]
    if not candidates:
        return []
    # not already deleted: the status the entity had when the snapshot was taken
    deleted = {eid for eid, status in store._client.rows(
        f"SELECT EntityId, argMaxIf(Status, Time, Status != '') FROM {store.source}"
        f" WHERE EntityType = {{type:String}} AND EntityId IN {{ids:Array(String)}} AND Name != {CIT}"
        " AND Time < fromUnixTimestamp64Nano({start:Int64}) GROUP BY EntityId",
        {**params, "ids": candidates},
    ) if status.lower() == "deleted"}
    return [eid for eid in candidates if eid not in deleted]


def derived_deletes(store) -> dict[tuple[str, str], int]:
    """``(entity_type, entity_id) -> time`` of the delete a complete snapshot derives."""
    found: dict[tuple[str, str], int] = {}
    for snapshot in latest_snapshots(store):
        for eid in _absent(store, snapshot):
            key = (snapshot.entity_type, eid)
            found[key] = max(found.get(key, snapshot.start_ns), snapshot.start_ns)
    return found


def apply(status: str | None, status_ns: int | None, deleted_at: int | None) -> str | None:
    """The status once a derived delete at ``deleted_at`` is applied (newer reported status wins)."""
    if deleted_at is not None and (status_ns is None or deleted_at >= status_ns):
        return "deleted"
    return status
