"""memobs beside OpenInference's and OpenLLMetry's LangChain instrumentations (SPEC §3).

A real LCEL RAG chain (``{"context": retriever | format_docs, "question":
RunnablePassthrough()} | prompt | llm | StrOutputParser()``, langchain-core's
fake chat model, an InMemoryVectorStore with DeterministicFakeEmbedding) run
with the real ``openinference-instrumentation-langchain`` or
``opentelemetry-instrumentation-langchain`` active and memobs instrumented,
all on the tests' SDK provider. Per chain call: one trace, exactly one
RETRIEVER span (the peer's, which memobs enriches), memobs's exact injection
events on it, and ``record_answer`` finding the documents.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from helpers import events, finished
from langchain_helpers import PEERS, TEXTS, expected_entities, peer_instrumented
from langchain_helpers import make_chain as _make_chain
from langchain_helpers import make_store as _make_store
from langchain_helpers import top_ids as _top_ids

from langchain_core.language_models.fake_chat_models import FakeListChatModel

import memobs_otel as memobs

K = 2


@pytest.fixture(params=sorted(PEERS))
def peer(request, spans, tracer_provider):
    """The peer instrumentation active on the tests' provider, and memobs instrumented."""
    with peer_instrumented(request.param, tracer_provider) as name:
        yield name


def make_store(exporter=None):
    """The store; with ``exporter``, what memobs recorded of building it (its writes) is cleared."""
    return _make_store(exporter=exporter)


def top_ids(store, query):
    return _top_ids(store, query, K)


def expected(ids, scores):
    return expected_entities(ids, scores)


def make_chain(store, answers):
    return _make_chain(store, FakeListChatModel(responses=answers), K)


def retriever_spans(exporter):
    return [s for s in finished(exporter) if s.attributes.get("openinference.span.kind") == "RETRIEVER"]


def check_one_call(exporter, store, query, peer, trace_id=None):
    """Every span in one trace; exactly one RETRIEVER span: the peer's, with memobs's exact events."""
    spans = finished(exporter)
    assert len({s.context.trace_id for s in spans}) == 1
    if trace_id is not None:
        assert spans[0].context.trace_id == trace_id
    found = retriever_spans(exporter)
    assert len(found) == 1, [(s.name, s.instrumentation_scope.name) for s in found]
    (retrieval,) = found
    assert retrieval.name == ("VectorStoreRetriever" if peer == "openinference"
                              else "vector_db_retrieve VectorStoreRetriever")
    assert finished(exporter, "retrieval InMemoryVectorStore") == []  # memobs started no span of its own
    scores = dict((d.id, s) for d, s in store.similarity_search_with_score(query, k=K))
    ids = top_ids(store, query)
    assert [dict(e.attributes) for e in retrieval.events if e.name == "memobs.injection"] == expected(ids, scores)
    assert events(exporter) == expected(ids, scores)  # nowhere else
    assert retrieval.attributes["memobs.injection.count"] == K
    assert retrieval.attributes["gen_ai.data_source.id"] == "InMemoryVectorStore"
    assert retrieval.attributes["gen_ai.request.top_k"] == K
    return retrieval, ids


def test_invoke_one_trace_one_retriever_span(peer, spans):
    store = make_store(spans)
    answer = TEXTS[top_ids(store, "refund policy")[0]]
    assert make_chain(store, [answer]).invoke("refund policy") == answer
    check_one_call(spans, store, "refund policy", peer)


def test_invoke_inside_a_user_span_cites(peer, spans, tracer_provider):
    store = make_store(spans)
    first = top_ids(store, "refund policy")[0]
    answer = TEXTS[first]
    with tracer_provider.get_tracer("agent").start_as_current_span("agent turn") as turn:
        text = make_chain(store, [answer]).invoke("refund policy")
        cited = memobs.record_answer(text)
    assert cited == [("document", first)]
    check_one_call(spans, store, "refund policy", peer, trace_id=turn.get_span_context().trace_id)
    (agent,) = finished(spans, "agent turn")
    assert events(spans, "memobs.citation") == [{
        "memobs.entity.type": "document", "memobs.entity.id": first,
        "memobs.citation.method": "overlap", "memobs.citation.score": 1.0}]
    assert [e.name for e in agent.events] == ["memobs.citation"]


def test_ainvoke_one_trace_one_retriever_span_and_cites(peer, spans, tracer_provider):
    store = make_store(spans)
    first = top_ids(store, "gift cards")[0]
    answer = TEXTS[first]

    async def turn():
        with tracer_provider.get_tracer("agent").start_as_current_span("agent turn") as span:
            text = await make_chain(store, [answer]).ainvoke("gift cards")
            return span, text, memobs.record_answer(text)

    span, text, cited = asyncio.run(turn())
    assert text == answer
    assert cited == [("document", first)]
    check_one_call(spans, store, "gift cards", peer, trace_id=span.get_span_context().trace_id)


