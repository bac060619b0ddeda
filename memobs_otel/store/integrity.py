"""Is a memobs file whole? The tables its schema version promises, and SQLite's own check.

- :func:`missing_tables` is cheap (reads ``sqlite_master``) and runs on every
  open: a file whose migrations say it has a table it lacks (dropped by
  hand, or a damaged schema page) is refused with one line instead of
  failing half-way through a query.
- :func:`quick_check` runs ``PRAGMA quick_check``: it reads every page (time
  in proportion to the file), so only ``memobs doctor`` runs it. It finds
  zeroed or truncated pages and broken b-trees; it does not compare indexes
  with their tables (``integrity_check`` does, at several times the cost).
"""

from __future__ import annotations

import sqlite3

from .schema import ENTITY_INDEX_TABLE, EXPORT_LOSSES_TABLE, STATE_TABLE

# tables each migration creates (views and indexes are not needed to read)
TABLES_BY_MIGRATION = {
    "m001_initial": ("spans", "events", "entities", "injections", "citations", "writes"),
    "m003_deferred_injection_index": (ENTITY_INDEX_TABLE, STATE_TABLE),
    "m006_export_losses": (EXPORT_LOSSES_TABLE,),
    # spelled out: the migration is another change's, this map only reads names
    "m007_review_decisions_minhash": ("review_decisions",),
    "m008_turns": ("llm_calls", "turn_injections"),
}


def expected_tables(applied: list[str]) -> list[str]:
    """The tables a file with these migrations applied must have."""
    return [t for name in applied for t in TABLES_BY_MIGRATION.get(name, ())]


def missing_tables(conn: sqlite3.Connection, applied: list[str]) -> list[str]:
    """Expected tables absent from ``sqlite_master``, in schema order."""
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [t for t in expected_tables(applied) if t not in present]


def quick_check(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """SQLite's findings (at most ``limit``), ``[]`` when the file is sound.

    A file too damaged to be checked at all gives the error as its finding.
    """
    try:
        rows = [row[0] for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows
