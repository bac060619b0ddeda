"""langchain-classic's real EnsembleRetriever: recorded once, its members nested.

``EnsembleRetriever`` defines its own ``invoke``/``ainvoke`` (they never reach
``BaseRetriever.invoke``) and reports its run to LangChain's callbacks itself.
memobs records that run: one span for the ensemble with its fused documents
as the injections, each member's call a nested span listing its documents
without ``memobs.injection`` events — each returned document counted once.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import events, finished
from langchain_helpers import expected_entities, make_store

ensemble = pytest.importorskip("langchain_classic.retrievers.ensemble")

import memobs_otel as memobs  # noqa: E402


@pytest.fixture
def instrumented():
    assert memobs.instrument("langchain") == ["langchain"]
    yield
    memobs.uninstrument("langchain")


def make_ensemble(exporter=None):
    """Two real vector-store retrievers over different stores (different embeddings), fused.

    With ``exporter``, what memobs recorded of building the stores (their writes) is cleared.
    """
    stores = [make_store(size=size) for size in (32, 48)]
    members = [stores[0].as_retriever(search_kwargs={"k": 2}), stores[1].as_retriever(search_kwargs={"k": 3})]
    if exporter is not None:
        exporter.clear()
    return ensemble.EnsembleRetriever(retrievers=members, weights=[0.5, 0.5]), members


def expected(ids):
    return expected_entities(ids)


def reference(query):
    """The ensemble's and its members' results with memobs off."""
    memobs.uninstrument("langchain")
    try:
        retriever, members = make_ensemble()
        return [d.id for d in retriever.invoke(query)], [[d.id for d in m.invoke(query)] for m in members]
    finally:
        memobs.instrument("langchain")


def check(spans, docs, member_ids):
    ids = [d.id for d in docs]
    assert events(spans) == expected(ids)  # the fused documents, once each, no member's scores
    (outer,) = finished(spans, "retrieval EnsembleRetriever")
    assert outer.parent is None
    assert outer.attributes["memobs.injection.count"] == len(ids)
    assert [e.attributes["memobs.entity.id"] for e in outer.events] == ids
    inner = finished(spans, "retrieval InMemoryVectorStore")
    assert len(inner) == 2
    listed = []
    for span in inner:
        assert span.parent.span_id == outer.context.span_id
        assert span.context.trace_id == outer.context.trace_id
        assert span.attributes["memobs.retrieval.nested"] is True
        assert "memobs.injection.count" not in span.attributes
        assert list(span.events) == []
        listed.append([span.attributes[f"retrieval.documents.{n}.document.id"]
                       for n in range(span.attributes["gen_ai.request.top_k"])])
    assert sorted(listed) == sorted(member_ids)
    assert len(finished(spans)) == 3


def test_ensemble_recorded_once(spans, instrumented):
    ids, member_ids = reference("free shipping")
    retriever, _ = make_ensemble(spans)
    docs = retriever.invoke("free shipping")
    assert [d.id for d in docs] == ids
    assert len(ids) < sum(map(len, member_ids))  # the members overlap: counting them would double
    check(spans, docs, member_ids)


def test_ensemble_async(spans, instrumented):
    ids, member_ids = reference("gift cards")
    retriever, _ = make_ensemble(spans)
    docs = asyncio.run(retriever.ainvoke("gift cards"))
    assert [d.id for d in docs] == ids
    check(spans, docs, member_ids)


def test_ensemble_batch_one_recording_per_input(spans, instrumented):
    queries = ["refunds", "support hours"]
    refs = [reference(q) for q in queries]
    retriever, _ = make_ensemble(spans)
    results = retriever.batch(queries)
    assert [[d.id for d in docs] for docs in results] == [ids for ids, _ in refs]
    outers = finished(spans, "retrieval EnsembleRetriever")
    assert sorted([e.attributes["memobs.entity.id"] for e in s.events] for s in outers) == sorted(
        ids for ids, _ in refs)
    assert len(events(spans)) == sum(len(ids) for ids, _ in refs)
    assert len(finished(spans, "retrieval InMemoryVectorStore")) == 4


def test_ensemble_error_recorded_and_raised(spans, instrumented):
    from langchain_core.retrievers import BaseRetriever

    class Broken(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            raise LookupError("index offline")

    retriever = ensemble.EnsembleRetriever(retrievers=[make_ensemble(spans)[1][0], Broken()], weights=[0.5, 0.5])
    with pytest.raises(LookupError, match="index offline"):
        retriever.invoke("refunds")
    (outer,) = finished(spans, "retrieval EnsembleRetriever")
    assert outer.attributes["error.type"] == "LookupError"
    (broken,) = finished(spans, "retrieval Broken")
    assert broken.attributes["error.type"] == "LookupError"
    assert broken.parent.span_id == outer.context.span_id
    assert events(spans) == []
