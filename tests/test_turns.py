"""Citations in real chains: the *turn* of SPEC §2 (the current trace, and the innermost
memobs.context block), with the real langchain-core LCEL chain and LlamaIndex engines.

The chains run with no span of the test's around them: each retriever call is then a
trace of its own (LCEL runs the retriever in a thread of its pool, with a copied
context), so only the memobs.context block ties the answer to the retrieval.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import events, finished

from langchain_helpers import make_store as _make_store

from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

import memobs_otel as memobs
from memobs_otel import trace_buffer

TEXTS = {
    "d1": "The refund window is fourteen days from the delivery date",
    "d2": "Premium members get free express shipping on every order",
    "d3": "Gift cards cannot be exchanged for cash under any circumstances",
}
# the prompt the chain sends; ParrotFakeChatModel answers with it, so the answer repeats
# the retrieved documents' wording (an overlap citation of exactly those)
PROMPT = ChatPromptTemplate.from_messages([("human", "Answer from this context.\n{context}\nQuestion: {question}")])


def format_docs(docs):
    return "\n".join(d.page_content for d in docs)


def citation(doc_id, session="s-1", score=1.0, method="overlap"):
    return {"memobs.entity.type": "document", "memobs.entity.id": doc_id, "memobs.citation.method": method,
            "memobs.citation.score": score, "session.id": session}


@pytest.fixture(autouse=True)
def _fresh_buffer():
    trace_buffer.clear()
    yield
    trace_buffer.clear()


def make_store(texts=TEXTS):
    return _make_store(texts)


@pytest.fixture
def store():
    return make_store()  # before instrumenting: the set-up writes are not recorded


@pytest.fixture
def instrumented(store):
    assert memobs.instrument("langchain") == ["langchain"]
    yield
    memobs.uninstrument("langchain")


def rag_chain(store, k=1):
    # the query is a document's own text: the fake embedding then ranks that document first
    retriever = store.as_retriever(search_kwargs={"k": k})
    chain = ({"context": retriever | format_docs, "question": RunnablePassthrough()}
             | PROMPT | ParrotFakeChatModel() | StrOutputParser())
    return chain, retriever


def retrieval_spans(spans):
    return [s for s in finished(spans) if s.name == "retrieval InMemoryVectorStore"]


def test_invoke_inside_memobs_context_cites(spans, store, instrumented):
    chain, _ = rag_chain(store)
    with memobs.context(session_id="s-1"):
        answer = chain.invoke(TEXTS["d1"])
        assert memobs.record_answer(answer) == [("document", "d1")]
    (retrieval,) = retrieval_spans(spans)
    assert retrieval.parent is None  # a trace of its own: no span of the caller's around it
    assert events(spans, "memobs.citation") == [citation("d1")]
    (cite_span,) = finished(spans, "cite_memory")
    assert dict(cite_span.attributes) == {"session.id": "s-1", "gen_ai.conversation.id": "s-1"}
    assert cite_span.context.trace_id != retrieval.context.trace_id


def test_ainvoke_inside_memobs_context_cites(spans, store, instrumented):
    chain, _ = rag_chain(store)

    async def turn():
        async with memobs.context(session_id="s-1"):
            answer = await chain.ainvoke(TEXTS["d2"])
            return memobs.record_answer(answer)

    assert asyncio.run(turn()) == [("document", "d2")]
    assert events(spans, "memobs.citation") == [citation("d2")]
    assert [s.parent for s in retrieval_spans(spans)] == [None]


def test_citations_go_on_the_current_span_when_there_is_one(spans, store, instrumented, tracer_provider):
    chain, _ = rag_chain(store)
    with memobs.context(session_id="s-1"):
        answer = chain.invoke(TEXTS["d1"])
        with tracer_provider.get_tracer("app").start_as_current_span("agent reply"):
            assert memobs.record_answer(answer) == [("document", "d1")]
    (reply,) = finished(spans, "agent reply")
    assert [dict(e.attributes) for e in reply.events] == [citation("d1")]
    assert finished(spans, "cite_memory") == []


def test_batch_in_one_context_is_one_turn(spans, store, instrumented):
    """What memobs cannot tell apart: the inputs of one batch in one block."""
    chain, _ = rag_chain(store)
    with memobs.context(session_id="s-1"):
        first, second = chain.batch([TEXTS["d1"], TEXTS["d2"]])
        assert memobs.record_answer(first) == [("document", "d1")]
        assert memobs.record_answer(second) == [("document", "d2")]
        # an answer repeating the other input's document is credited with it: one turn
        assert memobs.record_answer(f"{TEXTS['d1']}. {TEXTS['d2']}.") == [("document", "d1"), ("document", "d2")]
    assert len({s.context.trace_id for s in retrieval_spans(spans)}) == 2


def test_batch_with_a_context_per_input_keeps_them_apart(spans, store, instrumented):
    chain, _ = rag_chain(store)

    def answer_one(question):
        with memobs.context(session_id="s-1", request_id=question[:9]):
            answer = chain.invoke(question)
            both = f"{TEXTS['d1']}. {TEXTS['d2']}."  # names both inputs' documents
            return memobs.record_answer(answer), memobs.record_answer(both)

    results = RunnableLambda(answer_one).batch([TEXTS["d1"], TEXTS["d2"]])
    assert results == [([("document", "d1")], [("document", "d1")]),
                       ([("document", "d2")], [("document", "d2")])]
    # each turn's second answer names the same document again: recorded once per turn
    cited = sorted((e["memobs.request.id"], e["memobs.entity.id"]) for e in events(spans, "memobs.citation"))
    assert cited == [("Premium m", "d2"), ("The refun", "d1")]


def test_an_answer_recorded_again_in_the_turn_cites_once(spans, store, instrumented):
    """Streamed chunks or a retry call record_answer again: the turn's citations are not counted twice."""
    chain, _ = rag_chain(store)
    with memobs.context(session_id="s-1"):
        answer = chain.invoke(TEXTS["d1"])
        assert [memobs.record_answer(answer) for _ in range(3)] == [[("document", "d1")]] * 3
    with memobs.context(session_id="s-1"):  # a new turn: cited again
        answer = chain.invoke(TEXTS["d1"])
        assert memobs.record_answer(answer) == [("document", "d1")]
    assert [e["memobs.entity.id"] for e in events(spans, "memobs.citation")] == ["d1", "d1"]


