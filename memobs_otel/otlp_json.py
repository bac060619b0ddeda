"""Decode one OTLP/JSON ``ExportTraceServiceRequest`` into ``SpanRecord``s.

This is the format the OpenTelemetry Collector's ``file`` exporter writes, one
request per line::

    {"resourceSpans": [{"resource": {"attributes": [...]},
                        "scopeSpans": [{"scope": {"name": "memobs_otel"},
                                        "spans": [{"traceId": "5b8a...", ...}]}]}]}

It follows the OTLP/JSON rules of the OTLP specification, and accepts the
variants other writers produce, so a file from any of them ingests the same:

- ids are hex (OTLP/JSON); base64, as protobuf's canonical JSON mapping
  writes bytes, is accepted too (told apart by length: 32/16 hex digits versus
  24/12 base64 characters). An empty ``parentSpanId`` means a root span.
- 64-bit integers (``startTimeUnixNano``, ``intValue``) are strings, or numbers;
- enums (``kind``, ``status.code``) are ints or their names
  (``SPAN_KIND_INTERNAL`` / ``STATUS_CODE_ERROR``); an omitted or
  unspecified kind is ``INTERNAL``, the SDK's default (the SDK has no
  "unspecified");
- field names are lowerCamelCase; the proto names (``resource_spans``,
  ``trace_id`` ...) are accepted as well, as the JSON mapping requires;
- a UTF-8 byte order mark before the text is ignored.

JSON nested deeper than Python's recursion limit allows (~1000 levels; OTLP
needs ~10) is an ``OtlpJsonError`` ("nested too deep"), never a crash.
Values SQLite cannot store are passed on as read: a time or ``intValue``
past 64 bits, a lone surrogate escape (``"\\ud800"``, not Unicode). The
store's writer makes them storable exactly as it does for the SDK's spans
(clamped, as text, U+FFFD) and counts them in the file (``values-sanitised``,
see :mod:`memobs_otel.store.sanitise`), so ingest and exporter agree.

Any deviation — a missing or malformed id, a non-numeric time, an attribute
value of no known type — raises ``OtlpJsonError`` with a short reason: the
caller rejects the whole request (line) so a span is never stored half-read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from memobs_otel.store.records import EventRecord, SpanRecord

__all__ = ["OtlpJsonError", "decode_request", "decode_line", "parse"]

_SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_CODES = ("UNSET", "OK", "ERROR")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_BOM = "\ufeff"


class OtlpJsonError(ValueError):
    """A request that is not OTLP/JSON trace data; the message says why."""


def decode_line(text: str | bytes) -> list[SpanRecord]:
    """Parse one line (one ``ExportTraceServiceRequest``) into span records."""
    message = parse(text)
    try:
        return decode_request(message)
    except RecursionError:  # an AnyValue nested past the recursion limit
        raise OtlpJsonError("nested too deep") from None


def parse(text: str | bytes) -> Any:
    """The JSON value of ``text`` (UTF-8 bytes or str, a byte order mark
    ignored); ``OtlpJsonError`` if it is not UTF-8, not JSON or nested too deep."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise OtlpJsonError("not UTF-8 text (binary data)") from None
    if text.startswith(_BOM):
        text = text[1:]
    try:
        return json.loads(text)
    except RecursionError:
        # json's C scanner counts its depth against the recursion limit and
        # stops cleanly there: a cheap, exact bound with no pre-scan
        raise OtlpJsonError("nested too deep") from None
    except ValueError as exc:  # JSONDecodeError; a number past 4300 digits
        raise OtlpJsonError(f"not JSON ({_short(exc)})") from None


def decode_request(message: Any) -> list[SpanRecord]:
    """Convert a decoded OTLP/JSON trace request into span records."""
    if not isinstance(message, dict):
        raise OtlpJsonError("not an OTLP/JSON object")
    resource_spans = _field(message, "resourceSpans", "resource_spans")
    if resource_spans is None:
        if _field(message, "resourceMetrics", "resource_metrics") is not None:
            raise OtlpJsonError("metrics, not traces")
        if _field(message, "resourceLogs", "resource_logs") is not None:
            raise OtlpJsonError("logs, not traces")
        raise OtlpJsonError("no resourceSpans")
    records: list[SpanRecord] = []
    for rs in _list(resource_spans, "resourceSpans"):
        rs = _dict(rs, "resourceSpans[]")
        resource = _dict(_field(rs, "resource") or {}, "resource")
        resource_attrs = _attributes(_field(resource, "attributes"), "resource")
        for ss in _list(_field(rs, "scopeSpans", "scope_spans") or [], "scopeSpans"):
            ss = _dict(ss, "scopeSpans[]")
            scope = _dict(_field(ss, "scope") or {}, "scope")
            scope_name = scope.get("name") or ""
            if not isinstance(scope_name, str):
                raise OtlpJsonError("scope.name is not a string")
            for span in _list(_field(ss, "spans") or [], "spans"):
                records.append(_span(_dict(span, "span"), resource_attrs, scope_name))
    return records


