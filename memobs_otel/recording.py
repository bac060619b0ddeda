"""Recording: the retrieval span, one event per injected entity, writes, citations.

Everything the decorator, the dotted-path patches and the framework plugins
record goes through ``observe_call`` / ``observe_call_async`` here; the
application-facing ``record_injection``, ``record_write`` and ``cite`` too.

Rules kept here, once:

- the wrapped function is called exactly once, its result returned (a
  one-shot iterator as its transparent proxy, see below) and its exception
  re-raised unchanged (the span gets ``error.type`` = class name);
- every memobs step is guarded: a failure is logged once and the call goes on;
- a retrieval that runs inside another one (an ensemble's member retrievers,
  a decorated search calling another) is recorded as a nested span with its
  documents but no ``memobs.injection`` events: only what the outermost call
  returns reaches the prompt, so nothing is counted twice;
- past the SDK's per-span event limit the remaining events go on child spans
  named ``memobs.injection.overflow``: no entity is silently dropped;
- content (and the query text) is exported only with content capture on;
- what UIs show: retrieval and memory spans are of kind CLIENT (as the GenAI
  conventions define them) and carry ``gen_ai.conversation.id`` (the
  session id); a retrieval span lists its first ``MAX_RETRIEVAL_DOCUMENTS``
  documents twice — as OpenInference's ``retrieval.documents.{i}.*``
  (id, score, ``metadata``: JSON of the title, lifecycle fields and a
  plugin's ``source_id``) for Phoenix, and as one JSON ``output.value``
  (``output.mime_type`` ``application/json``) for UIs that show only a
  span's input and output (MLflow, Langfuse). On another
  instrumentation's span (``begin_retrieval(span=...)``) these two are set
  only where that span has none of its own;
- a result that is a one-shot iterator (generator, ``map``, a stream, an
  async generator) is never read here: the caller gets a transparent proxy
  that hands over every item lazily, and each item is recorded as the caller
  takes it; the span ends when the iterator is exhausted, closed or dropped
  (``streaming`` explains it; ``_StreamRecorder`` is what gets recorded).
"""

from __future__ import annotations

import json
import threading
from contextvars import ContextVar
from typing import Any, Callable, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import config, guard, plugins, semconv as sc, streaming, trace_buffer, turns
from .context import current_ids, current_turns
from .entities import Entity, attribute_value, extract_entities
from .sdk_fastpath import event_limit, put_events, set_attributes

_in_retrieval: ContextVar[bool] = ContextVar("memobs_in_retrieval", default=False)

_LIFECYCLE = (
    ("created_at", sc.ENTITY_CREATED_AT),
    ("updated_at", sc.ENTITY_UPDATED_AT),
    ("status", sc.ENTITY_STATUS),
    ("version", sc.ENTITY_VERSION),
    ("parent_id", sc.ENTITY_PARENT_ID),
    ("superseded_by", sc.ENTITY_SUPERSEDED_BY),
    ("title", sc.ENTITY_TITLE),
)
# the span attribute keys of the listed documents, by rank
_DOCUMENT_KEYS = tuple(
    tuple(f"{sc.RETRIEVAL_DOCUMENT_PREFIX}.{i}.{name}"
          for name in (sc.RETRIEVAL_DOCUMENT_ID, sc.RETRIEVAL_DOCUMENT_SCORE, sc.RETRIEVAL_DOCUMENT_CONTENT,
                       sc.RETRIEVAL_DOCUMENT_METADATA))
    for i in range(sc.MAX_RETRIEVAL_DOCUMENTS))
_METADATA_FIELDS = tuple(field for field, _ in _LIFECYCLE)
_OUTPUT_KEYS = (sc.OUTPUT_VALUE, sc.OUTPUT_MIME_TYPE)
_QUERY_KWARGS = ("query", "q", "text", "input", "question", "query_str")
_TOP_K_KWARGS = ("k", "top_k", "limit", "similarity_top_k")


class RetrievalSpec(NamedTuple):
    entity_type: str | Callable[[Entity], str]
    store: str | None = None
    operation: str = sc.OPERATION_SEARCH_MEMORY

    @property
    def span_name(self) -> str:
        return f"{self.operation} {self.store}" if self.store else self.operation


class _Active(NamedTuple):
    span: Any
    token: object
    nested_token: object
    nested: bool


