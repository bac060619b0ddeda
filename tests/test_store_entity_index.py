"""Schema m003: append-only injections + merged per-entity copy + tail.

Queries must give exactly what the pre-m003 layout gives (its indexes, the
old SQL), whatever share of the rows is merged; the set-wise catalog merge
must equal the Python rebuild from the rows; purge and retention must keep
the copy, the tail and the catalog right.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from memobs_otel import semconv as sc
from memobs_otel.store import catalog, entity_index, open_store
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import EventRecord, SpanRecord
from memobs_otel.store.schema import m001_initial, m002_readable_views
from memobs_otel.store.writer import write_records

import store_scenarios
from store_scenarios import NOW, answers, make_records


def write_file(path, records, migrations=None):
    return store_scenarios.write_file(path, records, 37, migrations)


def catalog_rows(conn, last_seen=False):
    # last_seen_ns is exact once the injection index is merged (see entity_cache.py)
    return conn.execute(
        "SELECT entity_type, entity_id, first_seen_ns, content_hash, simhash,"
        + (" last_seen_ns," if last_seen else "") +
        " content_head, title, created_at, created_ns, updated_at, updated_ns, status, version,"
        " parent_id, superseded_by FROM entities ORDER BY entity_type, entity_id"
    ).fetchall()


@pytest.fixture
def records():
    return make_records()


@pytest.fixture
def reference(tmp_path, records):
    path = tmp_path / "m002.db"
    write_file(path, records, migrations=(m001_initial, m002_readable_views)).close()
    return path


@pytest.mark.parametrize("merge_rows", [10**9, 100, 1])
def test_queries_equal_pre_m003_layout_at_any_merge_state(tmp_path, monkeypatch, records, reference, merge_rows):
    monkeypatch.setattr(entity_index, "MERGE_MIN_ROWS", merge_rows)
    path = tmp_path / "m003.db"
    conn = write_file(path, records)
    mark = entity_index.merged_pk(conn)
    tail = conn.execute("SELECT COUNT(*) FROM injections WHERE pk > ?", (mark,)).fetchone()[0]
    merged = conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone()[0]
    total = conn.execute("SELECT COUNT(*) FROM injections").fetchone()[0]
    assert merged + tail == total
    if merge_rows == 10**9:
        assert merged == 0
    elif merge_rows == 100:
        assert merged > 0 and tail > 0
    conn.close()
    assert answers(path) == answers(reference)
    ref = sqlite3.connect(reference)
    assert catalog_rows(sqlite3.connect(path)) == catalog_rows(ref)


def test_incremental_catalog_equals_python_rebuild(tmp_path, records):
    # In time order the writer's incremental catalog and the exact rebuild
    # agree on every value (out of order they may differ in one documented
    # way: see test_a_late_old_value_wins_over_a_repeated_newer_one).
    path = tmp_path / "m003.db"
    times = iter(sorted(e.time_ns for r in records for e in r.events))
    records = [dataclasses.replace(r, events=tuple(
        dataclasses.replace(e, time_ns=next(times)) for e in r.events)) for r in records]
    conn = write_file(path, records)
    conn.execute("BEGIN IMMEDIATE")
    entity_index.merge_all(conn)  # also brings last_seen_ns up to date
    conn.execute("COMMIT")
    written = catalog_rows(conn, last_seen=True)
    conn.execute("BEGIN IMMEDIATE")
    catalog.rebuild(conn, [pk for (pk,) in conn.execute("SELECT pk FROM entities")])
    conn.execute("COMMIT")
    assert catalog_rows(conn, last_seen=True) == written


def title_span(t, title, trace):
    """A span with one injection of entity ("n", "1") carrying ``title`` at ``t``."""
    return SpanRecord(trace_id=trace, span_id=trace, parent_span_id=None, name="s",
                      kind="INTERNAL", start_ns=t, end_ns=t, status="UNSET",
                      events=(EventRecord(sc.EVENT_INJECTION, t, {
                          sc.ENTITY_TYPE: "n", sc.ENTITY_ID: "1", sc.ENTITY_TITLE: title}),))


def test_out_of_order_batches_keep_the_latest_value(tmp_path):
    conn = connect_for_write(tmp_path / "m.db")
    write_records(conn, [title_span(30, "newest", 1), title_span(10, "oldest", 2)])
    write_records(conn, [title_span(20, "middle", 3)])
    # same time twice in one batch: the later event wins
    write_records(conn, [title_span(30, "tie-first", 4), title_span(30, "tie-second", 5)])
    assert conn.execute("SELECT title, first_seen_ns, last_seen_ns FROM entities").fetchall() == [
        ("tie-second", 10, 30)]


def test_a_late_old_value_wins_over_a_repeated_newer_one(tmp_path):
    # The catalog writes only changes: repeating a value does not move its
    # time (title_t stays at 20), so a late event with another value at 30
    # wins although "b" was seen again at 40 — until "b" is seen once more.
    conn = connect_for_write(tmp_path / "m.db")
    write_records(conn, [title_span(20, "b", 1), title_span(40, "b", 2)])
    assert conn.execute("SELECT title, title_t FROM entities").fetchall() == [("b", 20)]
    write_records(conn, [title_span(30, "a", 3)])
    assert conn.execute("SELECT title, title_t FROM entities").fetchall() == [("a", 30)]
    write_records(conn, [title_span(50, "b", 4)])
    assert conn.execute("SELECT title, title_t, first_seen_ns FROM entities").fetchall() == [
        ("b", 50, 20)]


@pytest.mark.parametrize("merge_rows", [10**9, 100])
def test_purge_and_retention_keep_copy_and_catalog_right(tmp_path, monkeypatch, records, reference, merge_rows):
    monkeypatch.setattr(entity_index, "MERGE_MIN_ROWS", merge_rows)
    path = tmp_path / "m003.db"
    write_file(path, records).close()
    for target in (path, reference):
        store = open_store(target)
        store.purge_user("u2")
        store.apply_retention(max_age_days=30, now=NOW)
        store.apply_retention(max_rows=400)
        store.close()
    assert answers(path) == answers(reference)
    conn = sqlite3.connect(path)
    assert catalog_rows(conn) == catalog_rows(sqlite3.connect(reference))
    # purge merged everything: the copy is exactly the rows left, no tail
    left = conn.execute("SELECT COUNT(*) FROM injections").fetchone()[0]
    assert conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone()[0] == left
    assert conn.execute("SELECT COUNT(*) FROM injections WHERE user_id = 'u2'").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM injections_by_entity WHERE user_id = 'u2'").fetchone() == (0,)
    conn.close()
    # writing after deletions never reuses a pk at or below the merge mark
    more = make_records(seed=9, n_spans=40)
    conn = write_file(path, more)
    write_file(reference, more, migrations=(m001_initial, m002_readable_views)).close()
    mark = entity_index.merged_pk(conn)
    tail = conn.execute("SELECT COUNT(*) FROM injections WHERE pk > ?", (mark,)).fetchone()[0]
    merged = conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone()[0]
    assert merged + tail == conn.execute("SELECT COUNT(*) FROM injections").fetchone()[0]
    conn.close()
    assert answers(path) == answers(reference)


def test_m002_file_upgrades_with_its_rows_merged(tmp_path, records, reference):
    before = answers(reference)
    conn = connect_for_write(reference)  # applies m003
    assert conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone() == \
        conn.execute("SELECT COUNT(*) FROM injections").fetchone()
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "injections_entity" not in names and "injections_user" not in names
    conn.close()
    assert answers(reference) == before
