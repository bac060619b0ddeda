"""Inventory with the real LlamaIndex: index inserts and deletes as writes under the retriever's
stable ids, a snapshot of the index, delete_ref_doc taking every node of the document out of the queue."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, VectorStoreIndex  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402

import memobs_otel as memobs  # noqa: E402
import memobs_llamaindex  # noqa: E402
from memobs_otel.fingerprint import content_hash  # noqa: E402

from helpers import record_to, statuses  # noqa: E402
from llamaindex_helpers import GIFT, RETURNS, BagOfWords  # noqa: E402

UTC = timezone.utc
DAY = timedelta(days=1)
SHIPPING = "Shipping is free for every order above fifty euros."
# two sentences, two nodes of one source document: delete_ref_doc must delete both
WARRANTY = ("The warranty covers every electronic device for two full years after delivery. "
            "Batteries are covered for one year and only against manufacturing defects.")


@pytest.fixture
def instrumented():
    assert memobs.instrument("llamaindex") == ["llamaindex"]
    yield
    memobs.uninstrument("llamaindex")


def node_id(source: str, text: str) -> str:
    return f"{source}#{content_hash(text)[:12]}"


def test_snapshot_inserts_and_delete_ref_doc(instrumented, tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    Settings.llm = MockLLM()
    Settings.embed_model = BagOfWords()
    now = datetime.now(UTC) + DAY
    created = (now - 60 * DAY).isoformat()
    index = VectorStoreIndex.from_documents([
        Document(id_="kb-gift", text=GIFT, metadata={"title": "Gift cards", "created_at": created}),
        Document(id_="kb-returns", text=RETURNS, metadata={"title": "Returns", "created_at": created}),
    ])
    assert memobs_llamaindex.snapshot(index) == 2  # the build is not a write: the snapshot tells memobs
    index.insert(Document(id_="kb-ship", text=SHIPPING, metadata={"title": "Shipping", "created_at": created}))
    source = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id="kb-warranty")}
    warranty_nodes = [TextNode(text=sentence + ".", metadata={"created_at": created}, relationships=source)
                      for sentence in WARRANTY.rstrip(".").split(". ")]
    index.insert_nodes(warranty_nodes)
    for _ in range(3):
        index.as_retriever(similarity_top_k=1).retrieve("do gift cards expire")
    provider.force_flush()

    gift, returns, ship = node_id("kb-gift", GIFT), node_id("kb-returns", RETURNS), node_id("kb-ship", SHIPPING)
    w1, w2 = (node_id("kb-warranty", n.get_content()) for n in warranty_nodes)
    store = memobs.open_store(str(db))
    stale = 50 + 60 // 7  # 58
    assert [(c.entity_id, c.title, c.signals, c.score) for c in store.memory_review(now=now)] == [
        (returns, "Returns", ["stale"], stale),
        (ship, "Shipping", ["stale"], stale),
        *sorted([(w1, w1, ["stale"], stale), (w2, w2, ["stale"], stale)]),
        (gift, "Gift cards", ["high_cost_low_cite"], 33),
    ]
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT e.entity_id, w.op FROM writes w JOIN entities e ON e.pk = w.entity_pk"
                            " WHERE w.op != 'inventory' ORDER BY w.event_pk").fetchall() == [
            (ship, "create"), (w1, "create"), (w2, "create")]

    index.delete_ref_doc("kb-warranty")  # both of its nodes leave the queue
    asyncio.run(index.adelete_ref_doc("kb-ship"))
    provider.force_flush()
    assert [c.entity_id for c in store.memory_review(now=now)] == [returns, gift]
    assert statuses(db) == {gift: "active", returns: "active", ship: "deleted", w1: "deleted", w2: "deleted"}

    # delete_nodes: the docstore's node gives the stable id
    (returns_node,) = [n for n in index.docstore.docs.values() if n.ref_doc_id == "kb-returns"]
    index.delete_nodes([returns_node.node_id], delete_from_docstore=True)
    provider.force_flush()
    assert statuses(db)[returns] == "deleted"
    # a complete snapshot now holds only the gift node: nothing else is left to delete
    assert memobs_llamaindex.snapshot(index) == 1
    provider.force_flush()
    assert [c.entity_id for c in store.memory_review(now=now)] == [gift]
