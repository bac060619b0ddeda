"""The entity catalog: the latest known value of each entity's fields.

Every injection and write event says something about its entity (content
fingerprint, title, lifecycle fields). The catalog keeps, per
``(entity_type, entity_id)`` and per field group, the value from the latest
event that carried that field; an event without the field leaves it alone.
Each group remembers the event time that set it (``*_t`` columns), so batches
arriving out of order — several processes, re-ingested files — still end
with the latest value.

Writers apply events incrementally (``store/entity_cache.py``): an event
whose fields equal the stored ones writes nothing, so a group's ``*_t`` is
the time its current value was first seen, and an out-of-order event with
a different value wins when it is not older than that. After rows are
deleted, :func:`rebuild` recomputes rows exactly from what is left.
"""

from __future__ import annotations

import json
import sqlite3
from functools import lru_cache
from typing import Any, Iterable, Mapping

from .. import semconv as sc
from ..fingerprint import minhash_from_hex
from . import state
from .schema import ENTITIES_GENERATION_KEY, ENTITY_INDEX_TABLE
from .timeparse import parse_timestamp_ns

CONTENT_HEAD_CHARS = 80

# group -> (time column, value columns)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    # the MinHash (m007) travels with them: an event that carries a content
    # hash but no MinHash (an older tracer) sets it NULL, so the catalog
    # never pairs one content's hash with another content's MinHash
    "content": ("content_t", ("content_hash", "simhash", "minhash")),
    "content_head": ("content_head_t", ("content_head",)),
    "title": ("title_t", ("title",)),
    "created": ("created_t", ("created_at", "created_ns")),
    "updated": ("updated_t", ("updated_at", "updated_ns")),
    "status": ("status_t", ("status",)),
    "version": ("version_t", ("version",)),
    "parent": ("parent_t", ("parent_id",)),
    "superseded": ("superseded_t", ("superseded_by",)),
}
WRITE_OP_STATUS = {"delete": "deleted", "archive": "archived"}
# A create, update or inventory says the entity is in the store: with no status
# of its own it sets the status group to "active", so an id deleted and then
# created again (or found again by an inventory) is active again.
LIVE_OPS = frozenset(("create", "update", sc.WRITE_OP_INVENTORY))
ACTIVE = "active"


def simhash_to_int(value) -> int | None:
    """A signed 64-bit int (SQLite's INTEGER) for a simhash given as hex or int."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None
    if not 0 <= number < 1 << 64:
        return None
    return number - (1 << 64) if number >= 1 << 63 else number


def simhash_from_db(value: int | None) -> int | None:
    """The unsigned 64-bit simhash for the signed value stored in SQLite."""
    if value is None:
        return None
    return value + (1 << 64) if value < 0 else value


def text(value) -> str | None:
    """Attribute value as text; ``None`` and ``""`` are "not given"."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def scalar(value):
    """An attribute value SQLite can store as is (sequences become text)."""
    if value is None or value == "":
        return None
    return value if isinstance(value, (int, float, str)) else str(value)


@lru_cache(maxsize=4096)
def _parsed(raw) -> int | None:
    return parse_timestamp_ns(raw)


def parse_cached(raw) -> int | None:
    # the same created_at string arrives with every injection of an entity
    try:
        return _parsed(raw)
    except TypeError:  # unhashable
        return parse_timestamp_ns(raw)


# The catalog fields of one event, in this order; ``None`` = not carried.
FIELDS = (
    "content_hash", "simhash", "content", "title", "created_at", "updated_at",
    "status", "version", "parent_id", "superseded_by", "minhash",
)
# field index -> group it sets (content_hash, simhash and minhash travel together)
FIELD_GROUP = ("content", None, "content_head", "title", "created", "updated",
                "status", "version", "parent", "superseded", None)


def event_fields(attrs: Mapping[str, Any], event_name: str) -> tuple:
    """The catalog fields an injection or write event carries (see ``FIELDS``)."""
    get = attrs.get
    status = text(get(sc.ENTITY_STATUS))
    if event_name == sc.EVENT_WRITE:
        op = text(get(sc.WRITE_OP)) or ""
        status = WRITE_OP_STATUS.get(op, status)
        if status is None and op in LIVE_OPS:
            status = ACTIVE
    return (
        text(get(sc.ENTITY_CONTENT_HASH)),
        simhash_to_int(get(sc.ENTITY_SIMHASH)),
        text(get(sc.ENTITY_CONTENT)),
        text(get(sc.ENTITY_TITLE)),
        scalar(get(sc.ENTITY_CREATED_AT)),
        scalar(get(sc.ENTITY_UPDATED_AT)),
        status,
        scalar(get(sc.ENTITY_VERSION)),
        text(get(sc.ENTITY_PARENT_ID)),
        text(get(sc.ENTITY_SUPERSEDED_BY)),
        minhash_from_hex(get(sc.ENTITY_MINHASH)),
    )


