"""What memobs reads in ClickHouse, and the optional tables it can use.

**The events relation.** Everything the store computes comes from one
relation, one row per memobs span event (``memobs.injection``,
``memobs.citation``, ``memobs.entity.write``) that names an entity, with
typed columns (:data:`EVENT_COLUMNS`). Over the exporter's ``otel_traces``
it is a subquery: ``ARRAY JOIN Events`` and the attribute strings turned
into what the SQLite writer stores (tokens as an int, ``user.id`` /
``session.id`` from the event else the span, a write's ``delete`` /
``archive`` op as its status). With the optional **narrow table** (below)
it is that table, filled by a materialized view with the same expressions.

**The narrow table** (``<table>_memobs_events``, printed by ``memobs
clickhouse-schema``) holds only those rows and columns, ordered by entity:
reading it instead of ``otel_traces`` skips the span columns and the
``Events`` maps. The store checks ``system.tables`` once when it opens and
uses it when present. A materialized view only sees rows inserted after it
exists: the printed DDL ends with the ``INSERT … SELECT`` that copies what
``otel_traces`` already holds (run it once, before the exporter writes
again or for a time range, so that no row is copied twice).

**Review decisions** (``memobs_review_decisions``, same database) are
created by the first ``dismiss``; a read-only user never needs them.
"""

from __future__ import annotations

from ... import semconv as sc
from ..catalog import ACTIVE, LIVE_OPS

NARROW_SUFFIX = "_memobs_events"
DECISIONS_TABLE = "memobs_review_decisions"
EVENT_NAMES = (sc.EVENT_INJECTION, sc.EVENT_CITATION, sc.EVENT_WRITE)
CONTENT_HEAD_CHARS = 80  # as catalog.CONTENT_HEAD_CHARS


def _attr(key: str) -> str:
    return f"ev.Attributes['{key}']"


def _attr_or_span(key: str) -> str:
    # the SQLite writer: the event's own value, else the span's ('' = not given)
    return f"if({_attr(key)} != '', {_attr(key)}, SpanAttributes['{key}'])"


_TOKENS = _attr(sc.ENTITY_TOKENS)
# writer._int: an int; a float (the exporter writes 12.5 as "12.5") truncated;
# anything else, or past 64 bits, 0
_TOKENS_EXPR = (
    f"multiIf(isNotNull(toInt64OrNull({_TOKENS})), assumeNotNull(toInt64OrNull({_TOKENS})),"
    f" isFinite(toFloat64OrZero({_TOKENS})) AND abs(toFloat64OrZero({_TOKENS})) < 9.2e18,"
    f" toInt64(toFloat64OrZero({_TOKENS})), 0)"
)
# catalog.event_fields: a write's op delete/archive is its status; a create,
# update or inventory write without a status of its own says "active"
_LIVE_OPS = ", ".join(f"'{op}'" for op in sorted(LIVE_OPS))
_STATUS_EXPR = (
    f"multiIf(ev.Name = '{sc.EVENT_WRITE}' AND {_attr(sc.WRITE_OP)} = 'delete', 'deleted',"
    f" ev.Name = '{sc.EVENT_WRITE}' AND {_attr(sc.WRITE_OP)} = 'archive', 'archived',"
    f" {_attr(sc.ENTITY_STATUS)} != '', {_attr(sc.ENTITY_STATUS)},"
    f" ev.Name = '{sc.EVENT_WRITE}' AND {_attr(sc.WRITE_OP)} IN ({_LIVE_OPS}), '{ACTIVE}', '')"
)

# (column, type, expression over ``otel_traces ARRAY JOIN Events AS ev``)
EVENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Time", "DateTime64(9)", "ev.Timestamp"),
    ("Name", "LowCardinality(String)", "ev.Name"),
    ("EntityType", "LowCardinality(String)", _attr(sc.ENTITY_TYPE)),
    ("EntityId", "String", _attr(sc.ENTITY_ID)),
    ("UserId", "String", _attr_or_span(sc.USER_ID)),
    ("SessionId", "String", _attr_or_span(sc.SESSION_ID)),
    # only citations are counted by trace: other rows keep it empty (smaller narrow table)
    ("TraceId", "String", f"if(ev.Name = '{sc.EVENT_CITATION}', TraceId, '')"),
    ("Tokens", "Int64", _TOKENS_EXPR),
    ("ContentHash", "String", _attr(sc.ENTITY_CONTENT_HASH)),
    ("SimHash", "String", _attr(sc.ENTITY_SIMHASH)),
    ("MinHash", "String", _attr(sc.ENTITY_MINHASH)),
    ("ContentHead", "String", f"substringUTF8({_attr(sc.ENTITY_CONTENT)}, 1, {CONTENT_HEAD_CHARS})"),
    ("Title", "String", _attr(sc.ENTITY_TITLE)),
    ("CreatedAt", "String", _attr(sc.ENTITY_CREATED_AT)),
    ("UpdatedAt", "String", _attr(sc.ENTITY_UPDATED_AT)),
    ("Status", "String", _STATUS_EXPR),
    ("ParentId", "String", _attr(sc.ENTITY_PARENT_ID)),
    ("SupersededBy", "String", _attr(sc.ENTITY_SUPERSEDED_BY)),
)

