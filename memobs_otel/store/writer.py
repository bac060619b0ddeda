"""Write spans into a memobs file.

:class:`Writer` is shared by the SQLite span exporter and the OTLP ingester,
so both produce the same rows (:func:`write_records` is a one-off Writer).
The ingester gives it ``SpanRecord``s (:meth:`Writer.write`); the exporter
gives it the SDK's ``ReadableSpan``s as they are, read through
``records.READABLE_SPANS`` (:meth:`Writer.write_spans`), the very fields
``from_readable_span`` would copy.
One call is one transaction (``BEGIN IMMEDIATE``): all of the batch or
nothing, except that a value SQLite cannot store (a lone surrogate, an int
past 64 bits) costs only that value: the batch is written again with such
values sanitised, and counted (``write_spans``). A span already stored (same ``trace_id`` + ``span_id`` and start
time: schema m005's key) is skipped with its events and derived rows, so
writing the same spans twice adds nothing.

Derived rows: each ``memobs.injection`` event (on any span, including the
``memobs.injection.overflow`` children) gives an ``injections`` row, each
``memobs.citation`` a ``citations`` row, each ``memobs.entity.write`` a
``writes`` row. Injection events — most of the data — are stored once, as
their ``injections`` row (known attributes as columns, others in ``extra``);
every other event is also kept whole in ``events``.
The context budget's rows (m008, see ``turn_rows``): each span's turn
(``memobs.turn.id``, else its trace), on the span and its citations, an ``llm_calls`` row for a span with a
prompt size, a ``turn_injections`` row (per span, not per event) for a span
with injections.
``user.id`` / ``session.id`` / ``memobs.request.id`` come from the event,
else from its span. A span marked ``memobs.inventory.complete`` (a whole-store
snapshot, ``memobs.record_inventory``) also gets a derived ``delete`` write
for each known entity of its store it lacks: see :mod:`.inventories`.

Why it is shaped this way (the ingest target is 100k injection events/s):
every bound parameter costs Python's ``sqlite3`` time, ``None`` most of all
(it goes through the adapter lookup), and so does an entity lookup per row
in SQL. So the usual injection row (the attributes memobs records) goes
through one statement that binds '' for an absent optional value and
stores it as NULL (``NULLIF``); any other row binds only the columns its
event carries (rows grouped by which they are). Entity pks and catalog
rows come from the writer's :class:`~.entity_cache.EntityCache` (a new
entity gets its pk on the spot): an injection that repeats what the
catalog holds writes no catalog row. Each row is a tuple of plain values,
which the garbage collector stops tracking at its first pass: what a batch
leaves alive does not make the collector scan the host's heap over and over.
"""

from __future__ import annotations

import json
import sqlite3
from time import monotonic as _monotonic
from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping

from .. import semconv as sc
from . import catalog, entity_index, inventories, turn_rows
from ..fingerprint import minhash_from_hex
from .catalog import WRITE_OP_STATUS, scalar, simhash_to_int, text
from .connection import DEFAULT_RETRIES, with_retry
from .records import SPAN_RECORDS, SpanRecord, SpanSource, plain_attributes
from .entity_cache import EntityCache
from . import losses as loss
from .sanitise import sanitised_records
from .transaction import immediate_transaction

# What a value SQLite cannot bind raises (a lone surrogate: UnicodeEncodeError,
# an int past 64 bits: OverflowError, a type it does not know:
# ProgrammingError/InterfaceError); not OperationalError (locked, disk full,
# read-only) nor IntegrityError (a constraint), which are the file's.
_VALUE_ERRORS = (ValueError, OverflowError, TypeError, sqlite3.ProgrammingError,
                 sqlite3.InterfaceError)

_IDS = (sc.USER_ID, sc.SESSION_ID, sc.MEMOBS_REQUEST_ID)


def write_records(conn: sqlite3.Connection, records: Iterable[SpanRecord], retries: int = DEFAULT_RETRIES) -> int:
    """Store ``records`` in one transaction; return how many spans were new.

    A one-off :class:`Writer`: long-lived writers (the exporter, ``memobs
    ingest``) keep one so that its entity cache stays warm.
    """
    return Writer(conn, retries).write(records)


class Writer:
    """Writes batches of spans through one connection.

    ``conn`` must be in autocommit mode (``isolation_level=None``), as
    returned by :func:`memobs_otel.store.connection.connect_for_write`.
    A busy/locked database is retried; other errors propagate after rollback.
    """

    def __init__(self, conn: sqlite3.Connection, retries: int = DEFAULT_RETRIES) -> None:
        self.conn = conn
        self.retries = retries
        self.entities = EntityCache()
        self._resource: tuple[Any, dict, str] = (None, {}, "{}")  # last resource, its copy, JSON
        self.lock_wait_s = 0.0  # how long the last transaction waited for the write lock
        self.sanitised_values = 0  # values stored altered so far (see sanitise.py)
        self.unwritable_spans = 0  # spans dropped: not storable even sanitised

    def write(self, records: Iterable[SpanRecord]) -> int:
        """Store ``records`` in one transaction; return how many spans were new."""
        return self.write_spans(records, SPAN_RECORDS)

    def write_spans(self, spans: Iterable[Any], source: SpanSource,
                    losses: Mapping[str, int] | None = None) -> int:
        """Store ``spans``, read through ``source`` (e.g. ``READABLE_SPANS``
        for SDK ``ReadableSpan``s), in one transaction; return how many were new.

        ``losses`` (kind -> count, see :mod:`.losses`) are added to the
        file's ``export_losses`` in the same transaction. A batch that fails
        on a value SQLite cannot bind is written again sanitised (see
        :mod:`.sanitise`), and, should that fail too, span by span: one bad
        value never costs its neighbours. What that changed or dropped is
        counted (``values-sanitised`` / ``spans-export-failed``) in the
        file and in ``sanitised_values`` / ``unwritable_spans``.
        """
        batch = list(spans)
        if not batch and not losses:
            return 0
        try:
            return with_retry(lambda: self._transaction(batch, source, losses), self.retries)
        except _VALUE_ERRORS:
            return self._write_sanitised(batch, source, losses)

    def _write_sanitised(self, batch: list, source: SpanSource, losses: Mapping[str, int] | None) -> int:
        records, changed = sanitised_records(batch, source)
        self.sanitised_values += changed
        counts = dict(losses or {})
        counts[loss.VALUES_SANITISED] = counts.get(loss.VALUES_SANITISED, 0) + changed
        if changed:
            try:
                return with_retry(lambda: self._transaction(records, SPAN_RECORDS, counts), self.retries)
            except _VALUE_ERRORS:
                pass
        # still failing (or nothing to sanitise): isolate the span(s) at fault
        inserted = failed = 0
        for record in records:
            try:
                inserted += with_retry(lambda: self._transaction([record], SPAN_RECORDS), self.retries)
            except _VALUE_ERRORS:
                failed += 1
        self.unwritable_spans += failed
        counts[loss.SPANS_EXPORT_FAILED] = counts.get(loss.SPANS_EXPORT_FAILED, 0) + failed
        with_retry(lambda: self._transaction([], SPAN_RECORDS, counts), self.retries)
        return inserted

    def _transaction(self, spans: list, source: SpanSource, losses: Mapping[str, int] | None = None) -> int:
        conn = self.conn
        start = _monotonic()
        # a rolled-back batch may have cached pks of rows that are gone
        with immediate_transaction(conn, on_rollback=self.entities.rollback):
            self.lock_wait_s = _monotonic() - start  # > 0: another writer held the file
            self.entities.sync(conn)
            inserted = _write(conn, spans, source, self.entities, self._resource_json,
                              turn_rows.present(conn)) if spans else 0
            if losses:
                loss.add(conn, losses)
        return inserted

    def _resource_json(self, resource) -> str:
        """The JSON of a span's resource. The SDK gives every span of a
        process the same (immutable) resource object: it is encoded once
        and, for the next spans, only its plain copy compared (in C)."""
        plain = resource if resource.__class__ is dict else plain_attributes(resource)
        last, last_plain, encoded = self._resource
        if resource is not last or plain != last_plain:
            encoded = _json(plain)
            self._resource = (resource, dict(plain), encoded)
        return encoded


def _int(value, default=None):
    """An int SQLite can store, else ``default`` (also for one past 64 bits:
    a sanitised batch carries such a value as text, see sanitise.py)."""
    if value is None or isinstance(value, bool):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if -_INT64 <= number < _INT64 else default


_INT64 = 1 << 63


def _float(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False).encode


