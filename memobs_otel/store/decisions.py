"""Review decisions: what a person already decided about a candidate.

``store.dismiss(entity_type, entity_id, signals=None, until=None, note=None)``
records a dismissal in the file's ``review_decisions`` table (schema m007),
one row per entity: a new dismissal replaces the previous one.
``memory_review`` then hides the candidate while the dismissal holds:

- ``signals=None`` dismisses every signal; a list dismisses those only, and
  the candidate comes back as soon as a signal fires that is not in it
  (a stale entry that starts wasting tokens is news);
- ``until`` (a ``datetime`` or ``date``, naive = UTC; an ISO 8601 string
  too) ends it: from that instant on (``now >= until``) the candidate is
  back; ``None`` is for good;
- ``store.undismiss(entity_type, entity_id)`` deletes the decision.

``include_dismissed=True`` shows hidden candidates too, with
``dismissed=True``. Decisions carry no user data (entity keys, a time, the
note a person typed), so ``purge_user`` and retention leave them alone.
Files from before m007 simply have none. The check is a pure function of
the decision, the fired signals and ``now`` (:meth:`Decision.hides`), so
any store (SQLite, ClickHouse) can share it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timezone

from .schema import REVIEW_DECISIONS_TABLE
from .timeparse import datetime_to_ns, ns_to_datetime, parse_timestamp_ns


@dataclass(frozen=True, slots=True)
class Decision:
    """One dismissal: ``signals`` None = all; ``until_ns`` None = for good."""

    entity_type: str
    entity_id: str
    signals: frozenset[str] | None
    until_ns: int | None
    note: str | None
    decided_ns: int

    def hides(self, fired: list[str] | tuple[str, ...], now_ns: int) -> bool:
        """Does this dismissal hide a candidate with the ``fired`` signals at ``now_ns``?"""
        if self.until_ns is not None and now_ns >= self.until_ns:
            return False
        return self.signals is None or self.signals.issuperset(fired)

    def to_dict(self) -> dict:
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "signals": None if self.signals is None else sorted(self.signals),
            "until": _iso(self.until_ns),
            "note": self.note,
            "decided_at": _iso(self.decided_ns),
        }


def _iso(value: int | None) -> str | None:
    when = ns_to_datetime(value)
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def until_ns(until) -> int | None:
    """``until`` as ns since the epoch: a datetime (naive = UTC), a date
    (its midnight, UTC) or an ISO 8601 string; ``ValueError`` otherwise."""
    if until is None:
        return None
    parsed = None
    if isinstance(until, datetime):
        parsed = datetime_to_ns(until)
    elif isinstance(until, date):
        parsed = datetime_to_ns(datetime(until.year, until.month, until.day, tzinfo=timezone.utc))
    elif isinstance(until, str):
        parsed = parse_timestamp_ns(until.strip())
    if parsed is None:
        raise ValueError(f"until must be a date, a datetime or an ISO 8601 date, got {until!r}")
    if not 0 <= parsed < 1 << 63:  # stored as a 64-bit integer of nanoseconds
        raise ValueError(f"until must be between 1970 and 2262, got {until!r} (leave it out for good)")
    return parsed


def has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (REVIEW_DECISIONS_TABLE,)
    ).fetchone() is not None


def load(conn: sqlite3.Connection) -> dict[tuple[str, str], Decision]:
    """Every decision in the file, by ``(entity_type, entity_id)`` (none before m007)."""
    if not has_table(conn):
        return {}
    found = {}
    for etype, eid, signals, until, note, decided in conn.execute(
        f"SELECT entity_type, entity_id, signals, until_ns, note, decided_ns FROM {REVIEW_DECISIONS_TABLE}"
    ):
        names = None if signals is None else frozenset(s for s in signals.split(",") if s)
        found[(etype, eid)] = Decision(etype, eid, names, until, note, decided)
    return found


def save(conn: sqlite3.Connection, decision: Decision) -> None:
    """Record ``decision`` (replacing the entity's previous one); inside the caller's transaction."""
    signals = None if decision.signals is None else ",".join(sorted(decision.signals))
    conn.execute(
        f"INSERT OR REPLACE INTO {REVIEW_DECISIONS_TABLE}"
        " (entity_type, entity_id, signals, until_ns, note, decided_ns) VALUES (?, ?, ?, ?, ?, ?)",
        (decision.entity_type, decision.entity_id, signals, decision.until_ns, decision.note,
         decision.decided_ns),
    )


def delete(conn: sqlite3.Connection, entity_type: str, entity_id: str) -> bool:
    """Remove the entity's decision; True if there was one."""
    return conn.execute(
        f"DELETE FROM {REVIEW_DECISIONS_TABLE} WHERE entity_type = ? AND entity_id = ?",
        (entity_type, entity_id),
    ).rowcount > 0
