"""The writer's fast paths give exactly the rows of the general ones.

- the exporter hands SDK ``ReadableSpan``s to the writer as they are
  (``READABLE_SPANS``): same rows as their ``SpanRecord``s (``from_readable_span``);
- the usual injection row (one statement, '' stored as NULL) equals the
  general path's, also for odd values it must leave to the general path;
- the entity cache holding every key (new entities get a pk on the spot)
  or, past its limit, looking keys up; catching up keys other connections
  added; a rolled-back batch.
"""

from __future__ import annotations

import sqlite3

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.entity_cache import EntityCache
from memobs_otel.store.records import EventRecord, SpanRecord, from_readable_span
from memobs_otel.store.writer import Writer, write_records

T0 = 1_748_779_200 * 10**9
TABLES = ("spans", "events", "injections", "citations", "writes", "entities", "injections_by_entity")


def dump(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}
    finally:
        conn.close()


def sdk_spans() -> list:
    """Real SDK spans of every shape the writer reads differently."""
    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "paths", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("tests.paths")
    parent = tracer.start_span("search_memory pb", start_time=T0, kind=SpanKind.SERVER,
                               attributes={sc.USER_ID: "u1", sc.SESSION_ID: "s1", "tags": ("a", "b")})
    usual = {sc.ENTITY_TYPE: "pb", sc.ENTITY_RANK: 0, sc.ENTITY_SCORE: 0.5, sc.ENTITY_TOKENS: 9,
             sc.ENTITY_CONTENT_HASH: "c" * 32, sc.ENTITY_SIMHASH: "8000000000000001",
             sc.ENTITY_CREATED_AT: "2025-01-01T00:00:00Z"}
    parent.add_event(sc.EVENT_INJECTION, {**usual, sc.ENTITY_ID: "1"}, timestamp=T0 + 1)
    parent.add_event(sc.EVENT_INJECTION, {**usual, sc.ENTITY_ID: "2", sc.USER_ID: "ev-user",
                                          sc.MEMOBS_REQUEST_ID: "r9"}, timestamp=T0 + 2)
    parent.add_event(sc.EVENT_INJECTION, {**usual, sc.ENTITY_ID: "3", sc.ENTITY_TITLE: "T",
                                          "custom": (1, 2)}, timestamp=T0 + 3)
    parent.add_event(sc.EVENT_CITATION, {sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: "1",
                                         sc.CITATION_METHOD: "marker"}, timestamp=T0 + 4)
    parent.add_event("plain.event", timestamp=T0 + 5)  # no attributes at all
    child = tracer.start_span("child", context=set_span_in_context(parent), start_time=T0 + 6)
    child.add_event(sc.EVENT_WRITE, {sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: "4",
                                     sc.WRITE_OP: "create", sc.ENTITY_CONTENT_HASH: "d" * 32},
                    timestamp=T0 + 7)
    child.add_event(sc.EVENT_INJECTION, {**usual, sc.ENTITY_ID: "4"}, timestamp=T0 + 8)
    child.set_status(Status(StatusCode.ERROR, "boom"))
    child.end(end_time=T0 + 9)
    parent.end(end_time=T0 + 10)
    provider.shutdown()
    return list(collected.get_finished_spans())


def test_exported_sdk_spans_equal_their_span_records(tmp_path):
    spans = sdk_spans()
    assert len(spans) == 2 and all(s.events for s in spans)
    exporter = SQLiteSpanExporter(tmp_path / "exported.db", apply_env_retention=False)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    conn = connect_for_write(tmp_path / "records.db")
    assert write_records(conn, [from_readable_span(s) for s in spans]) == 2
    conn.close()
    exported, written = dump(tmp_path / "exported.db"), dump(tmp_path / "records.db")
    assert exported == written
    assert [len(exported[t]) for t in TABLES[:6]] == [2, 3, 4, 1, 1, 4]
    conn = sqlite3.connect(tmp_path / "exported.db")
    assert conn.execute("SELECT DISTINCT resource FROM spans").fetchall() == [
        ('{"service.name":"paths","n":3}',)]
    assert conn.execute("SELECT name, kind, status, parent_span_id IS NULL, attributes FROM spans"
                        " ORDER BY start_ns").fetchall() == [
        ("search_memory pb", "SERVER", "UNSET", 1, '{"user.id":"u1","session.id":"s1","tags":["a","b"]}'),
        ("child", "INTERNAL", "ERROR", 0, "{}")]
    assert conn.execute(
        "SELECT e.entity_id, i.user_id, i.session_id, i.request_id, i.created_at, i.title, i.extra"
        " FROM injections i JOIN entities e ON e.pk = i.entity_pk ORDER BY i.time_ns").fetchall() == [
        ("1", "u1", "s1", None, "2025-01-01T00:00:00Z", None, None),
        ("2", "ev-user", "s1", "r9", "2025-01-01T00:00:00Z", None, None),
        ("3", "u1", "s1", None, "2025-01-01T00:00:00Z", "T", '{"custom":[1,2]}'),
        ("4", None, None, None, "2025-01-01T00:00:00Z", None, None)]
    assert conn.execute("SELECT name, attributes FROM events ORDER BY time_ns").fetchall() == [
        (sc.EVENT_CITATION, '{"memobs.entity.type":"pb","memobs.entity.id":"1","memobs.citation.method":"marker"}'),
        ("plain.event", "{}"),
        (sc.EVENT_WRITE, '{"memobs.entity.type":"pb","memobs.entity.id":"4","memobs.write.op":"create",'
                         '"memobs.entity.content_hash":"' + "d" * 32 + '"}')]
    conn.close()


