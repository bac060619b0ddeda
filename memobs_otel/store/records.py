"""A plain, source-neutral form of a finished span.

The OTLP ingester (``memobs ingest``) builds ``SpanRecord``s from OTLP/JSON
lines written by the Collector's ``file`` exporter. The SQLite exporter
hands the SDK's ``ReadableSpan``s to the writer as they are, through
:data:`READABLE_SPANS`: what the writer reads of a span goes through a
:class:`SpanSource`, so both paths yield exactly the same rows
(:func:`from_readable_span` is the ``SpanRecord`` of a ``ReadableSpan``,
field for field what :data:`READABLE_SPANS` reads).

Ids are ints (``trace_id`` 128-bit, ``span_id`` 64-bit) as in the SDK; the
store writes them as hex text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Callable, Iterable, Mapping, NamedTuple


@dataclass(frozen=True)
class EventRecord:
    name: str
    time_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    trace_id: int
    span_id: int
    parent_span_id: int | None
    name: str
    kind: str  # "INTERNAL", "SERVER", ... (the SpanKind name)
    start_ns: int
    end_ns: int
    status: str  # "UNSET", "OK" or "ERROR"
    attributes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[EventRecord, ...] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str = ""


class SpanSource(NamedTuple):
    """How the writer reads one kind of span object.

    ``span(obj)`` gives ``(trace_id, span_id, parent_span_id, name, kind,
    start_ns, end_ns, status, attributes, resource, scope)`` as in
    ``SpanRecord`` (``attributes`` / ``resource`` any mapping or ``None``);
    ``events(obj)`` gives ``(name, time_ns, attributes)`` per event.
    """

    span: Callable[[Any], tuple]
    events: Callable[[Any], Iterable[tuple]]


_RECORD_EVENT = attrgetter("name", "time_ns", "attributes")
SPAN_RECORDS = SpanSource(
    attrgetter("trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns",
               "status", "attributes", "resource", "scope"),
    lambda record: map(_RECORD_EVENT, record.events),
)


def plain_attributes(attributes) -> dict:
    """A plain ``dict`` copy of an attributes mapping. The SDK's
    ``BoundedAttributes.copy()`` copies its dict in C; ``dict(mapping)`` would
    call its Python ``__getitem__`` per key, an order of magnitude slower."""
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    if copy is not None:
        try:
            result = copy()
        except Exception:  # noqa: BLE001 - any mapping: fall back to the protocol
            result = None
        if type(result) is dict:
            return result
    return dict(attributes)


def _readable_span(span) -> tuple:
    ctx = span.context
    parent = span.parent
    start = span.start_time or 0
    resource = span.resource
    scope = span.instrumentation_scope
    return (
        ctx.trace_id,
        ctx.span_id,
        parent.span_id if parent is not None else None,
        span.name,
        span.kind.name,
        start,
        span.end_time or start,
        span.status.status_code.name,
        span.attributes,
        resource.attributes if resource else None,
        scope.name if scope else "",
    )


_EVENT = attrgetter("name", "timestamp", "attributes")


def _readable_events(span) -> Iterable[tuple]:
    return map(_EVENT, span.events)


# SDK ``ReadableSpan``s, read in place: no copy of the span or its events
READABLE_SPANS = SpanSource(_readable_span, _readable_events)


def from_readable_span(span) -> SpanRecord:
    """Convert an SDK ``ReadableSpan`` to a ``SpanRecord`` (what the writer
    reads of it through :data:`READABLE_SPANS`, attributes copied)."""
    (trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
     attributes, resource, scope) = _readable_span(span)
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        kind=kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status=status,
        attributes=plain_attributes(attributes),
        events=tuple(EventRecord(n, t, plain_attributes(a)) for n, t, a in _readable_events(span)),
        resource=plain_attributes(resource),
        scope=scope,
    )
