"""The review signals, computed from one ``EntityFacts`` per known entity.

- ``supersedeable`` (100): its latest ``superseded_by`` is set, or another
  active entity of the same type names it as ``parent_id``.
- ``stale`` (``min(99, 50 + age_days // 7)``): no injection in the window and
  last modified before it. Last modified = latest parseable of
  ``updated_at``/``created_at``; with no timestamp reported, first seen; with
  timestamps reported but none parseable, no signal.
- ``high_cost_low_cite`` (``min(49, 30 + min(19, injections))``): at least
  ``min_injections`` injections in the window, citation rate below
  ``max_cite_rate``.
- ``duplicate`` (29 for identical content, else ``20 + 3 × (3 − d)``): a newer
  active entity of the same type within simhash distance ``d ≤ 3``.

Archived and deleted entities are never candidates, nor parents' children or
anyone's twin.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from typing import Iterable

from .duplicates import MAX_DISTANCE, newer_twins
from .query import NS_PER_DAY, EntityFacts
from .results import ReviewCandidate
from .timeparse import ns_to_datetime

SUPERSEDEABLE = "supersedeable"
STALE = "stale"
HIGH_COST_LOW_CITE = "high_cost_low_cite"
DUPLICATE = "duplicate"
SIGNALS = (SUPERSEDEABLE, STALE, HIGH_COST_LOW_CITE, DUPLICATE)
INACTIVE_STATUSES = frozenset({"archived", "deleted"})
_KEY = attrgetter("entity_type", "entity_id")
_RANK = attrgetter("score", "wasted_tokens")


def validate_signal_filter(signal_filter) -> frozenset[str] | None:
    if signal_filter is None:
        return None
    if isinstance(signal_filter, str):
        signal_filter = [signal_filter]
    wanted = frozenset(signal_filter)
    unknown = sorted(str(name) for name in wanted - set(SIGNALS))
    if unknown:
        raise ValueError(
            f"unknown signal {', '.join(map(repr, unknown))}; known signals: {', '.join(SIGNALS)}"
        )
    return wanted


def last_modified_ns(fact: EntityFacts) -> int | None:
    """Latest parseable reported time; first seen if none reported; None if unreadable."""
    if not fact.reported_time:
        return fact.first_seen_ns
    parsed = [t for t in (fact.updated_ns, fact.created_ns) if t is not None]
    return max(parsed) if parsed else None


def review(
    facts: Iterable[EntityFacts],
    start: int,
    end: int,
    min_injections: int,
    max_cite_rate: float,
    signal_filter: frozenset[str] | None = None,
) -> list[ReviewCandidate]:
    active = [f for f in facts if (f.status or "").lower() not in INACTIVE_STATUSES]
    modified = [last_modified_ns(f) for f in active]
    children = _children(active, modified)
    twins = _duplicates(active, modified)

    candidates = []
    append = candidates.append
    times: dict[int | None, object] = {None: None}  # ns -> datetime, shared values repeat

    def when(ns):
        value = times.get(ns, times)
        if value is times:
            value = times[ns] = ns_to_datetime(ns)
        return value

    for index, fact in enumerate(active):
        injections, citations = fact.injections, fact.citations
        rate = min(1.0, citations / injections) if injections else 0.0
        fired: dict[str, int] = {}
        superseded_by = fact.superseded_by
        if not superseded_by:
            superseded_by = children.get((fact.entity_type, fact.entity_id))
        if superseded_by:
            fired[SUPERSEDEABLE] = 100
        lm = modified[index]
        if injections == 0 and lm is not None and lm < start:
            age_days = (end - lm) // NS_PER_DAY
            fired[STALE] = min(99, 50 + age_days // 7)
        if injections >= min_injections and rate < max_cite_rate:
            fired[HIGH_COST_LOW_CITE] = min(49, 30 + min(19, injections))
        duplicate_of = None
        twin_entry = twins.get(index)
        if twin_entry is not None:
            twin, distance, same_content = twin_entry
            duplicate_of = active[twin].entity_id
            fired[DUPLICATE] = 29 if same_content else 20 + 3 * (MAX_DISTANCE - distance)
        if not fired:
            continue
        if signal_filter is not None and not signal_filter.intersection(fired):
            continue
        append(
            ReviewCandidate(
                fact.entity_type,
                fact.entity_id,
                fact.title or fact.content_head or fact.entity_id,
                [name for name in SIGNALS if name in fired] if len(fired) > 1 else list(fired),
                max(fired.values()),
                injections,
                citations,
                rate,
                int(round(fact.tokens * (1 - rate))),
                when(fact.last_injected_ns),
                when(lm),
                superseded_by or None,
                duplicate_of,
            )
        )
    # score desc, wasted_tokens desc, then key: two stable C-level sorts
    candidates.sort(key=_KEY)
    candidates.sort(key=_RANK, reverse=True)
    return candidates


def _children(active: list[EntityFacts], modified: list[int | None]) -> dict[tuple[str, str], str]:
    """(type, id) -> id of the newest active entity naming it as parent."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for fact, lm in zip(active, modified):
        if not fact.parent_id or fact.parent_id == fact.entity_id:
            continue
        key = (fact.entity_type, fact.parent_id)
        rank = (lm or fact.first_seen_ns or 0, fact.entity_id)
        if key not in best or rank > best[key]:
            best[key] = rank
    return {key: rank[1] for key, rank in best.items()}


def _duplicates(active: list[EntityFacts], modified: list[int | None]) -> dict[int, tuple[int, int, bool]]:
    """index in ``active`` -> (twin index, distance, same content) per entity type."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for index, fact in enumerate(active):
        if fact.simhash is not None:
            by_type[fact.entity_type].append(index)
    found: dict[int, tuple[int, int, bool]] = {}
    for indices in by_type.values():
        if len(indices) < 2:
            continue
        # newer = later last modified; ties: more citations, then smaller id
        ids = [active[i].entity_id for i in indices]
        when = [modified[i] or active[i].first_seen_ns or 0 for i in indices]
        cites = [active[i].citations for i in indices]
        local = sorted(range(len(indices)), key=ids.__getitem__, reverse=True)
        local.sort(key=cites.__getitem__)  # stable sorts: by (when, cites) in the end
        local.sort(key=when.__getitem__)
        ordered = [indices[j] for j in local]
        newness = {index: rank for rank, index in enumerate(ordered)}
        local_rank = [newness[i] for i in indices]
        twins = newer_twins(
            [active[i].simhash for i in indices],
            [active[i].content_hash for i in indices],
            local_rank,
        )
        for local, (twin_local, distance, same) in twins.items():
            found[indices[local]] = (indices[twin_local], distance, same)
    return found
