"""Section 11: ``memobs.record_inventory`` of a whole store (issue 19: 100k items must not blow up
memory or the caller's time; it is an explicit call, not the hot path).

A fresh process (``python -m benchmarks.bench_inventory run N DB``) sets
memobs up with ``configure(db_path=DB)`` (the batch processor and the SQLite
exporter), makes one search first (the encoding loaded, the pipeline warm),
then records a complete inventory of N distinct ~200-character memories
given as a lazy generator, and reports:

- the caller's time in ``record_inventory`` (extraction, token counts and
  fingerprints of every item, the span and its overflow children);
- the time until the file holds them (``force_flush``: the exporter's
  batches, the writer's catalog rows and the complete-snapshot step);
- a second complete snapshot missing one item: caller and flush time (the
  writer derives the one delete, after scanning the store's known entities);
- peak RSS growth over the run (``ru_maxrss`` after minus before).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Row

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("refund policy customer shipping parcel agent memory window seat invoice manager approval order "
         "urgent amount euros contact email morning phone support answer delivery return label").split()


def _text(n: int) -> str:
    words = [WORDS[(n * 7 + i * 13) % len(WORDS)] for i in range(24)]
    return f"memory {n}: " + " ".join(words)


def _items(count: int, skip: int | None = None):
    for n in range(count):
        if n != skip:
            yield {"id": f"m-{n}", "content": _text(n), "metadata": {"created_at": "2025-01-01T00:00:00Z"}}


def _run(count: int, db: str) -> dict:
    import memobs_otel as memobs

    handle = memobs.configure(db_path=db, service_name="bench-inventory")
    memobs.record_inventory([{"id": "warm", "content": "warm up"}], entity_type="other")
    handle.force_flush()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    recorded = memobs.record_inventory(_items(count), entity_type="memory", store="kb", complete=True)
    caller = time.perf_counter() - start
    handle.force_flush()
    stored = time.perf_counter() - start
    start = time.perf_counter()
    memobs.record_inventory(_items(count, skip=0), entity_type="memory", store="kb", complete=True)
    again_caller = time.perf_counter() - start
    handle.force_flush()
    again = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    handle.shutdown()
    import sqlite3

    with sqlite3.connect(db) as conn:
        writes = conn.execute("SELECT COUNT(*) FROM writes w JOIN entities e ON e.pk = w.entity_pk"
                              " WHERE w.op = 'inventory' AND e.entity_type = 'memory'").fetchone()[0]
        deleted = conn.execute("SELECT COUNT(*) FROM entities WHERE status = 'deleted'").fetchone()[0]
    return {"recorded": recorded, "caller_s": caller, "stored_s": stored, "again_caller_s": again_caller,
            "again_s": again, "peak_kib": peak, "writes": writes, "deleted": deleted}


def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "inventory.db")
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_inventory", "run", str(count), db],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Row]:
    count = 2_000 if quick else 100_000
    m = measure(count)
    label = f"{count // 1000}k" if count >= 1000 else str(count)
    stored_ok = m["writes"] == 2 * count - 1 and m["deleted"] == 1
    return [
        Row("11", f"record_inventory of {label} items: caller time", f"{m['caller_s']:.2f} s",
            f"{m['caller_s'] / count * 1e6:.1f} µs per item (tokens, fingerprints, events)"),
        Row("11", "  until the SQLite file holds them", f"{m['stored_s']:.2f} s",
            f"{m['writes']:,} inventory writes stored over both snapshots", ok=stored_ok,
            target="every item stored"),
        Row("11", "  a second complete snapshot, one item missing", f"{m['again_s']:.2f} s",
            f"caller {m['again_caller_s']:.2f} s; {m['deleted']} entity marked deleted"),
        Row("11", "  peak memory growth over both", f"{m['peak_kib'] / 1024:.1f} MiB",
            "ru_maxrss after minus before, fresh process"),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        print(json.dumps(_run(int(sys.argv[2]), sys.argv[3])))
    else:
        for row in run("--quick" in sys.argv):
            print(row)
