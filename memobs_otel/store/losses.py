"""What the exporting side could not store as received, counted in the file.

memobs never loses a span or alters a value silently: the span processor
that ``configure()`` sets up counts the spans it had to shed, the SQLite
exporter the spans it could not write and the values it had to sanitise,
and those counts land in the ``export_losses`` table (schema m006), one row
per kind with a running total. ``memobs stats``, ``review`` and ``doctor``
print them (:func:`summary`).

Kinds (``KINDS``; a count of spans unless the name says values):

- ``spans-shed`` — dropped by the span processor: its queue stayed full
  while the exporter made no progress for the block timeout (a file locked
  for long by another process, a hung disk);
- ``spans-export-failed`` — in a batch the exporter could not write
  (read-only file, disk full, lock held past the retries) or a span the
  writer could not store even sanitised;
- ``spans-unwritten-at-shutdown`` — still queued when ``shutdown()`` ran out
  of time (``MEMOBS_SHUTDOWN_TIMEOUT``); stored only if the file could
  still be written then (it usually could not: that is why time ran out),
  always logged;
- ``otlp-…`` — the same three for the OTLP exporter configured beside the
  file;
- ``values-sanitised`` — values stored altered rather than lose their
  batch: lone surrogates replaced by U+FFFD, integers past 64 bits stored
  as text, times past 64 bits clamped (see :mod:`.sanitise`).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Mapping

from .schema import EXPORT_LOSSES_TABLE

SPANS_SHED = "spans-shed"
SPANS_EXPORT_FAILED = "spans-export-failed"
SPANS_UNWRITTEN_AT_SHUTDOWN = "spans-unwritten-at-shutdown"
OTLP = "otlp-"  # prefix of the OTLP exporter's kinds
VALUES_SANITISED = "values-sanitised"
KINDS = (SPANS_SHED, SPANS_EXPORT_FAILED, SPANS_UNWRITTEN_AT_SHUTDOWN, OTLP + SPANS_SHED,
         OTLP + SPANS_EXPORT_FAILED, OTLP + SPANS_UNWRITTEN_AT_SHUTDOWN, VALUES_SANITISED)

_WORDS = {
    SPANS_SHED: "spans shed by the exporting queue",
    SPANS_EXPORT_FAILED: "spans the exporter could not write",
    SPANS_UNWRITTEN_AT_SHUTDOWN: "spans not written within the shutdown timeout",
    OTLP + SPANS_SHED: "spans shed by the OTLP queue",
    OTLP + SPANS_EXPORT_FAILED: "spans the OTLP exporter could not send",
    OTLP + SPANS_UNWRITTEN_AT_SHUTDOWN: "spans not sent over OTLP within the shutdown timeout",
    VALUES_SANITISED: "values stored sanitised",
}


def add(conn: sqlite3.Connection, counts: Mapping[str, int], now_ns: int | None = None) -> bool:
    """Add ``counts`` (kind -> number) to the file, inside the caller's write
    transaction; ``False`` (nothing written) for a file without the table
    (a connection handed to the exporter unmigrated)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rows = [(kind, int(n), now_ns, now_ns) for kind, n in counts.items() if n]
    if not rows:
        return True
    if not _has_table(conn):
        return False
    conn.executemany(
            f"INSERT INTO {EXPORT_LOSSES_TABLE} (kind, count, first_ns, last_ns) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count, last_ns = excluded.last_ns",
            rows,
        )
    return True


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (EXPORT_LOSSES_TABLE,)
    ).fetchone() is not None


def read(conn: sqlite3.Connection) -> dict[str, int]:
    """kind -> count of every non-zero loss in the file; ``{}`` for a file
    older than m006 (it has none recorded)."""
    if not _has_table(conn):
        return {}
    return {kind: count for kind, count in conn.execute(
        f"SELECT kind, count FROM {EXPORT_LOSSES_TABLE} WHERE count > 0 ORDER BY kind")}


def summary(counts: Mapping[str, int]) -> str | None:
    """One line for people, or ``None`` when nothing was lost."""
    if not counts:
        return None
    parts = [f"{n:,} {_WORDS.get(kind, kind)}" for kind, n in counts.items()]
    return "export losses recorded in this file: " + "; ".join(parts)


def line(conn: sqlite3.Connection) -> str | None:
    """:func:`summary` of the file behind ``conn``; ``None`` when nothing
    was lost or the table cannot be read (the CLI shows it beside its
    answer: it must never be why a command fails)."""
    try:
        return summary(read(conn))
    except sqlite3.Error:
        return None