# --- helpers ---------------------------------------------------------------

def guess_query(args: tuple, kwargs: dict) -> str | None:
    """The query text of a search call: a known keyword or the first str argument."""
    for key in _QUERY_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, str):
            return value
    for value in args:
        if isinstance(value, str):
            return value
    return None


def guess_top_k(kwargs: dict) -> int | None:
    for key in _TOP_K_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _retrieval_attributes(spec: RetrievalSpec, query: str | None, top_k: int | None) -> dict:
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: spec.operation,
        sc.OPENINFERENCE_SPAN_KIND: sc.OPENINFERENCE_KIND_RETRIEVER,
    }
    if spec.store:
        key = sc.GEN_AI_DATA_SOURCE_ID if spec.operation == sc.OPERATION_RETRIEVAL else sc.GEN_AI_MEMORY_STORE_ID
        attrs[key] = str(spec.store)
    if top_k is not None:
        attrs[sc.GEN_AI_REQUEST_TOP_K] = top_k
    if query is not None and config.settings.capture_content:
        attrs[sc.INPUT_VALUE] = query
        attrs[sc.GEN_AI_RETRIEVAL_QUERY_TEXT if spec.operation == sc.OPERATION_RETRIEVAL
              else sc.GEN_AI_MEMORY_QUERY_TEXT] = query
    ids = current_ids()
    if ids:
        attrs.update(ids)
        session = ids.get(sc.SESSION_ID)
        if session is not None:
            attrs[sc.GEN_AI_CONVERSATION_ID] = session
    return attrs


def memory_span_ids() -> dict:
    """The memobs.context ids of a memory span (write, citation): plus gen_ai.conversation.id."""
    ids = current_ids()
    session = ids.get(sc.SESSION_ID)
    return {**ids, sc.GEN_AI_CONVERSATION_ID: session} if session is not None else dict(ids)


def document_metadata(entity: Entity) -> dict | None:
    """What ``retrieval.documents.{i}.document.metadata`` and ``output.value`` show of an
    entity beside its id and score: title, lifecycle fields, a plugin's ``source_id``."""
    found = None
    for field in _METADATA_FIELDS:
        value = getattr(entity, field)
        if value is not None:
            if found is None:
                found = {}
            found[field] = value
    extra = entity.metadata
    if extra:
        for key in sc.DOCUMENT_METADATA_KEYS:
            value = extra.get(key) if isinstance(extra, dict) else None
            if value is not None:
                if found is None:
                    found = {}
                found[key] = attribute_value(value)
    return found


# one encoder: json.dumps with any option builds a new JSONEncoder per call
_json = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":")).encode


def _document_listing(entities, first_rank: int, capture: bool, span_attrs: dict, documents: list) -> None:
    """The ``retrieval.documents.{i}.*`` attributes of ``entities`` (ranked from ``first_rank``,
    up to ``MAX_RETRIEVAL_DOCUMENTS``) into ``span_attrs``, their ``output.value`` entries
    into ``documents``."""
    rank = first_rank
    for entity in entities:
        if rank >= sc.MAX_RETRIEVAL_DOCUMENTS:
            return
        id_key, score_key, content_key, metadata_key = _DOCUMENT_KEYS[rank]
        doc: dict[str, Any] = {"id": entity.entity_id}
        span_attrs[id_key] = entity.entity_id
        if entity.score is not None:
            span_attrs[score_key] = doc["score"] = entity.score
        if capture:
            span_attrs[content_key] = doc["content"] = entity.content
        metadata = document_metadata(entity)
        if metadata:
            doc["metadata"] = metadata
            span_attrs[metadata_key] = _json(metadata)
        documents.append(doc)
        rank += 1


def _output_attributes(documents: list) -> dict:
    return {sc.OUTPUT_VALUE: _json(documents), sc.OUTPUT_MIME_TYPE: sc.MIME_JSON}


def _keep_peer_values(span, span_attrs: dict) -> None:
    """On another instrumentation's span: its own output and document metadata stand."""
    present = getattr(span, "attributes", None) or {}
    for key in [key for key in span_attrs if key in present
                and (key in _OUTPUT_KEYS or key.endswith(sc.RETRIEVAL_DOCUMENT_METADATA))]:
        del span_attrs[key]


