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
``user.id`` / ``session.id`` / ``memobs.request.id`` come from the event,
else from its span.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from .. import semconv as sc
from .records import SpanRecord
from .catalog import CatalogBatch, simhash_to_int
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


def _text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


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


def _write(conn: sqlite3.Connection, records: list[SpanRecord]) -> int:
    cursor = conn.cursor()
    span_pk = cursor.execute("SELECT COALESCE(MAX(pk), 0) FROM spans").fetchone()[0]
    event_pk = cursor.execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    events: list[tuple] = []
    injections: list[tuple] = []
    citations: list[tuple] = []
    writes: list[tuple] = []
    catalog = CatalogBatch()
    inserted = 0

    for record in records:
        attrs = record.attributes or {}
        span_ids = tuple(_text(attrs.get(key)) for key in _IDS)
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
                *span_ids,
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
            event_pk += 1
            ev_attrs = event.attributes or {}
            user, session, request = (
                _text(ev_attrs.get(key)) if ev_attrs.get(key) is not None else span_ids[i]
                for i, key in enumerate(_IDS)
            )
            time_ns = int(event.time_ns)
            events.append((event_pk, span_pk, event.name, time_ns, user, _json(ev_attrs)))
            if event.name not in (sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE):
                continue
            entity_type = _text(ev_attrs.get(sc.ENTITY_TYPE))
            entity_id = _text(ev_attrs.get(sc.ENTITY_ID))
            if not entity_type or entity_id is None:
                continue  # kept as an event, but it names no entity
            key = (entity_type, entity_id)
            common = (event_pk, span_pk, trace_hex, time_ns, key)
            ids = (user, session, request)
            if event.name == sc.EVENT_INJECTION:
                catalog.observe(key, time_ns, ev_attrs, event.name)
                injections.append(
                    common
                    + (
                        _int(ev_attrs.get(sc.ENTITY_RANK)),
                        _float(ev_attrs.get(sc.ENTITY_SCORE)),
                        _int(ev_attrs.get(sc.ENTITY_TOKENS), 0),
                        _text(ev_attrs.get(sc.ENTITY_CONTENT_HASH)),
                        simhash_to_int(ev_attrs.get(sc.ENTITY_SIMHASH)),
                    )
                    + ids
                )
            elif event.name == sc.EVENT_CITATION:
                catalog.touch(key)
                citations.append(
                    common
                    + (
                        _text(ev_attrs.get(sc.CITATION_METHOD)),
                        _float(ev_attrs.get(sc.CITATION_SCORE)),
                    )
                    + ids
                )
            else:
                catalog.observe(key, time_ns, ev_attrs, event.name)
                groups_status = _text(ev_attrs.get(sc.ENTITY_STATUS))
                op = _text(ev_attrs.get(sc.WRITE_OP))
                status = {"delete": "deleted", "archive": "archived"}.get(op or "", groups_status)
                writes.append(
                    common
                    + (
                        op,
                        status.lower() if status else None,
                        _text(ev_attrs.get(sc.ENTITY_CONTENT_HASH)),
                        simhash_to_int(ev_attrs.get(sc.ENTITY_SIMHASH)),
                        _int(ev_attrs.get(sc.ENTITY_TOKENS)),
                    )
                    + ids
                )

    if inserted == 0:
        return 0
    cursor.executemany(
        "INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )
    entity_pks = catalog.upsert(conn)

    def resolve(rows):
        for row in rows:
            yield row[:4] + (entity_pks[row[4]],) + row[5:]

    cursor.executemany(
        "INSERT INTO injections (event_pk, span_pk, trace_id, time_ns, entity_pk, rank, score,"
        " tokens, content_hash, simhash, user_id, session_id, request_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        resolve(injections),
    )
    cursor.executemany(
        "INSERT INTO citations (event_pk, span_pk, trace_id, time_ns, entity_pk, method, score,"
        " user_id, session_id, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        resolve(citations),
    )
    cursor.executemany(
        "INSERT INTO writes (event_pk, span_pk, trace_id, time_ns, entity_pk, op, status,"
        " content_hash, simhash, tokens, user_id, session_id, request_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        resolve(writes),
    )
    return inserted
