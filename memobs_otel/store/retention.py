"""Keep the memobs file bounded: by age and by row count.

- ``max_age_days``: spans that ended more than that many days before ``now``
  are deleted with their events and derived rows.
- ``max_rows``: the newest spans are kept while spans + their events
  (injections included) stay within ``max_rows`` rows; older spans go,
  whole (a span is never split).

Environment: ``MEMOBS_RETENTION_DAYS`` and ``MEMOBS_RETENTION_MAX_ROWS``
(positive numbers; unset, empty, ``0`` or unreadable = no limit). The SQLite
exporter applies them when it opens its file, at most once an hour while
exporting, and at shutdown; ``Store.apply_retention`` applies them on demand.

Deleted rows are overwritten with zeros (``PRAGMA secure_delete`` is on for
the duration, on whatever connection runs it, then set back), so what
retention removes is not left readable in free pages. The file does not
shrink (no VACUUM: that is for ``purge_user``, which must also clear what
was freed before it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import datetime

from .connection import DEFAULT_RETRIES, with_retry
from .deletion import TABLES, delete_where
from .timeparse import NS_PER_DAY, now_ns
from .transaction import immediate_transaction

logger = logging.getLogger(__name__)

ENV_DAYS = "MEMOBS_RETENTION_DAYS"
ENV_MAX_ROWS = "MEMOBS_RETENTION_MAX_ROWS"


def _positive(name: str, cast):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = cast(raw)
    except ValueError:
        logger.warning("memobs: ignoring %s=%r (not a number)", name, raw)
        return None
    return value if value > 0 else None


def retention_from_env() -> tuple[float | None, int | None] | None:
    """``(max_age_days, max_rows)`` from the environment, ``None`` when both unset."""
    days = _positive(ENV_DAYS, float)
    rows = _positive(ENV_MAX_ROWS, int)
    return (days, rows) if days is not None or rows is not None else None


def apply_retention(
    conn: sqlite3.Connection,
    max_age_days: float | None = None,
    max_rows: int | None = None,
    now: datetime | None = None,
    retries: int = DEFAULT_RETRIES,
) -> dict[str, int]:
    """Delete what falls outside the limits; return deleted rows per table."""
    for name, value in (("max_age_days", max_age_days), ("max_rows", max_rows)):
        if value is not None and (isinstance(value, bool) or value <= 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    totals = {table: 0 for table in TABLES}
    if max_age_days is None and max_rows is None:
        return totals
    cutoff = now_ns(now) - int(max_age_days * NS_PER_DAY) if max_age_days else None

    def run() -> dict[str, int]:
        counts = {table: 0 for table in TABLES}
        with immediate_transaction(conn):
            if cutoff is not None:
                _add(counts, delete_where(conn, "SELECT pk FROM spans WHERE end_ns < ?", (cutoff,)))
            if max_rows is not None:
                _add(counts, delete_where(conn, _OVER_ROWS_SQL, (max_rows,)))
        return counts

    previous = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        _add(totals, with_retry(run, retries))
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    return totals


# rows of a span = 1 + its events + its injections (stored apart from events)
_OVER_ROWS_SQL = """
SELECT pk FROM (
    SELECT s.pk,
           SUM(1 + COALESCE(e.n, 0) + COALESCE(i.n, 0))
               OVER (ORDER BY s.start_ns DESC, s.pk DESC ROWS UNBOUNDED PRECEDING) AS kept
    FROM spans s
    LEFT JOIN (SELECT span_pk, COUNT(*) AS n FROM events GROUP BY span_pk) e ON e.span_pk = s.pk
    LEFT JOIN (SELECT span_pk, COUNT(*) AS n FROM injections GROUP BY span_pk) i
        ON i.span_pk = s.pk
) WHERE kept > ?
"""


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for table, count in counts.items():
        into[table] += count
