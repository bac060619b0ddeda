"""The review signals, computed from one ``EntityFacts`` per known entity.

- ``supersedeable`` (100): its latest ``superseded_by`` is set, or another
  active entity of the same type names it as ``parent_id``.
- ``stale`` (``min(99, 50 + age_days // 7)``): no injection in the window and
  last modified before it. Last modified = latest parseable of
  ``updated_at``/``created_at``; with no timestamp reported, first seen; with
  timestamps reported but none parseable, no signal.
- ``high_cost_low_cite`` (``min(49, 30 + min(19, injections))``): citation
  rate below ``max_cite_rate`` and at least ``min_injections`` injections or
  at least ``min_wasted_tokens`` wasted tokens in the window (wasted =
  tokens injected in the window × (1 − citation rate)).
- ``duplicate`` (29 for identical content, else 20–28 rising with
  similarity): a newer active entity of the same type whose MinHash is
  estimated at least ``TWIN_SIMILARITY`` similar (``20 + 8 × (J − 0.6) / 0.4``,
  28 for equal fingerprints of different content); entities recorded
  before MinHash (no ``minhash``) are compared by simhash distance ``d ≤ 3``
  as before (``20 + 3 × (3 − d)``), with every entity that has a simhash.

Archived and deleted entities are never candidates, nor parents' children or
anyone's twin. Each candidate's ``action`` says in one line what a person
would do about its highest-scoring signal (:func:`action`). Dismissals
(:mod:`.decisions`) hide candidates unless ``include_dismissed``.

Everything here is a function of one ``EntityFacts`` per entity plus the
decisions: a store computes the facts its own way (SQL on SQLite) and shares
this code. docs/signals.md states the semantics for maintainers.
"""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter
from typing import Iterable, Mapping

from .decisions import Decision
from .duplicates import (
    minhash_neighbours,
    pick_nearest_newer,
    similarity_score,
    simhash_score,
    twin_groups,
)
from .query import EntityFacts
from .results import ReviewCandidate
from .timeparse import NS_PER_DAY, ns_to_datetime

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
    updated, created = fact.updated_ns, fact.created_ns
    if updated is None:
        return created
    return updated if created is None or updated >= created else created


def _date(ns: int | None) -> str:
    return ns_to_datetime(ns).date().isoformat() if ns is not None else "never"


def action(names: list[str], superseded_by: str | None, duplicate_of: str | None,
           last_injected_ns: int | None, wasted_tokens: int) -> str:
    """What a person would do, in one line, about the highest-scoring signal
    (the first of ``names``, which are in ``SIGNALS`` order: their score
    ranges do not overlap)."""
    first = names[0]
    if first == SUPERSEDEABLE:
        return f"archive: superseded by {superseded_by}"
    if first == STALE:
        if last_injected_ns is None:
            return "archive or delete: never injected"
        return f"archive or delete: not injected since {_date(last_injected_ns)}"
    if first == HIGH_COST_LOW_CITE:
        return f"rewrite or shorten: {wasted_tokens:,} tokens wasted"
    return f"merge into {duplicate_of}"


