"""Inventory with the real mem0 (offline): a user's memories snapshot, stale when never searched,
a memory deleted behind memobs's back marked deleted, other users untouched."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

import memobs_otel as memobs

from helpers import record_to
from mem0_helpers import instrumented, memory  # noqa: F401  (fixtures: real mem0, offline)

pytest.importorskip("mem0")
import memobs_mem0  # noqa: E402

UTC = timezone.utc
DAY = timedelta(days=1)


def test_snapshot_of_a_users_memories(instrumented, memory, tmp_path):  # noqa: F811
    db = tmp_path / "memobs.db"
    now = datetime.now(UTC) + DAY
    created = (now - 40 * DAY).isoformat()
    # added before memobs recorded anything: only a snapshot can tell memobs they exist
    memobs.uninstrument("mem0")
    seat = memory.add("prefers a window seat", user_id="alice", infer=False,
                      metadata={"created_at": created})["results"][0]["id"]
    dog = memory.add("has a dog called Rex", user_id="alice", infer=False,
                     metadata={"created_at": created})["results"][0]["id"]
    tea = memory.add("likes green tea", user_id="bob", infer=False,
                     metadata={"created_at": created})["results"][0]["id"]
    memobs.instrument("mem0")
    provider = record_to(db)

    assert memobs_mem0.snapshot(memory, user_id="alice") == 2
    assert memobs_mem0.snapshot(memory, user_id="bob") == 1
    provider.force_flush()
    store = memobs.open_store(str(db))
    stale = 50 + 40 // 7  # 55
    assert [(c.entity_type, c.entity_id, c.signals, c.score) for c in store.memory_review(now=now)] == sorted(
        [("memory", seat, ["stale"], stale), ("memory", dog, ["stale"], stale), ("memory", tea, ["stale"], stale)])
    with sqlite3.connect(str(db)) as conn:
        assert sorted(conn.execute("SELECT e.entity_id, w.op, w.user_id, json_extract(s.attributes,"
                                   " '$.\"gen_ai.memory.store.id\"') FROM writes w JOIN entities e"
                                   " ON e.pk = w.entity_pk JOIN spans s ON s.pk = w.span_pk")) == sorted([
            (seat, "inventory", "alice", "prefs"), (dog, "inventory", "alice", "prefs"),
            (tea, "inventory", "bob", "prefs")])
        assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (0,)

    # deleted behind memobs's back: alice's next snapshot marks it deleted, bob's memory stays
    memobs.uninstrument("mem0")
    memory.delete(dog)
    memobs.instrument("mem0")
    assert memobs_mem0.snapshot(memory, user_id="alice") == 1
    provider.force_flush()
    assert [c.entity_id for c in store.memory_review(now=now)] == sorted([seat, tea])
    with sqlite3.connect(str(db)) as conn:
        assert dict(conn.execute("SELECT entity_id, status FROM entities")) == {
            seat: "active", dog: "deleted", tea: "active"}

    # through mem0 itself: the write takes it out of the queue at once
    memory.delete(seat)
    provider.force_flush()
    assert [c.entity_id for c in store.memory_review(now=now)] == [tea]


def test_a_truncated_list_is_never_complete(instrumented, memory, tmp_path):  # noqa: F811
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    ids = [memory.add(text, user_id="carol", infer=False)["results"][0]["id"]
           for text in ("likes jazz", "hates queues", "reads at night")]
    assert memobs_mem0.snapshot(memory, user_id="carol", limit=2) == 2  # maybe more: not complete
    provider.force_flush()
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("SELECT status, COUNT(*) FROM entities GROUP BY status").fetchall() == [("active", 3)]
        assert conn.execute("SELECT json_extract(attributes, '$.\"memobs.inventory.complete\"') FROM spans"
                            " WHERE name = 'inventory prefs'").fetchall() == [(0,)]
    assert len(ids) == 3
