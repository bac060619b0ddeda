"""``memobs review``: the memory review queue (stale, costly, superseded, duplicate).

Highest score first, then most tokens wasted, then key (the API's order).
Each row's ``action`` says in one line what to do; ``memobs dismiss`` hides
a row a person has dealt with, ``--include-dismissed`` shows those too
(marked "(dismissed)" in the table, ``"dismissed": true`` in ``--json``).
``--type T`` keeps one entity type (the signals are still computed among
all entities). ``--max-cite-rate`` is a rate in [0, 1]; the counts must
not be negative; anything else is one line and exit 2.
"""

from __future__ import annotations

import click
from rich.text import Text

from ..store.signals import SIGNALS
from .common import (
    console, entity_cell, flexible_widths, losses_text, new_table,
    db_option, days_option, echo_json, fail, fmt_rate, echo_wrapped, json_option, limit_option,
    number_at_least, number_between, open_store_or_fail, rows_as_json, run_query, user_option,
)


def signal_option(ctx, param, values):
    """click callback of ``--signal`` (``review``, ``dismiss``): known names or one error line."""
    unknown = [v for v in values if v not in SIGNALS]
    if unknown:
        fail(f"unknown signal {unknown[0]!r}; known signals: {', '.join(SIGNALS)}")
    return list(values) or None


def render_review(candidates, title: str, limit: int = 0) -> None:
    """Print the review queue as a table (shared with ``memobs demo``).

    Five columns so that a 100-column terminal shows every id whole: the
    entity as its type over its id (the arguments of ``memobs dismiss``),
    the numbers, then the signals, the one-line action and the title.
    Text wraps at spaces; an id longer than its column folds onto the next
    line, never cut. At 100 columns the entity and the action each get 36
    characters or more: a UUID stays on one line in both."""
    shown = candidates[:limit] if limit else candidates
    numbers = [(str(c.score), _cited(c), f"{c.wasted_tokens:,}") for c in shown]
    what = [_what(c) for c in shown]
    out = console()
    entity_width, what_width = flexible_widths(
        out.width, [["score", *(n[0] for n in numbers)], ["cited", *(n[1] for n in numbers)],
                    ["wasted", *(n[2] for n in numbers)]],
        [max(len("entity"), *(max(len(c.entity_type), len(c.entity_id)) for c in shown)),  # header whole
         max(len(line) for text in what for line in text.plain.splitlines())])
    table = new_table(title)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("entity", overflow="fold", max_width=entity_width)
    table.add_column("cited", justify="right", no_wrap=True)
    table.add_column("wasted", justify="right", no_wrap=True)
    table.add_column("signals / action", overflow="fold", max_width=what_width)
    for c, (score, cited, wasted), text in zip(shown, numbers, what):
        table.add_row(score, entity_cell(c.entity_type, c.entity_id), cited, wasted, text)
    out.print(table)
    if len(shown) < len(candidates):
        out.print(f"{len(candidates) - len(shown)} more candidates (use --limit 0 or --json)")


def _cited(c) -> str:
    """``25% of 12``: the citation rate and the injections it is out of."""
    return f"{fmt_rate(c.citation_rate)} of {c.injection_count:,}" if c.injection_count else "-"


def _what(c) -> Text:
    """Signals, then the action (the id to act on whole), then the title."""
    text = Text(", ".join(c.signals), style="bold") + Text("\n" + c.action)
    if c.dismissed:
        text += Text(" (dismissed)", style="italic")
    if c.title and c.title != c.entity_id:  # the title defaults to the id: no need to repeat it
        text += Text("\n" + _shorten(c.title, TITLE_CHARS), style="dim")
    return text


TITLE_CHARS = 80  # a title is prose, not an id: a long one is shortened, visibly


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@click.command("review")
@db_option()
@days_option()
@user_option
@click.option("--type", "entity_type", default=None, metavar="T", help="Only entities of this type.")
@click.option("--signal", "signal", multiple=True, metavar="S", callback=signal_option,
              help=f"Only candidates with this signal (repeatable): {', '.join(SIGNALS)}.")
@click.option("--min-injections", default="3", show_default=True, metavar="N",
              callback=number_at_least("--min-injections", int, 0),
              help="high_cost_low_cite: at least N injections in the window.")
@click.option("--max-cite-rate", default="0.5", show_default=True, metavar="R",
              callback=number_between("--max-cite-rate", float, 0.0, 1.0),
              help="high_cost_low_cite: citation rate below R.")
@click.option("--min-wasted-tokens", default="1000", show_default=True, metavar="N",
              callback=number_at_least("--min-wasted-tokens", int, 0),
              help="high_cost_low_cite: or at least N tokens wasted in the window.")
@click.option("--include-dismissed", is_flag=True, help="Show dismissed candidates too (marked).")
@limit_option("Candidates")
@json_option
def command(db, days, user, entity_type, signal, min_injections, max_cite_rate, min_wasted_tokens,
            include_dismissed, limit, as_json):
    """The memory review queue: entities a human should update, merge or drop."""
    store = open_store_or_fail(db)
    with store:
        candidates = run_query(lambda: store.memory_review(
            days_back=days, user_id=user, signal_filter=signal,
            min_injections=min_injections, max_cite_rate=max_cite_rate,
            min_wasted_tokens=min_wasted_tokens, include_dismissed=include_dismissed))
        losses_line = losses_text(store)
    if entity_type is not None:
        # filtered after the query, not in it: the signals (duplicates,
        # supersession) are computed among all entities, as without --type
        candidates = [c for c in candidates if c.entity_type == entity_type]
    if as_json:
        echo_json(rows_as_json(candidates))
        if losses_line:  # beside the JSON, not in it: stdout stays the API's fields
            click.echo(losses_line, err=True)
        return
    if not candidates:
        echo_wrapped(f"No review candidates"
                     + (f" of type {entity_type}" if entity_type is not None else "")
                     + f" in the last {days:g} days"
                     + (f" for user {user}" if user else "")
                     + ("." if include_dismissed else " (dismissed ones hidden; --include-dismissed shows them)."))
    else:
        render_review(candidates, f"Memory review queue, last {days:g} days"
                      + (f", user {user}" if user else "") + (f", type {entity_type}" if entity_type else ""),
                      limit)
    if losses_line:
        console().print(losses_line, markup=False)
