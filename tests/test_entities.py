"""Built-in result shapes -> the exact entities (id, content, score, rank, lifecycle)."""

from __future__ import annotations

import dataclasses

import pydantic
import pytest
from helpers import events

import memobs_otel as memobs
from memobs_otel.entities import extract_entities
from memobs_otel.fingerprint import content_hash


def summary(entities):
    return [(e.entity_type, e.entity_id, e.content, e.score, e.rank) for e in entities]


@dataclasses.dataclass
class Fact:
    id: str
    text: str
    updated_at: str | None = None


class Profile(pydantic.BaseModel):
    memory_id: str
    content: str
    similarity: float
    metadata: dict = {}


class DocLike:
    """LangChain-Document-like object: page_content + metadata."""

    def __init__(self, page_content, metadata, id=None):
        self.page_content, self.metadata, self.id = page_content, metadata, id


class Node:
    def __init__(self, node_id, text):
        self.node_id, self.text, self.metadata = node_id, text, {"title": "T-" + node_id}

    def get_content(self):
        return self.text


class NodeWithScore:
    def __init__(self, node, score):
        self.node, self.score = node, score


def test_none_and_empty():
    assert extract_entities(None, "t") == []
    assert extract_entities([], "t") == []
    assert extract_entities({"results": []}, "t") == []


def test_string_and_list_of_strings():
    assert summary(extract_entities("alpha", "fact")) == [("fact", content_hash("alpha")[:16], "alpha", None, 0)]
    assert summary(extract_entities(["a", "b"], "fact")) == [
        ("fact", content_hash("a")[:16], "a", None, 0), ("fact", content_hash("b")[:16], "b", None, 1)]


def test_dicts_with_common_keys():
    result = [{"id": 1, "content": "c1", "score": 0.5}, {"doc_id": "d2", "text": "c2", "similarity": 0.25},
              {"memory": "c3", "metadata": {"id": "m3"}}]
    assert summary(extract_entities(result, "doc")) == [
        ("doc", "1", "c1", 0.5, 0), ("doc", "d2", "c2", 0.25, 1), ("doc", "m3", "c3", None, 2)]


def test_single_dict_is_one_entity():
    assert summary(extract_entities({"id": "x", "content": "only"}, "doc")) == [("doc", "x", "only", None, 0)]


def test_item_score_pairs_list_and_single():
    result = [({"id": "a", "content": "A"}, 0.9), (DocLike("B", {"id": "b"}), 0.1)]
    assert summary(extract_entities(result, "doc")) == [("doc", "a", "A", 0.9, 0), ("doc", "b", "B", 0.1, 1)]
    assert summary(extract_entities(({"id": "a", "content": "A"}, 0.9), "doc")) == [("doc", "a", "A", 0.9, 0)]


def test_dataclass_and_pydantic():
    ents = extract_entities([Fact("f1", "sky is blue", "2024-01-01"),
                             Profile(memory_id="p1", content="likes tea", similarity=0.7, metadata={"status": "active"})],
                            "fact")
    assert summary(ents) == [("fact", "f1", "sky is blue", None, 0), ("fact", "p1", "likes tea", 0.7, 1)]
    assert ents[0].updated_at == "2024-01-01"
    assert ents[1].status == "active"


def test_langchain_document_like_and_real_document():
    from langchain_core.documents import Document

    ents = extract_entities([DocLike("text one", {"id": "m1", "title": "One"}),
                             Document(page_content="text two", id="doc-2", metadata={"created_at": 1700000000})], "doc")
    assert summary(ents) == [("doc", "m1", "text one", None, 0), ("doc", "doc-2", "text two", None, 1)]
    assert ents[0].title == "One"
    assert ents[1].created_at == 1700000000


def test_node_with_score_like_and_real_llamaindex():
    from llama_index.core.schema import NodeWithScore as RealNWS, TextNode

    ents = extract_entities([NodeWithScore(Node("n1", "node text"), 0.8),
                             RealNWS(node=TextNode(text="real node", id_="n2", metadata={"version": 2}), score=0.6)],
                            "chunk")
    assert summary(ents) == [("chunk", "n1", "node text", 0.8, 0), ("chunk", "n2", "real node", 0.6, 1)]
    assert ents[0].title == "T-n1"
    assert ents[1].version == 2


def test_mem0_results():
    result = {"results": [
        {"id": "m-1", "memory": "Prefers window seats", "score": 0.83, "created_at": "2024-03-01T10:00:00-08:00",
         "updated_at": None, "user_id": "alice", "metadata": {"category": "travel"}},
        {"id": "m-2", "memory": "Vegetarian", "score": 0.5},
    ], "relations": []}
    ents = extract_entities(result, "user_profile")
    assert summary(ents) == [("user_profile", "m-1", "Prefers window seats", 0.83, 0),
                             ("user_profile", "m-2", "Vegetarian", 0.5, 1)]
    assert ents[0].created_at == "2024-03-01T10:00:00-08:00"
    assert ents[0].updated_at is None


