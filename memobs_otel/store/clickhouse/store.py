"""The read API over ClickHouse: the SQLite :class:`~memobs_otel.store.Store`'s
``injection_stats`` / ``memory_review`` / ``dismiss`` / ``undismiss``, with the
same parameters, results and order.

``context_budget`` too: ClickHouse computes its per-turn facts (:mod:`.budget`)
and the arithmetic is the SQLite store's (:func:`memobs_otel.store.budget.compute`).

ClickHouse computes the per-entity facts (:mod:`.facts`); the window, the
argument checks, the signals and the dismissal rules are the SQLite
store's own code (:mod:`memobs_otel.store.query`, :mod:`~memobs_otel.store.signals`,
:mod:`~memobs_otel.store.decisions`). Reading needs only ``SELECT`` on the
traces table (and on the narrow table, when it exists). ``dismiss`` writes
to ``memobs_review_decisions`` in the same database, creating it on first
use; a user who may not gets an :class:`AccessDenied` saying what to grant.
"""

from __future__ import annotations

import time
from datetime import datetime

from ...guard import log_once
from .. import budget as shared_budget
from .. import decisions as shared_decisions
from .. import query, signals
from ..results import ContextBudget, InjectionStat, ReviewCandidate
from . import budget, facts, inventories
from .client import AccessDenied, Client, ClickHouseError
from .schema import DECISIONS_TABLE, decisions_ddl, ident, narrow_name, select_events
from .url import Target, parse


DERIVED_TTL_S = 60.0  # see ClickHouseStore.derived_deletes


