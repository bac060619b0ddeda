"""The ClickHouse benchmark still runs (tiny sizes) and prints its rows.

Beside tests/test_benchmarks_smoke.py; benchmarks are not tests: nothing
here looks at a timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, ROOT)

from benchmarks import bench_clickhouse, run  # noqa: E402
from benchmarks.common import format_table  # noqa: E402


def test_clickhouse_rows():
    rows = bench_clickhouse.run("quick", sqlite=True)
    names = [row.name for row in rows]
    assert names[0] == "chdb: 2,000 injection events generated in the exporter's schema"
    for path in ("otel_traces", "narrow table"):
        for label in ("injection_stats, all users", "injection_stats, one user",
                      "memory_review, all users", "memory_review, one user"):
            assert f"{label}, 2,000 events, chdb via {path}" in names
            assert f"{label}, 2,000 events, SQLite (beside)" in names
    by_name = {row.name: row for row in rows}
    # the generated data is what the store reads, the same through both paths
    assert not by_name["injection_stats, all users, 2,000 events, chdb via otel_traces"].detail.startswith("0 ")
    assert by_name["injection_stats, all users, 2,000 events, chdb via narrow table"].detail == \
        by_name["injection_stats, all users, 2,000 events, chdb via otel_traces"].detail
    assert all(row.ok is None for row in rows)  # targets are judged at 10M only
    assert "6a" in format_table(rows)


def test_the_section_is_in_the_one_command():
    assert "clickhouse" in run.SECTIONS
