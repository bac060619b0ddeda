"""Exported turn ids: every span started in a ``memobs.context`` block carries it.

A *turn* (SPEC §2) is the innermost ``memobs.context`` block, else the
trace. The context budget (SPEC §6b) needs the LLM calls of a turn beside
the memory injected in it, but those calls are recorded by other
instrumentations (OpenInference, OpenLLMetry), often in traces of their own
(an LCEL chain with no span of the user's around it). So each block has a
random 64-bit id (``context``), and :class:`TurnSpanProcessor` stamps it as
``memobs.turn.id`` (16 hex chars) on **every** span started inside the
block, by any instrumentation, memobs's own spans included:

    provider.add_span_processor(TurnSpanProcessor())   # configure() does this

``configure()`` adds it to the provider it creates or is given (once per
provider). An application that sets up its own provider without
``configure()`` calls ``memobs_otel.turns.add_to(provider)``; without it,
memobs spans and LLM spans are tied only when they share a trace. Only public SDK API is used
(``SpanProcessor.on_start`` and ``span.set_attribute``). The stamp costs one
context-variable read per span outside a block, one attribute inside.

A span started *before* a block (a request span around it) has no turn id
of the block; when memobs records onto such a span inside the block (a
citation or ``record_injection`` on the current span) it stamps the block's
turn on it first (:func:`claim_span`), so what the answer cites stays in the
turn of what was injected. The store takes a span without ``memobs.turn.id``
as belonging to the turn of its trace.
"""

from __future__ import annotations

import weakref

from opentelemetry.sdk.trace import SpanProcessor

from . import guard, semconv as sc
from .context import current_turns


def turn_hex(turn: int) -> str:
    """A turn id as exported: 16 lowercase hex chars."""
    return f"{turn & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def current_turn_id() -> str | None:
    """The exported id of the innermost ``memobs.context`` block, ``None`` outside any."""
    turns = current_turns()
    return turn_hex(turns[-1]) if turns else None


class TurnSpanProcessor(SpanProcessor):
    """Sets ``memobs.turn.id`` on each span started inside a ``memobs.context`` block."""

    def __init__(self, provider=None) -> None:
        self._stopped = False
        self._provider = provider

    def on_start(self, span, parent_context=None) -> None:
        turns = current_turns() if not self._stopped else None
        if turns:
            try:
                span.set_attribute(sc.MEMOBS_TURN_ID, turn_hex(turns[-1]))
            except Exception:  # noqa: BLE001 - never into the host's span start
                guard.log_once("turn stamp", message="memobs: could not stamp the turn id on a span")

    def on_end(self, span) -> None:
        return None

    def shutdown(self) -> None:
        """Stop stamping (the provider keeps the processor: the SDK has no public way to
        remove one); a later ``configure()`` on the same provider adds a fresh one."""
        self._stopped = True
        try:
            if self._provider is not None and _stamped.get(self._provider) is self:
                del _stamped[self._provider]
        except TypeError:
            pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# provider -> the live processor memobs added to it
_stamped: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def add_to(provider) -> TurnSpanProcessor | None:
    """Add a :class:`TurnSpanProcessor` to ``provider`` unless a live one is there; returns
    the one added (``None``: there already was one). ``configure()``'s handle shuts it
    down with the rest, so it stops stamping."""
    try:
        if provider in _stamped:
            return None
        processor = TurnSpanProcessor(provider)
        provider.add_span_processor(processor)
        _stamped[provider] = processor
    except TypeError:  # not weak-referenceable: add it (a second stamp is harmless)
        processor = TurnSpanProcessor()
        provider.add_span_processor(processor)
    return processor


def stop(provider) -> None:
    """Stop the turn processor memobs added to ``provider``, if any (what a ``configure()``
    handle's ``shutdown`` does for its own); a later ``configure()`` adds a fresh one."""
    try:
        processor = _stamped.get(provider)
    except TypeError:
        return
    if processor is not None:
        processor.shutdown()


def exported() -> bool:
    """memobs records through a provider that stamps turns (``configure()``, :func:`add_to`)."""
    from . import config

    provider = config.tracer_provider()
    try:
        return provider in _stamped
    except TypeError:
        return False


def claim_span(span) -> None:
    """Inside a block, stamp its turn on ``span`` (a recording span memobs is about to
    record onto) when the span carries no turn id yet — only where turns are exported
    (:func:`exported`), so a provider without the processor sees no new attribute.
    Never raises."""
    turns = current_turns()
    if not turns or not exported():
        return
    try:
        attributes = getattr(span, "attributes", None)
        if attributes is not None and sc.MEMOBS_TURN_ID in attributes:
            return
        span.set_attribute(sc.MEMOBS_TURN_ID, turn_hex(turns[-1]))
    except Exception:  # noqa: BLE001
        guard.log_once("turn claim", message="memobs: could not stamp the turn id on the current span")