def test_sibling_blocks_in_one_span_are_kept_apart(spans, store, instrumented, tracer_provider):
    """Inside one span of the caller's, each block still sees only its own retrievals."""
    chain, retriever = rag_chain(store)
    both = f"{TEXTS['d1']}. {TEXTS['d3']}."
    with tracer_provider.get_tracer("app").start_as_current_span("request"):
        retriever.invoke(TEXTS["d3"])  # outside any block: part of every block's turn in this trace
        with memobs.context(session_id="a"):
            chain.invoke(TEXTS["d1"])
            assert memobs.record_answer(both) == [("document", "d1"), ("document", "d3")]
        with memobs.context(session_id="b"):
            chain.invoke(TEXTS["d2"])
            assert memobs.record_answer(both) == [("document", "d3")]
        # outside the blocks, the turn is the whole trace
        assert memobs.record_answer(f"{both} {TEXTS['d2']}.") == [("document", "d3"), ("document", "d1"),
                                                                 ("document", "d2")]


def test_runnable_parallel_inside_memobs_context(spans, store, instrumented):
    chain, retriever = rag_chain(store)
    both = RunnableParallel(answer=chain, sources=retriever)
    with memobs.context(session_id="s-1"):
        result = both.invoke(TEXTS["d3"])
        assert [d.id for d in result["sources"]] == ["d3"]
        assert memobs.record_answer(result["answer"]) == [("document", "d3")]
    assert len(retrieval_spans(spans)) == 2  # two retriever calls, in threads of LangChain's pool
    assert events(spans, "memobs.citation") == [citation("d3")]


