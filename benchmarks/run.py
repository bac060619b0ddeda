"""The one command: every benchmark, side by side, one table.

    .venv/bin/python -m benchmarks [--quick | --full] [--only 1,4,8]

Sections (benchmarks/README.md explains each row and what limits it):
1-3 decorator overhead and kill switch, 4 tokens and fingerprints,
5-7 the SQLite store (``bench_store``), 8 LangChain peers (wall clock, each
in its own process: ``peers``; all in one process, timed and with
instructions counted under callgrind: ``instructions``), 9 a 100k-search
burst through ``configure()``: spans lost and peak memory (``burst``),
6a the store on embedded ClickHouse (``clickhouse``, ``bench_clickhouse``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from .common import Row, format_table

SECTIONS = ("overhead", "tokens", "store", "peers", "instructions", "burst", "bounds", "clickhouse", "inventory",
            "budget")


def collect(quick: bool = False, full: bool = False, only: set[str] | None = None) -> list[Row]:
    """Run the selected sections and return their rows (the smoke test calls this)."""
    rows: list[Row] = []
    wanted = set(SECTIONS) if not only else only
    if "overhead" in wanted:
        from . import bench_overhead

        rows += bench_overhead.run(quick)
    if "tokens" in wanted:
        from . import bench_tokens

        rows += bench_tokens.run(quick)
    if "store" in wanted:
        from . import store_rows

        rows += store_rows.run("quick" if quick else "full" if full else "default")
    if "peers" in wanted:
        from . import bench_peers

        rows += bench_peers.run(quick)
    if "instructions" in wanted:
        from . import bench_instructions

        rows += bench_instructions.run(quick)
    if "burst" in wanted:
        from . import bench_burst

        rows += bench_burst.run(quick)
    if "bounds" in wanted:
        from . import bench_bounds

        rows += bench_bounds.run(quick)
    if "clickhouse" in wanted:  # 6a: the store on embedded ClickHouse (1M events; --full: 1M and 10M)
        from . import bench_clickhouse

        rows += bench_clickhouse.run("quick" if quick else "full" if full else "default")
    if "inventory" in wanted:  # 11: record_inventory of a 100k-item store (bench_inventory)
        from . import bench_inventory

        rows += bench_inventory.run(quick)
    if "budget" in wanted:  # 6b: store.context_budget at 1M events, the writer's cost of m008
        from . import bench_budget

        rows += bench_budget.run(quick)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes: only checks that everything runs")
    size.add_argument("--full", action="store_true", help="store at the spec's sizes (1M events, 100k entities)")
    parser.add_argument("--only", help=f"comma-separated sections among {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(only - set(SECTIONS)))}")
    start = time.perf_counter()
    rows = collect(args.quick, args.full, only)
    print(format_table(rows))
    print(f"\nPython {platform.python_version()} on {platform.machine()}, "
          f"{time.perf_counter() - start:.0f} s; medians of interleaved rounds"
          + ("; --quick: sizes too small for the figures to mean anything" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
