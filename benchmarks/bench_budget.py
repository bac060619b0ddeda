"""Benchmark of the context budget (SPEC §6b; figures, not tests: nothing asserts).

    .venv/bin/python -m benchmarks.bench_budget            # 1M injection events
    .venv/bin/python -m benchmarks.bench_budget --quick    # 20k, for a smoke run

The file: ``bench_store.make_spans``'s retrieval spans (10 injections and one
citation each, 50k entities, 60 days) each in a ``memobs.context`` turn of its
own (``memobs.turn.id``), and one LLM span per turn in another trace
(``gen_ai.usage.input_tokens``), as OpenLLMetry records a chain's model call —
1M injection events make 100k turns, every one counted. Rows:

- ``store.context_budget`` over 30 days, all users and one user (target ≤ 1 s
  at 1M events);
- the writer's cost of m008 (a ``turn_injections`` row per span, an
  ``llm_calls`` row per LLM span, ``spans.turn_id``): ingest of the same spans
  into a file with m008 and one without (``MIGRATIONS[:7]``).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from dataclasses import replace
from unittest import mock

from memobs_otel import semconv as sc
from memobs_otel.store import open_store
from memobs_otel.store import connection
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import SpanRecord
from memobs_otel.store.schema import MIGRATIONS, migrate
from memobs_otel.store.writer import Writer

from .bench_store import NOW, make_spans
from .common import Row

BATCH = 512


def turn_spans(n_events: int, n_entities: int, seed: int = 11):
    """Each retrieval span in a turn of its own, with an LLM span of that turn in another trace."""
    rng = random.Random(seed)
    out = []
    for span in make_spans(n_events, n_entities, seed=seed):
        turn = f"{rng.getrandbits(64):016x}"
        out.append(replace(span, attributes={**span.attributes, sc.MEMOBS_TURN_ID: turn}))
        out.append(SpanRecord(
            trace_id=rng.getrandbits(128), span_id=rng.getrandbits(64), parent_span_id=None,
            name="ChatOpenAI.chat", kind="CLIENT", start_ns=span.start_ns + 20, end_ns=span.start_ns + 900,
            status="UNSET", attributes={sc.MEMOBS_TURN_ID: turn, sc.GEN_AI_USAGE_INPUT_TOKENS: 1500 + rng.randrange(3000),
                                        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"},
            events=()))
    return out


def open_writer(path: str, migrations=MIGRATIONS) -> Writer:
    """A writer on a new file with ``migrations``, opened as the exporter opens it
    (same pragmas): only the schema differs."""
    with mock.patch.object(connection, "migrate", lambda conn: migrate(conn, migrations=migrations)):
        return Writer(connect_for_write(path))


def write_both(spans, new: str, old: str) -> tuple[float, float]:
    """Write ``spans`` in exporter-sized batches into a file with m008 and one without,
    batch by batch in turn (load on a shared machine hits both alike); seconds each."""
    writers = (open_writer(new), open_writer(old, MIGRATIONS[:7]))
    took = [0.0, 0.0]
    for n, at in enumerate(range(0, len(spans), BATCH)):
        batch = spans[at : at + BATCH]
        for i in ((0, 1) if n % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            writers[i].write(batch)
            took[i] += time.perf_counter() - start
    for writer in writers:
        writer.conn.close()
    return took[0], took[1]


def timed(fn, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> list[Row]:
    n_events = 20_000 if quick else 1_000_000
    n_entities = 2_000 if quick else 50_000
    spans = turn_spans(n_events, n_entities)
    label = f"{n_events // 1000}k" if n_events < 1_000_000 else f"{n_events // 1_000_000}M"
    with tempfile.TemporaryDirectory(prefix="memobs-bench-budget-") as tmp:
        with_turns, without = os.path.join(tmp, "m008.db"), os.path.join(tmp, "m007.db")
        took_new, took_old = write_both(spans, with_turns, without)
        with open_store(with_turns) as store:
            budget = store.context_budget(days_back=30, now=NOW)
            all_users = timed(lambda: store.context_budget(days_back=30, now=NOW))
            one_user = timed(lambda: store.context_budget(days_back=30, user_id="user-7", now=NOW))
    rate_new, rate_old = n_events / took_new, n_events / took_old
    return [
        Row("6b", f"context_budget, {label} events, all users", f"{all_users:.2f} s",
            f"{budget.turns:,} turns of 30 days counted", "≤ 1 s", all_users <= 1.0),
        Row("6b", f"context_budget, {label} events, one user", f"{one_user:.2f} s", "", "≤ 1 s", one_user <= 1.0),
        Row("6b", f"writer ingest with m008 / without, {label} events", f"{rate_new / rate_old:.2f}x",
            f"{rate_new:,.0f} vs {rate_old:,.0f} injection events/s (batches in turn)"),
    ]


def main() -> None:
    from .common import format_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(format_table(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
