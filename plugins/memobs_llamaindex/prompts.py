"""The prompt size of a LlamaIndex LLM call, when no LLM instrumentation records it.

The context budget (SPEC §6b) needs each turn's prompt size. OpenInference's
LlamaIndex instrumentation (``llm.token_count.prompt``) and OpenLLMetry's
(``gen_ai.usage.input_tokens``) record it on their LLM spans; without either,
memobs reads what the LLM reported and records it as
``memobs.record_prompt(input_tokens=N, model=...)`` in the current turn.

How: an event handler on LlamaIndex's root instrumentation dispatcher
(``llama_index.core.instrumentation.get_dispatcher()``), which every LLM's
``chat``/``complete`` (and their async and streaming forms) report to:
``LLMChatEndEvent`` and ``LLMCompletionEndEvent``. What is supported, read
from the event's response:

- ``response.additional_kwargs["prompt_tokens"]`` (or ``"input_tokens"``):
  what llama-index-llms-openai and the OpenAI-compatible integrations set;
- else ``response.raw``'s ``usage`` (a dict or an object):
  ``prompt_tokens`` (OpenAI) or ``input_tokens`` (Anthropic); the model from
  ``raw.model``.

A ``chat`` that a ``CustomLLM`` implements through its ``complete`` reports
both end events with one raw response: it is counted once. An LLM that reports neither (``MockLLM``, many local models) records nothing:
memobs does not count the prompt text here (it would be a guess at the
provider's tokenizer; call ``memobs.record_prompt(text=...)`` yourself). A
streamed response reports at its end, when the provider sent usage. Nothing
is recorded while OpenInference's or OpenLLMetry's LlamaIndex handler is on
the root dispatcher (theirs is the count, and the store would otherwise see
the call twice). ``memobs.uninstrument("llamaindex")`` removes the handler.
"""

from __future__ import annotations

from typing import Any

from memobs_otel import config, guard
from memobs_otel.prompts import record_prompt

KIND = "llamaindex prompt size"
_PEERS = ("openinference.instrumentation.llama_index", "opentelemetry.instrumentation.llamaindex")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def usage(response: Any) -> tuple[int | None, str | None]:
    """``(input tokens, model)`` a ChatResponse / CompletionResponse reports."""
    raw = getattr(response, "raw", None)
    model = _get(raw, "model") if raw is not None else None
    extra = getattr(response, "additional_kwargs", None)
    tokens = None
    if isinstance(extra, dict):
        tokens = _int(extra.get("prompt_tokens"))
        if tokens is None:
            tokens = _int(extra.get("input_tokens"))
    if tokens is None and raw is not None:
        found = _get(raw, "usage")
        if found is not None:
            tokens = _int(_get(found, "prompt_tokens"))
            if tokens is None:
                tokens = _int(_get(found, "input_tokens"))
    return tokens, (str(model) if model else None)


def has_peer(dispatcher: Any) -> bool:
    """OpenInference's or OpenLLMetry's handler is on the dispatcher."""
    for handler in [*getattr(dispatcher, "event_handlers", ()), *getattr(dispatcher, "span_handlers", ())]:
        if (type(handler).__module__ or "").startswith(_PEERS):
            return True
    return False


_last_raw: list = [None]  # the raw response last counted (one slot: a reference, not an id)


def _record(dispatcher: Any, event: Any) -> None:
    if has_peer(dispatcher):
        return
    response = getattr(event, "response", None)
    raw = getattr(response, "raw", None)
    if raw is not None:
        # an LLM whose chat() is its complete() (CustomLLM, MockLLM) reports both end
        # events for one call, with the same raw response: counted once
        if raw is _last_raw[0]:
            return
        _last_raw[0] = raw
    tokens, model = usage(response)
    if tokens is not None:
        record_prompt(input_tokens=tokens, model=model)


def make_handler(dispatcher: Any) -> Any:
    """The event handler (a LlamaIndex ``BaseEventHandler``) for ``dispatcher``."""
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent

    ends = (LLMChatEndEvent, LLMCompletionEndEvent)

    class MemobsPromptSizeHandler(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "MemobsPromptSizeHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, ends) and config.settings.enabled:
                guard.safe_invoke(KIND, _record, dispatcher, event)

    return MemobsPromptSizeHandler()


class PromptSizes:
    """Adds the handler to the root dispatcher on instrument, removes it on uninstrument."""

    def __init__(self) -> None:
        self.handler = None
        self.dispatcher = None

    def instrument(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        self.dispatcher = get_dispatcher()
        self.handler = make_handler(self.dispatcher)
        self.dispatcher.add_event_handler(self.handler)

    def uninstrument(self) -> None:
        if self.dispatcher is not None and self.handler is not None:
            self.dispatcher.event_handlers = [h for h in self.dispatcher.event_handlers if h is not self.handler]
        self.handler = self.dispatcher = None
