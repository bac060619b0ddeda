"""LangChain plugin against the real langchain-core: InMemoryVectorStore, LCEL, composite retrievers."""

from __future__ import annotations

import asyncio
import os

import pytest
from helpers import events, finished, listed

# memobs.instrument() with no target (below) imports every installed framework, mem0 included, which
# reads this on import (telemetry on by default); langchain_helpers sets it only where unset
os.environ["MEM0_TELEMETRY"] = "False"

from langchain_helpers import ENC, TEXTS  # noqa: E402

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore  # noqa: E402

import memobs_otel as memobs  # noqa: E402
from memobs_otel import config, instrumentation  # noqa: E402
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex  # noqa: E402
from memobs_langchain.writes import _in_write  # noqa: E402


class ScoredStore(InMemoryVectorStore):
    """InMemoryVectorStore with a relevance function (the base one has none)."""

    def _select_relevance_score_fn(self):
        return lambda similarity: (similarity + 1) / 2


def make_store(cls=InMemoryVectorStore):
    store = cls(DeterministicFakeEmbedding(size=32))
    # set-up, not what these tests look at: its writes are not recorded (test_inventory_langchain.py)
    token = _in_write.set(True)
    try:
        store.add_documents([Document(page_content=t, id=i, metadata={"created_at": "2024-05-01T00:00:00Z"})
                             for i, t in TEXTS.items()])
    finally:
        _in_write.reset(token)
    return store


class CompositeRetriever(BaseRetriever):
    """A real composite: calls its member retrievers, merges, drops duplicates (like EnsembleRetriever)."""

    retrievers: list[BaseRetriever]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun):
        seen, merged = set(), []
        for r in self.retrievers:
            for doc in r.invoke(query, config={"callbacks": run_manager.get_child()}):
                if doc.id not in seen:
                    seen.add(doc.id)
                    merged.append(doc)
        return merged

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun):
        results = await asyncio.gather(*(r.ainvoke(query) for r in self.retrievers))
        seen, merged = set(), []
        for docs in results:
            for doc in docs:
                if doc.id not in seen:
                    seen.add(doc.id)
                    merged.append(doc)
        return merged


def expected(doc_id, rank, score=None, entity_type="document"):
    text = TEXTS[doc_id]
    event = {
        "memobs.entity.type": entity_type,
        "memobs.entity.id": doc_id,
        "memobs.entity.rank": rank,
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
        "memobs.entity.minhash": minhash(text).hex(),
        "memobs.entity.created_at": "2024-05-01T00:00:00Z",
    }
    if score is not None:
        event["memobs.entity.score"] = score
    return event


@pytest.fixture
def instrumented():
    assert memobs.instrument("langchain") == ["langchain"]
    yield
    memobs.uninstrument("langchain")


def reference(store, query, k):
    """What the store itself returns, computed with memobs off."""
    memobs.uninstrument("langchain")
    try:
        return [(d.id, s) for d, s in store.similarity_search_with_score(query, k=k)]
    finally:
        memobs.instrument("langchain")


def test_invoke_exact_events(spans, instrumented):
    store = make_store()
    ref = reference(store, "free shipping", 3)
    docs = store.as_retriever(search_kwargs={"k": 3}).invoke("free shipping")

    assert [d.id for d in docs] == [i for i, _ in ref]
    assert events(spans) == [expected(i, rank, score) for rank, (i, score) in enumerate(ref)]
    (span,) = finished(spans)
    assert span.name == "retrieval InMemoryVectorStore"
    tokens = sum(len(ENC.encode_ordinary(TEXTS[i])) for i, _ in ref)
    attrs = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": "InMemoryVectorStore",
        "openinference.span.kind": "RETRIEVER",
        "gen_ai.request.top_k": 3,
        "memobs.record.count": 3,
        "memobs.injection.count": 3,
        "memobs.injection.tokens": tokens,
        "memobs.tokenizer": "tiktoken/cl100k_base",
        **listed([(i, score, {"created_at": "2024-05-01T00:00:00Z"}) for i, score in ref]),
    }
    for n, (i, score) in enumerate(ref):
        attrs[f"retrieval.documents.{n}.document.id"] = i
        attrs[f"retrieval.documents.{n}.document.score"] = score
    assert dict(span.attributes) == attrs  # no query text, no content: capture is off


def test_ainvoke_exact_events(spans, instrumented):
    store = make_store()
    ref = reference(store, "gift cards", 2)
    docs = asyncio.run(store.as_retriever(search_kwargs={"k": 2}).ainvoke("gift cards"))
    assert [d.id for d in docs] == [i for i, _ in ref]
    assert events(spans) == [expected(i, rank, score) for rank, (i, score) in enumerate(ref)]
    assert len(finished(spans)) == 1


