"""The report's first section: the context budget (SPEC §6b).

What share of the prompt tokens of the window's turns is memory, and the
uncited part of it, as cards and over time (the report's time axis: the
budget's per-day figures summed into its buckets, then as a share of the
bucket's prompt tokens). The figures are ``store.context_budget``'s, so the
page says what ``memobs budget`` says, on SQLite and ClickHouse alike. A
window without counted turns shows a short note saying how to get one.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Sequence

from ..store.results import ContextBudget
from . import svg


def gather(store, days: float, user_id: str | None, now: datetime) -> ContextBudget | None:
    """The store's budget for the report's window, ``None`` when the store has none."""
    method = getattr(store, "context_budget", None)
    return None if method is None else method(days_back=days, user_id=user_id, now=now)


def series(budget: ContextBudget | None, origin_ns: int, width_ns: int, count: int) -> tuple[list[float], list[float]]:
    """Per bucket (``origin_ns + i * width_ns``): memory's share of the prompt tokens and
    its uncited part, in percent (0 where no turn was counted)."""
    prompt, memory, uncited = [0] * count, [0] * count, [0] * count
    if budget is not None and count:
        for day in budget.by_day:
            try:
                start = datetime.strptime(day.day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            except ValueError:
                continue
            index = (int(start.timestamp()) * 1_000_000_000 - origin_ns) // width_ns
            index = max(0, min(count - 1, index))
            prompt[index] += day.prompt_tokens
            memory[index] += day.memory_tokens
            uncited[index] += day.uncited_memory_tokens
    return ([round(100 * m / p, 1) if p else 0.0 for m, p in zip(memory, prompt)],
            [round(100 * u / p, 1) if p else 0.0 for u, p in zip(uncited, prompt)])


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _card(metric: str, label: str, value: str, note: str) -> str:
    e = html.escape
    return (f'<div class="card" data-metric="{e(metric)}"><div class="label">{e(label)}</div>'
            f'<div class="value">{e(value)}</div><div class="note">{e(note)}</div></div>')


def render(budget: ContextBudget | None, labels: Sequence[str], share: Sequence[float],
           uncited: Sequence[float], per: str) -> str:
    """The section's HTML (``<section id="context-budget">``)."""
    e = html.escape
    head = '<section id="context-budget"><h2>Context budget: memory in the prompt</h2>'
    if budget is None or not budget.turns:
        why = ("this store does not compute it yet" if budget is None else
               "no turn in the window has both memory injected and a prompt size")
        return (head + f'<p class="hint">No context budget: {e(why)}. Prompt sizes come from an LLM '
                "instrumentation (OpenInference, OpenLLMetry) in the same <code>memobs.context</code> "
                "turn, or from <code>memobs.record_prompt()</code>.</p></section>")
    uncited_share = (budget.uncited_memory_tokens / budget.prompt_tokens) if budget.prompt_tokens else None
    over = (f"{budget.turns_over_prompt:,} turns with more memory than prompt (counted as recorded)"
            if budget.turns_over_prompt else "tokens of memory / prompt tokens")
    types = ", ".join(f"{t.entity_type} {_pct(t.memory_share)}" for t in budget.by_entity_type[:4])
    return (
        head
        + '<div class="cards">'
        + _card("memory-share", "Memory share of the prompt", _pct(budget.memory_share), over)
        + _card("uncited-share", "Uncited memory share", _pct(uncited_share),
                f"{budget.uncited_memory_tokens:,} of {budget.memory_tokens:,} memory tokens not cited")
        + _card("budget-turns", "Turns counted", f"{budget.turns:,}",
                f"{budget.prompt_tokens:,} prompt tokens; {types}")
        + "</div>"
        + '<div class="grid2">'
        + f"<figure><figcaption>Memory share of the prompt per {e(per)} (%)</figcaption>"
        + svg.bar_chart(share, labels, f"Memory share of the prompt per {per} (%)")
        + f"</figure><figure><figcaption>Uncited memory share per {e(per)} (%)</figcaption>"
        + svg.bar_chart(uncited, labels, f"Uncited memory share per {per} (%)", css_class="bar-alt")
        + "</figure></div></section>"
    )
