"""Inventory with the real LangChain: vector store writes recorded, never-retrieved documents stale,
deletes through the store leave the queue, a complete snapshot finds what vanished behind memobs's back."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from helpers import record_to, statuses

import memobs_otel as memobs

pytest.importorskip("langchain_core")
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore  # noqa: E402

import memobs_langchain  # noqa: E402

UTC = timezone.utc
DAY = timedelta(days=1)


@pytest.fixture
def instrumented():
    assert memobs.instrument("langchain") == ["langchain"]
    yield
    memobs.uninstrument("langchain")


def docs(created: str) -> list[Document]:
    return [
        Document(id="kb-gift", page_content="Gift cards never expire and can be used online.",
                 metadata={"title": "Gift cards", "created_at": created}),
        Document(id="kb-refund", page_content="Refunds are paid within 14 days to the original card.",
                 metadata={"title": "Refunds", "created_at": created}),
        Document(id="kb-ship", page_content="Shipping is free above fifty euros in the EU.",
                 metadata={"title": "Shipping", "created_at": created}),
    ]


def queue(db, now):
    return [(c.entity_id, c.title, c.signals, c.score) for c in memobs.open_store(str(db)).memory_review(now=now)]


def test_never_retrieved_documents_are_stale_and_deletes_leave_the_queue(instrumented, tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    now = datetime.now(UTC) + DAY
    created = (now - 100 * DAY).isoformat()
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    assert store.add_documents(docs(created)) == ["kb-gift", "kb-refund", "kb-ship"]
    retriever = store.as_retriever(search_kwargs={"k": 1})
    for _ in range(3):
        assert [d.id for d in retriever.invoke("Gift cards never expire and can be used online.")] == ["kb-gift"]
    provider.force_flush()
    stale = 50 + 100 // 7  # 64: created 100 days before now, never injected
    assert queue(db, now) == [
        ("kb-refund", "Refunds", ["stale"], stale),
        ("kb-ship", "Shipping", ["stale"], stale),
        ("kb-gift", "Gift cards", ["high_cost_low_cite"], 33),
    ]
    with sqlite3.connect(str(db)) as conn:  # one create per document: add_documents went through once
        assert conn.execute("SELECT e.entity_id, w.op, w.status FROM writes w JOIN entities e"
                            " ON e.pk = w.entity_pk ORDER BY e.entity_id").fetchall() == [
            ("kb-gift", "create", None), ("kb-refund", "create", None), ("kb-ship", "create", None)]
        assert conn.execute("SELECT DISTINCT json_extract(s.attributes, '$.\"gen_ai.memory.store.id\"')"
                            " FROM writes w JOIN spans s ON s.pk = w.span_pk").fetchall() == [("InMemoryVectorStore",)]

    store.delete(["kb-refund"])  # through the framework: out of the queue
    provider.force_flush()
    assert queue(db, now) == [("kb-ship", "Shipping", ["stale"], stale),
                              ("kb-gift", "Gift cards", ["high_cost_low_cite"], 33)]

    store.store.pop("kb-ship")  # behind memobs's back: only a complete snapshot can tell
    # complete=True: this store is the only InMemoryVectorStore, so its class name names it alone
    assert memobs_langchain.snapshot(store, complete=True) == 1
    provider.force_flush()
    assert queue(db, now) == [("kb-gift", "Gift cards", ["high_cost_low_cite"], 33)]
    assert statuses(db) == {"kb-gift": "active", "kb-refund": "deleted", "kb-ship": "deleted"}

    # created again under the same id: active again, back in the queue
    store.add_documents([docs(created)[1]])
    provider.force_flush()
    assert statuses(db)["kb-refund"] == "active"
    assert ("kb-refund", "Refunds", ["stale"], stale) in queue(db, now)


def test_add_texts_and_async_forms_record_each_document_once(instrumented, tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    # add_texts (base class) -> add_documents (InMemoryVectorStore's): one write each
    assert store.add_texts(["alpha text", "beta text"], metadatas=[{"title": "A"}, {"title": "B"}],
                           ids=["a", "b"]) == ["a", "b"]

    async def run():
        await store.aadd_texts(["gamma text"], ids=["c"])  # base: -> aadd_documents
        await store.aadd_documents([Document(id="d", page_content="delta text")])
        await store.adelete(["a"])  # InMemoryVectorStore.adelete calls delete: one write
    asyncio.run(run())
    provider.force_flush()
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT e.entity_id, w.op FROM writes w JOIN entities e ON e.pk = w.entity_pk"
                            " ORDER BY w.event_pk").fetchall() == [
            ("a", "create"), ("b", "create"), ("c", "create"), ("d", "create"), ("a", "delete")]
        assert dict(conn.execute("SELECT entity_id, title FROM entities")) == {
            "a": "A", "b": "B", "c": None, "d": None}


def test_a_store_class_defined_after_instrument_is_covered(instrumented, tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)

    class Later(InMemoryVectorStore):  # defines its own add_documents, calling super()'s
        def add_documents(self, documents, ids=None, **kwargs):
            return super().add_documents(documents, ids=ids, **kwargs)

    store = Later(DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(id="x", page_content="x text")])
    provider.force_flush()
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT e.entity_id, w.op, json_extract(s.attributes,"
                            " '$.\"gen_ai.memory.store.id\"') FROM writes w"
                            " JOIN entities e ON e.pk = w.entity_pk JOIN spans s ON s.pk = w.span_pk"
                            ).fetchall() == [("x", "create", "Later")]
    memobs.uninstrument("langchain")
    assert "__init_subclass__" not in vars(VectorStore)
    assert not hasattr(Later.add_documents, "__wrapped__")
    memobs.instrument("langchain")


def test_snapshot_of_an_unsupported_store_needs_ids(instrumented, tmp_path, caplog):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(id="p", page_content="p text"), Document(id="q", page_content="q text")])

    class Opaque(InMemoryVectorStore):
        pass

    opaque = Opaque(DeterministicFakeEmbedding(size=16))
    opaque.store = None  # no dict to list: like a remote store
    assert memobs_langchain.snapshot(opaque) is None
    assert "pass ids=" in caplog.text
    assert memobs_langchain.snapshot(store, ids=["p"]) == 1  # partial by default: deletes nothing
    provider.force_flush()
    assert statuses(db) == {"p": "active", "q": "active"}


def test_chroma_snapshot_pages_through_the_collection(instrumented, tmp_path, monkeypatch):
    langchain_chroma = pytest.importorskip("langchain_chroma")
    import chromadb

    from memobs_langchain import writes

    db = tmp_path / "memobs.db"
    provider = record_to(db)
    monkeypatch.setattr(writes, "PAGE", 2)
    # a client of its own (a folder in tmp_path): chromadb keeps one ephemeral system per
    # process and refuses a second with other settings (tests/test_chroma.py makes one)
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                       settings=chromadb.config.Settings(anonymized_telemetry=False))
    store = langchain_chroma.Chroma(collection_name="kb-inventory", client=client,
                                    embedding_function=DeterministicFakeEmbedding(size=16))
    try:
        memobs.uninstrument("langchain")  # in the collection before memobs was on
        store.add_texts([f"text {n}" for n in range(5)], metadatas=[{"title": f"T{n}"} for n in range(5)],
                        ids=[f"c{n}" for n in range(5)])
        memobs.instrument("langchain")
        assert memobs_langchain.snapshot(store) == 5
        provider.force_flush()
        assert statuses(db) == {f"c{n}": "active" for n in range(5)}
        with sqlite3.connect(str(db)) as conn:
            assert dict(conn.execute("SELECT entity_id, title FROM entities")) == {f"c{n}": f"T{n}" for n in range(5)}
            assert conn.execute("SELECT DISTINCT name FROM spans WHERE name LIKE 'inventory%'").fetchall() == [
                ("inventory Chroma",)]
        store.delete(["c3"])  # through LangChain: one delete write (the client's is LangChain's)
        provider.force_flush()
        assert statuses(db)["c3"] == "deleted"
    finally:
        client.delete_collection("kb-inventory")


def test_two_unnamed_stores_of_one_class_never_delete_each_other(instrumented, tmp_path):
    """Found trying memobs as a new user: two InMemoryVectorStores share the store name
    (their class name); a snapshot of one must not mark the other's documents deleted."""
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    faq, products = (InMemoryVectorStore(DeterministicFakeEmbedding(size=16)) for _ in range(2))
    faq.add_documents([Document(id="faq-1", page_content="Refunds take five days")])
    products.add_documents([Document(id="prod-1", page_content="The kettle holds 1.7 litres")])
    assert memobs_langchain.snapshot(faq) == 1
    assert memobs_langchain.snapshot(products) == 1
    provider.force_flush()
    assert statuses(db) == {"faq-1": "active", "prod-1": "active"}
