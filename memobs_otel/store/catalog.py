"""The entity catalog: the latest known value of each entity's fields.

Every injection and write event says something about its entity (content
fingerprint, title, lifecycle fields). The catalog keeps, per
``(entity_type, entity_id)`` and per field group, the value from the latest
event that carried that field; an event without the field leaves it alone.
Each group remembers the event time that set it (``*_t`` columns), so batches
arriving out of order — several processes, re-ingested files — still end
with the latest value.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from .. import semconv as sc
from .timeparse import parse_timestamp_ns

CONTENT_HEAD_CHARS = 80

# group -> (time column, value columns)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "content": ("content_t", ("content_hash", "simhash")),
    "content_head": ("content_head_t", ("content_head",)),
    "title": ("title_t", ("title",)),
    "created": ("created_t", ("created_at", "created_ns")),
    "updated": ("updated_t", ("updated_at", "updated_ns")),
    "status": ("status_t", ("status",)),
    "version": ("version_t", ("version",)),
    "parent": ("parent_t", ("parent_id",)),
    "superseded": ("superseded_t", ("superseded_by",)),
}
_WRITE_OP_STATUS = {"delete": "deleted", "archive": "archived"}


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


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def field_groups(attrs: Mapping[str, Any], event_name: str) -> dict[str, tuple]:
    """The field groups an injection or write event carries, with their values."""
    groups: dict[str, tuple] = {}
    content_hash = _text(attrs.get(sc.ENTITY_CONTENT_HASH))
    if content_hash is not None:
        groups["content"] = (content_hash, simhash_to_int(attrs.get(sc.ENTITY_SIMHASH)))
    content = attrs.get(sc.ENTITY_CONTENT)
    if isinstance(content, str) and content:
        groups["content_head"] = (content[:CONTENT_HEAD_CHARS],)
    title = _text(attrs.get(sc.ENTITY_TITLE))
    if title is not None:
        groups["title"] = (title,)
    for group, key in (("created", sc.ENTITY_CREATED_AT), ("updated", sc.ENTITY_UPDATED_AT)):
        raw = attrs.get(key)
        if raw is not None and raw != "":
            stored = raw if isinstance(raw, (int, float, str)) else str(raw)
            groups[group] = (stored, parse_timestamp_ns(raw))
    status = _text(attrs.get(sc.ENTITY_STATUS))
    if event_name == sc.EVENT_WRITE:
        op = _text(attrs.get(sc.WRITE_OP))
        status = _WRITE_OP_STATUS.get(op or "", status)
    if status is not None:
        groups["status"] = (status.lower(),)
    version = attrs.get(sc.ENTITY_VERSION)
    if version is not None and version != "":
        groups["version"] = (version if isinstance(version, (int, float, str)) else str(version),)
    parent = _text(attrs.get(sc.ENTITY_PARENT_ID))
    if parent is not None:
        groups["parent"] = (parent,)
    superseded = _text(attrs.get(sc.ENTITY_SUPERSEDED_BY))
    if superseded is not None:
        groups["superseded"] = (superseded,)
    return groups


class CatalogBatch:
    """Merges the events of one batch per entity before touching the database."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}

    def touch(self, key: tuple[str, str]) -> None:
        """Make sure the entity has a row (citations of unseen entities)."""
        self.entries.setdefault(key, {})

    def observe(self, key: tuple[str, str], time_ns: int, attrs: Mapping[str, Any], event_name: str) -> None:
        entry = self.entries.setdefault(key, {})
        first = entry.get("first_seen_ns")
        entry["first_seen_ns"] = time_ns if first is None else min(first, time_ns)
        last = entry.get("last_seen_ns")
        entry["last_seen_ns"] = time_ns if last is None else max(last, time_ns)
        for group, values in field_groups(attrs, event_name).items():
            current = entry.get(group)
            if current is None or time_ns >= current[0]:
                entry[group] = (time_ns, values)

    def upsert(self, conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
        """Write the merged entries; return the row id of every entity seen."""
        pks: dict[tuple[str, str], int] = {}
        cursor = conn.cursor()
        for key, entry in self.entries.items():
            params: list[Any] = [key[0], key[1], entry.get("first_seen_ns"), entry.get("last_seen_ns")]
            for group, (_, columns) in GROUPS.items():
                merged = entry.get(group)
                params.append(merged[0] if merged else None)
                params.extend(merged[1] if merged else (None,) * len(columns))
            pks[key] = cursor.execute(_UPSERT_SQL, params).fetchone()[0]
        return pks


def _build_upsert_sql() -> str:
    columns = ["entity_type", "entity_id", "first_seen_ns", "last_seen_ns"]
    updates = [
        "first_seen_ns = CASE WHEN excluded.first_seen_ns IS NULL THEN first_seen_ns"
        " WHEN first_seen_ns IS NULL THEN excluded.first_seen_ns"
        " ELSE MIN(first_seen_ns, excluded.first_seen_ns) END",
        "last_seen_ns = CASE WHEN excluded.last_seen_ns IS NULL THEN last_seen_ns"
        " WHEN last_seen_ns IS NULL THEN excluded.last_seen_ns"
        " ELSE MAX(last_seen_ns, excluded.last_seen_ns) END",
    ]
    for time_col, value_cols in GROUPS.values():
        columns.append(time_col)
        columns.extend(value_cols)
        newer = (
            f"excluded.{time_col} IS NOT NULL AND "
            f"({time_col} IS NULL OR excluded.{time_col} >= {time_col})"
        )
        for col in (time_col, *value_cols):
            updates.append(f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {col} END")
    placeholders = ", ".join("?" for _ in columns)
    return (
        f"INSERT INTO entities ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (entity_type, entity_id) DO UPDATE SET {', '.join(updates)} "
        "RETURNING pk"
    )


_UPSERT_SQL = _build_upsert_sql()


def rebuild(conn: sqlite3.Connection, entity_pks: Iterable[int]) -> None:
    """Recompute the catalog rows of ``entity_pks`` from the events left.

    Used after rows were deleted (purge, retention) so that no field survives
    whose only source is gone. Entities nothing refers to any more are dropped.
    """
    pks = sorted(set(entity_pks))
    reset = ", ".join(
        f"{col} = NULL" for time_col, cols in GROUPS.values() for col in (time_col, *cols)
    )
    for chunk_start in range(0, len(pks), 500):
        chunk = pks[chunk_start : chunk_start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f"""
            SELECT en.entity_type, en.entity_id, ev.time_ns, ev.name, ev.attributes
            FROM entities en
            JOIN (SELECT entity_pk, event_pk FROM injections WHERE entity_pk IN ({marks})
                  UNION ALL
                  SELECT entity_pk, event_pk FROM writes WHERE entity_pk IN ({marks})) src
              ON src.entity_pk = en.pk
            JOIN events ev ON ev.pk = src.event_pk
            ORDER BY ev.time_ns, ev.pk
            """,
            chunk + chunk,
        ).fetchall()
        conn.execute(
            f"UPDATE entities SET first_seen_ns = NULL, last_seen_ns = NULL, {reset} "
            f"WHERE pk IN ({marks})",
            chunk,
        )
        batch = CatalogBatch()
        for etype, eid, time_ns, name, attributes in rows:
            batch.observe((etype, eid), time_ns, json.loads(attributes), name)
        batch.upsert(conn)
        conn.execute(
            f"""
            DELETE FROM entities WHERE pk IN ({marks})
              AND NOT EXISTS (SELECT 1 FROM injections WHERE entity_pk = entities.pk)
              AND NOT EXISTS (SELECT 1 FROM writes WHERE entity_pk = entities.pk)
              AND NOT EXISTS (SELECT 1 FROM citations WHERE entity_pk = entities.pk)
            """,
            chunk,
        )
