"""Sections 1-3: the decorator's cost per call.

1. A search decorated with ``@memobs.observe_retrieval`` returning k=10
   entities (token cache warm) against the same search wrapped in a
   hand-written OTel span carrying the same attributes and the same 10
   ``memobs.injection`` events (token counts and fingerprints looked up in a
   precomputed dict, as a hand-written cache would). Both run on one real
   SDK ``TracerProvider`` (``tracing.PROCESSOR``), and ``same_spans`` checks
   that both export identical span names, attributes and events.
2. The same at k=1 and k=50: how the cost grows with the number of entities.
3. The kill switch (``MEMOBS_ENABLED=false``): the decorated search against
   the undecorated function, in µs per call.
"""

from __future__ import annotations

import json
import os
from typing import Callable

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import memobs_otel as memobs
from memobs_otel import config, semconv as sc

from .common import Row, interleaved, median, paired_difference, paired_ratio, per_call, us
from .texts import memory_texts
from .tracing import PROCESSOR, make_provider

ENTITY_TYPE = "playbook"
STORE = "playbooks"
SPAN_NAME = f"{sc.OPERATION_SEARCH_MEMORY} {STORE}"


def make_docs(k: int) -> list[dict]:
    texts = memory_texts(k, seed=k)
    return [{"id": f"pb-{i}", "content": text, "score": round(1.0 - i / 100, 2)} for i, text in enumerate(texts)]


def make_search(docs: list[dict]) -> Callable:
    def search(query: str, k: int = 10) -> list[dict]:
        return docs[:k]

    return search


def make_hand_written(search: Callable, tracer, docs: list[dict]) -> Callable:
    """The same span and events, written by hand against the OTel API."""
    measurer = config.settings.get_measurer()
    cache = {d["content"]: measurer.measure(d["content"]) for d in docs}  # precomputed, like a warm cache
    tokenizer = measurer.tokenizer.name

    def hand_search(query: str, k: int = 10) -> list[dict]:
        start_attrs = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_SEARCH_MEMORY,
            sc.OPENINFERENCE_SPAN_KIND: sc.OPENINFERENCE_KIND_RETRIEVER,
            sc.GEN_AI_MEMORY_STORE_ID: STORE,
            sc.GEN_AI_REQUEST_TOP_K: k,
        }
        with tracer.start_as_current_span(SPAN_NAME, kind=SpanKind.CLIENT, attributes=start_attrs) as span:
            result = search(query, k=k)
            attrs = {sc.MEMOBS_RECORD_COUNT: len(result)}
            listed = []
            for i, doc in enumerate(result[: sc.MAX_RETRIEVAL_DOCUMENTS]):
                prefix = f"{sc.RETRIEVAL_DOCUMENT_PREFIX}.{i}."
                attrs[prefix + sc.RETRIEVAL_DOCUMENT_ID] = doc["id"]
                attrs[prefix + sc.RETRIEVAL_DOCUMENT_SCORE] = doc["score"]
                listed.append({"id": doc["id"], "score": doc["score"]})
            attrs[sc.OUTPUT_VALUE] = json.dumps(listed, separators=(",", ":"))
            attrs[sc.OUTPUT_MIME_TYPE] = sc.MIME_JSON
            total = 0
            for rank, doc in enumerate(result):
                m = cache[doc["content"]]
                total += m.tokens
                event = {
                    sc.ENTITY_TYPE: ENTITY_TYPE, sc.ENTITY_ID: doc["id"], sc.ENTITY_TOKENS: m.tokens,
                    sc.ENTITY_CONTENT_HASH: m.content_hash, sc.ENTITY_SIMHASH: m.simhash,
                    sc.ENTITY_SCORE: doc["score"], sc.ENTITY_RANK: rank,
                }
                if m.minhash is not None:
                    event[sc.ENTITY_MINHASH] = m.minhash
                span.add_event(sc.EVENT_INJECTION, event)
            attrs[sc.MEMOBS_INJECTION_COUNT] = len(result)
            attrs[sc.MEMOBS_INJECTION_TOKENS] = total
            attrs[sc.MEMOBS_TOKENIZER] = tokenizer
            span.set_attributes(attrs)
            return result

    return hand_search


