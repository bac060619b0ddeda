"""``memobs budget``: what share of the prompt is memory, and how much of it went uncited.

Prints the window's totals and the same per entity type (``store.context_budget``,
SPEC §6b), then the turns with the highest memory share. ``--json`` prints the
API's fields. A share above 100% (a turn whose prompt was smaller than the
memory injected in it) is shown as it is and called out below the tables.
"""

from __future__ import annotations

import click
from rich.table import Table

from .common import (
    console, db_option, days_option, echo_json, fail, fmt_time, json_option, open_store_or_fail, run_query,
    user_option,
)


def _share(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _budget(store, days, user):
    method = getattr(store, "context_budget", None)
    if method is None:
        fail(f"{store.path}: the context budget is not available for this store yet")
    return run_query(lambda: method(days_back=days, user_id=user))


@click.command("budget")
@db_option()
@days_option()
@user_option
@json_option
def command(db, days, user, as_json):
    """Share of the prompt taken by memory, cited and uncited, per entity type and turn."""
    store = open_store_or_fail(db)
    with store:
        budget = _budget(store, days, user)
    if as_json:
        echo_json(budget.to_dict())
        return
    render_budget(budget, f"last {days:g} days" + (f", user {user}" if user else ""))


def render_budget(budget, scope: str, top: int | None = None) -> None:
    """Print ``budget`` (a ``ContextBudget``) as tables for people (also ``memobs demo``,
    with ``top`` turns only)."""
    out = console()
    if not budget.turns:
        out.print(f"No turn in the {scope} has both memory injected and a prompt size recorded.", markup=False)
        out.print("A prompt's size comes from an LLM span reporting its input tokens (OpenInference, "
                  "OpenLLMetry, or a LangChain/LlamaIndex model that reports usage), or from "
                  "memobs.record_prompt(text=...) called in the turn (the memobs.context block).",
                  markup=False)
        return
    totals = Table(title=f"Context budget, {scope}: {budget.turns:,} turns, "
                         f"{budget.prompt_tokens:,} prompt tokens")
    for name in ("memory", "turns", "tokens", "share", "cited", "uncited", "uncited share"):
        totals.add_column(name, justify="left" if name == "memory" else "right")

    def row(label, turns, tokens, share, cited, uncited):
        uncited_share = uncited / budget.prompt_tokens if budget.prompt_tokens else None
        totals.add_row(label, f"{turns:,}", f"{tokens:,}", _share(share), f"{cited:,}", f"{uncited:,}",
                       _share(uncited_share))

    row("all types", budget.turns, budget.memory_tokens, budget.memory_share,
        budget.cited_memory_tokens, budget.uncited_memory_tokens)
    for t in budget.by_entity_type:
        row(t.entity_type, t.turns, t.memory_tokens, t.memory_share, t.cited_memory_tokens,
            t.uncited_memory_tokens)
    out.print(totals)
    turns = Table(title="Turns with the highest memory share")
    for name in ("turn", "time", "user", "prompt", "memory", "share", "uncited"):
        turns.add_column(name, justify="right" if name in ("prompt", "memory", "share", "uncited") else "left",
                       no_wrap=name == "turn")
    for t in budget.top_turns[:top]:
        turns.add_row(t.turn_id, fmt_time(t.time), t.user_id or "-", f"{t.prompt_tokens:,}",
                    f"{t.memory_tokens:,}", _share(t.memory_share), f"{t.uncited_memory_tokens:,}")
    out.print(turns)
    if budget.turns_over_prompt:
        n = budget.turns_over_prompt
        out.print(f"{n} turn{'s' if n != 1 else ''} had a prompt smaller than the memory injected in it "
                  "(share over 100%): counted as recorded. Record only what reaches the prompt "
                  "(memobs.record_injection) or check the prompt size.", markup=False)
