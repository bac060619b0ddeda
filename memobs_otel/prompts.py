"""``memobs.record_prompt``: a prompt's size where no LLM instrumentation records it.

    with memobs.context(user_id="u-1"):
        docs = search_memory(question)
        prompt = build_prompt(question, docs)
        memobs.record_prompt(text=prompt, model="gpt-4o-mini")   # or input_tokens=N
        answer = llm(prompt)

The context budget (SPEC §6b) compares the memory injected in a turn with
the size of the turn's prompts. OpenInference (``llm.token_count.prompt``)
and OpenLLMetry / the GenAI conventions (``gen_ai.usage.input_tokens``)
record it on their LLM spans; an application without them calls
``record_prompt``. ``text`` is counted with the configured tokenizer
(``MEMOBS_TOKEN_ENCODING``) and never exported nor kept; ``input_tokens``
(the provider's own count) wins when both are given.

It records one span ``memobs.prompt`` in the current turn carrying
``memobs.prompt.tokens`` and ``gen_ai.request.model`` — memobs's own
attribute, not ``gen_ai.usage.input_tokens``, so that no backend counts it
as an LLM call's usage twice. In a turn that also has an instrumented LLM
call the store uses the instrumented calls and ignores these (see
``store/budget.py``). Never raises; a bad count is logged once.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from . import config, guard, semconv as sc
from .context import current_ids
from .turns import current_turn_id


def _record_prompt(text: Any, input_tokens: Any, model: Any) -> None:
    attrs: dict[str, Any] = {}
    if input_tokens is not None:
        if isinstance(input_tokens, bool) or not isinstance(input_tokens, int) or input_tokens < 0:
            guard.log_once("record_prompt input_tokens", message="memobs: record_prompt input_tokens must be "
                                                                 "a non-negative int; not recorded")
            return
        tokens = input_tokens
    elif isinstance(text, str):
        tokenizer = config.settings.get_measurer().tokenizer
        tokens = tokenizer.count(text)  # exact: one count per prompt, the text is dropped here
        attrs[sc.MEMOBS_TOKENIZER] = tokenizer.name
    else:
        guard.log_once("record_prompt nothing", message="memobs: record_prompt needs text (a str) or "
                                                        "input_tokens; not recorded")
        return
    attrs[sc.MEMOBS_PROMPT_TOKENS] = tokens
    if model is not None:
        attrs[sc.GEN_AI_REQUEST_MODEL] = str(model)
    ids = current_ids()
    attrs.update(ids)
    session = ids.get(sc.SESSION_ID)
    if session is not None:
        attrs[sc.GEN_AI_CONVERSATION_ID] = session
    turn = current_turn_id()  # also without configure()'s TurnSpanProcessor
    if turn is not None:
        attrs[sc.MEMOBS_TURN_ID] = turn
    span = config.get_tracer().start_span(sc.PROMPT_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attrs)
    span.end()


def record_prompt(text: str | None = None, input_tokens: int | None = None, model: str | None = None) -> None:
    """Record the size of a prompt sent in the current turn (``text`` counted, never
    exported; or ``input_tokens``). Never raises."""
    if config.settings.enabled:
        guard.safe_invoke("record_prompt", _record_prompt, text, input_tokens, model)
