"""Write ``SpanRecord``s into a memobs file.

:class:`Writer` is shared by the SQLite span exporter and the OTLP ingester,
so both produce the same rows (:func:`write_records` is a one-off Writer).
One call is one transaction (``BEGIN IMMEDIATE``): all of the batch or
nothing. A span already stored (same ``trace_id`` + ``span_id``) is skipped
with its events and derived rows, so writing the same spans twice adds
nothing.

Derived rows: each ``memobs.injection`` event (on any span, including the
``memobs.injection.overflow`` children) gives an ``injections`` row, each
``memobs.citation`` a ``citations`` row, each ``memobs.entity.write`` a
``writes`` row. Injection events — most of the data — are stored once, as
their ``injections`` row (known attributes as columns, others in ``extra``);
every other event is also kept whole in ``events``.
``user.id`` / ``session.id`` / ``memobs.request.id`` come from the event,
else from its span.

Why it is shaped this way (the ingest target is 100k injection events/s):
every bound parameter costs Python's ``sqlite3`` time, ``None`` most of all
(it goes through the adapter lookup), and so does an entity lookup per row
in SQL. So an injection row binds only the columns its event carries (rows
are grouped by which optional attributes they have), and entity pks and
catalog rows come from the writer's :class:`~.entity_cache.EntityCache`:
an injection that repeats what the catalog holds writes no catalog row.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from .. import semconv as sc
from . import catalog, entity_index
from .catalog import WRITE_OP_STATUS, parse_cached, scalar, simhash_to_int, text
from .connection import DEFAULT_RETRIES, with_retry
from .records import SpanRecord
from .entity_cache import EntityCache

_IDS = (sc.USER_ID, sc.SESSION_ID, sc.MEMOBS_REQUEST_ID)
_EMPTY: Mapping[str, Any] = {}
_SIMHASHES: dict[str, int | None] = {}  # a pure conversion, shared by all writers
_SIMHASHES_MAX = 262_144


def write_records(conn: sqlite3.Connection, records: Iterable[SpanRecord], retries: int = DEFAULT_RETRIES) -> int:
    """Store ``records`` in one transaction; return how many spans were new.

    A one-off :class:`Writer`: long-lived writers (the exporter, ``memobs
    ingest``) keep one so that its entity cache stays warm.
    """
    return Writer(conn, retries).write(records)


class Writer:
    """Writes batches of ``SpanRecord``s through one connection.

    ``conn`` must be in autocommit mode (``isolation_level=None``), as
    returned by :func:`memobs_otel.store.connection.connect_for_write`.
    A busy/locked database is retried; other errors propagate after rollback.
    """

    def __init__(self, conn: sqlite3.Connection, retries: int = DEFAULT_RETRIES) -> None:
        self.conn = conn
        self.retries = retries
        self.entities = EntityCache()

    def write(self, records: Iterable[SpanRecord]) -> int:
        """Store ``records`` in one transaction; return how many spans were new."""
        batch = list(records)
        if not batch:
            return 0
        return with_retry(lambda: self._transaction(batch), self.retries)

    def _transaction(self, records: list[SpanRecord]) -> int:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.entities.sync(conn)
            inserted = _write(conn, records, self.entities)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # the rolled-back batch may have cached pks of rows that are gone
            self.entities.forget()
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


# The injection columns every row binds, then the optional ones in order.
# An event carrying only ``_COMMON`` attributes (the usual case) is written
# by one statement; any other shape by a statement naming its columns.
_BASE_COLUMNS = ("pk", "span_pk", "trace_id", "time_ns", "entity_pk", "tokens")
_OPTIONAL = (
    ("rank", sc.ENTITY_RANK), ("score", sc.ENTITY_SCORE),
    ("content_hash", sc.ENTITY_CONTENT_HASH), ("simhash", sc.ENTITY_SIMHASH),
    ("user_id", sc.USER_ID), ("session_id", sc.SESSION_ID), ("request_id", sc.MEMOBS_REQUEST_ID),
    ("created_at", sc.ENTITY_CREATED_AT), ("updated_at", sc.ENTITY_UPDATED_AT),
    ("status", sc.ENTITY_STATUS), ("version", sc.ENTITY_VERSION),
    ("parent_id", sc.ENTITY_PARENT_ID), ("superseded_by", sc.ENTITY_SUPERSEDED_BY),
    ("title", sc.ENTITY_TITLE), ("content", sc.ENTITY_CONTENT), ("extra", None),
)
_INJECTION_KNOWN = frozenset(
    [sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_TOKENS] + [key for _, key in _OPTIONAL if key]
)
# the usual shape: the attributes memobs's recording always emits
_COMMON = frozenset({
    sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_RANK, sc.ENTITY_SCORE, sc.ENTITY_TOKENS,
    sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_CREATED_AT, *_IDS,
})
_COMMON_SHAPE = ("rank", "score", "content_hash", "simhash", "user_id", "session_id",
                 "request_id", "created_at")


def _insert_sql(columns: tuple[str, ...]) -> str:
    names = _BASE_COLUMNS + columns
    return f"INSERT INTO injections ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


_STATEMENTS: dict[tuple[str, ...], str] = {}
# which of (score, user, session, request, created) are absent -> shape
_SHAPES: dict[tuple[bool, ...], tuple[str, ...]] = {}


def _statement(shape: tuple[str, ...]) -> str:
    sql = _STATEMENTS.get(shape)
    if sql is None:
        sql = _STATEMENTS[shape] = _insert_sql(shape)
    return sql


def _injection_values(ev: Mapping[str, Any], span_ids: tuple) -> tuple[tuple[str, ...], tuple]:
    """Any injection event: (shape, values) with every value converted and
    ``None`` left out (the slow, general path; see ``_COMMON`` for the fast one)."""
    get = ev.get
    columns: list[str] = []
    values: list[Any] = []
    for column, key in _OPTIONAL:
        if column == "extra":
            value = None if _INJECTION_KNOWN.issuperset(ev) else _json(
                {k: v for k, v in ev.items() if k not in _INJECTION_KNOWN})
        else:
            raw = get(key)
            value = _CONVERT[column](raw)
            if value is None and column in _SPAN_ID_COLUMNS:
                value = span_ids[_SPAN_ID_COLUMNS[column]]
        if value is not None:
            columns.append(column)
            values.append(value)
    return tuple(columns), tuple(values)


_SPAN_ID_COLUMNS = {"user_id": 0, "session_id": 1, "request_id": 2}
_CONVERT = {
    "rank": _int,
    "score": _float,
    "content_hash": text,
    "simhash": simhash_to_int,
    "user_id": text,
    "session_id": text,
    "request_id": text,
    "created_at": scalar,
    "updated_at": scalar,
    "status": text,
    "version": scalar,
    "parent_id": text,
    "superseded_by": text,
    "title": text,
    "content": text,
}


def _write(conn: sqlite3.Connection, records: list[SpanRecord], entities: EntityCache) -> int:
    cursor = conn.cursor()
    execute = cursor.execute
    span_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM spans").fetchone()[0]
    event_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    deferred = entity_index.present(conn)
    mark = entity_index.merged_pk(conn) if deferred else 0
    injection_pk = entity_index.next_injection_pk(conn, mark) - 1

    # 1. spans: INSERT OR IGNORE, then read back which pks were taken
    first_span_pk = span_pk + 1
    span_rows = []
    for offset, record in enumerate(records):
        attrs = record.attributes or _EMPTY
        span_rows.append((
            first_span_pk + offset,
            f"{record.trace_id:032x}",
            f"{record.span_id:016x}",
            f"{record.parent_span_id:016x}" if record.parent_span_id is not None else None,
            record.name,
            record.kind,
            int(record.start_ns),
            int(record.end_ns),
            record.status,
            text(attrs.get(sc.USER_ID)),
            text(attrs.get(sc.SESSION_ID)),
            text(attrs.get(sc.MEMOBS_REQUEST_ID)),
            _json(attrs),
            _json(record.resource or {}),
            record.scope,
        ))
    cursor.executemany(
        "INSERT OR IGNORE INTO spans (pk, trace_id, span_id, parent_span_id, name, kind,"
        " start_ns, end_ns, status, user_id, session_id, request_id, attributes, resource,"
        " scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        span_rows,
    )
    stored = {pk for (pk,) in execute("SELECT pk FROM spans WHERE pk >= ?", (first_span_pk,))}
    if not stored:
        return 0

    # 2. events: one flat tuple per injection; entity pks from the cache
    pks = entities.pks
    common: list[list] = []  # rows of the usual shape; [4] is the entity pk or its key
    other: dict[tuple[str, ...], list[list]] = {}  # shape -> rows
    unresolved: list[tuple[list, int]] = []  # (rows, index) of rows whose [4] is still a key
    events: list[tuple] = []
    citations: list[list] = []
    writes: list[list] = []
    observed: list[tuple] = []  # (time, entity pk or key, catalog fields) that may change the catalog
    keys: dict[tuple[str, str], None] = {}  # unknown keys, in first-seen order
    injection_name, citation_name, write_name = sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE
    common_shape = _COMMON.issuperset
    K_USER, K_SESSION, K_REQUEST = _IDS
    K_TYPE, K_ID, K_RANK, K_SCORE, K_TOKENS = (
        sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_RANK, sc.ENTITY_SCORE, sc.ENTITY_TOKENS)
    K_HASH, K_SIMHASH, K_CREATED = sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_CREATED_AT
    simhashes = _SIMHASHES  # hex text -> signed int: each entity repeats its own
    if len(simhashes) > _SIMHASHES_MAX:
        simhashes.clear()
    pk_of = pks.get
    core_of = entities.core.get
    str_, int_, float_ = str, int, float

    for offset, record in enumerate(records):
        this_span = first_span_pk + offset
        if this_span not in stored:
            continue  # already stored: nothing of it is written twice
        row = span_rows[offset]
        trace_hex = row[1]
        span_ids = (row[9], row[10], row[11])
        span_user, span_session, span_request = span_ids
        for event in record.events:
            ev = event.attributes or _EMPTY
            get = ev.get
            name = event.name
            if name == injection_name:
                entity_type = get(K_TYPE)
                entity_id = get(K_ID)
                if entity_type.__class__ is not str_ or not entity_type:
                    entity_type = text(entity_type)
                if entity_id.__class__ is not str_ or not entity_id:
                    entity_id = text(entity_id)
                if entity_type is None or entity_id is None:
                    pass  # names no entity: kept whole as an event below
                else:
                    key = (entity_type, entity_id)
                    entity_pk = pk_of(key)
                    if entity_pk is None:
                        keys[key] = None
                        entity_pk = key
                    time_ns = event.time_ns
                    if time_ns.__class__ is not int_:
                        time_ns = int(time_ns)
                    tokens = get(K_TOKENS)
                    if tokens.__class__ is not int_:
                        tokens = _int(tokens, 0)
                    injection_pk += 1
                    if common_shape(ev):
                        # the hot path: plain values of the usual attributes
                        rank = get(K_RANK)
                        score = get(K_SCORE)
                        content_hash = get(K_HASH)
                        simhash = get(K_SIMHASH)
                        created = get(K_CREATED)
                        user = get(K_USER) or span_user
                        session = get(K_SESSION) or span_session
                        request = get(K_REQUEST) or span_request
                        if simhash.__class__ is str_:
                            converted = simhashes.get(simhash)
                            if converted is None:
                                converted = simhashes[simhash] = simhash_to_int(simhash)
                            simhash = converted
                        if (
                            rank.__class__ is int_ and simhash.__class__ is int_
                            and content_hash.__class__ is str_ and content_hash
                            and (score is None or score.__class__ is float_)
                            and (created is None or (created.__class__ is str_ and created))
                            and (user is None or user.__class__ is str_)
                            and (session is None or session.__class__ is str_)
                            and (request is None or request.__class__ is str_)
                        ):
                            # rows are tuples of plain values: the garbage collector
                            # stops tracking them, lists it would scan again and again
                            optional = (rank, score, content_hash, simhash, user, session, request, created)
                            core = core_of(entity_pk)
                            if (core is None or core[0] != content_hash or core[1] != simhash
                                    or core[2] != created or time_ns < core[3]):
                                observed.append((time_ns, entity_pk, (
                                    content_hash, simhash, None, None, created,
                                    None, None, None, None, None)))
                            if None in optional:  # bind no None: leave the column out
                                absent = (score is None, user is None, session is None,
                                          request is None, created is None)
                                shape = _SHAPES.get(absent)
                                if shape is None:
                                    shape = _SHAPES[absent] = tuple(
                                        c for c, v in zip(_COMMON_SHAPE, optional) if v is not None)
                                rows = other.setdefault(shape, [])
                                rows.append((injection_pk, this_span, trace_hex, time_ns, entity_pk,
                                             tokens, *[v for v in optional if v is not None]))
                            else:
                                rows = common
                                rows.append((injection_pk, this_span, trace_hex, time_ns, entity_pk,
                                             tokens, *optional))
                            if entity_pk.__class__ is not int_:
                                unresolved.append((rows, len(rows) - 1))
                            continue
                    observed.append((time_ns, entity_pk, catalog.event_fields(ev, name)))
                    shape, optional = _injection_values(ev, span_ids)
                    rows = other.setdefault(shape, [])
                    rows.append((injection_pk, this_span, trace_hex, time_ns, entity_pk, tokens, *optional))
                    if entity_pk.__class__ is not int_:
                        unresolved.append((rows, len(rows) - 1))
                    continue
            else:
                entity_type = text(get(sc.ENTITY_TYPE))
                entity_id = text(get(sc.ENTITY_ID))
            time_ns = int(event.time_ns)
            user = text(get(sc.USER_ID)) or span_user
            session = text(get(sc.SESSION_ID)) or span_session
            request = text(get(sc.MEMOBS_REQUEST_ID)) or span_request
            event_pk += 1
            events.append((event_pk, this_span, name, time_ns, user, _json(ev)))
            if entity_type is None or entity_id is None or name == injection_name:
                continue  # kept as an event; it names no entity to derive a row for
            key = (entity_type, entity_id)
            keys[key] = None
            if name == citation_name:
                citations.append([
                    event_pk, this_span, trace_hex, time_ns, key,
                    text(get(sc.CITATION_METHOD)), _float(get(sc.CITATION_SCORE)),
                    user, session, request,
                ])
            elif name == write_name:
                observed.append((time_ns, key, catalog.event_fields(ev, name)))
                op = text(get(sc.WRITE_OP))
                status = WRITE_OP_STATUS.get(op or "", text(get(sc.ENTITY_STATUS)))
                writes.append([
                    event_pk, this_span, trace_hex, time_ns, key, op,
                    status.lower() if status else None,
                    text(get(sc.ENTITY_CONTENT_HASH)), simhash_to_int(get(sc.ENTITY_SIMHASH)),
                    _int(get(sc.ENTITY_TOKENS)),
                    user, session, request,
                ])

    # 3. entity pks for keys the cache did not know (new entities get theirs)
    if keys:
        pks = entities.resolve(conn, keys)
        for rows, index in unresolved:
            row = rows[index]
            rows[index] = (*row[:4], pks[row[4]], *row[5:])
        for values in citations:
            values[4] = pks[values[4]]
        for values in writes:
            values[4] = pks[values[4]]
    # 4. the catalog: only events that may change it, in (time, arrival) order
    if observed:
        observed = [
            (time_ns, pk if pk.__class__ is int_ else pks[pk], fields)
            for time_ns, pk, fields in observed
        ]
        entities.load(conn, [pk for _, pk, _ in observed])
        observed.sort(key=_TIME)  # stable: ties go to the later event
        observe = entities.observe
        for time_ns, pk, fields in observed:
            observe(pk, time_ns, fields)
    entities.flush(conn)
    if common:
        cursor.executemany(_statement(_COMMON_SHAPE), common)
    for shape, rows in other.items():
        cursor.executemany(_statement(shape), rows)
    cursor.executemany(
        "INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        events,
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
    if deferred:
        entity_index.maybe_merge(conn, mark)
    return len(stored)


def _TIME(item):
    return item[0]
