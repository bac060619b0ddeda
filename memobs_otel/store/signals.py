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
from datetime import timedelta as _timedelta
from operator import attrgetter
from typing import Iterable

from .duplicates import MAX_DISTANCE, pick_twins, twin_groups
from .query import NS_PER_DAY, EntityFacts
from .results import ReviewCandidate
from .timeparse import _EPOCH, ns_to_datetime

SUPERSEDEABLE = "supersedeable"
STALE = "stale"
HIGH_COST_LOW_CITE = "high_cost_low_cite"
DUPLICATE = "duplicate"
SIGNALS = (SUPERSEDEABLE, STALE, HIGH_COST_LOW_CITE, DUPLICATE)
INACTIVE_STATUSES = frozenset({"archived", "deleted"})
_ID = attrgetter("entity_id")
_WASTED = attrgetter("wasted_tokens")
_SCORE = attrgetter("score")


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
    if signal_filter is not None and not signal_filter:
        return []  # keeps no candidate
    active = [f for f in facts if f.status is None or f.status.lower() not in INACTIVE_STATUSES]
    # last_modified_ns, inlined: one call per entity is a measurable share
    modified = [
        (
            (c if u is None else (u if c is None or u >= c else c))
            if f.reported_time
            else f.first_seen_ns
        )
        for f in active
        for u, c in ((f.updated_ns, f.created_ns),)
    ]
    by_type: dict[str, list[int]] = defaultdict(list)
    for index, fact in enumerate(active):
        by_type[fact.entity_type].append(index)
    children = _children(active, modified)
    twins = _duplicates(active, modified, by_type)

    lm_times: dict[int | None, object] = {None: None}  # ns -> datetime: last modified values repeat
    per_type = []
    for entity_type in sorted(by_type):
        candidates: list[ReviewCandidate] = []
        append = candidates.append
        for index in by_type[entity_type]:
            fact = active[index]
            injections = fact.injections
            citations = fact.citations
            if injections:
                rate = citations / injections
                if rate > 1.0:
                    rate = 1.0
            else:
                rate = 0.0
            # the signals in SIGNALS order; score = the highest (every score is > 0)
            names = []
            score = 0
            superseded_by = fact.superseded_by
            if not superseded_by and children:
                superseded_by = children.get((entity_type, fact.entity_id))
            if superseded_by:
                names.append(SUPERSEDEABLE)
                score = 100
            lm = modified[index]
            if injections == 0 and lm is not None and lm < start:
                names.append(STALE)
                stale = 50 + ((end - lm) // NS_PER_DAY) // 7
                if stale > 99:
                    stale = 99
                if stale > score:
                    score = stale
            if injections >= min_injections and rate < max_cite_rate:
                names.append(HIGH_COST_LOW_CITE)
                cost = 30 + injections if injections < 19 else 49
                if cost > score:
                    score = cost
            duplicate_of = None
            twin_entry = twins.get(index) if twins else None
            if twin_entry is not None:
                twin, distance, same_content = twin_entry
                duplicate_of = active[twin].entity_id
                names.append(DUPLICATE)
                dup = 29 if same_content else 20 + 3 * (MAX_DISTANCE - distance)
                if dup > score:
                    score = dup
            if not names:
                continue
            if signal_filter is not None and signal_filter.isdisjoint(names):
                continue
            last_injected = fact.last_injected_ns
            modified_at = lm_times.get(lm, lm_times)
            if modified_at is lm_times:
                modified_at = lm_times[lm] = ns_to_datetime(lm)
            append(
                ReviewCandidate(
                    entity_type,
                    fact.entity_id,
                    fact.title or fact.content_head or fact.entity_id,
                    names,
                    score,
                    injections,
                    citations,
                    rate,
                    int(round(fact.tokens * (1 - rate))),
                    # ns_to_datetime, inlined (positional timedelta: cheaper)
                    None if last_injected is None else _EPOCH + _timedelta(0, 0, int(last_injected) // 1_000),
                    modified_at,
                    superseded_by or None,
                    duplicate_of,
                )
            )
        # by key within the type (ids are strings: a fast homogeneous sort)
        candidates.sort(key=_ID)
        per_type.append(candidates)
    candidates = per_type[0] if len(per_type) == 1 else [c for part in per_type for c in part]
    # then score desc, wasted_tokens desc: stable sorts on one int key each
    # are cheaper than one sort on (score, wasted_tokens) tuples
    candidates.sort(key=_WASTED, reverse=True)
    candidates.sort(key=_SCORE, reverse=True)
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


def _duplicates(
    active: list[EntityFacts], modified: list[int | None], by_type: dict[str, list[int]]
) -> dict[int, tuple[int, int, bool]]:
    """index in ``active`` -> (twin index, distance, same content) per entity type."""
    found: dict[int, tuple[int, int, bool]] = {}
    for all_indices in by_type.values():
        indices = [i for i in all_indices if active[i].simhash is not None]
        if len(indices) < 2:
            continue
        groups, neighbours = twin_groups([active[i].simhash for i in indices])
        if not groups:
            continue  # no fingerprint has a twin: nothing to rank (the common case)
        # Rank by newness only the entities that can have a twin (their
        # relative order is the same as among all): newer = later last
        # modified; ties: more citations, then smaller id.
        involved = sorted(j for members in groups.values() for j in members)
        ids = {j: active[indices[j]].entity_id for j in involved}
        local = sorted(involved, key=ids.__getitem__, reverse=True)
        local.sort(key=lambda j: active[indices[j]].citations)  # stable sorts: by (when, cites) in the end
        local.sort(key=lambda j: modified[indices[j]] or active[indices[j]].first_seen_ns or 0)
        newness = {j: rank for rank, j in enumerate(local)}
        twins = pick_twins(groups, neighbours, [active[i].content_hash for i in indices], newness)
        for j, (twin_local, distance, same) in twins.items():
            found[indices[j]] = (indices[twin_local], distance, same)
    return found
