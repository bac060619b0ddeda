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


def _plain(attributes) -> dict:
    """A plain ``dict`` copy of an attributes mapping. The SDK's
    ``BoundedAttributes.copy()`` copies its dict in C; ``dict(mapping)`` would
    call its Python ``__getitem__`` per key (≈ 2 µs for 9 keys vs 0.14 µs)."""
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


# The SDK's own classes are read in place: an event's ``_name``,
# ``_timestamp`` and its ``BoundedAttributes``' dict, a span's attribute
# dict, instead of through properties and a copy each (~0.6 µs of the
# writer's ~6 µs per injection event). Only exact SDK types (a span whose
# ``attributes`` property is ``ReadableSpan``'s own) are read so, and only
# while :func:`_fields_in_place` finds those fields equal to what the public
# properties give; anything else (another SDK, a hand-built event, any
# mapping) goes through the properties. The writer never changes what it reads.
try:
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.trace import Event as _SdkEvent
    from opentelemetry.sdk.trace import ReadableSpan as _ReadableSpan
except Exception:  # noqa: BLE001 - no SDK: the properties only
    _BoundedAttributes = _SdkEvent = _ReadableSpan = None
_IN_PLACE: bool | None = None


def _fields_in_place() -> bool:
    """Once: do the SDK's private fields hold what its public properties give?"""
    global _IN_PLACE
    if _IN_PLACE is None:
        try:
            expected = {"k": "v", "n": 1}
            attrs = _BoundedAttributes(4, expected, immutable=True)
            event = _SdkEvent("e", attrs, 7)
            span = _ReadableSpan("s", attributes=_BoundedAttributes(4, expected), events=(event,))
            _IN_PLACE = (
                (event._name, event._timestamp, event._attributes) == (event.name, event.timestamp, attrs)
                and type(attrs._dict) is dict and attrs._dict == dict(event.attributes) == expected
                and type(span._attributes._dict) is dict and span._attributes._dict == dict(span.attributes)
                and list(span.events) == [event]
            )
        except Exception:  # noqa: BLE001 - a different SDK
            _IN_PLACE = False
    return _IN_PLACE


def _span_attributes(span):
    attributes = getattr(span, "_attributes", None)
    if (type(attributes) is _BoundedAttributes and attributes is not None
            and getattr(type(span), "attributes", None) is _ReadableSpan.attributes and _fields_in_place()):
        return attributes._dict
    return span.attributes


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
        _span_attributes(span),
        resource.attributes if resource else None,
        scope.name if scope else "",
    )


_EVENT = attrgetter("name", "timestamp", "attributes")


def _readable_events(span) -> Iterable[tuple]:
    events = span.events
    if _SdkEvent is not None and _fields_in_place():
        event_type, bounded = _SdkEvent, _BoundedAttributes
        fields = [(e._name, e._timestamp, e._attributes._dict) for e in events
                  if type(e) is event_type and type(e._attributes) is bounded]
        if len(fields) == len(events):
            return fields
    return map(_EVENT, events)


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
        attributes=_plain(attributes),
        events=tuple(EventRecord(n, t, _plain(a)) for n, t, a in _readable_events(span)),
        resource=_plain(resource),
        scope=scope,
    )
