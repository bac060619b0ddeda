"""The context budget (SPEC §6b): what share of each prompt is memory, and how much
of it the answer used.

    store.context_budget(days_back=30, user_id=None)   # -> ContextBudget

A *turn* is a ``memobs.context`` block (its ``memobs.turn.id``), else a trace.
Per turn the store gives two kinds of facts, and :func:`compute` does all of
the arithmetic — one implementation for SQLite (:func:`sqlite_facts`) and
ClickHouse (``store/clickhouse/budget.py``):

- **prompt tokens**: the sum of the ``input_tokens`` of the turn's LLM calls
  (``llm_calls``). The *sum*, not the largest: each call's prompt competes
  for a context window and is paid for, and memory injected once is often
  sent again in the agent's next call (the history) — but that resend is
  not counted as memory, so an agent that calls its model many times per
  turn shows a smaller share than one that calls it once. Calls recorded by
  an LLM instrumentation (source ``llm``) win: the turn's
  ``memobs.record_prompt`` / plugin counts (source ``memobs``) are used only
  in a turn with no instrumented call, so the two never add up twice.
- **memory tokens** per entity type: the tokens of every injection recorded
  in the turn; **cited** when a citation of the same entity was recorded in
  the same turn, **uncited** otherwise.

Counted turns have both (at least one injection and one LLM call). The LLM
calls choose the window (a turn is in it when one of its calls is) and the
turn's time (its first call). ``memory_share`` = memory / prompt tokens,
never capped: a turn whose prompt is smaller than the memory recorded as
injected (the app injected only part of what it retrieved, or recorded the
wrong prompt) has a share above 1, is counted, and is shown among the top
turns (``turns_over_prompt`` counts them). A user filter keeps the turns in
which that user's memory was injected.
"""

from __future__ import annotations

import heapq
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .results import ContextBudget, DayBudget, EntityTypeBudget, TurnBudget
from .schema import LLM_CALLS_TABLE, TURN_INJECTIONS_TABLE
from .timeparse import NS_PER_DAY, ns_to_datetime

TOP_TURNS = 10  # turns listed with the highest memory share
CITATION_SLACK_NS = NS_PER_DAY  # memory and citations are read from a day either side


def _day(number: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=number)).strftime("%Y-%m-%d")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def compute(prompts: Iterable[tuple], memory: Iterable[tuple], days_back: float,
            user_id: str | None = None, top: int = TOP_TURNS) -> ContextBudget:
    """The budget from per-turn facts.

    ``prompts``: ``(turn_id, first_call_ns, llm_tokens, memobs_tokens)`` per turn
    (``llm_tokens`` ``None`` when no instrumented call was recorded);
    ``memory``: ``(turn_id, entity_type, user_id, memory_tokens, cited_tokens)``
    per turn and entity type (already filtered to the user).
    """
    prompt_of: dict[str, tuple[int, int]] = {}
    for turn_id, first_ns, llm_tokens, own_tokens in prompts:
        tokens = llm_tokens if llm_tokens is not None else own_tokens
        prompt_of[str(turn_id)] = (int(first_ns), int(tokens or 0))
    turns: dict[str, list] = {}  # turn -> [memory, cited, user]
    types: dict[str, list] = {}  # type -> [turns, memory, cited]
    for turn_id, entity_type, user, tokens, cited in memory:
        turn_id = str(turn_id)
        if turn_id not in prompt_of:
            continue
        tokens, cited = int(tokens or 0), int(cited or 0)
        entry = turns.get(turn_id)
        if entry is None:
            entry = turns[turn_id] = [0, 0, user or None]
        entry[0] += tokens
        entry[1] += cited
        if entry[2] is None and user:
            entry[2] = user
        by_type = types.get(entity_type)
        if by_type is None:
            by_type = types[entity_type] = [0, 0, 0]
        by_type[0] += 1
        by_type[1] += tokens
        by_type[2] += cited

    prompt_total = memory_total = cited_total = over = 0
    days: dict[int, list] = {}  # day number -> [turns, prompt, memory, uncited]
    ranked: list[tuple] = []  # (share or -1, memory, first_ns, turn_id): TurnBudgets only for the top
    for turn_id, (memory_tokens, cited, user) in turns.items():
        first_ns, prompt_tokens = prompt_of[turn_id]
        prompt_total += prompt_tokens
        memory_total += memory_tokens
        cited_total += cited
        if memory_tokens > prompt_tokens:
            over += 1
        day = days.get(first_ns // NS_PER_DAY)
        if day is None:
            day = days[first_ns // NS_PER_DAY] = [0, 0, 0, 0]
        day[0] += 1
        day[1] += prompt_tokens
        day[2] += memory_tokens
        day[3] += memory_tokens - cited
        ranked.append((memory_tokens / prompt_tokens if prompt_tokens else -1.0, memory_tokens, first_ns, turn_id))
    # highest share first (no prompt token: last), then more memory, then newer
    rows = []
    for share, memory_tokens, first_ns, turn_id in heapq.nlargest(top, ranked):
        cited, user = turns[turn_id][1], turns[turn_id][2]
        rows.append(TurnBudget(turn_id, ns_to_datetime(first_ns), user, prompt_of[turn_id][1], memory_tokens,
                               None if share < 0 else share, cited, memory_tokens - cited))
    return ContextBudget(
        days_back=days_back, user_id=user_id, turns=len(turns), prompt_tokens=prompt_total,
        memory_tokens=memory_total, memory_share=_share(memory_total, prompt_total),
        cited_memory_tokens=cited_total, uncited_memory_tokens=memory_total - cited_total,
        turns_over_prompt=over,
        by_entity_type=sorted(
            (EntityTypeBudget(entity_type, n, tokens, _share(tokens, prompt_total), cited, tokens - cited)
             for entity_type, (n, tokens, cited) in types.items()),
            key=lambda t: (-t.memory_tokens, t.entity_type)),
        top_turns=rows,
        by_day=[DayBudget(_day(day), n, prompt, mem, _share(mem, prompt), uncited, _share(uncited, prompt))
                for day, (n, prompt, mem, uncited) in sorted(days.items())],
    )


def has_turns(conn: sqlite3.Connection) -> bool:
    """The file has m008's tables (readers never upgrade an older file)."""
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TURN_INJECTIONS_TABLE,)
    ).fetchone() is not None


