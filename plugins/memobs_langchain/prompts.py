"""The prompt size of a LangChain model call, when no LLM instrumentation records it.

The context budget (SPEC §6b) needs each turn's prompt size. OpenInference's
and OpenLLMetry's LangChain instrumentations put it on their LLM spans
(``llm.token_count.prompt`` / ``gen_ai.usage.input_tokens``); without either,
memobs reads what the chat model reported and records it as
``memobs.record_prompt(input_tokens=N, model=...)`` in the current turn.

Patched: ``CallbackManagerForLLMRun.on_llm_end`` (and the async one), which
every chat model and LLM call goes through. Read from the ``LLMResult``, for
each prompt of the call (its first generation: the candidates share one
prompt): ``generation.message.usage_metadata["input_tokens"]`` (chat models
that report usage: OpenAI, Anthropic, ... and langchain-core's fake models
given an ``AIMessage`` with ``usage_metadata``), else
``llm_output["token_usage"]["prompt_tokens"]`` / ``["input_tokens"]`` (older
integrations, completion LLMs). The model: ``llm_output["model_name"]`` or the
message's ``response_metadata["model_name"]``. Nothing is recorded when the
model reports no usage (memobs does not count the prompt text here: it would
be a guess at the provider's tokenizer), nor when one of the run's callback
handlers is OpenInference's or OpenLLMetry's (``peers.has_peer``): theirs is
the count, and the store would otherwise see the call twice.
"""

from __future__ import annotations

from typing import Any

from memobs_otel import config, guard
from memobs_otel.prompts import record_prompt

from . import peers

KIND = "langchain prompt size"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage(response: Any) -> tuple[int | None, str | None]:
    """``(input tokens, model)`` an ``LLMResult`` reports; ``(None, None)`` without usage."""
    total, model = None, None
    for candidates in getattr(response, "generations", None) or ():
        first = candidates[0] if candidates else None
        message = getattr(first, "message", None)
        metadata = getattr(message, "usage_metadata", None)
        tokens = _int(metadata.get("input_tokens")) if isinstance(metadata, dict) else None
        if tokens is not None:
            total = (total or 0) + tokens
        if model is None:
            response_metadata = getattr(message, "response_metadata", None)
            if isinstance(response_metadata, dict) and response_metadata.get("model_name"):
                model = str(response_metadata["model_name"])
    output = getattr(response, "llm_output", None)
    if isinstance(output, dict):
        if total is None:
            token_usage = output.get("token_usage") or output.get("usage")
            if isinstance(token_usage, dict):
                total = _int(token_usage.get("prompt_tokens")) or _int(token_usage.get("input_tokens"))
        if output.get("model_name"):
            model = str(output["model_name"])
    return total, model


def _record(run_manager: Any, response: Any) -> None:
    if peers.has_peer(getattr(run_manager, "handlers", None)):
        return
    tokens, model = usage(response)
    if tokens is not None:
        record_prompt(input_tokens=tokens, model=model)


def _response(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs.get("response")


def on_llm_end(wrapped, instance, args, kwargs):
    if config.settings.enabled:
        guard.safe_invoke(KIND, _record, instance, _response(args, kwargs))
    return wrapped(*args, **kwargs)


async def aon_llm_end(wrapped, instance, args, kwargs):
    if config.settings.enabled:
        guard.safe_invoke(KIND, _record, instance, _response(args, kwargs))
    return await wrapped(*args, **kwargs)
