"""Gather everything the report shows, as small aggregates.

The per-entity numbers and the review queue come from the public Store API
(``injection_stats``, ``memory_review``) so the report says exactly what
``memobs stats`` and ``memobs review`` say; the time series, per-entity
histories and recent sessions come from :mod:`.queries`.

Headline definitions (all over the window, optionally one user):

- *entities*: known entities (seen in any injection or write), and how
  many of them were injected in the window;
- *injections* / *tokens injected*: sums of ``surfaced_count`` /
  ``total_prompt_tokens``;
- *citation rate*: cited injections over injections (an entity counts as
  cited once per trace, as in ``injection_stats``);
- *tokens wasted*: per entity, tokens injected × (1 − citation rate),
  summed — the same measure as the review queue's ``wasted_tokens``.

The time series is per UTC day over the window (wider buckets past
``MAX_BUCKETS`` days), or per hour when every injection in the window
falls within ``HOURLY_BELOW`` (two days): a first day of use would
otherwise be one bar. The hourly chart covers the injections' hours, at
least the 24 hours up to the last one; ``bucket_hours`` and
``bucket_unit`` say which.

Sizes are bounded whatever the data: the top-entity chart shows
``TOP_CHART`` entities, the review table ``REVIEW_ROWS`` rows, and detail
sections are drawn for the ``DETAIL_TOP`` entities by tokens plus the first
``DETAIL_REVIEW`` review candidates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from ..store import InjectionStat, ReviewCandidate, Store
from ..store.results import ContextBudget
from ..store.query import NS_PER_DAY, citation_rate, window
from ..store.timeparse import datetime_to_ns, ns_to_datetime
from . import budget as budget_section
from . import queries

TOP_CHART = 20
REVIEW_ROWS = 500
DETAIL_TOP = 50
DETAIL_REVIEW = 50
MAX_BUCKETS = 120
NS_PER_HOUR = NS_PER_DAY // 24
HOURLY_BELOW = 2 * NS_PER_DAY  # injections spanning less than this: one bar per hour
SESSIONS_SHOWN = 5
RATE_BINS = (  # (label, lowest rate included, highest rate included)
    ("0%", 0.0, 0.0),
    ("1–24%", 1e-12, 0.25 - 1e-12),
    ("25–49%", 0.25, 0.5 - 1e-12),
    ("50–74%", 0.5, 0.75 - 1e-12),
    ("75–99%", 0.75, 1.0 - 1e-12),
    ("100%", 1.0, 1.0),
)


@dataclass
class Headline:
    known_entities: int
    injected_entities: int
    injections: int
    tokens: int
    citations: int
    citation_rate: float
    wasted_tokens: int
    review_candidates: int


@dataclass
class EntityDetail:
    entity_type: str
    entity_id: str
    title: str
    status: str | None
    injections: int
    tokens: int
    sessions: int
    citations: int
    citation_rate: float
    first_seen_at: datetime | None
    last_injected_at: datetime | None
    signals: list[str] = field(default_factory=list)
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    per_bucket: list[int] = field(default_factory=list)
    recent_sessions: list[queries.SessionUse] = field(default_factory=list)


@dataclass
class ReportData:
    db_path: str
    generated_at: datetime
    days: float
    user_id: str | None
    window_start: datetime
    window_end: datetime
    schema_version: tuple[int, int]
    headline: Headline
    bucket_hours: int  # 1: hourly; 24: daily; 24 * n: n days per bar
    bucket_starts: list[datetime]
    injections_series: list[int]
    tokens_series: list[int]
    citations_series: list[int]
    top_entities: list[InjectionStat]
    rate_bins: list[tuple[str, int]]
    review: list[ReviewCandidate]
    review_total: int
    details: list[EntityDetail]
    entities_with_stats: int
    # the context budget (SPEC 6b), the page's first section; None: the store has none
    budget: ContextBudget | None = None

    @property
    def bucket_unit(self) -> str:
        """``hour``, ``day`` or ``7 days``: what one bar of the series covers."""
        if self.bucket_hours == 1:
            return "hour"
        days = self.bucket_hours // 24
        return "day" if days == 1 else f"{days} days"

    @property
    def empty(self) -> bool:
        return self.headline.known_entities == 0 and self.headline.injections == 0


def reasons(candidate: ReviewCandidate, days: float, max_cite_rate: float = 0.5) -> list[str]:
    """Plain-words reasons for each signal of a review candidate."""
    out = []
    for signal in candidate.signals:
        if signal == "supersedeable":
            out.append(f"superseded by {candidate.superseded_by}" if candidate.superseded_by
                       else "superseded by a newer entity")
        elif signal == "stale":
            when = candidate.last_modified_at.strftime("%Y-%m-%d") if candidate.last_modified_at else "long ago"
            out.append(f"not injected in the last {_days(days)}; last modified {when}")
        elif signal == "high_cost_low_cite":
            out.append(
                f"injected {candidate.injection_count}× but cited {candidate.citation_count}× "
                f"({candidate.citation_rate:.0%}, below {max_cite_rate:.0%}); "
                f"{candidate.wasted_tokens:,} tokens wasted"
            )
        elif signal == "duplicate":
            out.append(f"near-duplicate of newer {candidate.duplicate_of}")
        else:
            out.append(signal)
    return out


def _days(days: float) -> str:
    text = f"{days:g}"
    return f"{text} day" if text == "1" else f"{text} days"


def make_buckets(start: int, end: int) -> queries.Buckets:
    """UTC-day-aligned buckets over [start, end], at most ``MAX_BUCKETS`` of them."""
    first_day = start // NS_PER_DAY
    last_day = end // NS_PER_DAY
    n_days = last_day - first_day + 1
    width_days = max(1, math.ceil(n_days / MAX_BUCKETS))
    count = math.ceil(n_days / width_days)
    return queries.Buckets(first_day * NS_PER_DAY, width_days * NS_PER_DAY, count)


def choose_buckets(start: int, end: int, stats: list[InjectionStat]) -> queries.Buckets:
    """Hourly buckets when the window's injections span under ``HOURLY_BELOW``
    (at least the 24 hours up to the last one, never before ``start``),
    else :func:`make_buckets` over the window."""
    firsts = [s.first_injected_at for s in stats if s.first_injected_at is not None]
    lasts = [s.last_injected_at for s in stats if s.last_injected_at is not None]
    if not firsts or not lasts:
        return make_buckets(start, end)
    first = datetime_to_ns(min(firsts))
    last = datetime_to_ns(max(lasts))
    if last - first >= HOURLY_BELOW:
        return make_buckets(start, end)
    last_hour = last // NS_PER_HOUR * NS_PER_HOUR
    origin = max(min(first // NS_PER_HOUR * NS_PER_HOUR, last_hour - 23 * NS_PER_HOUR),
                 start // NS_PER_HOUR * NS_PER_HOUR)
    return queries.Buckets(origin, NS_PER_HOUR, (last_hour - origin) // NS_PER_HOUR + 1)


def rate_bins(stats: list[InjectionStat]) -> list[tuple[str, int]]:
    counts = [0] * len(RATE_BINS)
    for stat in stats:
        for index, (_, low, high) in enumerate(RATE_BINS):
            if low <= stat.citation_rate <= high:
                counts[index] += 1
                break
    return [(label, n) for (label, _, _), n in zip(RATE_BINS, counts)]


def gather(
    store: Store,
    days: float = 30,
    user_id: str | None = None,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ReportData:
    """Everything the report shows. ``ValueError`` for a bad ``days``."""
    start, end = window(days, now)
    conn = getattr(store, "connection", None)
    if conn is None:  # a ClickHouse store (SPEC 6a): the same aggregates from its own SQL
        from ..store.clickhouse import report_queries

        return _gather(store, store, days, user_id, start, end, on_step, report_queries)
    if conn.in_transaction:  # the caller's read: already one snapshot
        return _gather(store, conn, days, user_id, start, end, on_step)
    # one read transaction: every number on the page comes from one snapshot,
    # even while an exporter writes (WAL) or merges the tail
    conn.execute("BEGIN")
    try:
        return _gather(store, conn, days, user_id, start, end, on_step)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # a read: nothing to undo, this only ends it


def _gather(store, conn, days, user_id, start, end, on_step, q=queries) -> ReportData:
    step = on_step or (lambda name: None)

    step("entity statistics")
    stats = store.injection_stats(days_back=days, user_id=user_id, now=ns_to_datetime(end))
    step("review queue")
    review = store.memory_review(days_back=days, user_id=user_id, now=ns_to_datetime(end))
    step("time series")
    buckets = choose_buckets(start, end, stats)
    injections_series, tokens_series, citations_series = q.series(conn, buckets, start, end, user_id)
    known = q.known_entity_count(conn, end, user_id)

    injections = sum(s.surfaced_count for s in stats)
    citations = sum(min(s.citation_count, s.surfaced_count) for s in stats)
    headline = Headline(
        known_entities=known,
        injected_entities=len(stats),
        injections=injections,
        tokens=sum(s.total_prompt_tokens for s in stats),
        citations=citations,
        citation_rate=citation_rate(citations, injections),
        wasted_tokens=sum(int(round(s.total_prompt_tokens * (1 - s.citation_rate))) for s in stats),
        review_candidates=len(review),
    )

    step("context budget")
    budget = budget_section.gather(store, days, user_id, ns_to_datetime(end))

    step("entity details")
    by_tokens = sorted(stats, key=lambda s: (-s.total_prompt_tokens, -s.surfaced_count,
                                             s.entity_type, s.entity_id))
    details = _details(conn, by_tokens, review, days, buckets, start, end, user_id, q)

    return ReportData(
        db_path=store.path if "://" in store.path else os.path.abspath(store.path),
        generated_at=ns_to_datetime(end),
        days=days,
        user_id=user_id,
        window_start=ns_to_datetime(start),
        window_end=ns_to_datetime(end),
        schema_version=store.schema_version,
        headline=headline,
        bucket_hours=buckets.width_ns // NS_PER_HOUR,
        bucket_starts=[ns_to_datetime(buckets.start_of(i)) for i in range(buckets.count)],
        injections_series=injections_series,
        tokens_series=tokens_series,
        citations_series=citations_series,
        top_entities=by_tokens[:TOP_CHART],
        rate_bins=rate_bins(stats),
        review=review[:REVIEW_ROWS],
        review_total=len(review),
        details=details,
        entities_with_stats=len(stats),
        budget=budget,
    )



def _details(conn, by_tokens, review, days, buckets, start, end, user_id, q=queries) -> list[EntityDetail]:
    stat_of = {(s.entity_type, s.entity_id): s for s in by_tokens}
    candidate_of = {(c.entity_type, c.entity_id): c for c in review}
    keys: list[tuple[str, str]] = []
    for key in [(s.entity_type, s.entity_id) for s in by_tokens[:DETAIL_TOP]] + [
        (c.entity_type, c.entity_id) for c in review[:DETAIL_REVIEW]
    ]:
        if key not in keys:
            keys.append(key)
    rows = q.entity_rows(conn, keys)
    pks = [r.pk for r in rows.values()]
    per_bucket = q.entity_series(conn, pks, buckets, start, end, user_id)
    sessions = q.recent_sessions_by_entity(conn, pks, start, end, user_id, SESSIONS_SHOWN)
    details = []
    for key in keys:
        row = rows.get(key)
        stat = stat_of.get(key)
        candidate = candidate_of.get(key)
        title = (candidate.title if candidate else None) or (row.title if row else None) \
            or (row.content_head if row else None) or key[1]
        injections = stat.surfaced_count if stat else 0
        citations = stat.citation_count if stat else (candidate.citation_count if candidate else 0)
        last = stat.last_injected_at if stat else (candidate.last_injected_at if candidate else None)
        details.append(
            EntityDetail(
                entity_type=key[0],
                entity_id=key[1],
                title=title,
                status=row.status if row else None,
                injections=injections,
                tokens=stat.total_prompt_tokens if stat else 0,
                sessions=stat.distinct_session_count if stat else 0,
                citations=citations,
                citation_rate=stat.citation_rate if stat else 0.0,
                first_seen_at=ns_to_datetime(row.first_seen_ns) if row else None,
                last_injected_at=last,
                signals=list(candidate.signals) if candidate else [],
                score=candidate.score if candidate else 0,
                reasons=reasons(candidate, days) if candidate else [],
                per_bucket=per_bucket.get(row.pk, []) if row else [],
                recent_sessions=sessions.get(row.pk, []) if row and injections else [],
            )
        )
    return details
