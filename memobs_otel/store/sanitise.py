"""Make a batch of spans storable when one of its values is not.

SQLite cannot bind a ``str`` holding a lone surrogate (``"bad\\ud800"``:
Python allows it, UTF-8 does not) nor an ``int`` outside 64 bits; either
fails the whole ``executemany`` and so the whole batch's transaction. The
writer does not look for such values on its hot path (it would cost every
span for a value that almost never comes): only when a batch fails with a
value error does it call :func:`sanitised_records`, which copies the batch
into ``SpanRecord``s with every value made storable, and counts how many
were changed:

- a string with lone surrogates: each replaced by U+FFFD (a valid pair is
  joined into its character), in values, attribute keys, names;
- an integer past 64 bits (signed): stored as its decimal text;
- a time (span start/end, event time) past 64 bits: clamped to the largest
  (or smallest) 64-bit value;
- sequences and mappings: element by element.

Every other value, and every other span of the batch, is kept exactly.
"""

from __future__ import annotations

from typing import Any, Iterable

from .records import EventRecord, SpanRecord, SpanSource, plain_attributes

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


class _Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def _text(value: str, count: _Count) -> str:
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        count.n += 1
        # UTF-16 with surrogatepass joins valid pairs; 'replace' turns each
        # lone surrogate into one U+FFFD
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _value(value: Any, count: _Count) -> Any:
    cls = value.__class__
    if cls is str:
        return _text(value, count)
    if cls is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        count.n += 1
        return str(value)
    if cls is tuple or cls is list:
        return tuple(_value(v, count) for v in value)
    if cls is dict:  # an OTLP kvlist read by ``memobs ingest``
        return {_value(k, count): _value(v, count) for k, v in value.items()}
    if isinstance(value, str):  # str subclasses
        return _text(str(value), count)
    if isinstance(value, int) and not isinstance(value, bool):
        return _value(int(value), count)
    return value


def _attributes(attrs: Any, count: _Count) -> dict:
    plain = attrs if attrs.__class__ is dict else plain_attributes(attrs)
    return {_value(k, count) if k.__class__ is str else k: _value(v, count) for k, v in plain.items()}


def _time(value: Any, count: _Count) -> int:
    value = int(value or 0)
    if INT64_MIN <= value <= INT64_MAX:
        return value
    count.n += 1
    return INT64_MAX if value > 0 else INT64_MIN


def sanitised_records(spans: Iterable[Any], source: SpanSource) -> tuple[list[SpanRecord], int]:
    """``spans`` (read through ``source``) as storable ``SpanRecord``s, and
    how many values had to change."""
    count = _Count()
    records = []
    for obj in spans:
        (trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status,
         attributes, resource, scope) = source.span(obj)
        events = tuple(
            EventRecord(_value(str(ev_name), count), _time(ev_time, count),
                        _attributes(ev_attrs or {}, count))
            for ev_name, ev_time, ev_attrs in source.events(obj)
        )
        records.append(SpanRecord(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            name=_value(str(name), count),
            kind=_value(str(kind), count),
            start_ns=_time(start_ns, count),
            end_ns=_time(end_ns, count),
            status=_value(str(status), count),
            attributes=_attributes(attributes or {}, count),
            events=events,
            resource=_attributes(resource or {}, count),
            scope=_value(str(scope or ""), count),
        ))
    return records, count.n