def _json(attrs: Mapping[str, Any]) -> str:
    # one encoder for all: json.dumps with options builds a new one per call
    return _ENCODE(attrs if attrs.__class__ is dict else dict(attrs))


# The injection columns every row binds, then the optional ones in order.
# An event carrying only ``_COMMON`` attributes (the usual case) is written
# by one statement; any other shape by a statement naming its columns.
_BASE_COLUMNS = ("pk", "span_pk", "trace_id", "time_ns", "entity_pk", "tokens")
_OPTIONAL = (
    ("rank", sc.ENTITY_RANK), ("score", sc.ENTITY_SCORE),
    ("content_hash", sc.ENTITY_CONTENT_HASH), ("simhash", sc.ENTITY_SIMHASH),
    ("minhash", sc.ENTITY_MINHASH),
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
    sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_MINHASH, sc.ENTITY_CREATED_AT, *_IDS,
})
# Rows of the usual shape all go through one statement: an absent optional
# value is bound as '' and stored as NULL by NULLIF (binding None costs an
# adapter lookup; '' is what every one of these columns reads as "not given").
_COMMON_SQL = (
    "INSERT INTO injections (pk, span_pk, trace_id, time_ns, entity_pk, tokens, rank, score,"
    " content_hash, simhash, user_id, session_id, request_id, created_at, minhash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?, NULLIF(?, ''), NULLIF(?, ''),"
    " NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''))"
)


_COMMON_SQL_BEFORE_M007 = _COMMON_SQL.replace(", minhash)", ")").replace(", NULLIF(?, ''))", ")")


def _insert_sql(columns: tuple[str, ...]) -> str:
    names = _BASE_COLUMNS + columns
    return f"INSERT INTO injections ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


_STATEMENTS: dict[tuple[str, ...], str] = {}


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
    "minhash": minhash_from_hex,
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


class _Rows:
    """The rows step 2 derives from a batch's events, for steps 3 and 4."""

    __slots__ = ("common", "other", "events", "citations", "writes", "turn_spans", "observed")

    def __init__(self, common, other, events, citations, writes, turn_spans, observed) -> None:
        self.common, self.other, self.events = common, other, events
        self.citations, self.writes, self.turn_spans, self.observed = citations, writes, turn_spans, observed


def _write(conn: sqlite3.Connection, spans: list, source: SpanSource, entities: EntityCache,
           resource_json: Callable[[Any], str], with_turns: bool = False) -> int:
    """Write one batch inside the caller's transaction; return how many spans were new.

    ``with_turns``: the file has m008's turn columns and tables. The steps,
    in this order: 1. the span rows, inserted unless already stored;
    2. the new spans' events as injection, event, citation and write rows;
    3. the catalog, from the events that may change it; 4. the rows of
    step 2 inserted; 5. the context budget's rows and the deletes a
    complete inventory implies.
    """
    cursor = conn.cursor()
    execute = cursor.execute
    span_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM spans").fetchone()[0]
    event_pk = execute("SELECT COALESCE(MAX(pk), 0) FROM events").fetchone()[0]
    deferred = entity_index.present(conn)
    mark = entity_index.merged_pk(conn) if deferred else 0
    injection_pk = entity_index.next_injection_pk(conn, mark) - 1
    first_span_pk = span_pk + 1
    span_rows, llm_spans, complete_inventories = _span_rows(spans, source, first_span_pk, resource_json, with_turns)
    stored = _insert_spans(cursor, span_rows, first_span_pk, with_turns)
    if not stored:
        return 0
    rows = _event_rows(spans, source, span_rows, stored, first_span_pk, event_pk, injection_pk, entities,
                       with_turns)
    _update_catalog(conn, entities, rows.observed)
    _insert_rows(cursor, rows, entities.minhash, with_turns)
    if with_turns:
        turn_rows.write_rows(conn, rows.turn_spans, [
            (first_span_pk + offset, span_rows[offset], prompt) for offset, prompt in llm_spans
            if first_span_pk + offset in stored])
    for pk, attrs in complete_inventories:  # after the batch's rows: its items are among them
        if pk in stored:
            inventory = inventories.of_span(pk, span_rows[pk - first_span_pk], attrs)
            if inventory is not None:
                inventories.mark_absent(conn, entities, inventory)
    if deferred:
        entity_index.maybe_merge(conn, mark)
    return len(stored)


