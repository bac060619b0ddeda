"""One value SQLite cannot store costs only that value, never its batch (issue 17, item 2).

A lone surrogate (``"bad\\ud800"``: a valid Python ``str``, not valid UTF-8)
or an int past 64 bits used to fail the whole batch's transaction: up to
512 spans, other users' data too, stored nothing. Now the value is stored
sanitised (U+FFFD; the int as decimal text), every other value exactly as
given, and the number of values changed is counted in ``export_losses``.
"""

from __future__ import annotations

import sqlite3

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter

T0 = 1_748_779_200 * 10**9  # 2025-06-01T12:00:00Z
BIG = 2**63  # one past SQLite's largest INTEGER


def batch(bad: dict[int, dict]) -> list:
    """Twelve real SDK spans of one user each, one injection each (span i's
    entity ``e{i}``, version i, created_at T0's seconds + i); ``bad[i]``
    overrides span i's attributes: ``{"span": {...}, "event": {...}}``."""
    collected = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("tests")
    for i in range(12):
        over = bad.get(i, {})
        span = tracer.start_span(f"search_memory {i}", start_time=T0 + i,
                                 attributes={sc.USER_ID: f"user-{i}", **over.get("span", {})})
        span.add_event(sc.EVENT_INJECTION, {
            sc.ENTITY_TYPE: "fact", sc.ENTITY_ID: f"e{i}", sc.ENTITY_RANK: 0, sc.ENTITY_TOKENS: 10 + i,
            sc.ENTITY_CONTENT_HASH: f"{i:032x}", sc.ENTITY_SIMHASH: f"{i:016x}",
            sc.ENTITY_VERSION: i, sc.ENTITY_TITLE: f"title {i}", **over.get("event", {}),
        }, timestamp=T0 + i)
        span.end(end_time=T0 + i + 1000)
    provider.shutdown()
    return list(collected.get_finished_spans())


def rows(path):
    conn = sqlite3.connect(path)
    try:
        injections = conn.execute(
            "SELECT s.name, i.user_id, e.entity_id, i.tokens, i.version, typeof(i.version), i.title,"
            " i.created_at, typeof(i.created_at)"
            " FROM injections i JOIN spans s ON s.pk = i.span_pk JOIN entities e ON e.pk = i.entity_pk"
            " ORDER BY s.start_ns").fetchall()
        losses = dict(conn.execute("SELECT kind, count FROM export_losses"))
        return injections, losses
    finally:
        conn.close()


def expected_row(i, **changes):
    row = {"name": f"search_memory {i}", "user": f"user-{i}", "id": f"e{i}", "tokens": 10 + i,
           "version": i, "vtype": "integer", "title": f"title {i}", "created": None, "ctype": "null"}
    row.update(changes)
    return tuple(row.values())


def test_one_bad_value_costs_only_that_value_in_a_batch(tmp_path):
    path = tmp_path / "m.db"
    exporter = SQLiteSpanExporter(path)
    spans = batch({
        2: {"event": {sc.ENTITY_ID: "bad\ud800"}},
        4: {"event": {sc.ENTITY_TITLE: "t\udfffitle"}},
        5: {"span": {sc.USER_ID: "bad\ud800user"}},
        7: {"event": {sc.ENTITY_VERSION: BIG}},
        9: {"event": {sc.ENTITY_CREATED_AT: BIG + 5}},
        # a valid pair, written as two surrogates: joined into its character
        11: {"event": {sc.ENTITY_TITLE: "smile \ud83d\ude00"}},
    })
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    injections, losses = rows(path)
    expected = [expected_row(i) for i in range(12)]
    expected[2] = expected_row(2, id="bad\ufffd")
    expected[4] = expected_row(4, title="t\ufffditle")
    expected[5] = expected_row(5, user="bad\ufffduser")
    expected[7] = expected_row(7, version=str(BIG), vtype="text")
    expected[9] = expected_row(9, created=str(BIG + 5), ctype="text")
    expected[11] = expected_row(11, title="smile \U0001F600")
    assert injections == expected
    assert losses == {"values-sanitised": 6}
    # the span's own attributes keep the sanitised user too, and the catalog
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT user_id, json_extract(attributes, '$.\"user.id\"') FROM spans"
                        " WHERE name = 'search_memory 5'").fetchone() == ("bad\ufffduser",) * 2
    assert conn.execute("SELECT version, typeof(version) FROM entities WHERE entity_id = 'e7'"
                        ).fetchone() == (str(BIG), "text")
    assert conn.execute("SELECT COUNT(*) FROM spans").fetchone() == (12,)
    conn.close()