def test_batch_one_span_per_input(spans, instrumented):
    store = make_store()
    refs = [reference(store, q, 2) for q in ("refunds", "support hours")]
    retriever = store.as_retriever(search_kwargs={"k": 2})
    results = retriever.batch(["refunds", "support hours"])

    assert [[d.id for d in docs] for docs in results] == [[i for i, _ in ref] for ref in refs]
    by_first_id = {tuple(e.attributes["memobs.entity.id"] for e in s.events): s for s in finished(spans)}
    assert set(by_first_id) == {tuple(i for i, _ in ref) for ref in refs}
    assert len(events(spans)) == 4


def test_relevance_scores_with_threshold(spans, instrumented):
    store = make_store(ScoredStore)
    ref = reference(store, "free shipping", 4)
    relevance = [(i, (s + 1) / 2) for i, s in ref]
    retriever = store.as_retriever(search_type="similarity_score_threshold",
                                   search_kwargs={"k": 4, "score_threshold": 0.0})
    retriever.invoke("free shipping")
    assert events(spans) == [expected(i, rank, score) for rank, (i, score) in enumerate(relevance)]


def test_mmr_has_no_scores(spans, instrumented):
    store = make_store()
    docs = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5}).invoke("refunds")
    assert events(spans) == [expected(d.id, rank) for rank, d in enumerate(docs)]


def test_retriever_inside_lcel_chain(spans, instrumented, tracer_provider):
    store = make_store()
    ref = reference(store, "refunds", 2)
    chain = store.as_retriever(search_kwargs={"k": 2}) | RunnableLambda(
        lambda docs: "\n".join(d.page_content for d in docs))
    with tracer_provider.get_tracer("test").start_as_current_span("agent") as agent:
        context = chain.invoke("refunds")

    assert context == "\n".join(TEXTS[i] for i, _ in ref)
    assert events(spans) == [expected(i, rank, score) for rank, (i, score) in enumerate(ref)]
    (retrieval,) = finished(spans, "retrieval InMemoryVectorStore")
    assert retrieval.parent.span_id == agent.get_span_context().span_id


def test_composite_retriever_counts_each_document_once(spans, instrumented):
    store = make_store()
    first, second = store.as_retriever(search_kwargs={"k": 2}), store.as_retriever(search_kwargs={"k": 3})
    composite = CompositeRetriever(retrievers=[first, second])
    docs = composite.invoke("free shipping")

    ids = [d.id for d in docs]
    assert len(ids) == 3 == len(set(ids))
    assert events(spans) == [expected(i, rank) for rank, i in enumerate(ids)]  # outer call: no store scores
    (outer,) = finished(spans, "retrieval CompositeRetriever")
    inner = finished(spans, "retrieval InMemoryVectorStore")
    assert len(inner) == 2
    for span in inner:
        assert span.parent.span_id == outer.context.span_id
        assert span.attributes["memobs.retrieval.nested"] is True
        assert "memobs.injection.count" not in span.attributes
        assert list(span.events) == []
    assert outer.attributes["memobs.injection.count"] == 3


def test_composite_retriever_async(spans, instrumented):
    store = make_store()
    composite = CompositeRetriever(retrievers=[store.as_retriever(search_kwargs={"k": 2}),
                                               store.as_retriever(search_kwargs={"k": 3})])
    docs = asyncio.run(composite.ainvoke("free shipping"))
    assert events(spans) == [expected(d.id, rank) for rank, d in enumerate(docs)]
    assert sum(1 for s in finished(spans) if s.attributes.get("memobs.retrieval.nested")) == 2


def test_options_and_content_capture(spans):
    memobs.instrument("langchain", entity_type=lambda e: "faq" if e.entity_id == "d0" else "doc",
                      store=lambda retriever: "kb")
    try:
        config.reload_settings(capture_content=True)
        store = make_store()
        store.as_retriever(search_kwargs={"k": 5}).invoke("refunds")
    finally:
        memobs.uninstrument("langchain")
    (span,) = finished(spans)
    assert span.name == "retrieval kb"
    assert span.attributes["input.value"] == "refunds"
    got = events(spans)
    assert {e["memobs.entity.id"]: e["memobs.entity.type"] for e in got} == {
        "d0": "faq", "d1": "doc", "d2": "doc", "d3": "doc", "d4": "doc"}
    assert all(e["memobs.entity.content"] == TEXTS[e["memobs.entity.id"]] for e in got)


def test_instrument_uninstrument_instrument_again(spans):
    invoke, ainvoke = BaseRetriever.__dict__["invoke"], BaseRetriever.__dict__["ainvoke"]
    score_method = InMemoryVectorStore.__dict__["similarity_search_with_score"]
    relevance = VectorStore.__dict__["similarity_search_with_relevance_scores"]
    store = make_store()
    retriever = store.as_retriever(search_kwargs={"k": 1})

    assert memobs.instrument("langchain") == ["langchain"]
    assert memobs.instrument("langchain") == ["langchain"]  # idempotent: wrapped once
    assert BaseRetriever.__dict__["invoke"] is not invoke
    retriever.invoke("refunds")
    assert len(events(spans)) == 1

    memobs.uninstrument("langchain")
    assert BaseRetriever.__dict__["invoke"] is invoke
    assert BaseRetriever.__dict__["ainvoke"] is ainvoke
    assert InMemoryVectorStore.__dict__["similarity_search_with_score"] is score_method
    assert VectorStore.__dict__["similarity_search_with_relevance_scores"] is relevance
    spans.clear()
    retriever.invoke("refunds")
    assert finished(spans) == []

    memobs.instrument("langchain")
    try:
        retriever.invoke("refunds")
        assert len(events(spans)) == 1
        assert "memobs.entity.score" in events(spans)[0]
    finally:
        memobs.uninstrument("langchain")


