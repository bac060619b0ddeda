"""Sections 5-7: the SQLite store, through the store engineer's ``bench_store``
functions (not re-implemented here): exporter ingest vs raw ``executemany``
and vs the writer's own statements replayed (the SQL alone),
``injection_stats`` / ``memory_review``, duplicate detection and its recall
(simhash, then MinHash on texts: ``bench_duplicates``).

Sizes: ``quick`` (smoke), the default (100k injection events, 20k entities
for duplicates: seconds), ``full`` (the spec's 1M events and 100k entities).
Targets are judged only at the spec's sizes.
"""

from __future__ import annotations

import os
import tempfile

from .common import Row, median, round_order

ROUNDS = {"quick": 1, "default": 3, "full": 1}  # ingest rounds (one at 1M: ~1 min each)
SIZES = {
    "quick": (2_000, 1_000, 1_000, 200),
    "default": (100_000, 50_000, 20_000, 2_000),
    "full": (1_000_000, 50_000, 100_000, 5_000),
}


def run(size: str = "default") -> list[Row]:
    try:
        from . import bench_store as bs
    except Exception as exc:  # noqa: BLE001 - the store may be mid-change; say so in the table
        return [Row("5", "SQLite store benchmarks", "not run", f"bench_store import failed: {type(exc).__name__}: {exc}")]
    n_events, n_entities, n_dup, sample = SIZES[size]
    full_events = n_events >= 1_000_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        spans = bs.make_spans(n_events, min(n_entities, n_events))
        path = os.path.join(tmp, "bench.db")
        statements = bs.writer_statements(os.path.join(tmp, "recorded.db"), spans)
        n_rows = sum(len(params) for many, _, params in statements if many)
        shaped, n_attributes = bs.memobs_shaped(spans)
        runs = {
            "raw": lambda r: bs.raw_executemany(os.path.join(tmp, f"raw-{r}.db"), n_events),
            "export": lambda r: bs.build_via_exporter(os.path.join(tmp, f"export-{r}.db"), spans),
            "writer": lambda r: bs.build(path if r == 0 else os.path.join(tmp, f"writer-{r}.db"), spans),
            "replay": lambda r: bs.replay(os.path.join(tmp, f"replay-{r}.db"), statements),
            "shaped": lambda r: bs.build_via_exporter(os.path.join(tmp, f"shaped-{r}.db"), shaped),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for r in range(ROUNDS[size]):  # interleaved, in the order round_order gives
            for name in round_order(list(runs), r):
                seconds[name].append(runs[name](r))
        raw, exported, ingest, replayed, exported_shaped = (n_events / median(seconds[name]) for name in runs)
        del statements, shaped
        rows.append(Row("5", f"SQLite exporter ingest, {n_events:,} injection events (export())",
                        f"{exported:,.0f} ev/s",
                        f"ReadableSpans, 512 per export(); raw executemany {raw:,.0f} rows/s;"
                        f" median of {len(seconds['export'])} interleaved run(s);"
                        f" export/raw {exported / raw:.2f}x", ">= 50k ev/s", exported >= 50_000))  # SPEC §10
        rows.append(Row("5", "  of which the store's writer alone (Writer.write)", f"{ingest:,.0f} ev/s",
                        f"the same spans as SpanRecords; writer/raw {ingest / raw:.2f}x"))
        rows.append(Row("5", "  the writer's own statements replayed (SQL alone)", f"{replayed:,.0f} ev/s",
                        f"the {n_rows:,} rows the writer built, executemany'd again on a new file, no Python"
                        f" between; export/replay {exported / replayed:.2f}x"))
        rows.append(Row("5", f"  the same events on memobs-shaped spans ({n_attributes} span attributes)",
                        f"{exported_shaped:,.0f} ev/s",
                        "export(); each span with the attributes memobs's recording sets (documents' ids and"
                        f" scores, totals) instead of 2; shaped/plain {exported_shaped / exported:.2f}x"))
        del spans
        store = bs.open_store(path)
        try:
            for label, fn in (
                ("injection_stats, all users", lambda: store.injection_stats(days_back=30, now=bs.NOW)),
                ("injection_stats, one user", lambda: store.injection_stats(days_back=30, user_id="user-3", now=bs.NOW)),
                ("memory_review, all users", lambda: store.memory_review(days_back=30, now=bs.NOW)),
                ("memory_review, one user", lambda: store.memory_review(days_back=30, user_id="user-3", now=bs.NOW)),
            ):
                seconds, result = bs.timed(fn, 3)
                rows.append(Row("6", f"{label}, {n_events:,} events", f"{seconds * 1000:,.0f} ms",
                                f"{len(result):,} rows; best of 3",
                                "<= 1 s" if full_events else "(<= 1 s at 1M)", seconds <= 1 if full_events else None))
        finally:
            store.close()
    seconds, flagged, recall, exact = bs.duplicate_figures(n_dup, sample)
    full_dup = n_dup >= 100_000
    rows.append(Row("7", f"duplicate detection, {n_dup:,} entities", f"{seconds:.2f} s", f"{flagged:,} flagged",
                    "<= 10 s" if full_dup else "(<= 10 s at 100k)", seconds <= 10 if full_dup else None))
    rows.append(Row("7", f"  recall vs exact all-pairs, {sample:,} sample", f"{recall:.3f}", f"{exact} true twins",
                    ">= 0.95", recall >= 0.95))
    from . import bench_duplicates  # the MinHash signal on real texts (issue 19)

    rows += bench_duplicates.run(size)
    return rows
