"""The bounds benchmark (section 10) still runs, at tiny sizes, and prints its rows.

Benchmarks are not tests: nothing here looks at a timing. The memory row's
accounted figures are counts and bytes, which are checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, ROOT)

from benchmarks import bench_bounds, run  # noqa: E402


def test_bounds_rows():
    rows = run.collect(quick=True, only={"bounds"})
    assert [(row.section, row.name) for row in rows] == [
        ("10", "bounded hot path: one 10 MB memory - one 1 KB memory, per call (cold)"),
        ("10", "memory: peak RSS growth over 500 distinct 4 KB memories"),
    ]
    assert rows[0].target == "<= 1 ms" and rows[0].figure.endswith("µs")
    # 500 distinct memories and the warm-up one: 501 measurements cached (the budget holds ~85k)
    assert "(501 entries)" in rows[1].detail
    assert "budget 64 MB (MEMOBS_MEMORY_BUDGET_MB)" in rows[1].detail
    assert re.fullmatch(r"\d+\.\d MB", rows[1].figure)


def test_rss_worker_reports_what_memobs_holds():
    got = bench_bounds.rss_growth(50)
    assert got["count"] == 50
    assert got["cache_entries"] == 51
    assert 0 < got["cache_bytes"] <= got["budget_bytes"] // 2
    assert 0 < got["buffer_bytes"] <= got["budget_bytes"] - got["budget_bytes"] // 2


def test_text_of_is_exact_and_repeatable():
    assert len(bench_bounds.text_of(4_096, 3)) == 4_096
    assert bench_bounds.text_of(100, 1) == bench_bounds.text_of(100, 1)