def test_batch_same_traces_as_without_memobs_and_one_retriever_span_per_input(peer, spans):
    """``chain.batch``: the traces the peer makes without memobs, memobs's events in them.

    OpenInference gives each input its own trace. OpenLLMetry makes its spans
    current from its callbacks, so in ``RunnableSequence.batch`` (which starts
    every input's run from one thread) the inputs end up nested in one trace,
    memobs or not. Each batch runs in a copy of the context, as OpenLLMetry
    leaves its contexts attached after the call.
    """
    store = make_store(spans)
    queries = ["refund policy", "support hours", "free shipping"]
    answers = [TEXTS[top_ids(store, q)[0]] for q in queries]

    def run():
        return contextvars.copy_context().run(
            make_chain(store, answers).batch, queries, config={"max_concurrency": 1})

    def shape():
        return (len({s.context.trace_id for s in finished(spans)}),
                sorted(s.name for s in finished(spans)), sorted(s.parent is None for s in finished(spans)))

    memobs.uninstrument("langchain")
    assert run() == answers
    without = shape()
    spans.clear()
    memobs.instrument("langchain")
    assert run() == answers

    assert shape() == without
    roots = {s.context.trace_id for s in finished(spans) if s.parent is None}
    found = retriever_spans(spans)
    assert len(found) == len(queries)
    assert {s.context.trace_id for s in found} <= roots
    assert sorted(tuple(e.attributes["memobs.entity.id"] for e in s.events) for s in found) == sorted(
        tuple(top_ids(store, q)) for q in queries)
    assert len(events(spans)) == K * len(queries)


def test_without_a_peer_memobs_span_covers_the_retriever_only(spans, tracer_provider):
    """No other instrumentation: memobs's own RETRIEVER span, a child of the current span."""
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        store = make_store(spans)
        answer = TEXTS[top_ids(store, "refund policy")[0]]
        with tracer_provider.get_tracer("agent").start_as_current_span("agent turn") as turn:
            make_chain(store, [answer]).invoke("refund policy")
            cited = memobs.record_answer(answer)
    finally:
        memobs.uninstrument("langchain")
    assert cited == [("document", top_ids(store, "refund policy")[0])]
    (retrieval,) = retriever_spans(spans)
    assert retrieval.name == "retrieval InMemoryVectorStore"
    assert retrieval.parent.span_id == turn.get_span_context().span_id
    assert len(events(spans)) == K


def test_own_span_covers_the_retriever_not_the_callbacks_around_it(spans):
    """Without a peer, memobs's span starts after the handlers' on_retriever_start and ends before their
    on_retriever_end: a slow handler (OpenInference's tracer, a LangSmith tracer) is not memobs's time."""
    import time

    from langchain_core.callbacks import BaseCallbackHandler

    class Stamps(BaseCallbackHandler):
        started = ended = None

        def on_retriever_start(self, *args, **kwargs):
            Stamps.started = time.time_ns()

        def on_retriever_end(self, *args, **kwargs):
            Stamps.ended = time.time_ns()

    assert memobs.instrument("langchain") == ["langchain"]
    try:
        retriever = make_store(spans).as_retriever(search_kwargs={"k": K})
        retriever.invoke("refund policy", config={"callbacks": [Stamps()]})
    finally:
        memobs.uninstrument("langchain")
    (retrieval,) = finished(spans, "retrieval InMemoryVectorStore")
    assert Stamps.started <= retrieval.start_time
    assert retrieval.end_time <= Stamps.ended
    assert len(events(spans)) == K


def test_memobs_context_turn_cites_without_a_user_span(peer, spans):
    """No span of the user's around the chain: the memobs.context block is the turn (SPEC §2)."""
    from memobs_otel import semconv

    store = make_store(spans)
    first = top_ids(store, "refund policy")[0]
    with memobs.context(session_id="s-1"):
        text = make_chain(store, [TEXTS[first]]).invoke("refund policy")
        cited = memobs.record_answer(text)
    assert cited == [("document", first)]
    assert [(e["memobs.entity.id"], e["memobs.citation.method"]) for e in events(spans, "memobs.citation")] == [
        (first, "overlap")]
    chain_spans = [s for s in finished(spans) if s.name != semconv.CITE_SPAN_NAME]
    assert len({s.context.trace_id for s in chain_spans}) == 1  # the chain's one trace, memobs's events in it
    (retrieval,) = retriever_spans(spans)
    assert [e.attributes["memobs.entity.id"] for e in retrieval.events] == top_ids(store, "refund policy")
