"""LangGraph store plugin against the real langgraph: InMemoryStore and SqliteStore, offline."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from framework_helpers import ENC, check_instrument_cycle, measured
from helpers import events, finished

pytest.importorskip("langgraph.store.base")

from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph_helpers import DIMS, embed, indexed_store

import memobs_otel as memobs
from memobs_otel.fingerprint import content_hash

PATCHED = ("search", "get", "put", "delete", "asearch", "aget", "aput", "adelete")


def injected(item, rank, text):
    event = {"memobs.entity.type": "memory", "memobs.entity.id": f"{'/'.join(item.namespace)}:{item.key}",
             "memobs.entity.rank": rank, "memobs.entity.created_at": item.created_at.isoformat(),
             "memobs.entity.updated_at": item.updated_at.isoformat(), **measured(text)}
    if getattr(item, "score", None) is not None:
        event["memobs.entity.score"] = item.score
    return event


@pytest.fixture
def instrumented():
    assert memobs.instrument("langgraph") == ["langgraph"]
    yield
    memobs.uninstrument("langgraph")


def fill(store):
    store.put(("memories", "alice"), "seat", {"text": "Prefers window seats", "source": "chat"})
    store.put(("memories", "alice"), "food", {"text": "Vegetarian, no mushrooms", "source": "form"})


def test_search_counts_the_indexed_field_not_the_serialised_value(spans, instrumented):
    store = indexed_store()
    fill(store)
    spans.clear()
    hits = store.search(("memories", "alice"), query="window seats", limit=5)
    assert [h.key for h in hits] == ["seat", "food"]
    texts = {"seat": "Prefers window seats", "food": "Vegetarian, no mushrooms"}
    assert events(spans) == [injected(h, rank, texts[h.key]) for rank, h in enumerate(hits)]
    # the bug: the serialised dict is many more tokens than the 4-token text
    assert events(spans)[0]["memobs.entity.tokens"] == 4
    assert len(ENC.encode_ordinary(json.dumps(hits[0].value, sort_keys=True))) > 4
    (span,) = finished(spans)
    assert span.name == "search_memory InMemoryStore"
    assert span.attributes["gen_ai.request.top_k"] == 5
    assert span.attributes["gen_ai.memory.store.id"] == "InMemoryStore"
    assert span.attributes["memobs.injection.count"] == 2


def test_get_put_update_delete(spans, instrumented):
    store = indexed_store()
    before = datetime.now(timezone.utc)
    fill(store)
    writes = events(spans, "memobs.entity.write")
    for write in writes:
        created = write.pop("memobs.entity.created_at")
        assert write.pop("memobs.entity.updated_at") == created
        assert before <= datetime.fromisoformat(created) <= datetime.now(timezone.utc)
    assert writes == [
        {"memobs.entity.type": "memory", "memobs.entity.id": "memories/alice:seat", "memobs.write.op": "create",
         **measured("Prefers window seats")},
        {"memobs.entity.type": "memory", "memobs.entity.id": "memories/alice:food", "memobs.write.op": "create",
         **measured("Vegetarian, no mushrooms")},
    ]
    assert [s.name for s in finished(spans)] == ["update_memory", "update_memory"]
    assert finished(spans)[0].attributes["gen_ai.memory.store.id"] == "InMemoryStore"

    spans.clear()
    item = store.get(("memories", "alice"), "seat")
    assert events(spans) == [injected(item, 0, "Prefers window seats")]
    assert store.get(("memories", "alice"), "missing") is None
    assert finished(spans)[-1].attributes["memobs.injection.count"] == 0

    spans.clear()
    store.put(("memories", "alice"), "seat", {"text": "Prefers aisle seats now"})
    store.delete(("memories", "alice"), "food")
    update, delete = events(spans, "memobs.entity.write")
    assert update.pop("memobs.entity.created_at") == item.created_at.isoformat()  # the existing item's
    update.pop("memobs.entity.updated_at")
    assert update == {"memobs.entity.type": "memory", "memobs.entity.id": "memories/alice:seat",
                      "memobs.write.op": "update", **measured("Prefers aisle seats now")}
    delete.pop("memobs.entity.updated_at")
    assert delete == {"memobs.entity.type": "memory", "memobs.entity.id": "memories/alice:food",
                      "memobs.write.op": "delete", "memobs.entity.status": "deleted"}
    assert [s.name for s in finished(spans)] == ["update_memory", "delete_memory"]
    # the read-before-write went through the store's batch: no retrieval span, no injection
    assert events(spans) == []


def test_without_index_the_whole_value_is_the_text(spans, instrumented):
    store = InMemoryStore()
    store.put(("prefs",), "theme", {"theme": "dark", "font": "mono"})
    store.search(("prefs",))
    text = json.dumps({"theme": "dark", "font": "mono"}, sort_keys=True, ensure_ascii=False)
    (write,) = events(spans, "memobs.entity.write")
    (injection,) = events(spans)
    assert write["memobs.entity.content_hash"] == injection["memobs.entity.content_hash"] == content_hash(text)
    assert "memobs.entity.score" not in injection  # a search without a query has no scores


def test_fields_option_and_content_capture(spans, monkeypatch):
    monkeypatch.setenv("MEMOBS_CAPTURE_CONTENT", "true")
    memobs.config.reload_settings()
    memobs.instrument("langgraph", fields=["profile.name", "tags[*]"], store="profiles", entity_type="profile")
    try:
        store = InMemoryStore()
        store.put(("users",), "u1", {"profile": {"name": "Ada"}, "tags": ["math", "engines"], "x": 1})
        store.search(("users",), query="Ada")
    finally:
        memobs.uninstrument("langgraph")
    (injection,) = events(spans)
    assert injection["memobs.entity.type"] == "profile"
    assert injection["memobs.entity.content"] == "Ada\nmath\nengines"
    search = finished(spans, "search_memory profiles")[0]
    assert search.attributes["input.value"] == "Ada"


def test_async_methods(spans, instrumented):
    async def run():
        store = indexed_store()
        await store.aput(("memories", "bob"), "pet", {"text": "Has a dog called Rex"})
        await store.aput(("memories", "bob"), "pet", {"text": "Has a dog called Rex and a cat"})
        hits = await store.asearch(("memories", "bob"), query="dog")
        item = await store.aget(("memories", "bob"), "pet")
        await store.adelete(("memories", "bob"), "pet")
        return hits, item

    hits, item = asyncio.run(run())
    assert [e["memobs.write.op"] for e in events(spans, "memobs.entity.write")] == ["create", "update", "delete"]
    text = "Has a dog called Rex and a cat"
    assert events(spans) == [injected(hits[0], 0, text), injected(item, 0, text)]
    assert [s.name for s in finished(spans)] == ["update_memory", "update_memory", "search_memory InMemoryStore",
                                                 "search_memory InMemoryStore", "delete_memory"]


def test_result_unchanged_and_uninstrument_restores(spans):
    def run():
        store = indexed_store()
        fill(store)
        found = store.search(("memories", "alice"), query="mushrooms")
        return [(h.key, h.value, h.score) for h in found], store.get(("memories", "alice"), "food").value

    originals = {name: BaseStore.__dict__[name] for name in PATCHED}

    def restored():
        assert {name: BaseStore.__dict__[name] for name in PATCHED} == originals
        assert "search" not in InMemoryStore.__dict__  # nothing left on the subclass

    check_instrument_cycle(spans, "langgraph", run, 3, restored)


def test_instrument_without_argument_covers_langgraph(spans):
    assert "langgraph" in memobs.instrument()
    try:
        indexed_store().put(("a",), "k", {"text": "hello"})
        assert len(events(spans, "memobs.entity.write")) == 1
    finally:
        memobs.uninstrument()


def test_failed_put_records_nothing_and_store_errors_pass_through(spans, instrumented):
    store = InMemoryStore()
    with pytest.raises(Exception) as raised:
        store.put(("langgraph",), "k", {"text": "reserved root label"})
    assert type(raised.value).__name__ == "InvalidNamespaceError"
    assert events(spans, "memobs.entity.write") == []


def test_kill_switch(spans, instrumented, monkeypatch):
    monkeypatch.setenv("MEMOBS_ENABLED", "false")
    memobs.config.reload_settings()
    store = indexed_store()
    fill(store)
    store.search(("memories", "alice"), query="seats")
    assert finished(spans) == []


def as_json(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# This Python's sqlite3 cannot load extensions, which the SQLite stores need for a vector
# index (sqlite-vec): they run here without one, so they embed (and memobs measures) "$".
def test_sqlite_store(spans, instrumented, tmp_path):
    sqlite_store = pytest.importorskip("langgraph.store.sqlite")
    with sqlite_store.SqliteStore.from_conn_string(str(tmp_path / "store.db")) as store:
        store.setup()
        fill(store)
        store.put(("memories", "alice"), "seat", {"text": "Prefers aisle seats"})
        hits = store.search(("memories", "alice"), filter={"source": "form"}, limit=2)
        item = store.get(("memories", "alice"), "seat")
        store.delete(("memories", "alice"), "food")
    assert [e["memobs.write.op"] for e in events(spans, "memobs.entity.write")] == [
        "create", "create", "update", "delete"]
    assert [h.key for h in hits] == ["food"]
    assert events(spans) == [injected(hits[0], 0, as_json(hits[0].value)), injected(item, 0, as_json(item.value))]
    assert finished(spans, "search_memory SqliteStore")[0].attributes["gen_ai.request.top_k"] == 2


def test_async_sqlite_store(spans, instrumented, tmp_path):
    aio = pytest.importorskip("langgraph.store.sqlite.aio")

    async def run():
        async with aio.AsyncSqliteStore.from_conn_string(str(tmp_path / "store.db")) as store:
            await store.setup()
            await store.aput(("memories", "carl"), "tea", {"text": "Drinks green tea"})
            hits = await store.asearch(("memories", "carl"))
            await store.adelete(("memories", "carl"), "tea")
            return hits

    hits = asyncio.run(run())
    assert [e["memobs.write.op"] for e in events(spans, "memobs.entity.write")] == ["create", "delete"]
    assert events(spans) == [injected(hits[0], 0, as_json({"text": "Drinks green tea"}))]
    assert [s.name for s in finished(spans)] == ["update_memory", "search_memory AsyncSqliteStore", "delete_memory"]


def test_sqlite_store_embedded_fields_come_from_text_fields():
    from langgraph.store.sqlite.base import _ensure_index_config

    from memobs_langgraph.text import store_paths

    class Configured:  # what SqliteStore.__init__ keeps when given an index
        index_config = _ensure_index_config({"dims": DIMS, "embed": embed, "text_fields": ["text"]})[1]

    assert store_paths(Configured(), None) == [["text"]]


def test_a_failing_option_never_breaks_the_store(spans, caplog):
    def broken(store):
        raise RuntimeError("boom")

    memobs.instrument("langgraph", store=broken)
    try:
        store = indexed_store()
        fill(store)
        hits = store.search(("memories", "alice"), query="seats")
        asyncio.run(store.aput(("memories", "alice"), "x", {"text": "still stored"}))
    finally:
        memobs.uninstrument("langgraph")
    assert [h.key for h in hits] == ["seat", "food"]
    assert store.get(("memories", "alice"), "x").value == {"text": "still stored"}
    assert finished(spans) == []
    assert [r.getMessage() for r in caplog.records].count(
        "memobs: langgraph store failed (RuntimeError); memobs keeps going and will not repeat this warning") == 1
