"""SQLiteSpanExporter with the real SDK: rows, dedupe, overflow, views, faults, processes."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter
from memobs_otel.store.records import from_readable_span
from memobs_otel.store.schema import MIGRATIONS, SCHEMA_VERSION, applied_migrations, m001_initial, migrate
from memobs_otel.store.writer import write_records

T0 = 1_748_779_200 * 10**9  # 2025-06-01T12:00:00Z


def finished_spans(n_spans=1, events_per_span=2, user="u1"):
    """Real SDK ReadableSpans, collected without exporting them anywhere."""
    collected = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("tests")
    for s in range(n_spans):
        span = tracer.start_span("search_memory pb", start_time=T0,
                                 attributes={sc.USER_ID: user, sc.SESSION_ID: "s1"})
        for rank in range(events_per_span):
            span.add_event(sc.EVENT_INJECTION, {
                sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: str(rank), sc.ENTITY_RANK: rank,
                sc.ENTITY_TOKENS: 10, sc.ENTITY_CONTENT_HASH: "a" * 32,
                sc.ENTITY_SIMHASH: "ffffffffffffffff",
            }, timestamp=T0 + rank)
        span.end(end_time=T0 + 10**6)
    provider.shutdown()
    return list(collected.get_finished_spans())


def count(path, table):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def test_rows_views_and_fallback_ids(tmp_path):
    path = tmp_path / "m.db"
    exporter = SQLiteSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("search_memory pb", start_time=T0, attributes={
            sc.USER_ID: "span-user", sc.SESSION_ID: "s1", sc.MEMOBS_REQUEST_ID: "r1"}) as span:
        span.add_event(sc.EVENT_INJECTION, {
            sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: "42", sc.ENTITY_RANK: 0, sc.ENTITY_SCORE: 0.75,
            sc.ENTITY_TOKENS: 12, sc.ENTITY_CONTENT_HASH: "c" * 32,
            sc.ENTITY_SIMHASH: "8000000000000001", "custom.attr": "kept",
        }, timestamp=T0)
        span.add_event(sc.EVENT_CITATION, {
            sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: "42", sc.CITATION_METHOD: "marker",
            sc.CITATION_SCORE: 1.0, sc.USER_ID: "event-user"}, timestamp=T0 + 1)
        span.add_event("something.else", {"k": 1}, timestamp=T0 + 2)
        ctx = span.get_span_context()
    provider.shutdown()
    conn = sqlite3.connect(path)
    inj = conn.execute("SELECT time, trace_id, span_id, span_name, entity_type, entity_id, rank,"
                       " score, tokens, content_hash, simhash, user_id, session_id, request_id"
                       " FROM v_injections").fetchall()
    assert inj == [("2025-06-01T12:00:00.000Z", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}",
                    "search_memory pb", "pb", "42", 0, 0.75, 12, "c" * 32, "8000000000000001",
                    "span-user", "s1", "r1")]
    assert conn.execute("SELECT extra FROM injections").fetchone() == ('{"custom.attr":"kept"}',)
    cit = conn.execute("SELECT entity_id, method, user_id, session_id FROM v_citations").fetchall()
    assert cit == [("42", "marker", "event-user", "s1")]  # event id wins, span fills the rest
    assert [r[0] for r in conn.execute("SELECT name FROM events ORDER BY pk")] == [
        sc.EVENT_CITATION, "something.else"]
    assert conn.execute("SELECT start_time, user_id FROM v_spans").fetchall() == [
        ("2025-06-01T12:00:00.000Z", "span-user")]
    assert conn.execute("SELECT entity_id, simhash, first_seen FROM v_entities").fetchall() == [
        ("42", "8000000000000001", "2025-06-01T12:00:00.000Z")]


def test_same_span_twice_adds_nothing(tmp_path):
    path = tmp_path / "m.db"
    spans = finished_spans(n_spans=3, events_per_span=4)
    exporter = SQLiteSpanExporter(path)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert (count(path, "spans"), count(path, "injections")) == (3, 12)
    conn = memobs.store.connection.connect_for_write(path)
    records = [from_readable_span(s) for s in spans]
    assert write_records(conn, records) == 0
    extra = [from_readable_span(s) for s in finished_spans(n_spans=1)]
    assert write_records(conn, records + extra) == 1
    conn.close()
    assert (count(path, "spans"), count(path, "injections")) == (4, 14)


def test_overflow_child_spans_are_counted(tmp_path):
    path = tmp_path / "m.db"
    exporter = SQLiteSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("search_memory big", attributes={sc.USER_ID: "u"}) as parent:
        for rank in range(128):
            parent.add_event(sc.EVENT_INJECTION, {sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: str(rank),
                                                  sc.ENTITY_TOKENS: 1})
        with tracer.start_as_current_span(sc.MEMOBS_OVERFLOW_SPAN_NAME) as child:
            for rank in range(128, 200):
                child.add_event(sc.EVENT_INJECTION, {sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: str(rank),
                                                     sc.ENTITY_TOKENS: 1, sc.USER_ID: "u"})
    provider.shutdown()
    stats = memobs.open_store(path).injection_stats(user_id="u")
    assert len(stats) == 200
    assert sum(s.total_prompt_tokens for s in stats) == 200


def test_exporter_lifecycle(tmp_path):
    exporter = SQLiteSpanExporter(tmp_path / "m.db")
    assert exporter.force_flush() is True
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
    assert exporter.force_flush() is False


def test_m001_file_is_upgraded_in_place_and_keeps_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, migrations=(m001_initial,))
    write_records(conn, [from_readable_span(s) for s in finished_spans(n_spans=2)])
    assert applied_migrations(conn) == ["m001_initial"]
    conn.close()
    # reading an older file works and does not upgrade it
    before = path.read_bytes()
    assert len(memobs.open_store(path).injection_stats(now=None, days_back=10_000)) == 2
    assert memobs.open_store(path).schema_version == (1, SCHEMA_VERSION)
    assert path.read_bytes() == before
    # the exporter upgrades it and keeps every row
    exporter = SQLiteSpanExporter(path)
    assert exporter.export(finished_spans(n_spans=1)) == SpanExportResult.SUCCESS
    exporter.shutdown()
    conn = sqlite3.connect(path)
    assert applied_migrations(conn)[:5] == [
        "m001_initial", "m002_readable_views", "m003_deferred_injection_index",
        "m004_entities_generation", "m005_time_led_keys"]
    assert applied_migrations(conn) == [m.__name__ for m in MIGRATIONS]
    assert conn.execute("SELECT COUNT(*) FROM v_injections").fetchone() == (6,)
    # the rows written before the upgrade are in the merged per-entity copy
    assert conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone() == (4,)
    assert len(memobs.open_store(path).injection_stats(now=None, days_back=10_000)) == 2
    assert migrate(sqlite3.connect(path, isolation_level=None)) == []  # idempotent


# --------------------------------------------------------------------------
# faults: FAILURE, one log line per kind, never an exception
# --------------------------------------------------------------------------

def _errors(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_read_only_database(tmp_path, caplog):
    path = tmp_path / "m.db"
    SQLiteSpanExporter(path).export(finished_spans())
    before = path.read_bytes()
    ro = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                         check_same_thread=False)
    exporter = SQLiteSpanExporter(path, connection=ro, timeout=0.05, retries=0)
    with caplog.at_level(logging.ERROR):
        assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
        assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
    assert len(_errors(caplog)) == 1
    assert "read-only" in _errors(caplog)[0].getMessage()
    assert path.read_bytes() == before


def test_unwritable_location(tmp_path, caplog):
    exporter = SQLiteSpanExporter(tmp_path / "missing-dir" / "m.db")
    with caplog.at_level(logging.ERROR):
        assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
    assert len(_errors(caplog)) == 1
    exporter.shutdown()


def test_not_a_memobs_database_is_left_alone(tmp_path, caplog):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with caplog.at_level(logging.ERROR):
        assert SQLiteSpanExporter(path).export(finished_spans()) == SpanExportResult.FAILURE
    assert path.read_bytes() == before


def test_disk_full(tmp_path, caplog):
    path = tmp_path / "m.db"
    conn = memobs.store.connection.connect_for_write(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    exporter = SQLiteSpanExporter(path, connection=conn, retries=0)
    with caplog.at_level(logging.ERROR):
        result = exporter.export(finished_spans(n_spans=50, events_per_span=50))
        assert exporter.export(finished_spans(n_spans=50, events_per_span=50)) == result
    assert result == SpanExportResult.FAILURE
    assert len(_errors(caplog)) == 1
    assert "disk-full" in _errors(caplog)[0].getMessage()
    # the failed batch left nothing half-written
    assert conn.execute("SELECT COUNT(*) FROM spans").fetchone() == (0,)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert exporter.export(finished_spans(n_spans=2)) == SpanExportResult.SUCCESS


def test_locked_database(tmp_path, caplog):
    path = tmp_path / "m.db"
    SQLiteSpanExporter(path).export(finished_spans())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    exporter = SQLiteSpanExporter(path, timeout=0.05, retries=1)
    try:
        with caplog.at_level(logging.ERROR):
            assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
            assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
        assert len(_errors(caplog)) == 1
        assert "locked" in _errors(caplog)[0].getMessage()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert exporter.export(finished_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert count(path, "spans") == 2


# --------------------------------------------------------------------------
# several processes, one file
# --------------------------------------------------------------------------

_WORKER = textwrap.dedent("""
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from memobs_otel import semconv as sc
    from memobs_otel.exporters import SQLiteSpanExporter

    path, worker, spans, per_span = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        SQLiteSpanExporter(path), max_queue_size=spans + 1, max_export_batch_size=200))
    tracer = provider.get_tracer("worker")
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together
    for s in range(spans):
        with tracer.start_as_current_span("search_memory pb", attributes={sc.USER_ID: worker}) as span:
            for rank in range(per_span):
                span.add_event(sc.EVENT_INJECTION, {
                    sc.ENTITY_TYPE: "pb", sc.ENTITY_ID: f"{worker}-{(s * per_span + rank) % 500}",
                    sc.ENTITY_RANK: rank, sc.ENTITY_TOKENS: 1})
    provider.shutdown()