def _plugin_entities(found: Any) -> list[Entity] | None:
    """A plugin extractor's answer as a list of entities, or None (logged once) when it is not
    an iterable of ``Entity``: then the built-in extractor takes the result."""
    try:
        entities = list(found)
        if all(type(entity) is Entity or isinstance(entity, Entity) for entity in entities):
            return entities
        error = None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a plugin's iterable: its code
        error = exc
    guard.log_once("hook:memobs_extract_entities:result", error,
                   "memobs: a memobs_extract_entities plugin returned something that is not an iterable "
                   "of Entity; the built-in extractor is used instead")
    return None


def result_entities(result: Any, spec: RetrievalSpec) -> list[Entity]:
    """The entities of a retrieval ``result``, typed and ranked as ``spec`` says: entities a
    plugin built itself as they are, else the first extractor plugin's, else the built-in
    extractor's."""
    entity_type = spec.entity_type if isinstance(spec.entity_type, str) else "memory"
    entities = None
    if type(result) is list and result and type(result[0]) is Entity and all(type(e) is Entity for e in result):
        # a plugin's ``entities_of`` built them itself (e.g. with a ``cite_text``): typed and ranked here
        for rank, entity in enumerate(result):
            entity.entity_type, entity.rank = entity_type, rank
        entities = result
    elif plugins.has_impls("memobs_extract_entities"):
        found = plugins.call_hook("memobs_extract_entities", result=result, entity_type=entity_type)
        if found is not None:
            entities = _plugin_entities(found)
    if entities is None:
        entities = extract_entities(result, entity_type)
    if not isinstance(spec.entity_type, str):
        for entity in entities:
            entity.entity_type = str(spec.entity_type(entity))
    return entities


def entity_event_attributes(entity: Entity, measurement, capture: bool, ids: dict,
                            call_hooks: bool) -> dict:
    """The attributes of one entity's event (injection or write)."""
    attrs: dict[str, Any] = {
        sc.ENTITY_TYPE: entity.entity_type,
        sc.ENTITY_ID: entity.entity_id,
    }
    if measurement is not None:
        attrs[sc.ENTITY_TOKENS] = measurement.tokens
        attrs[sc.ENTITY_CONTENT_HASH] = measurement.content_hash
        attrs[sc.ENTITY_SIMHASH] = measurement.simhash
        if measurement.minhash is not None:
            attrs[sc.ENTITY_MINHASH] = measurement.minhash
        if measurement.estimated:
            attrs[sc.ENTITY_TOKENS_ESTIMATED] = True
    for field, key in _LIFECYCLE:
        value = getattr(entity, field)
        if value is not None:
            attrs[key] = value
    if capture and entity.content is not None:
        attrs[sc.ENTITY_CONTENT] = entity.content
    if ids:
        attrs.update(ids)
    if call_hooks:
        plugins.call_hook("memobs_entity_attributes", entity=entity, attributes=attrs)
    return attrs


def _record_entities(span, entities: list[Entity], spec: RetrievalSpec, *, nested: bool,
                     own_span: bool, peer: bool = False) -> None:
    """Put ``entities`` on ``span``: span attributes (own spans) and one event each.

    ``peer``: the span is another instrumentation's (see ``_keep_peer_values``)."""
    settings = config.settings
    capture = settings.capture_content
    # Span attributes are gathered and set in one call: the SDK takes its
    # lock and re-validates on every set_attribute, ~20 of them per call.
    span_attrs: dict[str, Any] = {}
    if own_span:
        span_attrs[sc.MEMOBS_RECORD_COUNT] = len(entities)
        documents: list = []
        _document_listing(entities, 0, capture, span_attrs, documents)
        span_attrs.update(_output_attributes(documents))
        if peer:
            _keep_peer_values(span, span_attrs)
    if nested:
        span_attrs[sc.MEMOBS_NESTED] = True
        set_attributes(span, span_attrs)
        return
    ids = current_ids()
    call_hooks = plugins.has_impls("memobs_entity_attributes")
    if span_attrs and call_hooks:  # a hook may look at the span: set them first, as always
        span.set_attributes(span_attrs)
        span_attrs = {}
    try:
        measurer = settings.get_measurer()
        events, total, clean, estimated = _injection_events(entities, measurer, capture, ids, call_hooks)
        totals: dict[str, Any] = {}
        if own_span:
            totals[sc.MEMOBS_INJECTION_COUNT] = len(events)
            totals[sc.MEMOBS_INJECTION_TOKENS] = total
            totals[sc.MEMOBS_TOKENIZER] = measurer.tokenizer.name
        if estimated:
            totals[sc.MEMOBS_TOKENS_ESTIMATED] = True
    except BaseException:
        if span_attrs:  # what a failure here always left on the span
            span.set_attributes(span_attrs)
        raise
    # the span attributes and the totals in one call (one SDK lock and
    # validation pass instead of two), in the same order as two calls
    span_attrs.update(totals)
    if span_attrs:
        set_attributes(span, span_attrs)
    _add_events(span, sc.EVENT_INJECTION, events, spec, ids, shared=call_hooks, clean=clean)
    trace_buffer.remember(span.get_span_context().trace_id, entities)