def test_generator_result_is_consumed_once():
    def gen():
        yield {"id": "g", "content": "G"}

    assert summary(extract_entities(gen(), "doc")) == [("doc", "g", "G", None, 0)]


def test_stable_id_from_content_hash_and_type_identity():
    a = extract_entities(["same text"], "user_playbook")[0]
    b = extract_entities(["same text"], "agent_playbook")[0]
    assert a.entity_id == b.entity_id == content_hash("same text")[:16]
    assert a.key != b.key


@pytest.mark.parametrize(("result", "count"), [
    ([object()], 1), (42, 1), ([None], 0), ([[{"id": "nested", "content": "n"}]], 1), ({"results": "not a list"}, 1),
])
def test_odd_results_do_not_raise(spans, result, count):
    @memobs.observe_retrieval(entity_type="x")
    def search(q):
        return result

    assert search("q") is result
    assert len(events(spans)) == count


# --- the per-class plan for plain pydantic models equals the generic path ---------


class PlainModel(pydantic.BaseModel):
    content: str | None = None
    text: str | None = None
    doc_id: str | None = None
    score: float | None = None
    metadata: dict = {}


class ExtraModel(pydantic.BaseModel, extra="allow"):
    page_content: str
    metadata: dict = {}


class LifecycleModel(pydantic.BaseModel):
    content: str
    status: str | None = None


class _ListMapping(dict):
    pass


def _generic(result, entity_type="document"):
    """What extract_entities gave before the plans: _list_items, then entity_from_item per pair."""
    from memobs_otel.entities import _list_items, entity_from_item

    return [entity_from_item(item, entity_type, score, rank) for rank, (item, score) in enumerate(_list_items(result))]


def _plan_shapes():
    from langchain_core.documents import Document

    injected = Document(page_content="injected", metadata={}, id="d-inj")
    object.__setattr__(injected, "text", "shadow text")  # a probed name put into __dict__ by hand
    unset = PlainModel(text="t")
    return [
        Document(page_content="alpha", metadata={"n": 1}, id="d-1"),
        Document(page_content="no id here", metadata={"n": 2}),
        Document(page_content="metadata id", metadata={"doc_id": "m-7", "n": 3}),
        Document(page_content="lifecycle in metadata", metadata={"status": "draft", "updated_at": "2024-05-01"}, id="d-2"),
        Document(page_content="title in metadata", metadata={"title": "T"}, id="d-3"),
        Document(page_content="", metadata={}, id="d-empty"),
        Document(page_content="mapping metadata", metadata=_ListMapping(a=1), id="d-4"),
        injected,
        (Document(page_content="pair", metadata={}, id="d-5"), 0.25),
        (Document(page_content="int score", metadata={}, id="d-6"), 3),
        (Document(page_content="bool score", metadata={}, id="d-7"), True),
        (Document(page_content="str score", metadata={}, id="d-8"), "0.5"),
        [Document(page_content="list pair", metadata={}, id="d-9"), 0.5],
        PlainModel(content="c", text="t", doc_id="p-1", score=0.5),
        PlainModel(content=None, text="only text", score=2),
        unset,
        (PlainModel(content="scored pair", score=0.9), 0.1),
        ExtraModel(page_content="extra", metadata={}, other="x"),
        ExtraModel(page_content="no extra", metadata={}),
        LifecycleModel(content="life", status="archived"),
        {"id": "dict-1", "content": "a dict"},
        "a plain string",
        ("a pair of a string", 0.5),
        Fact("f-1", "a dataclass"),
    ]


def test_model_plans_give_the_generic_entities():
    from langchain_core.documents import Document

    from memobs_otel.entities import _model_plan

    assert _model_plan(Document) is not None and _model_plan(PlainModel) is not None  # the plan path runs
    assert _model_plan(LifecycleModel) is None and _model_plan(dict) is None
    shapes = _plan_shapes()
    for shape in shapes:  # one at a time, then all together (ranks run on)
        assert extract_entities([shape], "document") == _generic([shape])
    assert extract_entities(shapes, "document") == _generic(shapes)
    assert extract_entities(shapes * 3, "document") == _generic(shapes * 3)
    injected = extract_entities([shapes[7]], "document")[0]
    assert (injected.entity_id, injected.content) == ("d-inj", "shadow text")  # read like any other object
