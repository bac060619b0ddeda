"""The writer's entity cache: never stale across connections, purges or rollbacks."""

from __future__ import annotations

import sqlite3

from memobs_otel import semconv as sc
from memobs_otel.store import open_store
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import EventRecord, SpanRecord
from memobs_otel.store.writer import Writer


def span(trace, t, entity_id="1", user="u1", **attrs):
    return SpanRecord(
        trace_id=trace, span_id=trace, parent_span_id=None, name="search_memory notes",
        kind="INTERNAL", start_ns=t, end_ns=t, status="UNSET", attributes={sc.USER_ID: user},
        events=(EventRecord(sc.EVENT_INJECTION, t, {
            sc.ENTITY_TYPE: "note", sc.ENTITY_ID: entity_id, sc.ENTITY_RANK: 0,
            sc.ENTITY_SCORE: 0.5, sc.ENTITY_TOKENS: 7,
            sc.ENTITY_CONTENT_HASH: "a" * 32, sc.ENTITY_SIMHASH: "00000000000000ff", **attrs}),))


def catalog(path):
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT entity_id, title, title_t, first_seen_ns FROM entities ORDER BY pk").fetchall()


def test_a_commit_by_another_connection_refreshes_the_cached_rows(tmp_path):
    path = tmp_path / "m.db"
    one, two = Writer(connect_for_write(path)), Writer(connect_for_write(path))
    one.write([span(1, 10, **{sc.ENTITY_TITLE: "a"})])
    two.write([span(2, 20, **{sc.ENTITY_TITLE: "b"})])
    # ``one`` cached title "a": were it not told, "a" at 30 would look unchanged
    one.write([span(3, 30, **{sc.ENTITY_TITLE: "a"})])
    assert catalog(path) == [("1", "a", 30, 10)]


def test_the_usual_event_that_changes_nothing_writes_no_catalog_row(tmp_path):
    path = tmp_path / "m.db"
    conn = connect_for_write(path)
    writer = Writer(conn)
    writer.write([span(1, 10)])
    changes = conn.total_changes
    writer.write([span(2, 20)])
    # the span, its injection row, its turn_injections row (m008); the entity row is left alone
    assert conn.total_changes - changes == 3
    assert catalog(path) == [("1", None, None, 10)]
    writer.write([span(3, 5)])  # an earlier sighting does change it
    assert catalog(path) == [("1", None, None, 5)]


def test_after_a_purge_a_cached_pk_is_not_reused(tmp_path):
    path = tmp_path / "m.db"
    writer = Writer(connect_for_write(path))
    writer.write([span(1, 10, entity_id="gone", user="alice"), span(2, 11, entity_id="kept", user="bob")])
    with open_store(path) as store:
        assert store.purge_user("alice")["injections"] == 1
    assert catalog(path) == [("kept", None, None, 11)]
    writer.write([span(3, 12, entity_id="gone", user="carol")])
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT e.entity_id, i.user_id FROM injections i JOIN entities e ON e.pk = i.entity_pk"
            " ORDER BY i.pk").fetchall()
    assert rows == [("kept", "bob"), ("gone", "carol")]
    assert [row[0] for row in catalog(path)] == ["kept", "gone"]


def test_a_rolled_back_batch_leaves_no_cached_entity(tmp_path):
    path = tmp_path / "m.db"
    conn = connect_for_write(path)
    writer = Writer(conn)
    conn.execute("CREATE TRIGGER fail BEFORE INSERT ON citations BEGIN SELECT RAISE(ABORT, 'boom'); END")
    bad = span(1, 10, entity_id="new")
    bad = SpanRecord(**{**bad.__dict__, "events": bad.events + (EventRecord(
        sc.EVENT_CITATION, 11, {sc.ENTITY_TYPE: "note", sc.ENTITY_ID: "new"}),)})
    try:
        writer.write([bad])
    except sqlite3.DatabaseError as exc:
        assert "boom" in str(exc)
    else:
        raise AssertionError("the trigger should have failed the batch")
    conn.execute("DROP TRIGGER fail")
    assert catalog(path) == []
    writer.write([span(2, 20, entity_id="new")])
    assert catalog(path) == [("new", None, None, 20)]
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM v_injections").fetchone() == (1,)


def test_every_shape_of_injection_event_gives_the_same_columns(tmp_path):
    path = tmp_path / "m.db"
    conn = connect_for_write(path)
    base = {sc.ENTITY_TYPE: "note", sc.ENTITY_RANK: 0, sc.ENTITY_TOKENS: 7,
            sc.ENTITY_CONTENT_HASH: "a" * 32, sc.ENTITY_SIMHASH: "ffffffffffffffff"}
    shapes = [
        {**base, sc.ENTITY_ID: "full", sc.ENTITY_SCORE: 0.5, sc.ENTITY_CREATED_AT: "2025-01-01",
         sc.USER_ID: "ev-user", sc.SESSION_ID: "s", sc.MEMOBS_REQUEST_ID: "r"},
        {**base, sc.ENTITY_ID: "bare"},  # no score, no created_at, ids from the span
        {**base, sc.ENTITY_ID: "odd", sc.ENTITY_SCORE: 1, sc.ENTITY_RANK: "2", sc.ENTITY_STATUS: "Active",
         sc.ENTITY_TITLE: "T", sc.USER_ID: "", "custom": [1, 2]},
    ]
    record = SpanRecord(
        trace_id=9, span_id=9, parent_span_id=None, name="s", kind="INTERNAL", start_ns=1, end_ns=2,
        status="UNSET", attributes={sc.USER_ID: "span-user"},
        events=tuple(EventRecord(sc.EVENT_INJECTION, 10 + i, attrs) for i, attrs in enumerate(shapes)))
    assert Writer(conn).write([record]) == 1
    rows = conn.execute(
        "SELECT e.entity_id, i.rank, i.score, i.tokens, i.simhash, i.user_id, i.session_id,"
        " i.request_id, i.created_at, i.status, i.title, i.extra"
        " FROM injections i JOIN entities e ON e.pk = i.entity_pk ORDER BY i.pk").fetchall()
    assert rows == [
        ("full", 0, 0.5, 7, -1, "ev-user", "s", "r", "2025-01-01", None, None, None),
        ("bare", 0, None, 7, -1, "span-user", None, None, None, None, None, None),
        ("odd", 2, 1.0, 7, -1, "span-user", None, None, None, "Active", "T", '{"custom":[1,2]}'),
    ]
    assert conn.execute(
        "SELECT entity_id, status, title, created_at FROM entities ORDER BY pk").fetchall() == [
        ("full", None, None, "2025-01-01"), ("bare", None, None, None), ("odd", "active", "T", None)]