_PROMPTS_SQL = f"""
SELECT turn_id, MIN(time_ns),
       SUM(CASE WHEN source = 'llm' THEN input_tokens END),
       SUM(CASE WHEN source = 'memobs' THEN input_tokens END)
FROM {LLM_CALLS_TABLE} WHERE time_ns >= :start AND time_ns < :end
GROUP BY turn_id
"""

# The memory near the window (a day either side: a turn's memory spans were started
# around its LLM calls): the per-span, per-type token sums the writer kept
# (turn_injections, m008), never the injection rows, summed per turn and type
# (``compute`` drops the turns without a prompt size in the window). Read
# through the covering time index: no join on the text turn ids, which cost
# SQLite more than this scan.
_MEMORY_SQL = f"""
SELECT turn_id, entity_type, MAX(user_id), SUM(tokens) FROM {TURN_INJECTIONS_TABLE}
WHERE time_ns >= :cited_from AND time_ns < :memory_to {{user}}
GROUP BY turn_id, entity_type
"""

# The cited part: each entity cited in a turn (a citation on a span of the turn:
# the writer copies the span's turn onto the citation row), the tokens of its
# injections in that turn, read by rowid range from the turn's rows of the
# entity's type (a span has one row per type, all with the span's range).
# ``+i.entity_pk``: no index on it, or SQLite builds one over all injections.
# ``r CROSS JOIN c``: SQLite's automatic index goes on the cited pairs (fewer
# than the turns' rows); the other way round measured 0.46-0.72 s vs 0.41-0.63 s
# at 1M events.
_CITED_SQL = f"""
WITH c AS MATERIALIZED (
    SELECT DISTINCT c.turn_id, c.entity_pk, e.entity_type
    FROM citations c CROSS JOIN entities e ON e.pk = c.entity_pk
    WHERE c.time_ns >= :cited_from AND c.time_ns < :memory_to AND c.turn_id IS NOT NULL),
r AS MATERIALIZED (
    SELECT turn_id, entity_type, first_pk, last_pk FROM {TURN_INJECTIONS_TABLE}
    WHERE time_ns >= :cited_from AND time_ns < :memory_to {{user}})
SELECT c.turn_id, c.entity_type, SUM(i.tokens)
FROM r CROSS JOIN c ON c.turn_id = r.turn_id AND c.entity_type = r.entity_type
CROSS JOIN injections i ON i.pk BETWEEN r.first_pk AND r.last_pk
WHERE +i.entity_pk = c.entity_pk
GROUP BY 1, 2
"""


def sqlite_facts(conn: sqlite3.Connection, start_ns: int, end_ns: int,
                 user_id: str | None = None) -> tuple[list[tuple], list[tuple]]:
    """``(prompts, memory)`` facts of the window, as :func:`compute` takes them."""
    if not has_turns(conn):
        return [], []
    params = {"start": start_ns, "end": end_ns, "cited_from": start_ns - CITATION_SLACK_NS,
              "memory_to": end_ns + CITATION_SLACK_NS, "user": user_id}
    prompts = conn.execute(_PROMPTS_SQL, params).fetchall()
    if not prompts:
        return [], []
    by_user = "AND user_id = :user" if user_id is not None else ""
    cited = {(turn, entity_type): tokens for turn, entity_type, tokens in
             conn.execute(_CITED_SQL.format(user=by_user), params)}
    memory = [(turn, entity_type, user, tokens, cited.get((turn, entity_type), 0))
              for turn, entity_type, user, tokens in conn.execute(_MEMORY_SQL.format(user=by_user), params)]
    return prompts, memory
