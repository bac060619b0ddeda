"""``memobs.record_inventory``: tell memobs what a memory store holds.

    memobs.record_inventory(store_contents, entity_type="document", store="kb", complete=True)

Why: the review queue only knows entities it saw injected or written. An
entry nobody ever retrieved is the stalest of all, yet without an inventory
memobs has never heard of it. An inventory is a snapshot of the store's
entries; each framework integration offers a one-call ``snapshot(...)``
built on this function (``memobs_langchain``, ``memobs_llamaindex``,
``memobs_mem0``, ``memobs_langgraph``).

What is recorded: one span ``"inventory {store}"`` (kind INTERNAL) with one
``memobs.entity.write`` event per item whose ``memobs.write.op`` is
``inventory``: the same attributes a write carries (id, token count, content
hash and fingerprints, lifecycle fields such as ``created_at``, content only
with content capture on). Items are extracted exactly as a search result is
(every shape ``observe_retrieval`` takes). Nothing is counted as injected:
the SQLite writer puts the entities into the catalog (first-seen time,
lifecycle fields, status ``active`` unless the item reports one) and into
the ``writes`` table, never into ``injections``. Past the span's event limit
(128 by default) the events go on child spans ``memobs.inventory.overflow``,
which carry the store and type too: no item is dropped. Items are read in
chunks of ``CHUNK`` and their events added as they are measured, so an
inventory of 100k items holds one chunk of entities at a time; what it
costs is the token count and fingerprints of every item (measured in
``benchmarks/``), on the caller's thread: it is an explicit call, not the
hot path.

``complete=True`` says the snapshot is the whole store (or the whole scope:
see below). Then every entity of that ``entity_type`` that the file knew
from earlier inventories or writes of the same ``store`` and that the
snapshot lacks is marked deleted: the SQLite writer, when it stores the
inventory span, adds a derived ``delete`` write for each (attribute
``memobs.inventory.absent``, timestamped at the inventory span's start, so
that any item of the snapshot — even one on an overflow span stored later —
is newer and wins). Those derived rows live in the file like any write: the
catalog rebuild after retention or a purge recomputes the same status from
them, and they go when the inventory span goes. The flag is set on the span
only once every item was read: an iterator that fails half-way records a
partial, not complete, snapshot. The scope of a complete snapshot is
narrowed by

- the user: recorded inside ``memobs.context(user_id=...)`` (or with an
  integration that scopes by user, e.g. mem0's), only entities written or
  inventoried by that user are considered;
- ``id_prefixes``: only entity ids starting with one of them (LangGraph's
  snapshot of one namespace uses it).

ClickHouse: the store over the Collector's table reads the inventory events
as writes and derives the same deletes when it reads (``docs/clickhouse.md``).

Never raises: a failure is logged once and the call returns ``None``.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from . import config, guard, plugins, semconv as sc
from .context import current_ids
from .entities import Entity
from .recording import RetrievalSpec, entity_event_attributes, result_entities
from .sdk_fastpath import event_limit

CHUNK = 1024  # items extracted and measured at a time
# Every FLUSH_EVERY overflow spans the tracer provider is flushed (at most
# FLUSH_TIMEOUT_MS each). The processors' queues count spans, not events: without
# it a 100k-item snapshot (~780 spans of 128 events) sat whole in the export
# queue, and a processor that sheds when full (OTLP) would drop the spans of a
# snapshot past ~260k items. Peak RSS growth of a 100k snapshot into SQLite,
# one run each on a loaded machine (benchmarks/bench_inventory.py): 310 MiB
# without, 232 MiB with (the rest is the export side: SQLite and the writer).
FLUSH_EVERY = 32
FLUSH_TIMEOUT_MS = 5_000


def _chunks(items: Any) -> Iterator[Any]:
    """``items`` in pieces the extractor takes one at a time (bounded memory for long inputs).

    A list or tuple is sliced; a mapping (e.g. mem0's ``{"results": [...]}``)
    or a single object is extracted whole; any other iterable is read lazily.
    """
    if items is None:
        return
    if isinstance(items, (list, tuple)):
        for start in range(0, len(items), CHUNK):
            yield items[start : start + CHUNK]
        return
    if isinstance(items, (dict, str, bytes)) or not isinstance(items, Iterable):
        yield items
        return
    iterator = iter(items)
    while True:
        chunk = list(islice(iterator, CHUNK))
        if not chunk:
            return
        yield chunk


class _Placer:
    """Adds events to the inventory span, then to overflow children of ``limit`` events each."""

    def __init__(self, span, attrs: dict) -> None:
        self.span, self.attrs = span, attrs
        self.limit = event_limit(span)
        self.current, self.room = span, self.limit
        self.placed = 0
        self.child = None
        self.children = 0

    def add(self, event_attrs: dict) -> None:
        if self.room is not None and self.room <= 0:
            self._next_child()
        self.current.add_event(sc.EVENT_WRITE, event_attrs)
        self.placed += 1
        if self.room is not None:
            self.room -= 1

    def _next_child(self) -> None:
        self.close()
        attrs = {**self.attrs, sc.MEMOBS_OVERFLOW_FIRST_RANK: self.placed}
        self.child = config.get_tracer().start_span(
            sc.INVENTORY_OVERFLOW_SPAN_NAME, context=trace.set_span_in_context(self.span),
            kind=SpanKind.INTERNAL, attributes=attrs)
        self.current, self.room = self.child, self.limit

    def close(self) -> None:
        if self.child is not None:
            self.child.end()
            self.child = None
            self.children += 1
            if self.children % FLUSH_EVERY == 0:
                _flush()


def _flush() -> None:
    """Let the exporters catch up (bounded wait): a long snapshot's spans never pile up."""
    provider = config.tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(FLUSH_TIMEOUT_MS)


def _record(items: Any, entity_type: str | Callable[[Entity], str], store: str | None,
            complete: bool, id_prefixes: Iterable[str] | None) -> int:
    settings = config.settings
    spec = RetrievalSpec(entity_type, store, sc.WRITE_OP_INVENTORY)
    ids = current_ids()
    attrs: dict[str, Any] = {
        sc.INVENTORY_ENTITY_TYPE: entity_type if isinstance(entity_type, str) else "",
        **ids,
    }
    if store:
        attrs[sc.GEN_AI_MEMORY_STORE_ID] = str(store)
    prefixes = [str(p) for p in id_prefixes] if id_prefixes else []
    if prefixes:
        attrs[sc.INVENTORY_ID_PREFIXES] = prefixes
    name = f"{sc.INVENTORY_SPAN_NAME} {store}" if store else sc.INVENTORY_SPAN_NAME
    span = config.get_tracer().start_span(name, kind=SpanKind.INTERNAL, attributes=attrs)
    placer = _Placer(span, attrs)
    capture = settings.capture_content
    call_hooks = plugins.has_impls("memobs_entity_attributes")
    measurer = settings.get_measurer()
    done = False
    try:
        for chunk in _chunks(items):
            for entity in result_entities(chunk, spec):
                measurement = measurer.measure(entity.content) if entity.content is not None else None
                event_attrs = entity_event_attributes(entity, measurement, capture, ids, call_hooks)
                event_attrs[sc.WRITE_OP] = sc.WRITE_OP_INVENTORY
                placer.add(event_attrs)
        done = True
    finally:
        placer.close()
        # the complete flag only once every item was read: a partial snapshot deletes nothing
        span.set_attributes({sc.INVENTORY_COUNT: placer.placed, sc.INVENTORY_COMPLETE: bool(complete and done)})
        span.end()
    return placer.placed


def record_inventory(items: Any, entity_type: str | Callable[[Entity], str] = "memory",
                     store: str | None = None, complete: bool = False, *,
                     id_prefixes: Iterable[str] | None = None) -> int | None:
    """Record a snapshot of what ``store`` holds (see the module docstring).

    ``items`` takes every result shape ``observe_retrieval`` does (and any
    iterable of them, read lazily). ``entity_type`` is a string or a callable
    on each entity. ``complete=True``: the snapshot is the whole store (for
    the current user, and the ``id_prefixes`` if given), so known entities
    of that store and type missing from it are marked deleted. Returns the
    number of items recorded, or ``None`` when memobs is disabled or failed
    (logged once). Never raises.
    """
    if not config.settings.enabled:
        return None
    return guard.safe_invoke("record_inventory", _record, items, entity_type, store, complete, id_prefixes)