def group_values(group: str, fields: tuple) -> tuple:
    """Column values of ``group`` (see ``GROUPS``) from an event's fields."""
    if group == "content":
        return (fields[0], fields[1], fields[10])
    if group == "content_head":
        return (fields[2][:CONTENT_HEAD_CHARS],)
    if group == "created":
        return (fields[4], parse_cached(fields[4]))
    if group == "updated":
        return (fields[5], parse_cached(fields[5]))
    if group == "status":
        return (fields[6].lower(),)
    index = {"title": 3, "version": 7, "parent": 8, "superseded": 9}[group]
    return (fields[index],)


class CatalogBatch:
    """Merges the events of one batch per entity before touching the database.

    Per entity it keeps, per field, the latest (time, fields) that carried
    it; values are derived (timestamps parsed, …) once per entity at upsert.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list] = {}

    def touch(self, key: tuple[str, str]) -> None:
        """Make sure the entity has a row (citations of unseen entities)."""
        if key not in self.entries:
            self.entries[key] = [None, None, [None] * len(FIELDS)]

    def observe(self, key: tuple[str, str], time_ns: int, fields: tuple) -> None:
        entry = self.entries.get(key)
        if entry is None or entry[0] is None:
            latest: list = [None] * len(FIELDS)
            self.entries[key] = [time_ns, time_ns, latest]
        else:
            if time_ns < entry[0]:
                entry[0] = time_ns
            if time_ns > entry[1]:
                entry[1] = time_ns
            latest = entry[2]
        for i, value in enumerate(fields):
            if value is not None:
                current = latest[i]
                if current is None or time_ns >= current[0]:
                    latest[i] = (time_ns, fields)

    def upsert(self, conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
        """Write the merged entries set-wise; return the row id of every entity seen."""
        if not self.entries:
            return {}
        conn.execute(_TEMP_TABLE_SQL)
        rows = []
        for key, (first_seen, last_seen, latest) in self.entries.items():
            groups: dict[str, tuple[int, tuple]] = {}
            for i, carried in enumerate(latest):
                group = FIELD_GROUP[i]
                if carried is not None and group is not None:
                    groups[group] = carried
            row: list[Any] = [key[0], key[1], first_seen, last_seen]
            for group in GROUPS:
                carried = groups.get(group)
                if carried is None:
                    row.extend(_NULLS[group])
                else:
                    row.append(carried[0])
                    row.extend(group_values(group, carried[1]))
            rows.append(row)
        conn.executemany(_INSERT_BATCH_SQL, rows)
        conn.execute(_UPSERT_SQL if has_minhash(conn) else _UPSERT_SQL_BEFORE_M007)
        pks = {
            (etype, eid): pk
            for pk, etype, eid in conn.execute(
                "SELECT e.pk, e.entity_type, e.entity_id FROM temp._catalog_batch b"
                " JOIN entities e ON e.entity_type = b.entity_type AND e.entity_id = b.entity_id"
            )
        }
        conn.execute("DELETE FROM temp._catalog_batch")
        return pks


_NULLS = {group: (None,) * (1 + len(cols)) for group, (_, cols) in GROUPS.items()}
COLUMNS = ["entity_type", "entity_id", "first_seen_ns", "last_seen_ns"] + [
    col for time_col, cols in GROUPS.values() for col in (time_col, *cols)
]
_TEMP_TABLE_SQL = f"CREATE TEMP TABLE IF NOT EXISTS _catalog_batch ({', '.join(COLUMNS)})"
_INSERT_BATCH_SQL = (
    f"INSERT INTO temp._catalog_batch VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def has_minhash(conn: sqlite3.Connection) -> bool:
    """Does the file have schema m007's ``minhash`` columns? (Older layouts
    are still written by tests that build old files, and read as they are.)"""
    return any(row[1] == "minhash" for row in conn.execute("PRAGMA table_info(entities)"))


def _build_upsert_sql(skip: tuple[str, ...] = ()) -> str:
    updates = [
        "first_seen_ns = CASE WHEN excluded.first_seen_ns IS NULL THEN first_seen_ns"
        " WHEN first_seen_ns IS NULL THEN excluded.first_seen_ns"
        " ELSE MIN(first_seen_ns, excluded.first_seen_ns) END",
        "last_seen_ns = CASE WHEN excluded.last_seen_ns IS NULL THEN last_seen_ns"
        " WHEN last_seen_ns IS NULL THEN excluded.last_seen_ns"
        " ELSE MAX(last_seen_ns, excluded.last_seen_ns) END",
    ]
    for time_col, value_cols in GROUPS.values():
        newer = (
            f"excluded.{time_col} IS NOT NULL AND "
            f"({time_col} IS NULL OR excluded.{time_col} >= {time_col})"
        )
        for col in (time_col, *value_cols):
            if col not in skip:
                updates.append(f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {col} END")
    return f"ON CONFLICT (entity_type, entity_id) DO UPDATE SET {', '.join(updates)}"


def _upsert_sql(skip: tuple[str, ...] = ()) -> str:
    columns = ", ".join(c for c in COLUMNS if c not in skip)
    # "WHERE true" lets SQLite parse ON CONFLICT after INSERT … SELECT
    return (f"INSERT INTO entities ({columns}) SELECT {columns}"
            f" FROM temp._catalog_batch WHERE true {_build_upsert_sql(skip)}")


_UPSERT_SQL = _upsert_sql()
_UPSERT_SQL_BEFORE_M007 = _upsert_sql(("minhash",))
# injections keep their attributes as columns; rebuild() maps them back
_INJECTION_COLUMNS = {
    "content_hash": sc.ENTITY_CONTENT_HASH,
    "simhash": sc.ENTITY_SIMHASH,
    "minhash": sc.ENTITY_MINHASH,
    "created_at": sc.ENTITY_CREATED_AT,
    "updated_at": sc.ENTITY_UPDATED_AT,
    "status": sc.ENTITY_STATUS,
    "version": sc.ENTITY_VERSION,
    "parent_id": sc.ENTITY_PARENT_ID,
    "superseded_by": sc.ENTITY_SUPERSEDED_BY,
    "title": sc.ENTITY_TITLE,
    "content": sc.ENTITY_CONTENT,
}


def rebuild(conn: sqlite3.Connection, entity_pks: Iterable[int]) -> None:
    """Recompute the catalog rows of ``entity_pks`` from the rows left.

    Used after rows were deleted (purge, retention) so that no field survives
    whose only source is gone. Entities nothing refers to any more are dropped.
    """
    pks = sorted(set(entity_pks))
    # per-entity access to injections: the merged copy (m003; the caller
    # merged the tail first), else the m001 index
    by_entity = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (ENTITY_INDEX_TABLE,)
    ).fetchone() is not None
    if by_entity:
        injection_rows = (
            f"SELECT i.entity_pk, i.time_ns, {{columns}} FROM {ENTITY_INDEX_TABLE} b"
            f" CROSS JOIN injections i ON i.pk = b.pk WHERE b.entity_pk IN ({{marks}})"
        )
        injected = f"SELECT 1 FROM {ENTITY_INDEX_TABLE} WHERE entity_pk = entities.pk"
    else:
        injection_rows = (
            "SELECT entity_pk, time_ns, {columns} FROM injections WHERE entity_pk IN ({marks})"
        )
        injected = "SELECT 1 FROM injections WHERE entity_pk = entities.pk"
    minhash = has_minhash(conn)
    reset = ", ".join(
        f"{col} = NULL" for time_col, cols in GROUPS.values() for col in (time_col, *cols)
        if col != "minhash" or minhash
    )
    inj_cols = [c for c in _INJECTION_COLUMNS if c != "minhash" or minhash]
    for chunk_start in range(0, len(pks), 500):
        chunk = pks[chunk_start : chunk_start + 500]
        marks = ", ".join("?" for _ in chunk)
        keys = {
            pk: (etype, eid)
            for pk, etype, eid in conn.execute(
                f"SELECT pk, entity_type, entity_id FROM entities WHERE pk IN ({marks})", chunk
            )
        }
        observed: list[tuple[int, tuple[str, str], dict, str]] = []
        for row in conn.execute(
            injection_rows.format(
                columns=", ".join(f"i.{c}" if by_entity else c for c in inj_cols), marks=marks
            ),
            chunk,
        ):
            attrs = {_INJECTION_COLUMNS[c]: v for c, v in zip(inj_cols, row[2:]) if v is not None}
            if sc.ENTITY_SIMHASH in attrs:
                attrs[sc.ENTITY_SIMHASH] = simhash_from_db(attrs[sc.ENTITY_SIMHASH])
            observed.append((row[1], keys[row[0]], event_fields(attrs, sc.EVENT_INJECTION)))
        for entity_pk, time_ns, attributes in conn.execute(
            f"SELECT w.entity_pk, ev.time_ns, ev.attributes FROM writes w"
            f" JOIN events ev ON ev.pk = w.event_pk WHERE w.entity_pk IN ({marks})",
            chunk,
        ):
            observed.append((time_ns, keys[entity_pk], event_fields(json.loads(attributes), sc.EVENT_WRITE)))
        conn.execute(
            f"UPDATE entities SET first_seen_ns = NULL, last_seen_ns = NULL, {reset} "
            f"WHERE pk IN ({marks})",
            chunk,
        )
        batch = CatalogBatch()
        observed.sort(key=lambda item: item[0])
        for time_ns, key, fields in observed:
            batch.observe(key, time_ns, fields)
        batch.upsert(conn)
        # citations have no index led by entity (m005): the chunk's cited
        # entities come from one pass over them, not one lookup per entity
        dropped = conn.execute(
            f"""
            DELETE FROM entities WHERE pk IN ({marks})
              AND NOT EXISTS ({injected})
              AND NOT EXISTS (SELECT 1 FROM writes WHERE entity_pk = entities.pk)
              AND pk NOT IN (SELECT entity_pk FROM citations WHERE entity_pk IN ({marks}))
            """,
            chunk + chunk,
        ).rowcount
        if dropped and state.has_state(conn):
            # writers cache entity pks: tell them a pk may be gone (or reused)
            state.bump(conn, ENTITIES_GENERATION_KEY)