def record(trace, t, events, resource=None, user="span-user"):
    return SpanRecord(
        trace_id=trace, span_id=trace, parent_span_id=None, name="search_memory notes",
        kind="INTERNAL", start_ns=t, end_ns=t + 1, status="UNSET", attributes={sc.USER_ID: user},
        events=tuple(events), resource=resource if resource is not None else {})


def injection(t, entity_id, **attrs):
    return EventRecord(sc.EVENT_INJECTION, t, {
        sc.ENTITY_TYPE: "note", sc.ENTITY_ID: entity_id, sc.ENTITY_RANK: 0, sc.ENTITY_SCORE: 0.5,
        sc.ENTITY_TOKENS: 7, sc.ENTITY_CONTENT_HASH: "a" * 32, sc.ENTITY_SIMHASH: "00000000000000ff",
        **attrs})


def test_odd_values_of_the_usual_attributes_are_converted_as_the_general_path_does(tmp_path):
    conn = connect_for_write(tmp_path / "m.db")
    events = [
        injection(10, "int-simhash", **{sc.ENTITY_SIMHASH: (1 << 64) - 1}),
        injection(11, "small-int-simhash", **{sc.ENTITY_SIMHASH: 5}),
        injection(12, "too-big-simhash", **{sc.ENTITY_SIMHASH: 1 << 64}),
        injection(13, "bad-hex", **{sc.ENTITY_SIMHASH: "not hex"}),
        injection(14, "int-user", **{sc.USER_ID: 0, sc.SESSION_ID: ""}),
        injection(15, "blank-created", **{sc.ENTITY_CREATED_AT: "", sc.ENTITY_SCORE: None}),
        injection(16, "int-score", **{sc.ENTITY_SCORE: 1}),
        injection(17, "bool-rank", **{sc.ENTITY_RANK: True}),
    ]
    assert Writer(conn).write([record(1, 1, events)]) == 1
    rows = conn.execute(
        "SELECT e.entity_id, i.rank, i.score, i.simhash, i.user_id, i.session_id, i.created_at,"
        " e.simhash, e.created_at, e.created_t FROM injections i JOIN entities e ON e.pk = i.entity_pk"
        " ORDER BY i.pk").fetchall()
    assert rows == [
        ("int-simhash", 0, 0.5, -1, "span-user", None, None, -1, None, None),
        ("small-int-simhash", 0, 0.5, 5, "span-user", None, None, 5, None, None),
        ("too-big-simhash", 0, 0.5, None, "span-user", None, None, None, None, None),
        ("bad-hex", 0, 0.5, None, "span-user", None, None, None, None, None),
        ("int-user", 0, 0.5, 255, "0", None, None, 255, None, None),
        ("blank-created", 0, None, 255, "span-user", None, None, 255, None, None),
        ("int-score", 0, 1.0, 255, "span-user", None, None, 255, None, None),
        ("bool-rank", None, 0.5, 255, "span-user", None, None, 255, None, None),
    ]
    assert conn.execute("SELECT typeof(score) FROM injections WHERE pk = 7").fetchone() == ("real",)


