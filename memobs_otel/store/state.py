"""Small integer facts about a memobs file, kept in ``_memobs_state`` (m003+).

The bulk merges keep their marks here (``injections_merged_pk``,
``catalog_merged_pk``, …) and the catalog its deletion generation; see
:mod:`memobs_otel.store.entity_index` and :mod:`memobs_otel.store.catalog`.
"""

from __future__ import annotations

import sqlite3

from .schema import STATE_TABLE


def has_state(conn: sqlite3.Connection) -> bool:
    """True when the file has the state table (schema m003 or later)."""
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE_TABLE,)
    ).fetchone() is not None


def read(conn: sqlite3.Connection, key: str, default: int | None = 0) -> int | None:
    """The value of ``key``, or ``default`` when the file does not have it."""
    row = conn.execute(f"SELECT value FROM {STATE_TABLE} WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row is not None else default


def write(conn: sqlite3.Connection, **values: int) -> None:
    """Set keys (inside the caller's write transaction)."""
    conn.executemany(
        f"INSERT OR REPLACE INTO {STATE_TABLE} (key, value) VALUES (?, ?)",
        list(values.items()),
    )


def bump(conn: sqlite3.Connection, key: str) -> None:
    """Add one to ``key`` (created at 1 when missing)."""
    conn.execute(
        f"INSERT INTO {STATE_TABLE} (key, value) VALUES (?, 1)"
        " ON CONFLICT (key) DO UPDATE SET value = value + 1",
        (key,),
    )
