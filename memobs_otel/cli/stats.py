"""``memobs stats``: per-entity injections, tokens and citations in the window."""

from __future__ import annotations

import click
from rich.table import Table

from .common import (
    console, losses_text,
    db_option, days_option, echo_json, fmt_rate, fmt_time, json_option, open_store_or_fail,
    rows_as_json, run_query, user_option,
)


@click.command("stats")
@db_option()
@days_option()
@user_option
@click.option("--type", "entity_type", default=None, metavar="T", help="Only this entity type.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows in the table (0 = all); --json prints all.")
@json_option
def command(db, days, user, entity_type, limit, as_json):
    """Injection statistics per memory entity (most surfaced first)."""
    store = open_store_or_fail(db)
    with store:
        stats = run_query(lambda: store.injection_stats(days_back=days, user_id=user,
                                                        entity_type=entity_type))
        losses_line = losses_text(store)
    if as_json:
        echo_json(rows_as_json(stats))
        if losses_line:  # beside the JSON, not in it: stdout stays the API's fields
            click.echo(losses_line, err=True)
        return
    table = Table(title=f"Memory injections, last {days:g} days" + (f", user {user}" if user else ""))
    for name, justify in (("type", "left"), ("id", "left"), ("surfaced", "right"),
                          ("tokens", "right"), ("sessions", "right"), ("cited", "right"),
                          ("cite rate", "right"), ("last injected", "left")):
        table.add_column(name, justify=justify)
    shown = stats[:limit] if limit else stats
    for s in shown:
        table.add_row(s.entity_type, s.entity_id, str(s.surfaced_count),
                      f"{s.total_prompt_tokens:,}", str(s.distinct_session_count),
                      str(s.citation_count), fmt_rate(s.citation_rate), fmt_time(s.last_injected_at))
    out = console()
    out.print(table)
    if len(shown) < len(stats):
        out.print(f"{len(stats) - len(shown)} more entities (use --limit 0 or --json)")
    if losses_line:
        out.print(losses_line, markup=False)