def _span_shape(span) -> tuple:
    return (span.name, span.kind, dict(span.attributes),
            [(e.name, dict(e.attributes)) for e in span.events])


def same_spans(k: int = 10) -> bool:
    """Both variants export the same span: name, kind, attributes, events."""
    exporter = InMemorySpanExporter()
    provider = make_provider(exporter)
    docs = make_docs(k)
    search = make_search(docs)
    config.use_tracer_provider(provider)
    try:
        memobs.observe_retrieval(entity_type=ENTITY_TYPE, store=STORE)(search)("q", k=k)
        make_hand_written(search, provider.get_tracer("bench"), docs)("q", k=k)
    finally:
        config.use_tracer_provider(None)
    first, second = exporter.get_finished_spans()
    return _span_shape(first) == _span_shape(second)


def decorated_vs_hand(k: int, calls: int, rounds: int) -> dict[str, list[float]]:
    provider = make_provider()
    docs = make_docs(k)
    search = make_search(docs)
    config.use_tracer_provider(provider)
    try:
        decorated = memobs.observe_retrieval(entity_type=ENTITY_TYPE, store=STORE)(search)
        hand = make_hand_written(search, provider.get_tracer("bench"), docs)
        return interleaved({
            "bare": lambda: per_call(lambda: search("q", k=k), calls),
            "memobs": lambda: per_call(lambda: decorated("q", k=k), calls),
            "hand": lambda: per_call(lambda: hand("q", k=k), calls),
        }, rounds)
    finally:
        config.use_tracer_provider(None)
        provider.shutdown()


def kill_switch(calls: int, rounds: int) -> dict[str, list[float]]:
    docs = make_docs(10)
    search = make_search(docs)
    decorated = memobs.observe_retrieval(entity_type=ENTITY_TYPE, store=STORE)(search)
    saved = os.environ.get("MEMOBS_ENABLED")
    os.environ["MEMOBS_ENABLED"] = "false"
    config.reload_settings()
    try:
        return interleaved({
            "bare": lambda: per_call(lambda: search("q", k=10), calls),
            "memobs": lambda: per_call(lambda: decorated("q", k=10), calls),
        }, rounds)
    finally:
        if saved is None:
            del os.environ["MEMOBS_ENABLED"]
        else:
            os.environ["MEMOBS_ENABLED"] = saved
        config.reload_settings()


def run(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    if not same_spans(10):
        rows.append(Row("1", "hand-written span differs from memobs's", "INVALID", ok=False))
    sizes = ((10, "1"), (1, "2"), (50, "2"))
    for k, section in sizes:
        calls = 5 if quick else max(40, 4000 // k)
        res = decorated_vs_hand(k, calls, rounds=3 if quick else 15)
        bare, mem, hand = (median(res[n]) for n in ("bare", "memobs", "hand"))
        ratio = paired_ratio(res["memobs"], res["hand"])
        rows.append(Row(
            section, f"decorated search k={k} / hand-written span (cache warm)", f"{ratio:.2f}x",
            f"memobs {us(mem)}, hand {us(hand)}, bare {us(bare)} per call; "
            f"overhead over bare: memobs {us(paired_difference(res['memobs'], res['bare']))}, "
            f"hand {us(paired_difference(res['hand'], res['bare']))}; {PROCESSOR}",
            "<= 1.25x" if k == 10 else "", ratio <= 1.25 if k == 10 else None))
    res = kill_switch(calls=200 if quick else 100_000, rounds=3 if quick else 15)
    overhead = paired_difference(res["memobs"], res["bare"])
    rows.append(Row("3", "kill switch on: decorated - bare function", us(overhead),
                    f"decorated {us(median(res['memobs']))}, bare {us(median(res['bare']))} per call",
                    "<= 2 µs", overhead <= 2e-6))
    return rows
