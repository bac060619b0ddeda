"""Write ``SpanRecord``s into a memobs file.

:func:`write_records` is shared by the SQLite span exporter and the OTLP
ingester, so both produce the same rows. One call is one transaction
(``BEGIN IMMEDIATE``): all of the batch or nothing. A span already stored
(same ``trace_id`` + ``span_id``) is skipped with its events and derived
rows, so writing the same spans twice adds nothing.

Derived rows: each ``memobs.injection`` event (on any span, including the
``memobs.injection.overflow`` children) gives an ``injections`` row, each
``memobs.citation`` a ``citations`` row, each ``memobs.entity.write`` a
``writes`` row; injections and writes also update the entity catalog.
Injection events — most of the data — are stored once, as their
``injections`` row (known attributes as columns, others in ``extra``); every
other event is also kept whole in ``events``.
``user.id`` / ``session.id`` / ``memobs.request.id`` come from the event,
else from its span.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from .. import semconv as sc
from .records import SpanRecord
from .catalog import WRITE_OP_STATUS, CatalogBatch, event_fields, simhash_to_int, text
from .connection import DEFAULT_RETRIES, with_retry

_IDS = (sc.USER_ID, sc.SESSION_ID, sc.MEMOBS_REQUEST_ID)


def write_records(conn: sqlite3.Connection, records: Iterable[SpanRecord], retries: int = DEFAULT_RETRIES) -> int:
    """Store ``records`` in one transaction; return how many spans were new.

    ``conn`` must be in autocommit mode (``isolation_level=None``), as
    returned by :func:`memobs_otel.store.connection.connect_for_write`.
    A busy/locked database is retried; other errors propagate after rollback.
    """
    batch = list(records)
    if not batch:
        return 0
    return with_retry(lambda: _write_transaction(conn, batch), retries)


def _write_transaction(conn: sqlite3.Connection, records: list[SpanRecord]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        inserted = _write(conn, records)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return inserted


def _int(value, default=None):
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _json(attrs: Mapping[str, Any]) -> str:
    return json.dumps(dict(attrs), separators=(",", ":"), default=str, ensure_ascii=False)


# attributes an injection row holds as columns; the rest go to ``extra``
_INJECTION_KNOWN = frozenset({
    sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_RANK, sc.ENTITY_SCORE, sc.ENTITY_TOKENS,
    sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_CREATED_AT, sc.ENTITY_UPDATED_AT,
    sc.ENTITY_STATUS, sc.ENTITY_VERSION, sc.ENTITY_PARENT_ID, sc.ENTITY_SUPERSEDED_BY,
    sc.ENTITY_TITLE, sc.ENTITY_CONTENT, *_IDS,
})


def _write(conn: sqlite3.Connection, records: list[SpanRecord]) -> int:
    cursor = conn.cursor()
    span_pk = cursor.execute("SELECT COALESCE(MAX(pk), 0) FROM spans").fetchone()[0]
    event_pk = cursor.execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    events: list[tuple] = []
    injections: list[list] = []
    citations: list[list] = []
    writes: list[list] = []
    catalog = CatalogBatch()
    observe = catalog.observe
    inserted = 0
    injection_name, citation_name, write_name = sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE

    for record in records:
        attrs = record.attributes or {}
        span_user, span_session, span_request = (text(attrs.get(key)) for key in _IDS)
        trace_hex = f"{record.trace_id:032x}"
        cursor.execute(
            "INSERT OR IGNORE INTO spans (pk, trace_id, span_id, parent_span_id, name, kind,"
            " start_ns, end_ns, status, user_id, session_id, request_id, attributes, resource,"
            " scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                span_pk + 1,
                trace_hex,
                f"{record.span_id:016x}",
                f"{record.parent_span_id:016x}" if record.parent_span_id is not None else None,
                record.name,
                record.kind,
                int(record.start_ns),
                int(record.end_ns),
                record.status,
                span_user,
                span_session,
                span_request,
                _json(attrs),
                _json(record.resource or {}),
                record.scope,
            ),
        )
        if cursor.rowcount != 1:
            continue  # already stored: nothing of it is written twice
        span_pk += 1
        inserted += 1
        for event in record.events:
            ev = event.attributes or {}
            get = ev.get
            name = event.name
            time_ns = int(event.time_ns)
            user = text(get(sc.USER_ID)) or span_user
            session = text(get(sc.SESSION_ID)) or span_session
            request = text(get(sc.MEMOBS_REQUEST_ID)) or span_request
            entity_type = text(get(sc.ENTITY_TYPE))
            entity_id = text(get(sc.ENTITY_ID))
            names_entity = entity_type is not None and entity_id is not None
            if name == injection_name and names_entity:
                # stored once, as its injections row: columns + unknown attributes
                key = (entity_type, entity_id)
                fields = event_fields(ev, name)
                observe(key, time_ns, fields)
                extra = {k: v for k, v in ev.items() if k not in _INJECTION_KNOWN}
                # FIELDS order: hash, simhash, content, title, created, updated,
                # status, version, parent, superseded
                injections.append([
                    span_pk, trace_hex, time_ns, key,
                    _int(get(sc.ENTITY_RANK)), _float(get(sc.ENTITY_SCORE)),
                    _int(get(sc.ENTITY_TOKENS), 0),
                    fields[0], fields[1], user, session, request,
                    fields[4], fields[5], fields[6], fields[7], fields[8], fields[9],
                    fields[3], fields[2],
                    _json(extra) if extra else None,
                ])
                continue
            event_pk += 1
            events.append((event_pk, span_pk, name, time_ns, user, _json(ev)))
            if not names_entity:
                continue  # kept as an event; it names no entity to derive a row for
            key = (entity_type, entity_id)
            if name == citation_name:
                catalog.touch(key)
                citations.append([
                    event_pk, span_pk, trace_hex, time_ns, key,
                    text(get(sc.CITATION_METHOD)), _float(get(sc.CITATION_SCORE)),
                    user, session, request,
                ])
            elif name == write_name:
                observe(key, time_ns, event_fields(ev, name))
                op = text(get(sc.WRITE_OP))
                status = WRITE_OP_STATUS.get(op or "", text(get(sc.ENTITY_STATUS)))
                writes.append([
                    event_pk, span_pk, trace_hex, time_ns, key, op,
                    status.lower() if status else None,
                    text(get(sc.ENTITY_CONTENT_HASH)), simhash_to_int(get(sc.ENTITY_SIMHASH)),
                    _int(get(sc.ENTITY_TOKENS)),
                    user, session, request,
                ])

    if inserted == 0:
        return 0
    cursor.executemany(
        "INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )
    entity_pks = catalog.upsert(conn)
    for rows, position in ((injections, 3), (citations, 4), (writes, 4)):
        for row in rows:
            row[position] = entity_pks[row[position]]
    cursor.executemany(
        "INSERT INTO injections (span_pk, trace_id, time_ns, entity_pk, rank, score, tokens,"
        " content_hash, simhash, user_id, session_id, request_id, created_at, updated_at,"
        " status, version, parent_id, superseded_by, title, content, extra)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        injections,
    )
    cursor.executemany(
        "INSERT INTO citations (event_pk, span_pk, trace_id, time_ns, entity_pk, method, score,"
        " user_id, session_id, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        citations,
    )
    cursor.executemany(
        "INSERT INTO writes (event_pk, span_pk, trace_id, time_ns, entity_pk, op, status,"
        " content_hash, simhash, tokens, user_id, session_id, request_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        writes,
    )
    return inserted
