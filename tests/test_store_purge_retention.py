"""purge_user and retention on real files: nothing of the user is left, others untouched."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

import memobs_otel as memobs
from memobs_otel.exporters import SQLiteSpanExporter
from helpers import NOW, Agent, day, pb

TABLES = ("spans", "events", "injections", "citations", "writes", "entities")


def rows_mentioning(path, needle):
    conn = sqlite3.connect(path)
    found = {}
    for table in TABLES:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        for row in conn.execute(f"SELECT * FROM {table}"):
            if any(needle in str(value) for value in row):
                found[table] = found.get(table, 0) + 1
    conn.close()
    return found


def build(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.search(day(5, 10), [pb("shared"), pb("only-alice", title="Alice's secret")],
                 user="alice", session="a1", cite=[("pb", "shared")])
    agent.write(day(5, 11), "pb", "alice-note", user="alice", title="alice-note-title")
    agent.search(day(5, 12), [pb("shared", tokens=7)], user="bob", session="b1",
                 cite=[("pb", "shared")])
    agent.write(day(5, 13), "pb", "bob-note", user="bob")
    return agent


def test_purge_user_leaves_nothing_of_the_user(tmp_path):
    agent = build(tmp_path)
    store = agent.store()
    bob_before = [s.to_dict() for s in store.injection_stats(user_id="bob", now=NOW)]
    counts = store.purge_user("alice")
    assert counts == {"spans": 2, "events": 2, "injections": 2, "citations": 1, "writes": 1}
    assert rows_mentioning(agent.path, "alice") == {}
    assert rows_mentioning(agent.path, "Alice's secret") == {}
    # bob untouched
    assert [s.to_dict() for s in store.injection_stats(user_id="bob", now=NOW)] == bob_before
    assert [(s.entity_id, s.surfaced_count, s.citation_count)
            for s in store.injection_stats(now=NOW)] == [("shared", 1, 1)]
    assert {c.entity_id for c in store.memory_review(now=NOW, days_back=1)} >= {"bob-note"}
    assert store.purge_user("alice") == {t: 0 for t in ("spans", "events", "injections",
                                                        "citations", "writes")}
    with pytest.raises(ValueError):
        store.purge_user("")


def test_retention_by_age_and_rows(tmp_path):
    agent = Agent(tmp_path / "m.db")
    agent.search(day(1, 10), [pb("old")])
    agent.search(day(5, 10), [pb("new"), pb("new2")])
    agent.search(day(5, 20), [pb("newest")])
    store = agent.store()
    deleted = store.apply_retention(max_age_days=60, now=NOW)
    assert deleted == {"spans": 1, "events": 0, "injections": 1, "citations": 0, "writes": 0}
    assert [s.entity_id for s in store.injection_stats(days_back=365, now=NOW)] == [
        "new", "new2", "newest"]
    # 2 spans + 3 injections left: rows = spans + their events (injections included)
    deleted = store.apply_retention(max_rows=2, now=NOW)
    assert deleted["spans"] == 1 and deleted["injections"] == 2
    assert [s.entity_id for s in store.injection_stats(days_back=365, now=NOW)] == ["newest"]
    conn = sqlite3.connect(agent.path)
    assert conn.execute("SELECT entity_id FROM entities").fetchall() == [("newest",)]
    with pytest.raises(ValueError):
        store.apply_retention(max_age_days=0)


def test_env_retention_runs_when_the_exporter_opens_the_file(tmp_path, monkeypatch):
    agent = Agent(tmp_path / "m.db")
    agent.search(datetime(2001, 1, 1, tzinfo=timezone.utc), [pb("ancient")])
    agent.search(datetime.now(timezone.utc), [pb("recent")])
    agent.store()
    monkeypatch.setenv("MEMOBS_RETENTION_DAYS", "30")
    exporter = SQLiteSpanExporter(agent.path)
    exporter._connection()  # the first export opens the file: retention runs
    exporter.shutdown()
    ids = [s.entity_id for s in memobs.open_store(agent.path).injection_stats(days_back=100_000)]
    assert ids == ["recent"]
