"""``memobs stats``: per-entity injections, tokens and citations in the window.

The table shows each entity as its type over its id (the two arguments of
``memobs dismiss``), so a 36-character UUID fits whole in a 100-column
terminal; no result is a sentence, ``--json`` then prints ``[]``.
"""

from __future__ import annotations

import click
from .common import (
    console, entity_cell, flexible_widths, losses_text, new_table,
    db_option, days_option, echo_json, fmt_rate, fmt_time, json_option, limit_option,
    open_store_or_fail, rows_as_json, run_query, user_option,
)


def scope_text(days: float, user: str | None, entity_type: str | None) -> str:
    """``in the last 30 days for user alice (type fact)``: what an empty result covered."""
    return (f"in the last {days:g} days" + (f" for user {user}" if user else "")
            + (f" (type {entity_type})" if entity_type else ""))


@click.command("stats")
@db_option()
@days_option()
@user_option
@click.option("--type", "entity_type", default=None, metavar="T", help="Only this entity type.")
@limit_option("Rows")
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
    out = console()
    if not stats:
        out.print(f"No injections recorded {scope_text(days, user, entity_type)}.", markup=False)
    else:
        shown = stats[:limit] if limit else stats
        render_stats(shown, f"Memory injections, last {days:g} days" + (f", user {user}" if user else ""))
        if len(shown) < len(stats):
            out.print(f"{len(stats) - len(shown)} more entities (use --limit 0 or --json)")
    if losses_line:
        out.print(losses_line, markup=False)


def render_stats(stats, title: str) -> None:
    """The entity (type over id) and six short columns; the entity column
    takes what the numbers leave (36 characters at 100 columns)."""
    rows = [(str(s.surfaced_count), f"{s.total_prompt_tokens:,}", str(s.distinct_session_count),
             str(s.citation_count), fmt_rate(s.citation_rate), fmt_time(s.last_injected_at)) for s in stats]
    headers = ("surfaced", "tokens", "sess", "cited", "rate", "last injected")
    need = max(len("entity"), *(max(len(s.entity_type), len(s.entity_id)) for s in stats))  # header whole
    out = console()
    [entity_width] = flexible_widths(out.width, [[h, *col] for h, col in zip(headers, zip(*rows))], [need])
    table = new_table(title)
    table.add_column("entity", overflow="fold", max_width=entity_width)
    for name in headers[:-1]:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column(headers[-1], no_wrap=True)
    for s, cells in zip(stats, rows):
        table.add_row(entity_cell(s.entity_type, s.entity_id), *cells)
    out.print(table)
