"""Inventory with the real LangGraph store: a namespace snapshot, read without counting injections,
complete for its namespace only."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("langgraph.store.base")

from langgraph.store.memory import InMemoryStore  # noqa: E402

import memobs_otel as memobs  # noqa: E402
import memobs_langgraph  # noqa: E402

from helpers import record_to, statuses  # noqa: E402
from langgraph_helpers import indexed_store  # noqa: E402

UTC = timezone.utc
DAY = timedelta(days=1)


@pytest.fixture
def instrumented():
    assert memobs.instrument("langgraph") == ["langgraph"]
    yield
    memobs.uninstrument("langgraph")


def test_namespace_snapshot(instrumented, tmp_path):
    db = tmp_path / "memobs.db"
    store = indexed_store()
    memobs.uninstrument("langgraph")  # written before memobs was on
    for key, text in (("seat", "Prefers window seats"), ("food", "Vegetarian"), ("pet", "Has a dog")):
        store.put(("memories", "alice"), key, {"text": text})
    store.put(("memories", "alice", "work"), "desk", {"text": "Standing desk"})
    store.put(("memories", "alicia"), "tea", {"text": "Green tea"})  # a prefix of the name, not the namespace
    memobs.instrument("langgraph")
    provider = record_to(db)

    assert memobs_langgraph.snapshot(store, ("memories", "alice")) == 4
    assert memobs_langgraph.snapshot(store, ("memories", "alicia")) == 1
    provider.force_flush()
    now = datetime.now(UTC) + 100 * DAY
    review = memobs.open_store(str(db)).memory_review(now=now)
    assert [(c.entity_id, c.signals, c.score) for c in review] == [
        ("memories/alice/work:desk", ["stale"], 64), ("memories/alice:food", ["stale"], 64),
        ("memories/alice:pet", ["stale"], 64), ("memories/alice:seat", ["stale"], 64),
        ("memories/alicia:tea", ["stale"], 64)]
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (0,)
        assert conn.execute("SELECT name FROM spans ORDER BY pk").fetchall() == [
            ("inventory InMemoryStore",), ("inventory InMemoryStore",)]

    memobs.uninstrument("langgraph")
    store.delete(("memories", "alice"), "food")  # behind memobs's back
    memobs.instrument("langgraph")
    assert memobs_langgraph.snapshot(store, ("memories", "alice")) == 3
    store.delete(("memories", "alice"), "pet")  # through the store: a delete write
    provider.force_flush()
    assert statuses(db) == {
        "memories/alice/work:desk": "active", "memories/alice:food": "deleted",
        "memories/alice:pet": "deleted", "memories/alice:seat": "active", "memories/alicia:tea": "active"}

    # the async form reads with abatch: the same answer
    store.put(("memories", "alice"), "food", {"text": "Vegan now"})
    assert asyncio.run(memobs_langgraph.asnapshot(store, ("memories", "alice"))) == 3
    provider.force_flush()
    assert statuses(db)["memories/alice:food"] == "active"  # created again: active again


def test_snapshot_pages_through_the_store(instrumented, tmp_path, monkeypatch):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    monkeypatch.setattr(memobs_langgraph, "PAGE", 2)
    store = InMemoryStore()
    memobs.uninstrument("langgraph")
    for n in range(5):
        store.put(("notes",), f"n{n}", {"text": f"note {n}"})
    memobs.instrument("langgraph")
    assert memobs_langgraph.snapshot(store) == 5  # the whole store: (), pages of 2
    provider.force_flush()
    assert sorted(statuses(db)) == [f"notes:n{n}" for n in range(5)]


def test_kill_switch_reads_nothing(monkeypatch):
    from memobs_otel import config

    class Untouchable(InMemoryStore):
        def batch(self, ops):
            raise AssertionError("read with memobs off")
    monkeypatch.setenv("MEMOBS_ENABLED", "false")
    config.reload_settings()
    assert memobs_langgraph.snapshot(Untouchable(), ("notes",)) is None
    assert memobs.record_inventory([{"id": "a", "content": "a"}]) is None