def _injection_events(entities: list[Entity], measurer, capture: bool, ids: dict, call_hooks: bool):
    """The attributes of each entity's injection event, their token total, whether they are
    clean, and whether any token count is estimated (no encoding, or past the exact-count cap).

    Clean: every key one of memobs's own and every value an exact str, int,
    float or bool (what ``sdk_fastpath.put_events`` may add without checking them again):
    no hook ran, no lifecycle field, and the entity's own fields have those
    types (a plugin's extractor may build entities with other values).
    """
    events = []
    total = 0
    estimated = measurer.tokenizer.estimated
    # the cache's own get under hash(content) (see measure): no Python call on a hit;
    # a content longer than key_chars is looked up by measure() under its bounded hash
    measured, key_chars = measurer.cached, measurer.KEY_CHARS
    clean = not call_hooks and (not ids or all(type(value) is str for value in ids.values()))
    for entity in entities:
        content = entity.content
        m = measured(hash(content)) if type(content) is str and len(content) <= key_chars else None
        if m is None:
            m = measurer.measure(content)
        total += m.tokens
        score = entity.score
        if clean and not (type(entity.entity_type) is str and type(entity.entity_id) is str
                          and type(entity.rank) is int and (score is None or type(score) is float)
                          and type(m.tokens) is int and (not capture or type(content) is str)):
            clean = False
        if m.estimated:
            estimated = True
        if clean and (entity.created_at is not None or entity.updated_at is not None
                      or entity.status is not None or entity.version is not None
                      or entity.parent_id is not None or entity.superseded_by is not None
                      or entity.title is not None):
            clean = False  # lifecycle values are the extractor's: any type
        # the hook is called last, below: it sees (and may redact) the score and rank too
        event_attrs = entity_event_attributes(entity, m, capture, ids, call_hooks=False)
        if score is not None:
            event_attrs[sc.ENTITY_SCORE] = score
        event_attrs[sc.ENTITY_RANK] = entity.rank
        if call_hooks:  # last: a hook sees (and may redact) every attribute
            plugins.call_hook("memobs_entity_attributes", entity=entity, attributes=event_attrs)
        events.append(event_attrs)
    return events, total, clean, estimated


def _add_events(span, name: str, events: list[dict], spec: RetrievalSpec, ids: dict,
                shared: bool = False, clean: bool = False) -> None:
    """Add one event per attribute dict; past the span's event limit, on overflow child spans.

    ``shared``: the dicts may be referenced elsewhere (a hook saw them), so
    the fast path copies them. ``clean``: see ``_injection_events``.
    """
    limit = event_limit(span)
    room = len(events) if limit is None else max(0, limit - len(getattr(span, "events", ())))
    put_events(span, name, events if room >= len(events) else events[:room], shared, clean)
    if room >= len(events):
        return
    tracer = config.get_tracer()
    parent_ctx = trace.set_span_in_context(span)
    step = limit or len(events)
    for start in range(room, len(events), step):
        child_attrs = {sc.GEN_AI_OPERATION_NAME: spec.operation, sc.MEMOBS_OVERFLOW_FIRST_RANK: start, **ids}
        child = tracer.start_span(sc.MEMOBS_OVERFLOW_SPAN_NAME, context=parent_ctx,
                                  kind=SpanKind.INTERNAL, attributes=child_attrs)
        put_events(child, name, events[start : start + step], shared, clean)
        child.end()


