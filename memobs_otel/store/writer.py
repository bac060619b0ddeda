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

from operator import itemgetter

from .. import semconv as sc
from . import catalog, entity_index
from .records import SpanRecord
from .catalog import WRITE_OP_STATUS, parse_cached, scalar, simhash_to_int, text
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
    # Per event, Python only reads the attributes into one flat tuple; the
    # entity catalog merge and the entity lookups happen set-wise in SQL over
    # a temp staging table (see ``catalog.merge_staged``).
    cursor = conn.cursor()
    execute = cursor.execute
    span_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM spans").fetchone()[0]
    event_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    deferred = entity_index.present(conn)
    mark = entity_index.merged_pk(conn) if deferred else 0
    injection_pk = entity_index.next_injection_pk(conn, mark) - 1
    events: list[tuple] = []
    staged: list[tuple] = []
    touched: list[tuple[str, str]] = []
    citations: list[tuple] = []
    writes: list[tuple] = []
    inserted = 0
    injection_name, citation_name, write_name = sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE
    known_keys = _INJECTION_KNOWN.issuperset
    stage = staged.append
    K_USER, K_SESSION, K_REQUEST = _IDS
    K_TYPE, K_ID, K_RANK, K_SCORE, K_TOKENS = (
        sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_RANK, sc.ENTITY_SCORE, sc.ENTITY_TOKENS)
    K_HASH, K_SIMHASH, K_CREATED, K_UPDATED = (
        sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_CREATED_AT, sc.ENTITY_UPDATED_AT)
    K_STATUS, K_VERSION, K_PARENT, K_SUPERSEDED, K_TITLE, K_CONTENT = (
        sc.ENTITY_STATUS, sc.ENTITY_VERSION, sc.ENTITY_PARENT_ID, sc.ENTITY_SUPERSEDED_BY,
        sc.ENTITY_TITLE, sc.ENTITY_CONTENT)
    simhashes: dict = {}  # hex text -> signed int, repeated across a batch

    for record in records:
        attrs = record.attributes or {}
        span_user, span_session, span_request = (text(attrs.get(key)) for key in _IDS)
        trace_hex = f"{record.trace_id:032x}"
        execute(
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
            ev = event.attributes or _EMPTY
            get = ev.get
            name = event.name
            if name == injection_name:
                # the hot path: plain str / int / float values skip the converters
                entity_type = get(K_TYPE)
                if entity_type.__class__ is not str or not entity_type:
                    entity_type = text(entity_type)
                entity_id = get(K_ID)
                if entity_id.__class__ is not str or not entity_id:
                    entity_id = text(entity_id)
                if entity_type is not None and entity_id is not None:
                    time_ns = event.time_ns
                    if time_ns.__class__ is not int:
                        time_ns = int(time_ns)
                    user = get(K_USER)
                    user = span_user if user is None else (text(user) or span_user)
                    session = get(K_SESSION)
                    session = span_session if session is None else (text(session) or span_session)
                    request = get(K_REQUEST)
                    request = span_request if request is None else (text(request) or span_request)
                    rank = get(K_RANK)
                    if rank.__class__ is not int:
                        rank = _int(rank)
                    score = get(K_SCORE)
                    if score.__class__ is not float:
                        score = _float(score)
                    tokens = get(K_TOKENS)
                    if tokens.__class__ is not int:
                        tokens = _int(tokens, 0)
                    content_hash = get(K_HASH)
                    if content_hash is not None and (content_hash.__class__ is not str or not content_hash):
                        content_hash = text(content_hash)
                    simhash = get(K_SIMHASH)
                    if simhash is not None:
                        converted = simhashes.get(simhash) if simhash.__class__ is str else None
                        if converted is None:
                            converted = simhash_to_int(simhash)
                            if simhash.__class__ is str:
                                simhashes[simhash] = converted
                        simhash = converted
                    created = get(K_CREATED)
                    created_ns = None
                    if created is not None:
                        created = scalar(created)
                        if created is not None:
                            created_ns = parse_cached(created)
                    updated = get(K_UPDATED)
                    updated_ns = None
                    if updated is not None:
                        updated = scalar(updated)
                        if updated is not None:
                            updated_ns = parse_cached(updated)
                    status = get(K_STATUS)
                    if status is not None:
                        status = text(status)
                    version = get(K_VERSION)
                    if version is not None:
                        version = scalar(version)
                    parent = get(K_PARENT)
                    if parent is not None:
                        parent = text(parent)
                    superseded = get(K_SUPERSEDED)
                    if superseded is not None:
                        superseded = text(superseded)
                    title = get(K_TITLE)
                    if title is not None:
                        title = text(title)
                    content = get(K_CONTENT)
                    if content is not None:
                        content = text(content)
                    if known_keys(ev):
                        extra = None
                    else:
                        extra = _json({k: v for k, v in ev.items() if k not in _INJECTION_KNOWN})
                    injection_pk += 1
                    stage((
                        injection_pk, span_pk, trace_hex, time_ns, entity_type, entity_id,
                        rank, score, tokens, content_hash, simhash, user, session, request,
                        created, updated, status, version, parent, superseded, title, content,
                        extra, created_ns, updated_ns,
                    ))
                    continue
            else:
                entity_type = text(get(sc.ENTITY_TYPE))
                entity_id = text(get(sc.ENTITY_ID))
            time_ns = int(event.time_ns)
            user = text(get(sc.USER_ID)) or span_user
            session = text(get(sc.SESSION_ID)) or span_session
            request = text(get(sc.MEMOBS_REQUEST_ID)) or span_request
            event_pk += 1
            events.append((event_pk, span_pk, name, time_ns, user, _json(ev)))
            if entity_type is None or entity_id is None or name == injection_name:
                continue  # kept as an event; it names no entity to derive a row for
            key = (entity_type, entity_id)
            if name == citation_name:
                touched.append(key)
                citations.append((
                    event_pk, span_pk, trace_hex, time_ns, entity_type, entity_id,
                    text(get(sc.CITATION_METHOD)), _float(get(sc.CITATION_SCORE)),
                    user, session, request,
                ))
            elif name == write_name:
                fields = catalog.event_fields(ev, name)
                # staged for the catalog only (pk None: no injections row)
                stage((
                    None, span_pk, trace_hex, time_ns, entity_type, entity_id,
                    None, None, None, fields[0], fields[1], user, session, request,
                    fields[4], fields[5], fields[6], fields[7], fields[8], fields[9],
                    fields[3], fields[2], None,
                    parse_cached(fields[4]) if fields[4] is not None else None,
                    parse_cached(fields[5]) if fields[5] is not None else None,
                ))
                op = text(get(sc.WRITE_OP))
                status = WRITE_OP_STATUS.get(op or "", text(get(sc.ENTITY_STATUS)))
                writes.append((
                    event_pk, span_pk, trace_hex, time_ns, entity_type, entity_id, op,
                    status.lower() if status else None,
                    text(get(sc.ENTITY_CONTENT_HASH)), simhash_to_int(get(sc.ENTITY_SIMHASH)),
                    _int(get(sc.ENTITY_TOKENS)),
                    user, session, request,
                ))

    if inserted == 0:
        return 0
    cursor.executemany(
        "INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        events,
    )
    if staged:
        # catalog ties go to the later event: stage in (time, arrival) order
        staged.sort(key=_TIME)
        catalog.stage(conn, staged)
        catalog.merge_staged(conn)
        execute(_INSERT_STAGED_INJECTIONS)
        catalog.clear_stage(conn)
    if touched:
        cursor.executemany(
            "INSERT INTO entities (entity_type, entity_id) VALUES (?, ?)"
            " ON CONFLICT (entity_type, entity_id) DO NOTHING",
            touched,
        )
    cursor.executemany(
        "INSERT INTO citations (event_pk, span_pk, trace_id, time_ns, entity_pk, method, score,"
        " user_id, session_id, request_id) VALUES (?, ?, ?, ?,"
        " (SELECT pk FROM entities WHERE entity_type = ? AND entity_id = ?),"
        " ?, ?, ?, ?, ?)",
        citations,
    )
    cursor.executemany(
        "INSERT INTO writes (event_pk, span_pk, trace_id, time_ns, entity_pk, op, status,"
        " content_hash, simhash, tokens, user_id, session_id, request_id)"
        " VALUES (?, ?, ?, ?, (SELECT pk FROM entities WHERE entity_type = ? AND entity_id = ?),"
        " ?, ?, ?, ?, ?, ?, ?, ?)",
        writes,
    )
    if deferred:
        entity_index.maybe_merge(conn, mark)
    return inserted


_EMPTY: Mapping[str, Any] = {}
_INJECTION_COLUMNS = (
    "pk, span_pk, trace_id, time_ns, entity_pk, rank, score, tokens, content_hash, simhash,"
    " user_id, session_id, request_id, created_at, updated_at, status, version, parent_id,"
    " superseded_by, title, content, extra"
)
# CROSS JOIN: the staged rows drive, each entity found through its unique key
_INSERT_STAGED_INJECTIONS = (
    f"INSERT INTO injections ({_INJECTION_COLUMNS}) SELECT "
    + ", ".join("e.pk" if c == "entity_pk" else f"s.{c}" for c in _INJECTION_COLUMNS.split(", "))
    + " FROM temp._stage s CROSS JOIN entities e"
    " ON e.entity_type = s.entity_type AND e.entity_id = s.entity_id"
    " WHERE s.pk IS NOT NULL ORDER BY s.pk"
)
_TIME = itemgetter(3)
