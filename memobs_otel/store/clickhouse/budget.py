"""The context budget (SPEC §6b) on ClickHouse: per-turn facts in SQL, the arithmetic shared.

Two statements over the exporter's traces table (not the narrow table: the
turn is a *span* attribute, ``memobs.turn.id``, which it does not keep), each
one pass, giving what the SQLite store's ``budget.sqlite_facts`` gives; then
:func:`memobs_otel.store.budget.compute` — the same function for both stores.

- prompts: spans in the window carrying ``gen_ai.usage.input_tokens``,
  ``llm.token_count.prompt`` (source ``llm``) or ``memobs.prompt.tokens``
  (source ``memobs``), grouped by turn (``memobs.turn.id``, else the trace);
- memory: ``memobs.injection`` events of spans a day either side of the
  window, grouped by turn and entity type (the span's ``user.id`` is the
  turn's user, as the SQLite writer keeps it), with the tokens of the
  entities cited in the same turn (a ``memobs.citation`` event on a span of
  the turn).

The Collector's exporter stores every value as a string: a token count that
is not a number reads as 0 here, where the SQLite writer skips the span's
prompt size (it never happens with the instrumentations' integer counts).
"""

from __future__ import annotations

from ... import semconv as sc
from ..budget import CITATION_SLACK_NS

_TURN = f"if(SpanAttributes['{sc.MEMOBS_TURN_ID}'] != '', SpanAttributes['{sc.MEMOBS_TURN_ID}'], TraceId)"
_GEN_AI, _OI, _OWN = (f"SpanAttributes['{key}']" for key in (
    sc.GEN_AI_USAGE_INPUT_TOKENS, sc.LLM_TOKEN_COUNT_PROMPT, sc.MEMOBS_PROMPT_TOKENS))


def prompts_sql(table: str) -> str:
    return f"""
SELECT turn, toInt64(min(toUnixTimestamp64Nano(Timestamp))) AS first_ns,
       countIf(src = 'llm') AS llm_calls, sumIf(tokens, src = 'llm'), sumIf(tokens, src = 'memobs')
FROM (
    SELECT {_TURN} AS turn, Timestamp,
           if({_GEN_AI} != '' OR {_OI} != '', 'llm', 'memobs') AS src,
           toInt64OrZero(multiIf({_GEN_AI} != '', {_GEN_AI}, {_OI} != '', {_OI}, {_OWN})) AS tokens
    FROM {table}
    WHERE Timestamp >= fromUnixTimestamp64Nano({{start:Int64}})
      AND Timestamp < fromUnixTimestamp64Nano({{end:Int64}})
      AND ({_GEN_AI} != '' OR {_OI} != '' OR {_OWN} != '')
)
GROUP BY turn
"""


def memory_sql(table: str, user: bool) -> str:
    by_user = f" AND SpanAttributes['{sc.USER_ID}'] = {{user:String}}" if user else ""
    near = ("Timestamp >= fromUnixTimestamp64Nano({from_ns:Int64})"
            " AND Timestamp < fromUnixTimestamp64Nano({to_ns:Int64})")
    attr = "ev.Attributes['{}']".format
    tokens = f"toInt64OrZero({attr(sc.ENTITY_TOKENS)})"
    return f"""
SELECT turn, etype, anyIf(user, user != ''), sum(tokens), sum(if((turn, etype, eid) IN (
    SELECT {_TURN}, {attr(sc.ENTITY_TYPE)}, {attr(sc.ENTITY_ID)}
    FROM {table} ARRAY JOIN Events AS ev
    WHERE {near} AND has(Events.Name, '{sc.EVENT_CITATION}') AND ev.Name = '{sc.EVENT_CITATION}'
), tokens, 0))
FROM (
    SELECT {_TURN} AS turn, {attr(sc.ENTITY_TYPE)} AS etype, {attr(sc.ENTITY_ID)} AS eid,
           SpanAttributes['{sc.USER_ID}'] AS user, {tokens} AS tokens
    FROM {table} ARRAY JOIN Events AS ev
    WHERE {near}{by_user} AND has(Events.Name, '{sc.EVENT_INJECTION}') AND ev.Name = '{sc.EVENT_INJECTION}'
      AND etype != '' AND eid != ''
)
GROUP BY turn, etype
"""


def facts(client, table: str, start_ns: int, end_ns: int, user_id: str | None):
    """``(prompts, memory)`` as :func:`memobs_otel.store.budget.compute` takes them."""
    prompts = [(turn, first_ns, llm if calls else None, own)
               for turn, first_ns, calls, llm, own in client.rows(
                   prompts_sql(table), {"start": start_ns, "end": end_ns})]
    if not prompts:
        return [], []
    memory = [(turn, etype, user or None, tokens, cited) for turn, etype, user, tokens, cited in client.rows(
        memory_sql(table, user_id is not None),
        {"from_ns": start_ns - CITATION_SLACK_NS, "to_ns": end_ns + CITATION_SLACK_NS, "user": user_id or ""})]
    return prompts, memory