def test_duplicate_content_cites_the_higher_ranked_copy(spans, instrumented):
    texts = {**TEXTS, "d1-copy": TEXTS["d1"]}
    store = make_store(texts)
    chain, _ = rag_chain(store, k=2)
    with memobs.context(session_id="s-1"):
        answer = chain.invoke(TEXTS["d1"])
        ranked = [(e["memobs.entity.id"], e["memobs.entity.rank"]) for e in events(spans)]
        assert sorted(ranked) == [("d1", 0), ("d1-copy", 1)] or sorted(ranked) == [("d1", 1), ("d1-copy", 0)]
        top = ranked[0][0]
        other = "d1-copy" if top == "d1" else "d1"
        assert memobs.record_answer(answer) == [("document", top)]  # not both
        # a marker naming the lower-ranked copy: that copy, not the other
        assert memobs.record_answer(f"{answer} [mem:{other}]") == [("document", other)]
    assert events(spans, "memobs.citation") == [citation(top), citation(other, method="marker")]


def test_no_span_and_no_context_logs_once_and_records_nothing(spans, store, instrumented, caplog):
    chain, _ = rag_chain(store)
    answer = chain.invoke(TEXTS["d1"])
    with caplog.at_level(logging.WARNING, logger="memobs_otel"):
        assert memobs.record_answer(answer) == []
        assert memobs.record_answer(answer) == []
    warnings = [r.getMessage() for r in caplog.records if "record_answer" in r.getMessage()]
    assert len(warnings) == 1
    assert "memobs.context" in warnings[0]
    assert events(spans, "memobs.citation") == []
    assert finished(spans, "cite_memory") == []


def test_turn_id_follows_plain_threads():
    import threading

    from memobs_otel.context import current_turns

    seen = []
    with memobs.context(session_id="s"):
        outer = current_turns()
        thread = threading.Thread(target=lambda: seen.append(current_turns()))
        thread.start()
        thread.join()
        with memobs.context(request_id="r"):
            inner = current_turns()
    assert seen == [outer] and len(outer) == 1
    assert inner[:1] == outer and len(inner) == 2
    assert current_turns() == ()


# --- LlamaIndex -----------------------------------------------------------------------

@pytest.fixture
def llama_index():
    pytest.importorskip("llama_index.core")
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.schema import TextNode

    nodes = [TextNode(text=text, id_=doc_id) for doc_id, text in TEXTS.items()]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    assert "llamaindex" in memobs.instrument("llamaindex")
    yield index
    memobs.uninstrument("llamaindex")


def retrieved_documents(spans):
    return [("document", e["memobs.entity.id"]) for e in events(spans) if e["memobs.entity.type"] == "document"]


def test_llamaindex_query_engine_inside_memobs_context(spans, llama_index):
    from llama_index.core.llms import MockLLM

    engine = llama_index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    with memobs.context(session_id="s-1"):
        response = engine.query("How long is the refund window?")  # MockLLM answers with its prompt
        cited = memobs.record_answer(str(response))
    retrieved = retrieved_documents(spans)
    assert len(retrieved) == 2
    assert cited == retrieved
    assert events(spans, "memobs.citation") == [citation(doc_id) for _, doc_id in retrieved]


def test_llamaindex_chat_engine_inside_memobs_context(spans, llama_index):
    from llama_index.core.llms import MockLLM

    engine = llama_index.as_chat_engine(chat_mode="context", llm=MockLLM(), similarity_top_k=2)
    with memobs.context(session_id="s-1"):
        response = engine.chat("How long is the refund window?")
        cited = memobs.record_answer(str(response))
    retrieved = retrieved_documents(spans)
    assert len(retrieved) == 2
    assert cited == retrieved
    assert [e["memobs.entity.id"] for e in events(spans, "memobs.citation")] == [i for _, i in retrieved]