def _span(span: dict, resource: dict, scope: str) -> SpanRecord:
    name = span.get("name", "")
    if not isinstance(name, str):
        raise OtlpJsonError("span name is not a string")
    parent = _field(span, "parentSpanId", "parent_span_id")
    start = _uint(_field(span, "startTimeUnixNano", "start_time_unix_nano", default=0), "startTimeUnixNano")
    end = _uint(_field(span, "endTimeUnixNano", "end_time_unix_nano", default=0), "endTimeUnixNano")
    status = _dict(_field(span, "status") or {}, "status")
    return SpanRecord(
        trace_id=_id(_field(span, "traceId", "trace_id"), 16, "traceId"),
        span_id=_id(_field(span, "spanId", "span_id"), 8, "spanId"),
        parent_span_id=_id(parent, 8, "parentSpanId") if parent else None,
        name=name,
        kind=_enum(span.get("kind", 0), _SPAN_KINDS, "SPAN_KIND_", "kind", unspecified="INTERNAL"),
        start_ns=start,
        end_ns=end or start,
        status=_enum(status.get("code", 0), _STATUS_CODES, "STATUS_CODE_", "status.code"),
        attributes=_attributes(span.get("attributes"), "span"),
        events=tuple(_event(_dict(e, "event")) for e in _list(span.get("events") or [], "events")),
        resource=resource,
        scope=scope,
    )


def _event(event: dict) -> EventRecord:
    name = event.get("name", "")
    if not isinstance(name, str):
        raise OtlpJsonError("event name is not a string")
    time_ns = _uint(_field(event, "timeUnixNano", "time_unix_nano", default=0), "event timeUnixNano")
    return EventRecord(name, time_ns, _attributes(event.get("attributes"), "event"))


# --- values ---------------------------------------------------------------

def _attributes(items: Any, where: str) -> dict[str, Any]:
    if items is None:
        return {}
    out: dict[str, Any] = {}
    for item in _list(items, f"{where} attributes"):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise OtlpJsonError(f"{where} attribute without a key")
        value = _any_value(item.get("value"), item["key"])
        if value is not None:  # an empty AnyValue carries nothing, as in the SDK
            out[item["key"]] = value
    return out


def _any_value(value: Any, key: str) -> Any:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise OtlpJsonError(f"attribute {key!r}: not an AnyValue")
    (kind, raw), = value.items()
    if kind in ("stringValue", "string_value"):
        if isinstance(raw, str):
            return raw
    elif kind in ("boolValue", "bool_value"):
        if isinstance(raw, bool):
            return raw
    elif kind in ("intValue", "int_value"):
        return _int(raw, f"attribute {key!r}")
    elif kind in ("doubleValue", "double_value"):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if raw in _FLOAT_WORDS:
            return _FLOAT_WORDS[raw]
    elif kind in ("arrayValue", "array_value"):
        if isinstance(raw, dict):
            values = [_any_value(v, key) for v in _list(raw.get("values") or [], key)]
            return tuple(v for v in values if v is not None)
    elif kind in ("kvlistValue", "kvlist_value"):
        # the SDK cannot hold a map attribute; keep it readable as JSON text
        if isinstance(raw, dict):
            return json.dumps(_attributes(raw.get("values"), key), sort_keys=True, default=str)
    elif kind in ("bytesValue", "bytes_value"):
        if isinstance(raw, str):
            return raw  # base64 text, as written
    raise OtlpJsonError(f"attribute {key!r}: bad {kind}")


def _id(value: Any, size: int, what: str) -> int:
    if not isinstance(value, str) or not value:
        raise OtlpJsonError(f"missing {what}")
    if len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise OtlpJsonError(f"bad {what} {value[:40]!r}") from None
    elif len(value) == 4 * ((size + 2) // 3):  # protobuf JSON: base64
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise OtlpJsonError(f"bad {what} {value[:40]!r}") from None
        if len(raw) != size:
            raise OtlpJsonError(f"bad {what} {value[:40]!r}")
    else:
        raise OtlpJsonError(f"bad {what} {value[:40]!r}")
    number = int.from_bytes(raw, "big")
    if number == 0:  # all-zero ids are invalid in OTLP
        raise OtlpJsonError(f"bad {what} {value[:40]!r}")
    return number


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise OtlpJsonError(f"{what}: not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            pass
    raise OtlpJsonError(f"{what}: not an integer")


def _uint(value: Any, what: str) -> int:
    number = _int(value, what)
    if number < 0:
        raise OtlpJsonError(f"{what}: negative")
    return number


def _enum(value: Any, names: tuple[str, ...], prefix: str, what: str, unspecified: str | None = None) -> str:
    if isinstance(value, str) and not value.isdigit():
        name = value[len(prefix):] if value.startswith(prefix) else value
        if name not in names:
            raise OtlpJsonError(f"bad {what} {value[:40]!r}")
    else:
        index = _int(value, what)
        if not 0 <= index < len(names):
            raise OtlpJsonError(f"bad {what} {value!r}")
        name = names[index]
    if name == "UNSPECIFIED":
        return unspecified or name
    return name


# --- shape helpers --------------------------------------------------------

def _field(obj: dict, camel: str, snake: str | None = None, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    if snake is not None and snake in obj:
        return obj[snake]
    return default


def _dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise OtlpJsonError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise OtlpJsonError(f"{what} is not a list")
    return value


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 80 else text[:77] + "..."