def review(
    facts: Iterable[EntityFacts],
    start: int,
    end: int,
    min_injections: int,
    max_cite_rate: float,
    signal_filter: frozenset[str] | None = None,
    min_wasted_tokens: float = 1000,
    decisions: Mapping[tuple[str, str], Decision] | None = None,
    include_dismissed: bool = False,
) -> list[ReviewCandidate]:
    """The review queue from the facts of the known entities (see the module docstring)."""
    if signal_filter is not None and not signal_filter:
        return []  # keeps no candidate
    active = [f for f in facts if f.status is None or f.status.lower() not in INACTIVE_STATUSES]
    modified = [last_modified_ns(f) for f in active]
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
            wasted = int(round(fact.tokens * (1 - rate)))
            if rate < max_cite_rate and (injections >= min_injections or (injections and wasted >= min_wasted_tokens)):
                names.append(HIGH_COST_LOW_CITE)
                cost = 30 + injections if injections < 19 else 49
                if cost > score:
                    score = cost
            duplicate_of = None
            twin_entry = twins.get(index) if twins else None
            if twin_entry is not None:
                twin, closeness = twin_entry
                duplicate_of = active[twin].entity_id
                names.append(DUPLICATE)
                twin_hash = active[twin].content_hash
                same_content = fact.content_hash is not None and fact.content_hash == twin_hash
                dup = 29 if same_content else min(29, int(closeness))
                if dup > score:
                    score = dup
            if not names:
                continue
            if signal_filter is not None and signal_filter.isdisjoint(names):
                continue
            dismissed = False
            if decisions:
                decision = decisions.get((entity_type, fact.entity_id))
                if decision is not None and decision.hides(names, end):
                    if not include_dismissed:
                        continue
                    dismissed = True
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
                    wasted,
                    ns_to_datetime(last_injected),
                    modified_at,
                    superseded_by or None,
                    duplicate_of,
                    action(names, superseded_by, duplicate_of, last_injected, wasted),
                    dismissed,
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
) -> dict[int, tuple[int, float]]:
    """index in ``active`` -> (twin index, closeness) per entity type.

    Closeness is the duplicate score before rounding (see
    :func:`~.duplicates.similarity_score`). Entities with a MinHash are
    compared by it; the simhash links a pair only when one of the two has no
    MinHash (recorded before it).
    """
    found: dict[int, tuple[int, float]] = {}
    for all_indices in by_type.values():
        groups: dict[tuple, list[int]] = {}
        links: dict[tuple, list[tuple[tuple, float]]] = {}
        with_minhash = [i for i in all_indices if active[i].minhash is not None]
        if len(with_minhash) >= 2:
            members: dict[bytes, list[int]] = defaultdict(list)
            for i in with_minhash:
                members[active[i].minhash].append(i)
            neighbours = minhash_neighbours(list(members))
            for value, indices in members.items():
                near = neighbours.get(value)
                if len(indices) < 2 and near is None:
                    continue
                key = ("m", value)
                groups[key] = indices
                links[key] = [(key, similarity_score(1.0))] + [
                    (("m", other), similarity_score(sim)) for other, sim in near or ()
                ]
        old = [i for i in all_indices if active[i].minhash is None and active[i].simhash is not None]
        if old:  # entities from before MinHash: simhash, against every entity that has one
            indices = [i for i in all_indices if active[i].simhash is not None]
            sim_groups, sim_neighbours = twin_groups([active[i].simhash for i in indices])
            for value, locals_ in sim_groups.items():
                for has_minhash in (False, True):
                    part = [indices[j] for j in locals_ if (active[indices[j]].minhash is not None) is has_minhash]
                    if not part:
                        continue
                    key = ("s", value, has_minhash)
                    groups[key] = part
                    options = [(("s", value, False), simhash_score(0))]
                    if not has_minhash:
                        options.append((("s", value, True), simhash_score(0)))
                    for other, distance in sim_neighbours.get(value, ()):
                        options.append((("s", other, False), simhash_score(distance)))
                        if not has_minhash:
                            options.append((("s", other, True), simhash_score(distance)))
                    links[key] = options
        if not groups:
            continue  # no fingerprint has a twin: nothing to rank (the common case)
        # Rank by newness only the entities that can have a twin (their
        # relative order is the same as among all): newer = later last
        # modified; ties: more citations, then smaller id.
        involved = sorted({i for part in groups.values() for i in part})
        local = sorted(involved, key=lambda i: active[i].entity_id, reverse=True)
        local.sort(key=lambda i: active[i].citations)  # stable sorts: by (when, cites) in the end
        local.sort(key=lambda i: modified[i] or active[i].first_seen_ns or 0)
        newness = {i: rank for rank, i in enumerate(local)}
        found.update(pick_nearest_newer(groups, links, newness.__getitem__))
    return found