def test_later_bad_batches_are_stored_and_counted_too(tmp_path):
    path = tmp_path / "m.db"
    exporter = SQLiteSpanExporter(path)
    for round_ in range(3):
        spans = batch({3: {"event": {sc.ENTITY_ID: f"bad\ud800{round_}", sc.ENTITY_TOKENS: -BIG - 1}}})
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM spans").fetchone() == (36,)
    assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (36,)
    # a token count past 64 bits is no count: stored as 0, like a missing one
    assert conn.execute(
        "SELECT e.entity_id, i.tokens FROM injections i JOIN entities e ON e.pk = i.entity_pk"
        " WHERE e.entity_id LIKE 'bad%' ORDER BY i.pk").fetchall() == [
        ("bad\ufffd0", 0), ("bad\ufffd1", 0), ("bad\ufffd2", 0)]
    assert dict(conn.execute("SELECT kind, count FROM export_losses")) == {"values-sanitised": 6}
    conn.close()


def test_bad_ids_through_configure_and_a_decorated_search(tmp_path):
    """The whole path a host takes: memobs.configure(), a decorated search
    returning a bad id among good ones, shutdown: every search stored."""
    path = tmp_path / "m.db"
    handle = memobs.configure(db_path=str(path))

    @memobs.observe_retrieval(entity_type="fact", store="facts")
    def search(i):
        bad = "bad\ud800" if i == 50 else f"f{i}"
        return [{"id": bad, "content": f"fact {i}"}, {"id": f"g{i}", "content": f"other {i}",
                                                     "version": BIG if i == 60 else 1}]

    for i in range(100):
        with memobs.context(user_id="u\udc00" if i == 70 else f"u{i % 3}"):
            search(i)
    handle.shutdown()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (200,)
    ids = {r[0] for r in conn.execute("SELECT entity_id FROM entities")}
    assert ids == {f"f{i}" for i in range(100) if i != 50} | {f"g{i}" for i in range(100)} | {"bad\ufffd"}
    assert conn.execute("SELECT version FROM entities WHERE entity_id = 'g60'").fetchone() == (str(BIG),)
    assert conn.execute("SELECT COUNT(*) FROM injections WHERE user_id = 'u\ufffd'").fetchone() == (2,)
    assert handle.losses() == {}
    conn.close()


def test_a_span_that_cannot_be_stored_even_sanitised_costs_only_itself(tmp_path):
    """The last resort: the batch written span by span; the one that still
    fails (here an id that is not a number) is dropped and counted."""
    from memobs_otel.store.connection import connect_for_write
    from memobs_otel.store.records import EventRecord, SpanRecord
    from memobs_otel.store.writer import Writer

    def record(n, trace_id):
        return SpanRecord(trace_id=trace_id, span_id=n, parent_span_id=None, name=f"s{n}",
                          kind="INTERNAL", start_ns=T0 + n, end_ns=T0 + n + 1, status="UNSET",
                          attributes={sc.USER_ID: f"u{n}"},
                          events=(EventRecord(sc.EVENT_INJECTION, T0 + n, {
                              sc.ENTITY_TYPE: "fact", sc.ENTITY_ID: f"e{n}", sc.ENTITY_TOKENS: n}),))

    conn = connect_for_write(tmp_path / "m.db")
    writer = Writer(conn)
    assert writer.write([record(1, 11), record(2, "not-a-trace-id"), record(3, 13)]) == 2
    assert (writer.sanitised_values, writer.unwritable_spans) == (0, 1)
    assert conn.execute("SELECT name, user_id FROM spans ORDER BY pk").fetchall() == [("s1", "u1"), ("s3", "u3")]
    assert conn.execute("SELECT tokens FROM injections ORDER BY pk").fetchall() == [(1,), (3,)]
    assert dict(conn.execute("SELECT kind, count FROM export_losses")) == {"spans-export-failed": 1}
    conn.close()
