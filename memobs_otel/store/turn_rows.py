"""The writer's rows for the context budget (schema m008, SPEC §6b).

- a span's *turn* is its ``memobs.turn.id`` (set on every span started in a
  ``memobs.context`` block, see ``memobs_otel/turns.py``), else its trace id;
- a span carrying a prompt size gives an ``llm_calls`` row: its
  ``gen_ai.usage.input_tokens`` (GenAI conventions, OpenLLMetry), else
  OpenInference's ``llm.token_count.prompt`` (source ``llm``), else
  ``memobs.prompt.tokens`` (``memobs.record_prompt``, the LangChain and
  LlamaIndex plugins; source ``memobs``), with its model when named;
- a span with injection events gives a ``turn_injections`` row per entity
  type: their token sum and the pk range of the span's ``injections`` rows.

All of it is per span, but for one dict update per injection event (the
token sum per type), which keeps the budget from reading every injection.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Mapping

from .. import semconv as sc
from .schema import LLM_CALLS_TABLE, TURN_INJECTIONS_TABLE

SOURCE_LLM = "llm"  # an LLM instrumentation's span
SOURCE_MEMOBS = "memobs"  # memobs.record_prompt / a plugin's own count

_MODEL_KEYS = (sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL, sc.LLM_MODEL_NAME)


def present(conn: sqlite3.Connection) -> bool:
    """The file has m008's tables (a file from before is written without them)."""
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LLM_CALLS_TABLE,)
    ).fetchone() is not None


def _count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)  # OTLP JSON / ClickHouse give numbers as text too
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < 1 << 63 else None


def prompt_size(attrs: Mapping[str, Any]) -> tuple[int, str | None, str] | None:
    """``(input tokens, model, source)`` of a span's attributes, ``None`` when it has none."""
    get = attrs.get
    for key, source in ((sc.GEN_AI_USAGE_INPUT_TOKENS, SOURCE_LLM), (sc.LLM_TOKEN_COUNT_PROMPT, SOURCE_LLM),
                        (sc.MEMOBS_PROMPT_TOKENS, SOURCE_MEMOBS)):
        tokens = _count(get(key))
        if tokens is not None:
            model = next((str(get(k)) for k in _MODEL_KEYS if get(k) not in (None, "")), None)
            return tokens, model, source
    return None


def write_rows(conn: sqlite3.Connection, turn_spans: list[tuple], llm_spans: list[tuple]) -> None:
    """Insert ``turn_injections`` rows (turn, span pk, time, user, entity type, tokens, first pk,
    last pk) and an
    ``llm_calls`` row for each ``(span pk, span row, (tokens, model, source))``."""
    if turn_spans:
        conn.executemany(
            f"INSERT INTO {TURN_INJECTIONS_TABLE} (turn_id, span_pk, time_ns, user_id, entity_type, tokens,"
            " first_pk, last_pk) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", turn_spans)
    if llm_spans:
        # span row: (pk, trace, span, parent, name, kind, start, end, status, user, ..., turn)
        conn.executemany(
            f"INSERT INTO {LLM_CALLS_TABLE} (span_pk, turn_id, time_ns, user_id, input_tokens, model, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(pk, row[15], row[6], row[9], tokens, model, source) for pk, row, (tokens, model, source) in llm_spans])