def _span_rows(spans: list, source: SpanSource, first_span_pk: int, resource_json: Callable[[Any], str],
               with_turns: bool) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Step 1a: a ``spans`` row per span (pks from ``first_span_pk`` on, in batch order), the
    ``(offset, prompt size)`` of spans carrying one, and the ``(pk, attributes)`` of
    complete-inventory spans."""
    dict_ = dict
    span_rows = []
    complete_inventories = []  # (span pk, attrs) of spans saying "this snapshot is the whole store"
    llm_spans: list[tuple] = []  # (offset, prompt size) of spans carrying one
    read_span = source.span
    for offset, obj in enumerate(spans):
        (trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
         attrs, resource, scope) = read_span(obj)
        if attrs.__class__ is not dict_:
            attrs = plain_attributes(attrs)
        get = attrs.get
        span_rows.append((
            first_span_pk + offset,
            f"{trace_id:032x}",
            f"{span_id:016x}",
            f"{parent_span_id:016x}" if parent_span_id is not None else None,
            name,
            kind,
            int(start_ns),
            int(end_ns),
            status,
            text(get(sc.USER_ID)),
            text(get(sc.SESSION_ID)),
            text(get(sc.MEMOBS_REQUEST_ID)),
            _json(attrs),
            resource_json(resource),
            scope,
            text(get(sc.MEMOBS_TURN_ID)) or f"{trace_id:032x}",  # without a block, the trace
        ))
        if with_turns and (get(sc.GEN_AI_USAGE_INPUT_TOKENS) is not None
                           or get(sc.LLM_TOKEN_COUNT_PROMPT) is not None
                           or get(sc.MEMOBS_PROMPT_TOKENS) is not None):
            prompt = turn_rows.prompt_size(attrs)  # (tokens, model, source) or None
            if prompt is not None:
                llm_spans.append((offset, prompt))
        if get(sc.INVENTORY_COMPLETE) is True:
            complete_inventories.append((first_span_pk + offset, attrs))
    return span_rows, llm_spans, complete_inventories


def _insert_spans(cursor: sqlite3.Cursor, span_rows: list[tuple], first_span_pk: int,
                  with_turns: bool) -> set[int]:
    """Step 1b: INSERT OR IGNORE the span rows, then read back which pks were taken (a span
    already stored, same key, is not: nothing of it is written twice)."""
    if with_turns:
        cursor.executemany(
            "INSERT OR IGNORE INTO spans (pk, trace_id, span_id, parent_span_id, name, kind,"
            " start_ns, end_ns, status, user_id, session_id, request_id, attributes, resource,"
            " scope, turn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            span_rows,
        )
    else:  # a file from before m008
        cursor.executemany(
            "INSERT OR IGNORE INTO spans (pk, trace_id, span_id, parent_span_id, name, kind,"
            " start_ns, end_ns, status, user_id, session_id, request_id, attributes, resource,"
            " scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [row[:15] for row in span_rows],
        )
    return {pk for (pk,) in cursor.execute("SELECT pk FROM spans WHERE pk >= ?", (first_span_pk,))}


def _event_rows(spans: list, source: SpanSource, span_rows: list[tuple], stored: set[int], first_span_pk: int,
                event_pk: int, injection_pk: int, entities: EntityCache, with_turns: bool) -> _Rows:
    """Step 2: the rows of the new spans' events. One flat tuple of plain values per
    injection (the garbage collector stops tracking those); entity pks from the cache, a
    new entity's given on the spot. ``event_pk`` / ``injection_pk``: the last pks taken."""
    every_span = len(stored) == len(spans)
    dict_ = dict
    pk_of = entities.pks.get
    new_entity = entities.add
    core_of = entities.core.get
    common: list[tuple] = []  # rows of the usual shape (``_COMMON_SQL``)
    other: dict[tuple[str, ...], list[tuple]] = {}  # shape -> rows
    events: list[tuple] = []
    citations: list[tuple] = []
    writes: list[tuple] = []
    turn_spans: list[tuple] = []  # turn_injections rows
    # events that may change the catalog: (time, pk, fields) or, for the
    # usual injection, (time, pk, content_hash, simhash, created_at, minhash)
    observed: list[tuple] = []
    injection_name, citation_name, write_name = sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE
    common_shape = _COMMON.issuperset
    K_USER, K_SESSION, K_REQUEST = _IDS
    K_TYPE, K_ID, K_RANK, K_SCORE, K_TOKENS = (
        sc.ENTITY_TYPE, sc.ENTITY_ID, sc.ENTITY_RANK, sc.ENTITY_SCORE, sc.ENTITY_TOKENS)
    K_HASH, K_SIMHASH, K_CREATED = sc.ENTITY_CONTENT_HASH, sc.ENTITY_SIMHASH, sc.ENTITY_CREATED_AT
    K_MINHASH = sc.ENTITY_MINHASH
    has_minhash = entities.minhash  # False on a file from before m007 (tests build such files)
    read_events = source.events
    str_, int_, float_ = str, int, float
    add_common = common.append
    add_observed = observed.append

    for offset, obj in enumerate(spans):
        this_span = first_span_pk + offset
        if not every_span and this_span not in stored:
            continue  # already stored: nothing of it is written twice
        row = span_rows[offset]
        trace_hex = row[1]
        span_ids = (row[9], row[10], row[11])
        span_user, span_session, span_request = span_ids
        # what the usual row binds for "none" ('' is stored as NULL)
        user_or_blank = span_user or ""
        session_or_blank = span_session or ""
        request_or_blank = span_request or ""
        span_first_injection = injection_pk + 1
        span_types: dict = {}  # entity type -> tokens of this span's injections (turn_injections)
        for name, time_ns, ev in read_events(obj):
            if ev.__class__ is not dict_:
                ev = plain_attributes(ev)
            get = ev.get
            if name == injection_name:
                entity_type = get(K_TYPE)
                entity_id = get(K_ID)
                if entity_type.__class__ is not str_ or not entity_type:
                    entity_type = text(entity_type)
                if entity_id.__class__ is not str_ or not entity_id:
                    entity_id = text(entity_id)
                if entity_type is not None and entity_id is not None:
                    key = (entity_type, entity_id)
                    entity_pk = pk_of(key)
                    if entity_pk is None:
                        entity_pk = new_entity(key)
                    if time_ns.__class__ is not int_:
                        time_ns = int(time_ns)
                    tokens = get(K_TOKENS)
                    if tokens.__class__ is not int_:
                        tokens = _int(tokens, 0)
                    injection_pk += 1
                    span_types[entity_type] = span_types.get(entity_type, 0) + tokens
                    if common_shape(ev):
                        # the hot path: plain values of the usual attributes
                        rank = get(K_RANK)
                        score = get(K_SCORE)
                        content_hash = get(K_HASH)
                        simhash = get(K_SIMHASH)
                        created = get(K_CREATED)
                        user = get(K_USER)
                        session = get(K_SESSION)
                        request = get(K_REQUEST)
                        minhash = get(K_MINHASH)
                        # hex text converted here; an int, none, ...: the general path converts it
                        simhash = simhash_to_int(simhash) if simhash.__class__ is str_ else None
                        if minhash is not None:  # absent (older tracers): NULL; malformed: NULL too
                            minhash = minhash_from_hex(minhash) if has_minhash else None
                        if (
                            rank.__class__ is int_ and simhash.__class__ is int_
                            and content_hash.__class__ is str_ and content_hash
                            and (score is None or score.__class__ is float_)
                            and (created is None or created.__class__ is str_)
                            and (user is None or user.__class__ is str_)
                            and (session is None or session.__class__ is str_)
                            and (request is None or request.__class__ is str_)
                        ):
                            if not created:
                                created = None
                            core = core_of(entity_pk)
                            if (core is None or core[0] != content_hash or core[1] != simhash
                                    or time_ns < core[3] or (created is not None and core[2] != created)
                                    or core[4] != minhash):
                                add_observed((time_ns, entity_pk, content_hash, simhash, created, minhash))
                            add_common((
                                injection_pk, this_span, trace_hex, time_ns, entity_pk, tokens,
                                rank, "" if score is None else score, content_hash, simhash,
                                user or user_or_blank, session or session_or_blank,
                                request or request_or_blank, created or "", minhash or "",
                            ))
                            continue
                    add_observed((time_ns, entity_pk, catalog.event_fields(ev, name)))
                    shape, optional = _injection_values(ev, span_ids)
                    rows = other.get(shape)
                    if rows is None:
                        rows = other[shape] = []
                    rows.append((injection_pk, this_span, trace_hex, time_ns, entity_pk, tokens, *optional))
                    continue
            else:
                entity_type = text(get(sc.ENTITY_TYPE))
                entity_id = text(get(sc.ENTITY_ID))
            time_ns = int(time_ns)
            user = text(get(sc.USER_ID)) or span_user
            session = text(get(sc.SESSION_ID)) or span_session
            request = text(get(sc.MEMOBS_REQUEST_ID)) or span_request
            event_pk += 1
            events.append((event_pk, this_span, name, time_ns, user, _json(ev)))
            if entity_type is None or entity_id is None or name == injection_name:
                continue  # kept as an event; it names no entity to derive a row for
            key = (entity_type, entity_id)
            entity_pk = pk_of(key)
            if entity_pk is None:
                entity_pk = new_entity(key)
            if name == citation_name:
                citations.append((
                    event_pk, this_span, trace_hex, time_ns, entity_pk,
                    text(get(sc.CITATION_METHOD)), _float(get(sc.CITATION_SCORE)),
                    user, session, request, row[15],
                ))
            elif name == write_name:
                add_observed((time_ns, entity_pk, catalog.event_fields(ev, name)))
                op = text(get(sc.WRITE_OP))
                status = WRITE_OP_STATUS.get(op or "", text(get(sc.ENTITY_STATUS)))
                writes.append((
                    event_pk, this_span, trace_hex, time_ns, entity_pk, op,
                    status.lower() if status else None,
                    text(get(sc.ENTITY_CONTENT_HASH)), simhash_to_int(get(sc.ENTITY_SIMHASH)),
                    _int(get(sc.ENTITY_TOKENS)),
                    user, session, request,
                ))
        if with_turns and span_types:  # its injections: one pk range, tokens per type
            for entity_type, tokens in span_types.items():
                turn_spans.append((row[15], this_span, row[6], span_user, entity_type, tokens,
                                   span_first_injection, injection_pk))
    return _Rows(common, other, events, citations, writes, turn_spans, observed)