_NAMES = ", ".join(f"'{name}'" for name in EVENT_NAMES)
_WHERE = (
    f"ev.Name IN ({_NAMES}) AND {_attr(sc.ENTITY_TYPE)} != '' AND {_attr(sc.ENTITY_ID)} != ''"
)


def select_events(source: str) -> str:
    """``SELECT`` of the events relation from ``source`` (the exporter's table)."""
    columns = ",\n       ".join(f"{expr} AS {name}" for name, _, expr in EVENT_COLUMNS)
    # the span-level has() lets ClickHouse skip spans without memobs events
    # before the ARRAY JOIN multiplies rows
    return (
        f"SELECT {columns}\nFROM {source}\nARRAY JOIN Events AS ev\n"
        f"WHERE hasAny(Events.Name, [{_NAMES}]) AND {_WHERE}"
    )


def narrow_name(table: str) -> str:
    return f"{table}{NARROW_SUFFIX}"


def narrow_ddl(database: str, table: str, cluster: str | None = None, ttl_days: int | None = None) -> list[str]:
    """The narrow table, its materialized view and the one-off backfill.

    With ``cluster``, the statements carry ``ON CLUSTER`` and the table is a
    local one per node (``MergeTree``; make it ``ReplicatedMergeTree`` where
    the traces are replicated); memobs then reads the Distributed table of
    the same name the caller creates over them (see docs/clickhouse.md).
    """
    on_cluster = f" ON CLUSTER {_ident(cluster)}" if cluster else ""
    narrow = f"{_ident(database)}.{_ident(narrow_name(table))}"
    view = f"{_ident(database)}.{_ident(narrow_name(table) + '_mv')}"
    source = f"{_ident(database)}.{_ident(table)}"
    columns = ",\n    ".join(f"{name} {ctype}" for name, ctype, _ in EVENT_COLUMNS)
    ttl = f"\nTTL toDateTime(Time) + toIntervalDay({int(ttl_days)})" if ttl_days else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {narrow}{on_cluster} (\n    {columns}\n)"
        f" ENGINE = MergeTree()\nPARTITION BY toYYYYMM(Time)\n"
        f"ORDER BY (EntityType, EntityId, Time){ttl}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view}{on_cluster} TO {narrow} AS\n"
        + select_events(source),
        f"-- once, for what {source} held before the view existed:\n"
        f"INSERT INTO {narrow}\n" + select_events(source),
    ]


def distributed_ddl(database: str, table: str, distributed: str, cluster: str) -> str:
    """A Distributed narrow table over the per-node ones, named after the
    Distributed traces table memobs reads (``distributed``)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {_ident(database)}.{_ident(narrow_name(distributed))}"
        f" ON CLUSTER {_ident(cluster)}\nAS {_ident(database)}.{_ident(narrow_name(table))}\n"
        f"ENGINE = Distributed({_ident(cluster)}, {_ident(database)}, {_ident(narrow_name(table))},"
        f" cityHash64(EntityType, EntityId))"
    )


def decisions_ddl(database: str, cluster: str | None = None) -> str:
    """The review decisions table: one row per decision, the latest ``written_ns`` wins."""
    on_cluster = f" ON CLUSTER {_ident(cluster)}" if cluster else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {_ident(database)}.{_ident(DECISIONS_TABLE)}{on_cluster} (\n"
        "    entity_type String,\n    entity_id String,\n    signals Nullable(String),\n"
        "    until_ns Nullable(Int64),\n    note Nullable(String),\n    decided_ns Int64,\n"
        "    revoked UInt8,\n    written_ns Int64\n"
        ") ENGINE = ReplacingMergeTree(written_ns) ORDER BY (entity_type, entity_id)"
    )


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def ident(name: str) -> str:
    """A ClickHouse identifier, quoted."""
    return _ident(name)
