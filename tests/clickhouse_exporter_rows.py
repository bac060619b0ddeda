"""Write SDK spans into ClickHouse exactly as the Collector's clickhouse exporter does.

The table is created from the pinned copy of the exporter's DDL
(tests/data/clickhouse_traces_table.sql). Each span is one row: its start
as ``Timestamp`` (DateTime64(9)), trace and span ids as lowercase hex,
``ServiceName`` from the resource's ``service.name``, and every attribute
value (span, resource, event) converted as pcommon ``Value.AsString()``
converts it (exporter/clickhouseexporter/internal/util.go AttributesToMap):
strings as they are, bools ``true``/``false``, ints in decimal, floats as
Go's ``float64AsString`` (shortest round-trip digits, fixed notation
unless below 1e-6 or from 1e21, ``e-07`` written ``e-7``), sequences as
JSON. Events go into the ``Events`` Nested arrays in span order.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

DDL = Path(__file__).parent / "data" / "clickhouse_traces_table.sql"
_PINNED_NAME = "`otel`.`otel_traces`"
COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)


def traces_table_ddl(database: str = "otel", table: str = "otel_traces") -> str:
    text = DDL.read_text()
    statement = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    assert _PINNED_NAME in statement
    return statement.replace(_PINNED_NAME, f"`{database}`.`{table}`")


def create_traces_table(client, database: str = "otel", table: str = "otel_traces") -> None:
    """``client``: a clickhouse-connect client (chdb or a server)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(traces_table_ddl(database, table))


def go_float(value: float) -> str:
    """pcommon's ``float64AsString``."""
    if math.isnan(value):
        return "json: unsupported value: NaN"
    if math.isinf(value):
        return "json: unsupported value: " + ("+Inf" if value > 0 else "-Inf")
    magnitude = abs(value)
    number = Decimal(repr(value))  # repr: the shortest digits that round-trip, as Go's -1 precision
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        sign, all_digits, exponent = number.as_tuple()
        exp = exponent + len(all_digits) - 1
        digits = "".join(map(str, all_digits)).rstrip("0") or "0"
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if text[-4:-1] == "e-0":  # Go's clean-up: e-07 -> e-7
            text = text[:-2] + text[-1]
        return text
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _raw_json(value) -> str:
    # json.Marshal of AsRaw(): floats as the same ES6-style numbers
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ",".join(_raw_json(v) for v in value) + "]"


def as_string(value) -> str:
    """pcommon ``Value.AsString()`` of an SDK attribute value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    return _raw_json(list(value))


def attributes_map(attributes) -> dict[str, str]:
    return {key: as_string(value) for key, value in (attributes or {}).items()}


def exporter_row(span) -> list:
    """One ``otel_traces`` row for an SDK ``ReadableSpan``."""
    ctx = span.context
    resource = dict(span.resource.attributes) if span.resource is not None else {}
    events = list(span.events)
    links = list(span.links)
    scope = span.instrumentation_scope
    return [
        span.start_time,
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        f"{span.parent.span_id:016x}" if span.parent is not None else "",
        ctx.trace_state.to_header() if ctx.trace_state else "",
        span.name,
        "SPAN_KIND_" + span.kind.name.upper(),
        as_string(resource.get("service.name", "")),
        attributes_map(resource),
        scope.name if scope else "",
        (scope.version or "") if scope else "",
        attributes_map(span.attributes),
        span.end_time - span.start_time,
        "STATUS_CODE_" + span.status.status_code.name.upper(),
        span.status.description or "",
        [event.timestamp for event in events],
        [event.name for event in events],
        [attributes_map(event.attributes) for event in events],
        [f"{link.context.trace_id:032x}" for link in links],
        [f"{link.context.span_id:016x}" for link in links],
        [link.context.trace_state.to_header() if link.context.trace_state else "" for link in links],
        [attributes_map(link.attributes) for link in links],
    ]


def export(client, spans, database: str = "otel", table: str = "otel_traces") -> None:
    """Insert ``spans`` as one batch, as the exporter's ``pushTraceData`` does.

    Test data spans months in one batch, where the exporter's batches hold
    recent spans: the table's daily partitions would exceed ClickHouse's
    100 per insert, so that limit is lifted for these inserts.
    """
    rows = [exporter_row(span) for span in spans]
    if rows:
        client.insert(f"`{database}`.`{table}`", rows, column_names=list(COLUMNS),
                      settings={"max_partitions_per_insert_block": 0})
