"""What UIs show (issue 18, item 3): span kind, output.value, document metadata, the query,
the conversation id and the write span names — with content capture off and on."""

from __future__ import annotations

import json

import pytest
from helpers import finished

import memobs_otel as memobs
from memobs_otel import config, semconv
from memobs_otel.recording import RetrievalSpec, begin_retrieval, end_retrieval

DOCS = [
    {"id": "pb-1", "content": "Refunds take five days", "score": 0.9, "title": "Refunds",
     "created_at": "2024-05-01T00:00:00Z"},
    {"id": "pb-2", "content": "Shipping is free above fifty euros", "score": 0.5},
]


@memobs.observe_retrieval(entity_type="playbook", store="playbooks")
def search(query, k=2):
    return DOCS[:k]


@memobs.observe_retrieval(entity_type="document", store="kb", operation="retrieval")
def retrieve(query):
    return DOCS[:1]


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


# every gen_ai.* name memobs may emit: the GenAI conventions' own (no invented one)
GEN_AI_NAMES = {"gen_ai.operation.name", "gen_ai.memory.store.id", "gen_ai.data_source.id",
                "gen_ai.request.top_k", "gen_ai.conversation.id", "gen_ai.retrieval.query.text",
                "gen_ai.memory.query.text"}


def test_retrieval_span_with_capture_off(spans):
    with memobs.context(user_id="u-1", session_id="s-1"):
        search("refund policy", k=2)
    (span,) = finished(spans)
    assert span.kind.name == "CLIENT"
    attrs = dict(span.attributes)
    assert attrs["gen_ai.conversation.id"] == "s-1" == attrs["session.id"]
    assert "input.value" not in attrs and "gen_ai.memory.query.text" not in attrs
    metadata = {"created_at": "2024-05-01T00:00:00Z", "title": "Refunds"}
    assert attrs["retrieval.documents.0.document.metadata"] == dumps(metadata)
    assert "retrieval.documents.1.document.metadata" not in attrs  # nothing to show
    assert attrs["output.mime_type"] == "application/json"
    assert json.loads(attrs["output.value"]) == [{"id": "pb-1", "score": 0.9, "metadata": metadata},
                                                 {"id": "pb-2", "score": 0.5}]
    assert attrs["memobs.record.count"] == 2
    assert "gen_ai.memory.record.count" not in attrs
    assert {k for k in attrs if k.startswith("gen_ai.")} <= GEN_AI_NAMES


def test_retrieval_span_with_capture_on(spans):
    config.reload_settings(capture_content=True)
    search("refund policy", k=2)
    retrieve("shipping")
    memory_span, retrieval_span = finished(spans)
    memory, retrieval = dict(memory_span.attributes), dict(retrieval_span.attributes)
    assert (memory["input.value"], memory["gen_ai.memory.query.text"]) == ("refund policy", "refund policy")
    assert "gen_ai.retrieval.query.text" not in memory
    assert (retrieval["input.value"], retrieval["gen_ai.retrieval.query.text"]) == ("shipping", "shipping")
    assert "gen_ai.memory.query.text" not in retrieval
    assert [d["content"] for d in json.loads(memory["output.value"])] == [d["content"] for d in DOCS]
    assert "gen_ai.conversation.id" not in memory  # no session: no conversation id
    for attrs in (memory, retrieval):
        assert {k for k in attrs if k.startswith("gen_ai.")} <= GEN_AI_NAMES


def test_output_value_lists_at_most_the_listed_documents(spans):
    many = [{"id": f"m{i}", "content": f"memory number {i}"} for i in range(40)]

    @memobs.observe_retrieval(entity_type="fact")
    def search_many(query):
        return many

    search_many("q")
    (span,) = finished(spans)
    listed = json.loads(span.attributes["output.value"])
    assert [d["id"] for d in listed] == [f"m{i}" for i in range(semconv.MAX_RETRIEVAL_DOCUMENTS)]
    assert span.attributes["memobs.record.count"] == 40


def test_streamed_result_sets_output_value_at_the_end(spans):
    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def stream(query):
        yield from DOCS

    assert [d["id"] for d in stream("q")] == ["pb-1", "pb-2"]
    (span,) = finished(spans)
    assert span.kind.name == "CLIENT"
    assert json.loads(span.attributes["output.value"]) == [
        {"id": "pb-1", "score": 0.9, "metadata": {"created_at": "2024-05-01T00:00:00Z", "title": "Refunds"}},
        {"id": "pb-2", "score": 0.5}]
    assert span.attributes["retrieval.documents.0.document.metadata"] == dumps(
        {"created_at": "2024-05-01T00:00:00Z", "title": "Refunds"})


def test_on_another_instrumentations_span_its_output_stands(spans, tracer_provider):
    peer = tracer_provider.get_tracer("peer").start_span(
        "peer retriever", attributes={"output.value": "peer's own", "output.mime_type": "text/plain",
                                      "retrieval.documents.0.document.metadata": "{}"})
    spec = RetrievalSpec("document", "kb", semconv.OPERATION_RETRIEVAL)
    retrieval = begin_retrieval(spec, "q", None, span=peer)
    end_retrieval(retrieval, spec, DOCS)
    peer.end()
    (span,) = finished(spans)
    assert span.attributes["output.value"] == "peer's own"
    assert span.attributes["output.mime_type"] == "text/plain"
    assert span.attributes["retrieval.documents.0.document.metadata"] == "{}"
    assert span.attributes["retrieval.documents.0.document.id"] == "pb-1"
    assert span.kind.name == "INTERNAL"  # the peer's span keeps its kind


def test_write_spans_are_named_as_the_genai_memory_conventions(spans):
    with memobs.context(session_id="s-1"):
        memobs.record_write("playbook", "pb-1", "create", content="hello", store="playbooks")
        memobs.record_write("playbook", "pb-1", "update", content="hello again")
        memobs.record_write("playbook", "pb-1", "archive")
        memobs.record_write("playbook", "pb-1", "delete")
    got = [(s.name, s.kind.name, s.attributes["gen_ai.operation.name"], s.attributes["gen_ai.conversation.id"],
            s.events[0].attributes["memobs.write.op"], s.events[0].attributes.get("memobs.entity.status"))
           for s in finished(spans)]
    assert got == [
        ("update_memory", "CLIENT", "update_memory", "s-1", "create", None),
        ("update_memory", "CLIENT", "update_memory", "s-1", "update", None),
        ("update_memory", "CLIENT", "update_memory", "s-1", "archive", "archived"),
        ("delete_memory", "CLIENT", "delete_memory", "s-1", "delete", "deleted"),
    ]


def test_llamaindex_source_id_in_document_metadata(spans):
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    index = VectorStoreIndex.from_documents([Document(text="Refunds take five days.", id_="kb-refunds")],
                                            embed_model=MockEmbedding(embed_dim=8))
    assert "llamaindex" in memobs.instrument("llamaindex")
    try:
        index.as_retriever(similarity_top_k=1).retrieve("refunds")
    finally:
        memobs.uninstrument("llamaindex")
    (span,) = [s for s in finished(spans) if s.name.startswith("retrieval ")]
    assert span.kind.name == "CLIENT"
    assert json.loads(span.attributes["retrieval.documents.0.document.metadata"]) == {"source_id": "kb-refunds"}
    (doc,) = json.loads(span.attributes["output.value"])
    assert doc["id"].startswith("kb-refunds#") and doc["metadata"] == {"source_id": "kb-refunds"}