# --- the call wrapper ---------------------------------------------------------

def _start(spec: RetrievalSpec, args: tuple, kwargs: dict, query: str | None, top_k: int | None) -> _Active:
    if query is None and config.settings.capture_content:
        query = guess_query(args, kwargs)
    if top_k is None:
        top_k = guess_top_k(kwargs)
    nested = _in_retrieval.get()
    span = config.get_tracer().start_span(spec.span_name, kind=SpanKind.CLIENT,
                                          attributes=_retrieval_attributes(spec, query, top_k))
    token = otel_context.attach(trace.set_span_in_context(span))
    return _Active(span, token, _in_retrieval.set(True), nested)


def _close(active: _Active, end: bool = True) -> None:
    try:
        _in_retrieval.reset(active.nested_token)
        otel_context.detach(active.token)
    finally:
        if end:
            active.span.end()


def _finish(active: _Active, result: Any, spec: RetrievalSpec,
            entities_of: Callable[[Any], Any] | None = None) -> Any:
    """Record ``result`` and end the span; returns what the caller gets: ``result``, or for a
    one-shot iterator its recording proxy (the span then ends when the caller is done with it)."""
    stream = None
    try:
        span = active.span
        if span.is_recording():
            if type(result) is not list and streaming.kind(result) is not None:
                stream = streaming.wrap(result, _StreamRecorder(span, spec, active.nested, entities_of))
            else:
                entities = result_entities(entities_of(result) if entities_of is not None else result, spec)
                _record_entities(span, entities, spec, nested=active.nested, own_span=True)
        elif not _warned_no_provider:
            _warn_if_no_provider()
    finally:
        _close(active, end=stream is None)
    return result if stream is None else stream


NO_PROVIDER_MESSAGE = ("memobs: retrievals are not being recorded: no OpenTelemetry tracer provider is set up "
                       "(call memobs.configure(db_path=...) once at start-up, or set a global SDK "
                       "TracerProvider)")
_warned_no_provider = False


