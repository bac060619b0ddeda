"""Benchmarks of the SQLite store (figures, not tests; nothing here asserts).

    .venv/bin/python benchmarks/bench_store.py            # full: 1M injection events
    .venv/bin/python benchmarks/bench_store.py --quick    # 100k, for a smoke run

Prints one table:
- exporter ingest: injection events/s through ``Writer.write`` (spans,
  events JSON, derived rows, catalog) vs a raw ``executemany`` of the same
  number of bare injection rows into an indexed table, and vs the very
  statements and rows the writer ran, replayed on a new file (the SQL
  alone, no Python between); and through
  ``SQLiteSpanExporter.export()`` with SDK ``ReadableSpan``s (conversion
  included), 512 spans per call as a ``BatchSpanProcessor`` sends them;
- ``injection_stats`` and ``memory_review`` over 100k and 1M injection events
  (50k entities), all users and one user — growth 100k → 1M;
- ``memobs report`` (``build_report``: gather + render) over the same files;
- duplicate detection over 100k entities, and its recall against an exact
  all-pairs reference on a 5k sample.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from memobs_otel import semconv as sc
from memobs_otel.report import build_report
from memobs_otel.store import open_store
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.duplicates import hamming, newer_twins
from memobs_otel.store.records import EventRecord, SpanRecord
from memobs_otel.store.writer import Writer

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
NS = 1_000_000_000
DAY_NS = 86_400 * NS
TYPES = ("user_playbook", "agent_playbook")


def make_spans(n_events: int, n_entities: int, seed: int = 7, per_span: int = 10):
    """Retrieval spans with ``per_span`` injections each over 60 days, one citation
    per span, in time order."""
    rng = random.Random(seed)
    now_ns = int(NOW.timestamp()) * NS
    simhashes = [rng.getrandbits(64) for _ in range(n_entities)]
    spans = []
    for s in range(n_events // per_span):
        t0 = now_ns - rng.randrange(60 * DAY_NS)
        user = f"user-{rng.randrange(50)}"
        session = f"sess-{rng.randrange(5000)}"
        events = []
        for rank in range(per_span):
            e = rng.randrange(n_entities)
            events.append(EventRecord(sc.EVENT_INJECTION, t0 + rank, {
                sc.ENTITY_TYPE: TYPES[e % 2], sc.ENTITY_ID: str(e), sc.ENTITY_RANK: rank,
                sc.ENTITY_SCORE: 0.5, sc.ENTITY_TOKENS: 50 + e % 400,
                sc.ENTITY_CONTENT_HASH: f"{e:032x}", sc.ENTITY_SIMHASH: f"{simhashes[e]:016x}",
                sc.ENTITY_CREATED_AT: "2025-01-01T00:00:00Z",
            }))
        cited = events[0].attributes
        events.append(EventRecord(sc.EVENT_CITATION, t0 + per_span, {
            sc.ENTITY_TYPE: cited[sc.ENTITY_TYPE], sc.ENTITY_ID: cited[sc.ENTITY_ID],
            sc.CITATION_METHOD: "explicit"}))
        spans.append(SpanRecord(
            trace_id=rng.getrandbits(128), span_id=rng.getrandbits(64), parent_span_id=None,
            name="search_memory playbooks", kind="INTERNAL", start_ns=t0, end_ns=t0 + per_span + 1,
            status="UNSET", attributes={sc.USER_ID: user, sc.SESSION_ID: session},
            events=tuple(events)))
    # as an exporter receives them: in time order (random times would make
    # every time-ordered index a random-order one)
    spans.sort(key=lambda span: span.start_ns)
    return spans


def _recorded_span(k: int = 10):
    """A retrieval span as memobs records it: a decorated search returning ``k`` memories."""
    import memobs_otel as memobs

    from .tracing import record_one

    @memobs.observe_retrieval(entity_type=TYPES[0], store="playbooks")
    def search_memory(query: str, k: int = 10):
        return [{"id": str(i), "content": f"playbook {i}", "score": 0.5} for i in range(k)]

    return record_one(lambda: search_memory("refund policy", k=k))


def memobs_shaped(spans):
    """The same spans and events, each span carrying the attributes memobs's
    recording sets on a retrieval span (operation, store, top_k, every
    document's id and score, the injection totals: ~30), where ``make_spans``
    gives only the user and session ids. Returns ``(spans, attributes per span)``."""
    recorded = dict(_recorded_span().attributes)
    id_keys = [key for key in recorded if key.endswith(f".{sc.RETRIEVAL_DOCUMENT_ID}")]
    shaped = []
    for s in spans:
        attributes = {**recorded, **s.attributes}
        for key, event in zip(id_keys, s.events):
            attributes[key] = event.attributes[sc.ENTITY_ID]
        shaped.append(SpanRecord(
            trace_id=s.trace_id, span_id=s.span_id, parent_span_id=s.parent_span_id, name=s.name,
            kind=s.kind, start_ns=s.start_ns, end_ns=s.end_ns, status=s.status,
            attributes=attributes, events=s.events))
    return shaped, len(shaped[0].attributes) if shaped else 0


def timed(fn, repeat: int = 1):
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def settle() -> None:
    """Pay the garbage collector's debt for the fixtures before timing.

    The fixtures (up to 100k spans and 1.1M events, built in one go just
    before the timer) promote hundreds of thousands of objects, and the
    full collection they have earned would otherwise fall inside the timed
    loop (~0.3 s per 100k events here), charged to the writer. In a host
    the spans are built over the application's own time, and so is that
    debt. What the writer's own allocations cost the collector stays timed.
    """
    gc.collect()


def build(path: str, spans, batch: int = 512) -> float:
    """Seconds to store ``spans`` through one ``Writer`` (what the exporter keeps)."""
    conn = connect_for_write(path)
    writer = Writer(conn)
    settle()
    start = time.perf_counter()
    for i in range(0, len(spans), batch):
        writer.write(spans[i : i + batch])
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


class _Recording:
    """A connection (or cursor) that logs what it is asked to run, then runs it."""

    def __init__(self, target, log: list) -> None:
        self._target, self._log = target, log

    def execute(self, sql, params=()):
        self._log.append((False, sql, tuple(params)))
        return self._target.execute(sql, params)

    def executemany(self, sql, rows):
        rows = list(rows)
        self._log.append((True, sql, rows))
        return self._target.executemany(sql, rows)

    def cursor(self):
        return _Recording(self._target.cursor(), self._log)

    def __getattr__(self, name):
        return getattr(self._target, name)


def writer_statements(path: str, spans, batch: int = 512) -> list:
    """Every statement the writer runs to store ``spans`` (as ``build`` does),
    with its parameters: ``(many, sql, params)`` in order."""
    log: list = []
    conn = connect_for_write(path)
    writer = Writer(_Recording(conn, log))
    for i in range(0, len(spans), batch):
        writer.write(spans[i : i + batch])
    conn.close()
    return log


def replay(path: str, log: list) -> float:
    """Seconds to run the writer's statements again, on a new file, straight
    through ``sqlite3`` (``executemany`` of the very rows the writer built):
    what SQLite and the driver cost for the ingest, without the writer's Python."""
    conn = connect_for_write(path)
    execute, executemany = conn.execute, conn.executemany
    settle()
    start = time.perf_counter()
    for many, sql, params in log:
        if many:
            executemany(sql, params)
        else:
            execute(sql, params).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def readable_spans(spans):
    """The same spans as SDK ``ReadableSpan``s (what an exporter receives),
    their attributes held as the SDK's ``Span`` holds them: span and event
    attributes in ``BoundedAttributes`` (128 max, as the SDK's default limits)."""
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    resource = Resource.create({"service.name": "bench"})
    scope = InstrumentationScope("memobs_otel")
    return [
        ReadableSpan(
            name=s.name,
            context=SpanContext(s.trace_id, s.span_id, is_remote=False, trace_flags=TraceFlags(1)),
            parent=None,
            resource=resource,
            attributes=BoundedAttributes(128, s.attributes, immutable=False),
            events=[Event(e.name, BoundedAttributes(128, e.attributes, immutable=True), e.time_ns)
                    for e in s.events],
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=s.start_ns,
            end_time=s.end_ns,
            instrumentation_scope=scope,
        )
        for s in spans
    ]


def build_via_exporter(path: str, spans, batch: int = 512) -> float:
    """Seconds to export ``spans`` through ``SQLiteSpanExporter.export()``."""
    from memobs_otel.exporters import SQLiteSpanExporter

    readable = readable_spans(spans)
    exporter = SQLiteSpanExporter(path, apply_env_retention=False)
    settle()
    start = time.perf_counter()
    for i in range(0, len(readable), batch):
        exporter.export(readable[i : i + batch])
    elapsed = time.perf_counter() - start
    exporter.shutdown()
    return elapsed


def raw_executemany(path: str, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE inj (time_ns INT, entity_type TEXT, entity_id TEXT, tokens INT,"
                 " session_id TEXT, user_id TEXT)")
    conn.execute("CREATE INDEX inj_e ON inj (entity_type, entity_id, time_ns)")
    rows = [(i, TYPES[i % 2], str(i % 50_000), 100, f"s{i % 5000}", f"u{i % 50}") for i in range(n)]
    start = time.perf_counter()
    for i in range(0, n, 5120):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO inj VALUES (?, ?, ?, ?, ?, ?)", rows[i : i + 5120])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def duplicate_figures(n: int, sample: int, seed: int = 11):
    """Entities in clusters of near-copies (1-3 bits flipped) among random ones."""
    rng = random.Random(seed)
    values = []
    while len(values) < n:
        base = rng.getrandbits(64)
        values.append(base)
        for _ in range(rng.randrange(0, 3)):
            flipped = base
            for bit in rng.sample(range(64), rng.randrange(1, 4)):
                flipped ^= 1 << bit
            values.append(flipped)
    values = values[:n]
    hashes = [None] * n
    newness = list(range(n))
    rng.shuffle(newness)
    elapsed, found = timed(lambda: newer_twins(values, hashes, newness))
    # exact reference on a sample: all pairs
    idx = rng.sample(range(n), sample)
    sub_values = [values[i] for i in idx]
    sub_newness = [newness[i] for i in idx]
    exact = set()
    for a in range(sample):
        for b in range(sample):
            if sub_newness[b] > sub_newness[a] and hamming(sub_values[a], sub_values[b]) <= 3:
                exact.add(a)
                break
    lsh = set(newer_twins(sub_values, [None] * sample, sub_newness))
    recall = len(exact & lsh) / len(exact) if exact else 1.0
    return elapsed, len(found), recall, len(exact)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100k events only")
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            spans = make_spans(n, 50_000)
            path = os.path.join(tmp, f"bench-{n}.db")
            ingest = build(path, spans)
            rows.append((f"ingest {n:,} injection events (Writer.write)", f"{n / ingest:,.0f} events/s"))
            exported = build_via_exporter(os.path.join(tmp, f"export-{n}.db"), spans)
            rows.append((f"ingest {n:,} injection events (SQLiteSpanExporter.export)", f"{n / exported:,.0f} events/s"))
            if n == sizes[0]:
                raw = raw_executemany(os.path.join(tmp, "raw.db"), n)
                rows.append((f"raw executemany {n:,} bare rows", f"{n / raw:,.0f} rows/s"))
                rows.append(("ingest / raw executemany throughput", f"{raw / ingest:.2f}x"))
                replayed = replay(os.path.join(tmp, "replayed.db"),
                                  writer_statements(os.path.join(tmp, "recorded.db"), spans))
                rows.append(("the writer's statements replayed (SQL alone)", f"{n / replayed:,.0f} events/s"))
            store = open_store(path)
            t, stats = timed(lambda: store.injection_stats(days_back=30, now=NOW), 3)
            rows.append((f"injection_stats, {n:,} events, all users ({len(stats):,} rows)", f"{t * 1000:,.0f} ms"))
            t, _ = timed(lambda: store.injection_stats(days_back=30, user_id="user-3", now=NOW), 3)
            rows.append((f"injection_stats, {n:,} events, one user", f"{t * 1000:,.0f} ms"))
            t, review = timed(lambda: store.memory_review(days_back=30, now=NOW), 3)
            rows.append((f"memory_review, {n:,} events, all users ({len(review):,} candidates)", f"{t * 1000:,.0f} ms"))
            t, _ = timed(lambda: store.memory_review(days_back=30, user_id="user-3", now=NOW), 3)
            rows.append((f"memory_review, {n:,} events, one user", f"{t * 1000:,.0f} ms"))
            store.close()
            t, _ = timed(lambda: build_report(path, days=30, now=NOW))
            rows.append((f"memobs report (build_report), {n:,} events, all users", f"{t * 1000:,.0f} ms"))
            del spans
        n_dup = 20_000 if args.quick else 100_000
        elapsed, flagged, recall, exact = duplicate_figures(n_dup, 2_000 if args.quick else 5_000)
        rows.append((f"duplicate detection, {n_dup:,} entities ({flagged:,} flagged)", f"{elapsed:.2f} s"))
        rows.append((f"duplicate recall vs exact all-pairs sample ({exact} true)", f"{recall:.3f}"))
    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark'.ljust(width)}  figure")
    print(f"{'-' * width}  {'-' * 18}")
    for name, figure in rows:
        print(f"{name.ljust(width)}  {figure}")


if __name__ == "__main__":
    sys.exit(main())