""")


def test_two_processes_export_into_one_file(tmp_path):
    path = tmp_path / "shared.db"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    workers = [
        subprocess.Popen([sys.executable, str(script), str(path), name, "2000", "10"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name in ("w1", "w2")
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.wait(timeout=300) == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (40_000,)
    assert conn.execute("SELECT user_id, COUNT(*) FROM injections GROUP BY user_id").fetchall() == [
        ("w1", 20_000), ("w2", 20_000)]
    assert conn.execute("SELECT COUNT(*) FROM entities").fetchone() == (1000,)


def test_attribute_mappings_are_copied_to_plain_dicts():
    from collections.abc import Mapping

    from opentelemetry.attributes import BoundedAttributes

    from memobs_otel.store.records import plain_attributes

    class Plain(Mapping):  # a mapping with no copy(): the protocol is used
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            return self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

    bounded = BoundedAttributes(8, {"a": 1, "b": "x"}, immutable=True)
    for mapping in (bounded, Plain({"a": 1, "b": "x"}), {"a": 1, "b": "x"}):
        copied = plain_attributes(mapping)
        assert type(copied) is dict and copied == {"a": 1, "b": "x"} and copied is not mapping
    assert plain_attributes(None) == {} and plain_attributes({}) == {}


def test_write_connection_checkpoints_every_10k_wal_pages(tmp_path):
    from memobs_otel.store.connection import connect_for_write

    conn = connect_for_write(tmp_path / "wal.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (10_000,)
        assert conn.execute("PRAGMA journal_size_limit").fetchone() == (64 * 1024 * 1024,)
    finally:
        conn.close()