class ClickHouseStore:
    """The store API over the exporter's traces table. Use :func:`memobs_otel.open_store`."""

    def __init__(self, url: str | Target):
        self.target = parse(url) if isinstance(url, str) else url
        self.path = self.target.display()  # what messages and the report name
        self._client = Client(self.target)
        self.traces_table = f"{ident(self.target.database)}.{ident(self.target.table)}"
        self._derived: tuple[float, dict] | None = None
        try:
            self.source, self.uses_narrow_table = self._find_source()
        except BaseException:
            self._client.close()
            raise

    # the exporter's tables carry no memobs schema version (the report shows v0)
    schema_version = (0, 0)

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "ClickHouseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _find_source(self) -> tuple[str, bool]:
        t = self.target
        found = {name for (name,) in self._client.rows(
            "SELECT name FROM system.tables WHERE database = {db:String} AND name IN ({names:Array(String)})",
            {"db": t.database, "names": [t.table, narrow_name(t.table)]},
        )}
        if t.table not in found:
            raise ClickHouseError(
                f"{self.path}: no table {t.qualified} (is the Collector's clickhouse exporter writing "
                "there? name it with ?table=database.table)"
            )
        if narrow_name(t.table) in found:
            return f"{ident(t.database)}.{ident(narrow_name(t.table))}", True
        return f"(\n{select_events(f'{ident(t.database)}.{ident(t.table)}')}\n)", False

    # -- reading --------------------------------------------------------------
    def injection_stats(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        entity_type: str | None = None,
        now: datetime | None = None,
    ) -> list[InjectionStat]:
        """Per-entity injections, tokens, sessions and citations in the window
        (as :meth:`memobs_otel.store.Store.injection_stats`)."""
        start, end = query.window(days_back, now)
        sql = facts.injection_stats_sql(self.source, user_id is not None, entity_type is not None)
        rows = self._client.rows(sql, {"start": start, "end": end, "user": _text(user_id),
                                       "type": _text(entity_type)})
        return facts.injection_stats(rows)

    def context_budget(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        now: datetime | None = None,
    ) -> ContextBudget:
        """What share of the window's prompts is memory (as
        :meth:`memobs_otel.store.Store.context_budget`; facts from :mod:`.budget`)."""
        start, end = query.window(days_back, now)
        prompts, memory = budget.facts(self._client, self.traces_table, start, end, user_id)
        return shared_budget.compute(prompts, memory, days_back, user_id)

    def review_facts(self, start: int, end: int, user_id: str | None = None):
        """One :class:`~memobs_otel.store.query.EntityFacts` per known entity."""
        sql = facts.review_facts_sql(self.source, user_id is not None)
        return facts.review_facts(self._client.rows(sql, {"start": start, "end": end,
                                                          "user": _text(user_id)}),
                                  self.derived_deletes())

    def derived_deletes(self) -> dict[tuple[str, str], int]:
        """The deletes complete inventories derive (:mod:`.inventories`), computed
        at most once per ``DERIVED_TTL_S`` per open store: they do not depend on
        the window, the user or ``now``, and reading ``otel_traces``' span
        attributes costs a few statements per call (a report asks twice)."""
        clock = time.monotonic()
        cached = self._derived
        if cached is None or clock - cached[0] > DERIVED_TTL_S:
            cached = self._derived = (clock, inventories.derived_deletes(self))
        return cached[1]

    def memory_review(
        self,
        days_back: float = 30,
        user_id: str | None = None,
        signal_filter=None,
        min_injections: int = 3,
        max_cite_rate: float = 0.5,
        now: datetime | None = None,
        min_wasted_tokens: float = 1000,
        include_dismissed: bool = False,
    ) -> list[ReviewCandidate]:
        """The review queue (as :meth:`memobs_otel.store.Store.memory_review`)."""
        start, end = query.window(days_back, now)
        wanted = signals.validate_signal_filter(signal_filter)
        if wanted is not None and not wanted:
            return []
        for name, value in (("min_injections", min_injections), ("max_cite_rate", max_cite_rate),
                            ("min_wasted_tokens", min_wasted_tokens)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        found = self.review_facts(start, end, user_id)
        return signals.review(found, start, end, min_injections, max_cite_rate, wanted,
                              min_wasted_tokens, self._decisions(), include_dismissed)

    # -- what only the SQLite file does ---------------------------------------------
    def purge_user(self, user_id: str) -> dict[str, int]:
        """Not here: the traces belong to the Collector's table (see the error)."""
        t = self.target
        raise ClickHouseError(
            f"{self.path}: memobs does not delete from the Collector's tables; a ClickHouse admin can: "
            f"ALTER TABLE {t.qualified} DELETE WHERE SpanAttributes['user.id'] = '<user>' OR "
            f"arrayExists(a -> a['user.id'] = '<user>', Events.Attributes) "
            f"(and the same on {narrow_name(t.table)} WHERE UserId = '<user>' if it exists)"
        )

    def apply_retention(self, *args, **kwargs) -> dict[str, int]:
        """Not here: retention in ClickHouse is the table's TTL (docs/clickhouse.md)."""
        raise ClickHouseError(
            f"{self.path}: retention on ClickHouse is the table's TTL (the exporter's ttl setting); "
            "keep more than the longest review window: stale needs history beyond it"
        )

    # -- review decisions -------------------------------------------------------
    @property
    def _decisions_table(self) -> str:
        return f"{ident(self.target.database)}.{ident(DECISIONS_TABLE)}"

    def _has_decisions(self) -> bool:
        return bool(self._client.rows(
            "SELECT 1 FROM system.tables WHERE database = {db:String} AND name = {name:String}",
            {"db": self.target.database, "name": DECISIONS_TABLE},
        ))

    def _decisions(self) -> dict[tuple[str, str], shared_decisions.Decision]:
        if not self._has_decisions():
            return {}
        try:
            rows = self._client.rows(
                f"SELECT entity_type, entity_id,"
                f" argMax(tuple(signals, until_ns, note, decided_ns, revoked), written_ns)"
                f" FROM {self._decisions_table} GROUP BY entity_type, entity_id"
            )
        except AccessDenied:
            # a reader without SELECT on the decisions table still gets the review
            # (nothing hidden); said once, not raised
            log_once("clickhouse-decisions-unreadable", message=(
                f"memobs: {self.path}: cannot read {DECISIONS_TABLE}; dismissals are not applied "
                f"(GRANT SELECT ON {self.target.database}.{DECISIONS_TABLE} to this user)"))
            return {}
        found = {}
        for etype, eid, (names, until, note, decided, revoked) in rows:
            if revoked:
                continue
            signal_set = None if names is None else frozenset(s for s in names.split(",") if s)
            found[(etype, eid)] = shared_decisions.Decision(etype, eid, signal_set, until, note, decided)
        return found

    def dismissals(self) -> list[shared_decisions.Decision]:
        """Every recorded dismissal, by key (in force or not)."""
        found = self._decisions()
        return [found[key] for key in sorted(found)]

    def dismiss(self, entity_type: str, entity_id: str, signals=None, until=None,
                note: str | None = None, now: datetime | None = None) -> shared_decisions.Decision:
        """Hide a review candidate (as :meth:`memobs_otel.store.Store.dismiss`)."""
        key = self._entity_key(entity_type, entity_id)
        wanted = None if signals is None else _signal_names(signals)
        decision = shared_decisions.Decision(
            key[0], key[1], wanted, shared_decisions.until_ns(until),
            None if note is None else str(note), query.now_ns(now),
        )
        self._write_decision(decision, revoked=False)
        return decision

    def undismiss(self, entity_type: str, entity_id: str) -> bool:
        """Take a dismissal back; True if there was one."""
        if not isinstance(entity_type, str) or not isinstance(entity_id, str):
            raise ValueError("entity_type and entity_id must be strings")
        current = self._decisions().get((entity_type, entity_id))
        if current is None:
            return False
        self._write_decision(current, revoked=True)
        return True

    def _write_decision(self, decision: shared_decisions.Decision, revoked: bool) -> None:
        names = None if decision.signals is None else ",".join(sorted(decision.signals))
        row = [decision.entity_type, decision.entity_id, names, decision.until_ns, decision.note,
               decision.decided_ns, int(revoked), time.time_ns()]
        try:
            if not self._has_decisions():
                self._client.command(decisions_ddl(self.target.database))
            self._client.insert(
                self._decisions_table, [row],
                ("entity_type", "entity_id", "signals", "until_ns", "note", "decided_ns", "revoked",
                 "written_ns"),
            )
        except AccessDenied as exc:
            user = self.target.user or "<user>"
            raise AccessDenied(
                f"{self.path}: user {user} may not record review decisions ({exc}); a ClickHouse "
                f"admin can allow it with: GRANT CREATE TABLE, SELECT, INSERT ON "
                f"{self.target.database}.{DECISIONS_TABLE} TO {user} (or create the table: "
                f"memobs clickhouse-schema prints its DDL)"
            ) from None

    def _entity_key(self, entity_type, entity_id) -> tuple[str, str]:
        if not isinstance(entity_type, str) or not entity_type or not isinstance(entity_id, str) or not entity_id:
            raise ValueError("entity_type and entity_id must be non-empty strings")
        known = self._client.rows(
            f"SELECT 1 FROM {self.source} WHERE EntityType = {{type:String}} AND EntityId = {{id:String}}"
            " LIMIT 1",
            {"type": entity_type, "id": entity_id},
        )
        if not known:
            raise ValueError(f"no entity {entity_type} {entity_id} in {self.path}")
        return entity_type, entity_id


def _signal_names(names) -> frozenset[str]:
    wanted = signals.validate_signal_filter(names)
    if not wanted:
        raise ValueError("signals must name at least one signal (or be None for all)")
    return wanted


def _text(value) -> str:
    return "" if value is None else str(value)
