"""Section 10: the bounds on memobs's own work and memory (issue 17).

- bounded hot path (SPEC section 10: a search returning one 10 MB memory
  costs the caller <= 1 ms more than one returning a 1 KB memory): a
  decorated search returning one memory, each call a *new* memory (a
  distinct prefix: nothing cached, the cold path every time, the strings
  built outside the timing), 1 KB and 10 MB calls alternating; the figure is
  the median over calls of (10 MB call - 1 KB call) in the same round. The
  warm figure (the same string again) is in the detail;
- memory: a fresh process (``python -m benchmarks.bench_bounds rss N``)
  makes N decorated searches, each returning one distinct 4 KB memory, on
  the shared drop-everything provider, and reports its peak RSS growth over
  the run (``ru_maxrss`` after minus before; the encoding is loaded and one
  search made before the baseline) and the bytes memobs accounts for (the
  measurement cache and the citation buffer, bounded together by
  ``MEMOBS_MEMORY_BUDGET_MB``, default 64).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import Row, median, us

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("refund policy customer shipping parcel agent memory window seat invoice manager approval order "
         "urgent amount euros contact email morning phone support answer delivery return label").split()
BIG_CHARS = 10_000_000
SMALL_CHARS = 1_000


def text_of(chars: int, seed: int) -> str:
    rnd = random.Random(seed)
    words = []
    size = 0
    while size <= chars:
        word = rnd.choice(WORDS) + str(rnd.randrange(100))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def _search():
    import memobs_otel as memobs

    @memobs.observe_retrieval(entity_type="doc", store="docs")
    def search(doc: str) -> list[dict]:
        return [{"id": "doc-1", "content": doc}]

    return search


def hot_path_row(quick: bool) -> Row:
    from memobs_otel import config

    from .tracing import make_provider

    config.use_tracer_provider(make_provider())
    config.reload_settings()
    config.settings.get_measurer()
    search = _search()
    big, small = text_of(BIG_CHARS, 1), text_of(SMALL_CHARS, 2)
    rounds = 3 if quick else 31
    cold = {"big": [], "small": []}
    warm = {"big": [], "small": []}
    for r in range(rounds + 1):
        docs = {"big": f"{r} " + big, "small": f"{r} " + small}  # new strings: nothing cached
        for name in (("big", "small") if r % 2 else ("small", "big")):
            doc = docs[name]
            for figures in (cold, warm):  # first call cold, the same string again warm
                start = time.perf_counter()
                search(doc)
                elapsed = time.perf_counter() - start
                if r:  # round 0 warms up
                    figures[name].append(elapsed)
        del docs
    cold_diff = median([b - s for b, s in zip(cold["big"], cold["small"])])
    warm_diff = median([b - s for b, s in zip(warm["big"], warm["small"])])
    return Row("10", "bounded hot path: one 10 MB memory - one 1 KB memory, per call (cold)", us(cold_diff),
               f"10 MB {us(median(cold['big']))}, 1 KB {us(median(cold['small']))} per call, each a new memory; "
               f"warm (the same memory again): 10 MB {us(median(warm['big']))}, 1 KB {us(median(warm['small']))} "
               f"(difference {us(warm_diff)}); {rounds} alternating rounds",
               "<= 1 ms", cold_diff <= 1e-3)


def rss_growth(count: int) -> dict:
    """In this process: ``count`` searches of distinct 4 KB memories; peak RSS growth and bytes held."""
    from memobs_otel import config, trace_buffer

    from .tracing import make_provider

    config.use_tracer_provider(make_provider())
    config.reload_settings()
    config.settings.measurer = None  # an empty cache and buffer: the run's own figures
    trace_buffer.clear()
    search = _search()
    base = text_of(4_096, 3)
    search("warm-up " + base)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for i in range(count):
        search(f"{i:08d} {base}"[:4_096])
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    measurer = config.settings.get_measurer()
    return {"count": count, "growth_kb": after - before, "peak_kb": after, "seconds": seconds,
            "cache_bytes": measurer.bytes, "cache_entries": len(measurer._cache),
            "buffer_bytes": trace_buffer.held_bytes(), "budget_bytes": config.settings.memory_budget_bytes}


def rss_row(quick: bool) -> Row:
    count = 500 if quick else 100_000
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("MEMOBS_MEMORY_BUDGET_MB", None)
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_bounds", "rss", str(count)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=3600, check=True)
    got = json.loads(done.stdout.splitlines()[-1])
    growth_mb = got["growth_kb"] / 1024
    budget_mb = got["budget_bytes"] / 2**20
    return Row("10", f"memory: peak RSS growth over {count:,} distinct 4 KB memories", f"{growth_mb:.1f} MB",
               f"accounted: measurement cache {got['cache_bytes'] / 2**20:.1f} MB ({got['cache_entries']:,} entries), "
               f"citation buffer {got['buffer_bytes'] / 2**20:.1f} MB, budget {budget_mb:.0f} MB "
               f"(MEMOBS_MEMORY_BUDGET_MB); peak RSS {got['peak_kb'] / 1024:.0f} MB; {got['seconds']:.0f} s; "
               f"fresh process, drop-everything exporter",
               f"<= budget ({budget_mb:.0f} MB)", growth_mb <= budget_mb)


def run(quick: bool = False) -> list[Row]:
    return [hot_path_row(quick), rss_row(quick)]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "rss":
        print(json.dumps(rss_growth(int(sys.argv[2]))))
    else:
        from .common import format_table

        print(format_table(run("--quick" in sys.argv)))