def test_one_resource_object_is_encoded_once_and_changes_are_seen(tmp_path):
    conn = connect_for_write(tmp_path / "m.db")
    writer = Writer(conn)
    shared = {"service.name": "a"}
    writer.write([record(1, 1, [], shared), record(2, 2, [], shared), record(3, 3, [], {"service.name": "b"}),
                  record(4, 4, [], shared), record(5, 5, [], {})])
    shared["service.name"] = "changed"  # the same object, changed between batches
    writer.write([record(6, 6, [], shared), record(7, 7, [], {"n": True}), record(8, 8, [], {"n": 1})])
    assert [r for (r,) in conn.execute("SELECT resource FROM spans ORDER BY pk")] == [
        '{"service.name":"a"}', '{"service.name":"a"}', '{"service.name":"b"}', '{"service.name":"a"}',
        "{}", '{"service.name":"changed"}', '{"n":true}', '{"n":1}']


def entity_rows(conn):
    return conn.execute("SELECT pk, entity_id FROM entities ORDER BY pk").fetchall()


def injected(conn):
    return conn.execute("SELECT e.entity_id, i.user_id FROM injections i"
                        " JOIN entities e ON e.pk = i.entity_pk ORDER BY i.pk").fetchall()


def test_keys_another_connection_added_are_caught_up(tmp_path):
    path = tmp_path / "m.db"
    one, two = Writer(connect_for_write(path)), Writer(connect_for_write(path))
    one.write([record(1, 10, [injection(10, "a")], user="one")])
    assert one.entities.complete and one.entities.pks == {("note", "a"): 1}
    two.write([record(2, 20, [injection(20, "a"), injection(21, "b")], user="two")])
    assert two.entities.pks == {("note", "a"): 1, ("note", "b"): 2}
    one.write([record(3, 30, [injection(30, "b"), injection(31, "c")], user="one")])
    assert one.entities.pks == {("note", "a"): 1, ("note", "b"): 2, ("note", "c"): 3}
    assert entity_rows(one.conn) == [(1, "a"), (2, "b"), (3, "c")]
    assert injected(one.conn) == [("a", "one"), ("a", "two"), ("b", "two"), ("b", "one"), ("c", "one")]


def test_catalog_rows_deleted_behind_the_writers_back_make_it_start_over(tmp_path):
    path = tmp_path / "m.db"
    writer = Writer(connect_for_write(path))
    writer.write([record(1, 10, [injection(10, "a"), injection(11, "b")])])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("DELETE FROM injections WHERE entity_pk = 2")
    other.execute("DELETE FROM entities WHERE pk = 2")  # not through purge: no generation moved
    other.close()
    writer.write([record(2, 20, [injection(20, "c"), injection(21, "b")], user="later")])
    assert entity_rows(writer.conn) == [(1, "a"), (2, "c"), (3, "b")]
    assert injected(writer.conn) == [("a", "span-user"), ("c", "later"), ("b", "later")]


def test_past_its_limit_the_cache_looks_keys_up(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    Writer(connect_for_write(path)).write([record(1, 10, [injection(10, k) for k in "abc"])])
    monkeypatch.setattr(EntityCache, "LIMIT", 2)
    writer = Writer(connect_for_write(path))
    writer.write([record(2, 20, [injection(20, "b"), injection(21, "d"), injection(22, "d"),
                                 injection(23, "a")], user="bounded")])
    assert not writer.entities.complete
    writer.write([record(3, 30, [injection(30, "e"), injection(31, "c")], user="again")])
    assert entity_rows(writer.conn) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    assert injected(writer.conn)[3:] == [
        ("b", "bounded"), ("d", "bounded"), ("d", "bounded"), ("a", "bounded"), ("e", "again"), ("c", "again")]


def test_a_rolled_back_batch_takes_back_only_its_own_keys(tmp_path):
    path = tmp_path / "m.db"
    conn = connect_for_write(path)
    writer = Writer(conn)
    writer.write([record(1, 10, [injection(10, "a")])])
    conn.execute("CREATE TRIGGER fail BEFORE INSERT ON citations BEGIN SELECT RAISE(ABORT, 'boom'); END")
    citation = EventRecord(sc.EVENT_CITATION, 21, {sc.ENTITY_TYPE: "note", sc.ENTITY_ID: "new"})
    with pytest.raises(sqlite3.DatabaseError, match="boom"):
        writer.write([record(2, 20, [injection(20, "new"), injection(21, "a"), citation])])
    assert writer.entities.pks == {("note", "a"): 1} and writer.entities.top == 1
    conn.execute("DROP TRIGGER fail")
    writer.write([record(3, 30, [injection(30, "other"), injection(31, "a")], user="after")])
    assert entity_rows(conn) == [(1, "a"), (2, "other")]
    assert injected(conn) == [("a", "span-user"), ("other", "after"), ("a", "after")]
