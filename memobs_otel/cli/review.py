"""``memobs review``: the memory review queue (stale, costly, superseded, duplicate).

Highest score first, then most tokens wasted, then key (the API's order).
Each row's ``action`` says in one line what to do; ``memobs dismiss`` hides
a row a person has dealt with, ``--include-dismissed`` shows those too
(marked "(dismissed)" in the table, ``"dismissed": true`` in ``--json``).
"""

from __future__ import annotations

import click
from rich import box
from rich.table import Table
from rich.text import Text

from ..store.signals import SIGNALS
from .common import (
    console, losses_text,
    db_option, days_option, echo_json, fail, fmt_rate, fmt_time, json_option, fmt_date,
    number_at_least, open_store_or_fail, rows_as_json, run_query, user_option,
)


def _signals(ctx, param, values):
    unknown = [v for v in values if v not in SIGNALS]
    if unknown:
        fail(f"unknown signal {unknown[0]!r}; known signals: {', '.join(SIGNALS)}")
    return list(values) or None


def render_review(candidates, title: str, limit: int = 0) -> None:
    """Print the review queue as a table (shared with ``memobs demo``).

    Seven columns so that a 100-column terminal shows every id whole (ids
    and actions fold, never cut): the last one says what to do, then the
    entity's title."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for name, justify in (("score", "right"), ("entity", "left"), ("signals", "left"), ("inj", "right"),
                          ("cited", "right"), ("wasted", "right"), ("action / title", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    shown = candidates[:limit] if limit else candidates
    for c in shown:
        action = c.action + (" (dismissed)" if c.dismissed else "")
        table.add_row(str(c.score), f"{c.entity_type}/{c.entity_id}", "\n".join(c.signals),
                      str(c.injection_count), fmt_rate(c.citation_rate), f"{c.wasted_tokens:,}",
                      Text(action) + Text("\n" + c.title[:60], style="dim"))
    out = console()
    out.print(table)
    if len(shown) < len(candidates):
        out.print(f"{len(candidates) - len(shown)} more candidates (use --limit 0 or --json)")


@click.command("review")
@db_option()
@days_option()
@user_option
@click.option("--signal", "signal", multiple=True, metavar="S", callback=_signals,
              help=f"Only candidates with this signal (repeatable): {', '.join(SIGNALS)}.")
@click.option("--min-injections", default="3", show_default=True, metavar="N",
              callback=number_at_least("--min-injections", int, 0),
              help="high_cost_low_cite: at least N injections in the window.")
@click.option("--max-cite-rate", default="0.5", show_default=True, metavar="R",
              callback=number_at_least("--max-cite-rate", float, 0.0),
              help="high_cost_low_cite: citation rate below R.")
@click.option("--min-wasted-tokens", default="1000", show_default=True, metavar="N",
              callback=number_at_least("--min-wasted-tokens", int, 0),
              help="high_cost_low_cite: or at least N tokens wasted in the window.")
@click.option("--include-dismissed", is_flag=True, help="Show dismissed candidates too (marked).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows in the table (0 = all); --json prints all.")
@json_option
def command(db, days, user, signal, min_injections, max_cite_rate, min_wasted_tokens, include_dismissed,
            limit, as_json):
    """The memory review queue: entities a human should update, merge or drop."""
    store = open_store_or_fail(db)
    with store:
        candidates = run_query(lambda: store.memory_review(
            days_back=days, user_id=user, signal_filter=signal,
            min_injections=min_injections, max_cite_rate=max_cite_rate,
            min_wasted_tokens=min_wasted_tokens, include_dismissed=include_dismissed))
        losses_line = losses_text(store)
    if as_json:
        echo_json(rows_as_json(candidates))
        if losses_line:  # beside the JSON, not in it: stdout stays the API's fields
            click.echo(losses_line, err=True)
        return
    if not candidates:
        click.echo(f"No review candidates in the last {days:g} days"
                   + (f" for user {user}" if user else "")
                   + ("." if include_dismissed else " (dismissed ones hidden; --include-dismissed shows them)."))
    else:
        render_review(candidates, f"Memory review queue, last {days:g} days"
                      + (f", user {user}" if user else ""), limit)
    if losses_line:
        console().print(losses_line, markup=False)