def _warn_if_no_provider() -> None:
    """Once: a retrieval ran but nothing records it because no SDK provider exists
    (``memobs.instrument()`` without ``configure()``); a sampled-out span says nothing."""
    global _warned_no_provider
    _warned_no_provider = True
    if isinstance(config.tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        guard.log_once("no tracer provider", message=NO_PROVIDER_MESSAGE)


class _StreamRecorder:
    """What a one-shot iterator result records (``streaming`` holds the proxy that calls it).

    Each item the caller takes is extracted as ``[item]`` would be (through
    ``entities_of`` when the framework gave one), ranked on from the items
    before it, and recorded as in ``_record_entities``: its documents on the
    span (first ``MAX_RETRIEVAL_DOCUMENTS``), one injection event each (past
    the span's event limit on overflow child spans of ``limit`` events), and
    the trace buffer. The totals are set and the span ended once, by
    ``close``. Thread-safe; never raises.
    """

    def __init__(self, span, spec: RetrievalSpec, nested: bool, entities_of) -> None:
        self.span, self.spec, self.nested, self.entities_of = span, spec, nested, entities_of
        self.ids = current_ids()  # the memobs.context of the call, not of whoever consumes
        self.turns = current_turns()
        self.documents: list = []  # output.value's entries, set at close
        self.lock = threading.Lock()
        self.done = False
        self.rank = 0  # entities taken so far
        self.injected = 0
        self.tokens = 0
        self.estimated = False
        self.limit = event_limit(span)
        self.on_span = len(getattr(span, "events", ()))
        self.child = None
        self.on_child = 0
        if nested:
            span.set_attribute(sc.MEMOBS_NESTED, True)

    # the proxy's calls: each guarded, none may raise into the caller's loop
    def enter(self):
        if self.done:
            return None
        return guard.safe_invoke("record stream item", self._enter)

    def _enter(self):
        return otel_context.attach(trace.set_span_in_context(self.span)), _in_retrieval.set(True)

    def leave(self, token) -> None:
        if token is not None:
            guard.safe_invoke("record stream item", self._leave, token)

    @staticmethod
    def _leave(token) -> None:
        context_token, nested_token = token
        try:
            _in_retrieval.reset(nested_token)
        finally:
            otel_context.detach(context_token)

    def take(self, item: Any) -> None:
        if not self.done:
            guard.safe_invoke("record stream item", self._take, item)

    def close(self, exc: BaseException | None = None) -> None:
        if not self.done:
            guard.safe_invoke("record stream end", self._close, exc)

    def _take(self, item: Any) -> None:
        source = [item]
        entities = result_entities(self.entities_of(source) if self.entities_of is not None else source, self.spec)
        if not entities:
            return
        settings = config.settings
        capture = settings.capture_content
        with self.lock:
            if self.done:
                return
            span_attrs: dict[str, Any] = {}
            _document_listing(entities, self.rank, capture, span_attrs, self.documents)
            for entity in entities:
                entity.rank = self.rank
                self.rank += 1
            if span_attrs:
                set_attributes(self.span, span_attrs)
            if self.nested:
                return
            call_hooks = plugins.has_impls("memobs_entity_attributes")
            measurer = settings.get_measurer()
            events, total, clean, estimated = _injection_events(entities, measurer, capture, self.ids, call_hooks)
            self.injected += len(events)
            self.tokens += total
            self.estimated = self.estimated or estimated
            self._put(events, call_hooks, clean)
        trace_buffer.remember(self.span.get_span_context().trace_id, entities, self.turns)

    def _put(self, events: list[dict], shared: bool, clean: bool) -> None:
        """The events on the span while it has room, then on overflow children of ``limit`` each."""
        limit = self.limit
        if limit is None:
            put_events(self.span, sc.EVENT_INJECTION, events, shared, clean)
            return
        room = max(0, limit - self.on_span)
        if room:
            put_events(self.span, sc.EVENT_INJECTION, events[:room], shared, clean)
            self.on_span += min(room, len(events))
        first_rank = self.rank - len(events) + room
        rest = events[room:]
        while rest:
            if self.child is None:
                attrs = {sc.GEN_AI_OPERATION_NAME: self.spec.operation, sc.MEMOBS_OVERFLOW_FIRST_RANK: first_rank,
                         **self.ids}
                self.child = config.get_tracer().start_span(
                    sc.MEMOBS_OVERFLOW_SPAN_NAME, context=trace.set_span_in_context(self.span),
                    kind=SpanKind.INTERNAL, attributes=attrs)
                self.on_child = 0
            fits = rest[: max(1, limit - self.on_child)]
            put_events(self.child, sc.EVENT_INJECTION, fits, shared, clean)
            self.on_child += len(fits)
            first_rank += len(fits)
            rest = rest[len(fits):]
            if self.on_child >= limit:
                self.child.end()
                self.child = None

    def _close(self, exc: BaseException | None) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        span = self.span
        try:
            if exc is not None:
                span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
            totals: dict[str, Any] = {sc.MEMOBS_RECORD_COUNT: self.rank, **_output_attributes(self.documents)}
            if not self.nested:
                totals[sc.MEMOBS_INJECTION_COUNT] = self.injected
                totals[sc.MEMOBS_INJECTION_TOKENS] = self.tokens
                totals[sc.MEMOBS_TOKENIZER] = config.settings.get_measurer().tokenizer.name
                if self.estimated:
                    totals[sc.MEMOBS_TOKENS_ESTIMATED] = True
            span.set_attributes(totals)
        finally:
            try:
                if self.child is not None:
                    self.child.end()
                    self.child = None
            finally:
                span.end()


def _fail(active: _Active, exc: BaseException) -> None:
    try:
        span = active.span
        if span.is_recording():
            span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
    finally:
        _close(active)


def observe_call(wrapped: Callable, args: tuple, kwargs: dict, spec: RetrievalSpec,
                 query: str | None = None, top_k: int | None = None,
                 entities_of: Callable[[Any], Any] | None = None) -> Any:
    """Call ``wrapped(*args, **kwargs)`` once inside a recorded retrieval span.

    ``entities_of`` (optional) maps the result to what entities are extracted
    from, e.g. documents paired with scores the result itself does not carry;
    the caller still gets the result unchanged (a one-shot iterator: its
    recording proxy, ``entities_of`` then applied to ``[item]`` per item).
    """
    if not config.settings.enabled:
        return wrapped(*args, **kwargs)
    active = guard.safe_invoke("start retrieval span", _start, spec, args, kwargs, query, top_k)
    if active is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        guard.safe_invoke("record error", _fail, active, exc)
        raise
    return guard.safe_invoke("record retrieval", _finish, active, result, spec, entities_of, default=result)


async def observe_call_async(wrapped: Callable, args: tuple, kwargs: dict, spec: RetrievalSpec,
                             query: str | None = None, top_k: int | None = None,
                             entities_of: Callable[[Any], Any] | None = None) -> Any:
    """``observe_call`` for a coroutine function: awaits it once."""
    if not config.settings.enabled:
        return await wrapped(*args, **kwargs)
    active = guard.safe_invoke("start retrieval span", _start, spec, args, kwargs, query, top_k)
    if active is None:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        guard.safe_invoke("record error", _fail, active, exc)
        raise
    return guard.safe_invoke("record retrieval", _finish, active, result, spec, entities_of, default=result)


# --- a retrieval whose start and end an integration reports ----------------------
# For frameworks that announce each retrieval to their own callbacks (LangChain's
# retriever runs): the integration calls ``begin_retrieval`` when the run starts and
# ``end_retrieval`` when it ends, so memobs's span covers the retrieval itself, not the
# callback work around it. When another instrumentation (OpenInference, OpenLLMetry)
# already holds a span for the same run, the integration passes it as ``span=``:
# memobs records onto that span (enriches it) instead of starting a second one, so one
# call gives one retriever span, in the trace of the chain that made it.

class Retrieval(NamedTuple):
    """One retrieval between ``begin_retrieval`` and ``end_retrieval``."""

    span: Any
    own: bool  # memobs started the span (and ends it); else another instrumentation's
    nested: bool
    token: object
    nested_token: object


def begin_retrieval(spec: RetrievalSpec, query: str | None = None, top_k: int | None = None, *,
                    span: Any = None, parent: Any = None) -> Retrieval:
    """Start recording a retrieval and make its span current (until ``end_retrieval``).

    ``span``: another instrumentation's span for this very call; memobs adds its
    attributes the span does not have yet (and, at the end, its events) and
    neither ends it nor sets its status. Without it memobs starts its own span,
    a child of ``parent`` (an OpenTelemetry ``Context``; ``None``: the current one).
    Must be closed with ``end_retrieval`` in the same context (thread or task).
    """
    nested = _in_retrieval.get()
    attributes = _retrieval_attributes(spec, query, top_k)
    if span is None:
        own = True
        span = config.get_tracer().start_span(spec.span_name, context=parent, kind=SpanKind.CLIENT,
                                              attributes=attributes)  # the kind _start uses
    else:
        own = False
        present = getattr(span, "attributes", None) or {}  # the peer's own values stand
        span.set_attributes({key: value for key, value in attributes.items() if key not in present})
    token = otel_context.attach(trace.set_span_in_context(span))
    return Retrieval(span, own, nested, token, _in_retrieval.set(True))


def end_retrieval(retrieval: Retrieval, spec: RetrievalSpec, result: Any = None, error: BaseException | None = None,
                  entities_of: Callable[[Any], Any] | None = None) -> None:
    """Record the retrieval's ``result`` (or its ``error``) and close what ``begin_retrieval`` opened.

    An error is put on memobs's own span only: another instrumentation records
    the error on its span itself.
    """
    span = retrieval.span
    try:
        if span.is_recording():
            if error is not None:
                if retrieval.own:
                    span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
                    span.set_status(Status(StatusCode.ERROR))
            else:
                entities = result_entities(entities_of(result) if entities_of is not None else result, spec)
                _record_entities(span, entities, spec, nested=retrieval.nested, own_span=True,
                                 peer=not retrieval.own)
    finally:
        try:
            _in_retrieval.reset(retrieval.nested_token)
            otel_context.detach(retrieval.token)
        finally:
            if retrieval.own:
                span.end()


# --- application-facing recording ----------------------------------------------

def _record_injection(entities: Any, entity_type, store, operation) -> None:
    spec = RetrievalSpec(entity_type, store, operation)
    found = result_entities(entities, spec)
    current = trace.get_current_span()
    if current.is_recording():
        turns.claim_span(current)  # a span begun before the block: now in its turn
        _record_entities(current, found, spec, nested=False, own_span=False)
        return
    span = config.get_tracer().start_span(spec.span_name, kind=SpanKind.CLIENT,
                                          attributes=_retrieval_attributes(spec, None, None))
    try:
        _record_entities(span, found, spec, nested=False, own_span=True)
    finally:
        span.end()


def record_injection(entities: Any, entity_type: str | Callable[[Entity], str] = "memory",
                     store: str | None = None, operation: str = sc.OPERATION_SEARCH_MEMORY) -> None:
    """Record ``entities`` as injected into the prompt, on the current span.

    For applications that inject without a decorated search, or inject only
    part of what they retrieved (then do not decorate the search: record
    what was injected here). ``entities`` takes every result shape the
    decorator does. With no recording span current, a retrieval span is
    started for it. Never raises.
    """
    if config.settings.enabled:
        guard.safe_invoke("record_injection", _record_injection, entities, entity_type, store, operation)


def _record_write(entity_type: str, entity_id: Any, op: str, fields: dict) -> None:
    if op not in sc.WRITE_OPS:
        guard.log_once(f"record_write op {op!r}", message=f"memobs: record_write op must be one of "
                                                          f"{', '.join(sc.WRITE_OPS)}, not {op!r}; not recorded")
        return
    store = fields.pop("store", None)
    content = fields.pop("content", None)
    default_status = {"delete": "deleted", "archive": "archived"}.get(op)
    known = {name for name, _ in _LIFECYCLE}
    unknown = set(fields) - known
    if unknown:
        guard.log_once("record_write fields", message=f"memobs: record_write ignores unknown fields {sorted(unknown)}")
    entity = Entity(
        entity_type=str(entity_type), entity_id=str(entity_id),
        content=str(content) if content is not None else None,
        **{name: attribute_value(fields.get(name)) for name in known},
    )
    if entity.status is None and default_status:
        entity.status = default_status
    ids = current_ids()
    measurement = config.settings.get_measurer().measure(entity.content) if entity.content is not None else None
    attrs = entity_event_attributes(entity, measurement, config.settings.capture_content, ids,
                                    plugins.has_impls("memobs_entity_attributes"))
    attrs[sc.WRITE_OP] = op
    name = sc.WRITE_SPAN_NAMES[op]
    span_attrs = {sc.GEN_AI_OPERATION_NAME: name, **memory_span_ids()}
    if store:
        span_attrs[sc.GEN_AI_MEMORY_STORE_ID] = str(store)
    span = config.get_tracer().start_span(name, kind=SpanKind.CLIENT, attributes=span_attrs)
    try:
        span.add_event(sc.EVENT_WRITE, attrs)
    finally:
        span.end()


def record_write(entity_type: str, entity_id: Any, op: str, **fields: Any) -> None:
    """Record a write to the memory store: ``op`` is create, update, delete or archive.

    Optional fields: ``content``, ``created_at``, ``updated_at``, ``status``,
    ``version``, ``parent_id``, ``superseded_by``, ``title``, ``store``.
    A delete defaults ``status`` to ``deleted``, an archive to ``archived``.
    Never raises: a bad ``op`` is logged once and not recorded.
    """
    if config.settings.enabled:
        guard.safe_invoke("record_write", _record_write, entity_type, entity_id, op, dict(fields))


def _cite(entity_type: str, entity_id: Any, method: str, score: float) -> None:
    attrs = {sc.ENTITY_TYPE: str(entity_type), sc.ENTITY_ID: str(entity_id),
             sc.CITATION_METHOD: method, sc.CITATION_SCORE: float(score), **current_ids()}
    current = trace.get_current_span()
    if current.is_recording():
        turns.claim_span(current)  # a span begun before the block: now in its turn
        current.add_event(sc.EVENT_CITATION, attrs)
        return
    span = config.get_tracer().start_span(sc.CITE_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=memory_span_ids())
    try:
        span.add_event(sc.EVENT_CITATION, attrs)
    finally:
        span.end()


def cite(entity_type: str, entity_id: Any, *, method: str = sc.CITATION_EXPLICIT, score: float = 1.0) -> None:
    """Record that the answer used entity ``(entity_type, entity_id)``. Never raises."""
    if config.settings.enabled:
        guard.safe_invoke("cite", _cite, entity_type, entity_id, method, score)
