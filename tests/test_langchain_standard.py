"""LangChain's own behaviour with memobs on: its standard retriever suite and its warnings.

- langchain-tests' ``RetrieversIntegrationTests`` runs against a simple real
  retriever (an InMemoryVectorStore searched with ``k`` from the constructor
  or the call) with memobs instrumented; each test also checks that memobs
  recorded every retriever call it made, so the guard cannot pass by having
  memobs switched off.
- LangChain's warnings point where they point without memobs:
  ``similarity_search_with_relevance_scores`` warns "Relevance scores must
  be between 0 and 1" with ``stacklevel=2`` (the caller's line). memobs once
  wrapped that method, so the warning named memobs's ``scores.py``: module
  filters stopped matching and warnings from different callers merged.
"""

from __future__ import annotations

import warnings

import pytest
from helpers import events, finished
from langchain_helpers import make_store as _make_store

retrievers_suite = pytest.importorskip("langchain_tests.integration_tests.retrievers")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

import memobs_otel as memobs  # noqa: E402


def make_store(cls=InMemoryVectorStore):
    return _make_store(cls=cls)


class StoreRetriever(BaseRetriever):
    """A simple real retriever: the store's top ``k`` (constructor default, or per call)."""

    store: InMemoryVectorStore
    k: int = 4

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[Document]:
        return self.store.similarity_search(query, k=k or self.k)


class TestStandardRetrieverWithMemobs(retrievers_suite.RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return StoreRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": make_store()}

    @property
    def retriever_query_example(self) -> str:
        return "free shipping"

    @pytest.fixture(autouse=True)
    def _memobs_on(self, spans):
        assert memobs.instrument("langchain") == ["langchain"]
        yield
        memobs.uninstrument("langchain")
        recorded = finished(spans, "retrieval StoreRetriever")
        # every call the test made was recorded, each document as one injection event with a score
        for span in recorded:
            count = span.attributes["memobs.injection.count"]
            assert [e.attributes["memobs.entity.rank"] for e in span.events] == list(range(count))
            assert all("memobs.entity.score" in e.attributes for e in span.events)
        assert len(events(spans)) == sum(s.attributes["memobs.injection.count"] for s in recorded)


def test_standard_suite_calls_were_recorded(spans):
    """The guard above is live: a call like the suite's leaves memobs's span with its events."""
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        docs = StoreRetriever(store=make_store()).invoke("free shipping", k=3)
    finally:
        memobs.uninstrument("langchain")
    (span,) = finished(spans, "retrieval StoreRetriever")
    assert span.attributes["gen_ai.request.top_k"] == 3
    assert [e.attributes["memobs.entity.id"] for e in span.events] == [d.id for d in docs]


class OutOfRangeStore(InMemoryVectorStore):
    """Relevance scores outside [0, 1]: LangChain warns about them."""

    def _select_relevance_score_fn(self):
        return lambda similarity: similarity * 10


def _relevance_warnings(store):
    """(filename, lineno, message) of the relevance warnings: a direct call, then a retriever's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.similarity_search_with_relevance_scores("free shipping", k=3)  # the caller: this line
        store.as_retriever(search_type="similarity_score_threshold",
                           search_kwargs={"k": 3, "score_threshold": 0.0}).invoke("free shipping")
    return [(w.filename, w.lineno, str(w.message)) for w in caught if "Relevance scores" in str(w.message)]


def test_langchain_warnings_point_where_they_do_without_memobs(spans):
    store = make_store(OutOfRangeStore)
    without = _relevance_warnings(store)
    assert len(without) == 2
    assert without[0][0] == __file__
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        with_memobs = _relevance_warnings(store)
    finally:
        memobs.uninstrument("langchain")
    assert with_memobs == without
    # and memobs still records the relevance scores the threshold was applied to
    (span,) = finished(spans, "retrieval OutOfRangeStore")
    expected = {d.id: s for d, s in store.similarity_search_with_relevance_scores(
        "free shipping", k=3, score_threshold=0.0)}
    assert {e.attributes["memobs.entity.id"]: e.attributes["memobs.entity.score"] for e in span.events} == expected


def test_module_filters_still_match_with_memobs(spans):
    """A filter on the calling module turns LangChain's warning into an error, memobs on or off."""
    store = make_store(OutOfRangeStore)
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Relevance scores", module=__name__)
            with pytest.raises(UserWarning, match="Relevance scores must be between 0 and 1"):
                store.similarity_search_with_relevance_scores("free shipping", k=3)
    finally:
        memobs.uninstrument("langchain")