def _update_catalog(conn: sqlite3.Connection, entities: EntityCache, observed: list[tuple]) -> None:
    """Step 3: the catalog, from the events that may change it, in (time, arrival) order."""
    if observed:
        entities.load(conn, [item[1] for item in observed])
        observed.sort(key=_TIME)  # stable: ties go to the later event
        observe, observe_core = entities.observe, entities.observe_core
        for item in observed:
            if len(item) == 6:
                observe_core(*item)
            else:
                observe(item[1], item[0], item[2])
    entities.flush(conn)


def _insert_rows(cursor: sqlite3.Cursor, batch: _Rows, has_minhash: bool, with_turns: bool) -> None:
    """Step 4: insert the injection, event, citation and write rows of step 2.
    ``has_minhash``: the file has m007's minhash column."""
    common, other, events, citations, writes = batch.common, batch.other, batch.events, batch.citations, batch.writes
    if common:
        if has_minhash:
            cursor.executemany(_COMMON_SQL, common)
        else:
            cursor.executemany(_COMMON_SQL_BEFORE_M007, [row[:-1] for row in common])
    for shape, rows in other.items():
        if not has_minhash and "minhash" in shape:
            at = len(_BASE_COLUMNS) + shape.index("minhash")
            shape = shape[: at - len(_BASE_COLUMNS)] + shape[at - len(_BASE_COLUMNS) + 1 :]
            rows = [row[:at] + row[at + 1 :] for row in rows]
        cursor.executemany(_statement(shape), rows)
    if events:
        cursor.executemany(
            "INSERT INTO events (pk, span_pk, name, time_ns, user_id, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
    if citations:
        if with_turns:
            cursor.executemany(
                "INSERT INTO citations (event_pk, span_pk, trace_id, time_ns, entity_pk, method, score,"
                " user_id, session_id, request_id, turn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                citations,
            )
        else:  # a file from before m008
            cursor.executemany(
                "INSERT INTO citations (event_pk, span_pk, trace_id, time_ns, entity_pk, method, score,"
                " user_id, session_id, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [c[:10] for c in citations],
            )
    if writes:
        cursor.executemany(
            "INSERT INTO writes (event_pk, span_pk, trace_id, time_ns, entity_pk, op, status,"
            " content_hash, simhash, tokens, user_id, session_id, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            writes,
        )

_TIME = itemgetter(0)
