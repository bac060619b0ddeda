"""Another instrumentation's span for a LangChain run, when one is active.

OpenInference's (``openinference-instrumentation-langchain``) and OpenLLMetry's
(``opentelemetry-instrumentation-langchain``) LangChain instrumentations are
callback handlers: each adds itself to every callback manager and starts a
span per run in ``on_*_start``. When one of them holds a span for a retriever
run, memobs records onto that span (see ``runs``) instead of starting its own:
one retriever span per call, in the chain's trace — OpenInference never makes
its spans current, so a span of memobs's own would otherwise start a trace
of its own.

How each one is asked (both read without changing anything):

- OpenInference: ``OpenInferenceTracer.get_span(run_id)`` (the tracer's own
  method; the package's public ``get_current_span()`` looks up the *parent*
  run of the current runnable, not the retriever run, so it is not used),
  and the SDK span inside the ``OpenInferenceSpan`` proxy it returns;
- OpenLLMetry: ``TraceloopCallbackHandler.spans[run_id].span``.

Handlers are recognised by their class's module, so neither package is
imported here. A handler whose lookup fails (another version, another shape)
is logged once and skipped: memobs then starts its own span, as without it.
"""

from __future__ import annotations

from typing import Any, Callable

from memobs_otel import guard


def _openinference(handler: Any, run_id: Any) -> Any:
    span = handler.get_span(run_id)
    # OpenInference's spans are ``OpenInferenceSpan`` proxies that pass every attribute
    # through its TraceConfig's masking and keep the span kind aside until ``end``.
    # memobs writes to the SDK span inside: its own attributes follow memobs's privacy
    # rules (no content unless memobs's capture is on), and its events can take the
    # same path as on memobs's own spans (measured: ~85 µs per k=10 call through the
    # proxy, benchmark section 8).
    return getattr(span, "__wrapped__", span) if span is not None else None


def _openllmetry(handler: Any, run_id: Any) -> Any:
    holder = handler.spans.get(run_id)
    return holder.span if holder is not None else None


_LOOKUPS = (
    ("openinference.instrumentation.langchain", _openinference),
    ("opentelemetry.instrumentation.langchain", _openllmetry),
)
_by_class: dict[type, Callable | None] = {}  # handler class -> its lookup (None: not a peer)


def _lookup_for(cls: type) -> Callable | None:
    try:
        return _by_class[cls]
    except KeyError:
        pass
    module = getattr(cls, "__module__", "") or ""
    found = next((lookup for prefix, lookup in _LOOKUPS if module.startswith(prefix)), None)
    if len(_by_class) < 256:
        _by_class[cls] = found
    return found


def has_peer(handlers: Any) -> bool:
    """One of ``handlers`` is OpenInference's or OpenLLMetry's LangChain handler."""
    return bool(handlers) and any(_lookup_for(type(handler)) is not None for handler in handlers)


def span_for(handlers: Any, run_id: Any) -> Any:
    """The recording span another instrumentation holds for ``run_id``, or None."""
    if not handlers or run_id is None:
        return None
    for handler in handlers:
        lookup = _lookup_for(type(handler))
        if lookup is None:
            continue
        span = guard.safe_invoke(f"langchain peer span ({type(handler).__module__})", lookup, handler, run_id)
        if span is not None and getattr(span, "is_recording", None) is not None and span.is_recording():
            return span
    return None
