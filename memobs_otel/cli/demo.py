"""``memobs demo``: run the instrumented example agent, then show stats, review and the context budget."""

from __future__ import annotations

import click

from ..demo import DEMO_DB, near_duplicate_distance, run_agent
from .common import console, days_option, echo_json, fail, open_store_or_fail, rows_as_json
from .budget import render_budget
from .review import render_review
from .stats import render_stats


@click.command("demo")
@click.option("--db", "db", default=DEMO_DB, show_default=True, metavar="PATH",
              help="Demo file; a previous demo file there is replaced, nothing else is.")
@days_option()
@click.option("--json", "as_json", is_flag=True, help="Print stats and review as JSON.")
def command(db, days, as_json):
    """Run a simulated support agent under memobs, then print stats and the review queue."""
    try:
        now = run_agent(db)
    except ValueError as exc:
        fail(str(exc))
    store = open_store_or_fail(db)
    with store:
        stats = store.injection_stats(days_back=days, now=now)
        review = store.memory_review(days_back=days, now=now)
        budget = store.context_budget(days_back=days, now=now)
    if as_json:
        echo_json({"db": db, "now": now.isoformat().replace("+00:00", "Z"),
                   "injection_stats": rows_as_json(stats), "memory_review": rows_as_json(review),
                   "context_budget": budget.to_dict()})
        return
    out = console()
    out.print(f"Recorded a simulated support agent into [bold]{db}[/bold] "
                  f"(near-duplicate simhash distance: {near_duplicate_distance()}).")
    render_stats(stats, f"Memory injections, last {days:g} days")
    render_review(review, f"Memory review queue, last {days:g} days")
    render_budget(budget, f"last {days:g} days", top=3)
    out.print(f"Explore: memobs stats --db {db} · memobs review --db {db} --json · memobs budget --db {db} · "
              f"sqlite3 {db} 'SELECT * FROM v_injections LIMIT 5'", markup=False)