def test_vector_store_class_defined_after_instrumenting(spans, instrumented):
    class LateStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            return [(d, s / 2) for d, s in super().similarity_search_with_score(query, k, **kwargs)]

    store = make_store(LateStore)
    store.as_retriever(search_kwargs={"k": 2}).invoke("refunds")
    memobs.uninstrument("langchain")
    ref = [(d.id, s) for d, s in store.similarity_search_with_score("refunds", k=2)]
    memobs.instrument("langchain")
    assert events(spans) == [expected(i, rank, score) for rank, (i, score) in enumerate(ref)]


def test_kill_switch_and_user_exceptions(spans, instrumented, monkeypatch):
    class Failing(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            raise KeyError("boom")

    with pytest.raises(KeyError):
        Failing().invoke("q")
    (span,) = finished(spans)
    assert span.attributes["error.type"] == "KeyError"

    spans.clear()
    monkeypatch.setenv("MEMOBS_ENABLED", "false")
    config.reload_settings()
    assert len(make_store().as_retriever().invoke("refunds")) == 4
    assert finished(spans) == []


def test_framework_not_installed_is_a_harmless_no_op(spans, caplog):
    class Missing(instrumentation.Instrumentor):
        name = "not-installed"
        modules = ("memobs_no_such_framework",)

        def _instrument(self, **options):
            raise AssertionError("must not be called")

    instrumentation.frameworks()  # the installed plugins are collected first
    instrumentation._registry["not-installed"] = Missing()
    try:
        with caplog.at_level("INFO", logger="memobs_otel"):
            assert memobs.instrument("not-installed") == []
        assert "not-installed is not installed" in caplog.text
        memobs.uninstrument("not-installed")  # also harmless
        assert memobs.instrument("memobs-unknown-framework") == []
        done = memobs.instrument()  # everything installed; the missing one skipped
        assert "langchain" in done and "not-installed" not in done
    finally:
        instrumentation._registry.pop("not-installed", None)
        memobs.uninstrument()


def test_outer_score_method_changing_the_same_list_in_place_wins(spans, instrumented):
    class InPlaceStore(InMemoryVectorStore):
        """Returns the very list the inner (also wrapped) score method returned: as is, or rescored in place."""

        rescore = True

        def similarity_search_with_score(self, query, k=4, **kwargs):
            pairs = self.similarity_search_with_score_by_vector(self.embedding.embed_query(query), k, **kwargs)
            if self.rescore:
                pairs[:] = [(d, s / 4) for d, s in pairs]
            return pairs

    store = make_store(InPlaceStore)
    retriever = store.as_retriever(search_kwargs={"k": 3})
    retriever.invoke("refunds")
    InPlaceStore.rescore = False
    retriever.invoke("refunds")  # the same list returned unchanged: the inner scores stand
    memobs.uninstrument("langchain")
    raw = [(d.id, s) for d, s in store.similarity_search_with_score("refunds", k=3)]
    memobs.instrument("langchain")
    assert events(spans) == ([expected(i, rank, s / 4) for rank, (i, s) in enumerate(raw)]
                             + [expected(i, rank, s) for rank, (i, s) in enumerate(raw)])


def test_score_methods_returning_a_tuple_or_an_iterator(spans, instrumented):
    class TupleStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            return tuple((d, s / 4) for d, s in super().similarity_search_with_score(query, k, **kwargs))

    class IteratorStore(InMemoryVectorStore):
        def similarity_search_with_score(self, query, k=4, **kwargs):
            return iter([(d, s / 4) for d, s in super().similarity_search_with_score(query, k, **kwargs)])

    for cls in (TupleStore, IteratorStore):
        store = make_store(cls)
        spans.clear()
        docs = store.as_retriever(search_kwargs={"k": 2}).invoke("refunds")
        assert len(docs) == 2  # the iterator reached the caller whole: memobs did not read it
        memobs.uninstrument("langchain")
        inner = [(d.id, s) for d, s in store.similarity_search_with_score_by_vector(
            store.embedding.embed_query("refunds"), 2)]
        memobs.instrument("langchain")
        if cls is TupleStore:  # the outer (quartered) scores win
            assert events(spans) == [expected(i, rank, s / 4) for rank, (i, s) in enumerate(inner)]
        else:  # the iterator is left alone: the inner method's list gives the scores
            assert events(spans) == [expected(i, rank, s) for rank, (i, s) in enumerate(inner)]
