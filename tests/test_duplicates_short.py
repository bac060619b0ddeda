"""The duplicate signal on memories of every length: MinHash, its labelled set, the simhash fallback.

The labelled set is ``tests/dup_pairs.py``; precision and recall are counted
exactly, pair by pair, through the same code the review queue runs
(fingerprint, LSH candidates, similarity check). The store tests record real
mem0 memories (offline, as in test_mem0.py) into a real SQLite file.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from dup_pairs import HAND, PAIRS
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter
from memobs_otel.fingerprint import hamming, minhash, minhash_similarity, normalise, simhash, simhash_hex
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.duplicates import minhash_neighbours
from memobs_otel.store.records import EventRecord
from memobs_otel.store.schema import MIGRATIONS, applied_migrations, migrate
from memobs_otel.store.writer import write_records
from store_scenarios import search_span, write_file

from mem0_helpers import instrumented, memory  # noqa: F401  (fixtures: real mem0, offline)

UTC = timezone.utc
NOW = datetime(2025, 6, 1, tzinfo=UTC)
EIGHTEEN = "Refunds over one hundred euros need a manager approval before they are paid to the customer account."
EIGHTEEN_EDITED = EIGHTEEN.replace("one hundred", "two hundred")


def predicted_twins(a: str, b: str) -> bool:
    """What the review queue decides for the pair: same fingerprint, or an LSH candidate verified similar."""
    fa, fb = minhash(a), minhash(b)
    if fa == fb:
        return True
    return any(other == fb for other, _ in minhash_neighbours([fa, fb]).get(fa, ()))


def test_labelled_set_precision_and_recall_exact():
    assert len(PAIRS) == 146 and len(HAND) == 46
    short = [p for p in PAIRS if len(p[0].split()) < 15]
    # (twins, non-twins): short (under 15 words), then long
    assert (sum(t for *_, t in short), sum(not t for *_, t in short)) == (43, 43)
    assert (sum(t for *_, t in PAIRS) - 43, sum(not t for *_, t in PAIRS) - 43) == (31, 29)
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    wrong = []
    for a, b, twin in PAIRS:
        got = predicted_twins(a, b)
        counts[("t" if got == twin else "f") + ("p" if got else "n")] += 1
        if got != twin:
            wrong.append((a, b))
    assert counts == {"tp": 73, "fp": 1, "fn": 1, "tn": 71}
    precision = counts["tp"] / (counts["tp"] + counts["fp"])
    recall = counts["tp"] / (counts["tp"] + counts["fn"])
    assert precision == 73 / 74 >= 0.95
    assert recall == 73 / 74 >= 0.9
    # the two it gets wrong: a negation (no content-free fingerprint tells
    # "likes" from "dislikes") and one long twin the LSH bands did not pair
    assert wrong[0] == ("likes coffee", "dislikes coffee")
    assert wrong[1][0].startswith("And warranty approval from invoice")


def test_window_seat_twins_and_aisle_seat_not():
    assert normalise("Prefers a window seat.") == normalise("prefers window seats") == "prefer window seat"
    assert minhash("prefers a window seat") == minhash("prefers window seats")
    assert predicted_twins("prefers a window seat", "prefers window seats")
    assert not predicted_twins("prefers a window seat", "prefers an aisle seat")
    assert minhash_similarity(minhash("prefers a window seat"), minhash("prefers an aisle seat")) < 0.6
    # what the simhash said (the old signal, limit 3): neither pair is near
    assert hamming(simhash("prefers a window seat"), simhash("prefers window seats")) == 34
    assert hamming(simhash(EIGHTEEN), simhash(EIGHTEEN_EDITED)) > 3
    assert predicted_twins(EIGHTEEN, EIGHTEEN_EDITED)


def test_fingerprint_shape_and_edge_cases():
    fp = minhash("prefers a window seat")
    assert isinstance(fp, bytes) and len(fp) == 64
    assert minhash("") is None and minhash("!!! ...") is None and minhash("the") is None
    assert len(minhash("x")) == 64  # a one-letter text still has a fingerprint
    assert minhash("naïve café — ünïcödé 🎉") == minhash("NAÏVE CAFÉ ünïcödé")
    assert minhash_similarity(fp, fp) == 1.0
    # a 10 MB text: only its first MINHASH_MAX_CHARS normalised characters are read
    assert minhash("memory " * 1_500_000) == minhash("memory " * 40_000)


def record_to(db):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SQLiteSpanExporter(str(db))))
    config.use_tracer_provider(provider)  # conftest puts the session provider back afterwards
    return provider


def test_mem0_window_seat_twins_flagged_in_the_file(instrumented, memory, tmp_path):  # noqa: F811
    db = tmp_path / "memobs.db"
    provider = record_to(db)
    ids = {}
    today = datetime.now(UTC).replace(microsecond=0)
    for name, text, days_ago in (
        ("old", "prefers a window seat", 100),
        ("new", "Prefers window seats.", 90),
        ("aisle", "prefers an aisle seat", 80),
        ("doc", EIGHTEEN, 95),
        ("doc2", EIGHTEEN_EDITED, 94),
    ):
        created = (today - timedelta(days=days_ago)).isoformat()
        ids[name] = memory.add(text, user_id="ana", infer=False, metadata={"created_at": created})["results"][0]["id"]
    provider.force_flush()
    provider.shutdown()
    later = today + timedelta(days=1)
    with memobs.open_store(db) as store:
        review = {c.entity_id: c for c in store.memory_review(now=later, days_back=30, signal_filter=["duplicate"])}
    assert set(review) == {ids["old"], ids["doc"]}
    old = review[ids["old"]]
    assert (old.signals, old.duplicate_of, old.score) == (["stale", "duplicate"], ids["new"], 50 + 101 // 7)
    doc = review[ids["doc"]]
    assert doc.duplicate_of == ids["doc2"] and doc.signals == ["stale", "duplicate"]
    with memobs.open_store(db) as store:  # a window that covers them all: nothing is stale
        dup_only = {c.entity_id: c for c in store.memory_review(now=later, days_back=300)}
    assert set(dup_only) == {ids["old"], ids["doc"]}
    # 28: the same text once normalised (29 is kept for identical content)
    assert dup_only[ids["old"]].signals == ["duplicate"] and dup_only[ids["old"]].score == 28
    assert dup_only[ids["old"]].action == f"merge into {ids['new']}"
    similarity = minhash_similarity(minhash(EIGHTEEN), minhash(EIGHTEEN_EDITED))
    assert dup_only[ids["doc"]].score == int(20 + 8 * (similarity - 0.6) / 0.4) == 25
    # the file stores the fingerprint, never the text
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT entity_id, minhash FROM entities").fetchall())
    assert stored[ids["old"]] == stored[ids["new"]] == minhash("prefers a window seat")
    assert conn.execute("SELECT COUNT(*) FROM entities WHERE content_head IS NOT NULL").fetchone() == (0,)


def _write_event(tracer, when_ns, entity_id, text, with_minhash, created):
    span = tracer.start_span("create_memory", start_time=when_ns)
    attrs = {
        sc.ENTITY_TYPE: "memory", sc.ENTITY_ID: entity_id, sc.WRITE_OP: "create",
        sc.ENTITY_CONTENT_HASH: f"{hash(text) & (2**128 - 1):032x}",
        sc.ENTITY_SIMHASH: simhash_hex(simhash(text)), sc.ENTITY_CREATED_AT: created,
    }
    if with_minhash:
        attrs[sc.ENTITY_MINHASH] = minhash(text).hex()
    span.add_event(sc.EVENT_WRITE, attrs, timestamp=when_ns)
    span.end(end_time=when_ns + 1000)


def test_old_entities_fall_back_to_simhash(tmp_path):
    """An entity recorded before MinHash (simhash only) still pairs with its twin by simhash;
    two entities that both have a MinHash are judged by it alone."""
    db = tmp_path / "mixed.db"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SQLiteSpanExporter(str(db))))
    tracer = provider.get_tracer("tests")
    t = int(datetime(2025, 5, 20, tzinfo=UTC).timestamp()) * 10**9
    long_text = EIGHTEEN + " Ask for the receipt number."
    _write_event(tracer, t, "old-copy", long_text, False, "2025-05-01T00:00:00Z")
    _write_event(tracer, t, "new-copy", long_text + "!", True, "2025-05-02T00:00:00Z")
    _write_event(tracer, t, "seat", "prefers a window seat", True, "2025-05-01T00:00:00Z")
    _write_event(tracer, t, "seats", "prefers window seats", True, "2025-05-02T00:00:00Z")
    provider.shutdown()
    with memobs.open_store(db) as store:
        got = {c.entity_id: c for c in store.memory_review(now=NOW, days_back=60)}
    assert set(got) == {"old-copy", "seat"}
    assert (got["old-copy"].duplicate_of, got["old-copy"].score) == ("new-copy", 29)  # simhash distance 0
    assert (got["seat"].duplicate_of, got["seat"].score) == ("seats", 28)


def test_m007_upgrades_an_m006_file_and_readers_of_older_files_work(tmp_path):
    path = tmp_path / "m006.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, migrations=MIGRATIONS[:6])
    assert applied_migrations(conn)[-1] == "m006_export_losses"
    conn.close()
    with memobs.open_store(path) as store:  # reading never upgrades; no minhash column, no decisions
        assert store.memory_review(now=NOW) == []
        assert store.dismissals() == []
        with pytest.raises(ValueError, match="no entity memory x"):
            store.dismiss("memory", "x")
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations=MIGRATIONS[:7]) == ["m007_review_decisions_minhash"]
    columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in ("entities", "injections")}
    assert "minhash" in columns["entities"] and "minhash" in columns["injections"]
    assert [r[1] for r in conn.execute("PRAGMA table_info(review_decisions)")] == [
        "entity_type", "entity_id", "signals", "until_ns", "note", "decided_ns"]
    assert migrate(conn, migrations=MIGRATIONS[:7]) == []


def test_writer_on_a_file_before_m007_drops_the_minhash_and_keeps_the_rest(tmp_path):
    """Old layouts are still written (tests build them; a reader never upgrades): the MinHash has
    no column there, so it is left out and every other value is stored; after m007 it is kept."""

    def event(eid, text, rank):
        return EventRecord(sc.EVENT_INJECTION, 10**18 + rank, {
            sc.ENTITY_TYPE: "memory", sc.ENTITY_ID: eid, sc.ENTITY_RANK: rank, sc.ENTITY_TOKENS: 5,
            sc.ENTITY_CONTENT_HASH: f"{rank:032x}", sc.ENTITY_SIMHASH: simhash_hex(simhash(text)),
            sc.ENTITY_MINHASH: minhash(text).hex()})

    rng = random.Random(3)
    first = [search_span(rng, "u1", "s1", 10**18, 10**18 + 10, [event("a", "prefers a window seat", 0)])]
    path = tmp_path / "m006.db"
    write_file(path, first, 10, migrations=MIGRATIONS[:6]).close()
    conn = sqlite3.connect(path)
    assert "minhash" not in {r[1] for r in conn.execute("PRAGMA table_info(entities)")}
    assert conn.execute("SELECT entity_id, tokens FROM injections JOIN entities e ON e.pk = entity_pk").fetchall() == [
        ("a", 5)]
    conn.close()
    second = [search_span(rng, "u1", "s2", 10**18 + 20, 10**18 + 30,
                          [event("a", "prefers a window seat", 0), event("b", "prefers window seats", 1)])]
    conn = connect_for_write(path)  # applies m007
    write_records(conn, second)
    stored = dict(conn.execute("SELECT entity_id, minhash FROM entities").fetchall())
    assert stored == {"a": minhash("prefers a window seat"), "b": minhash("prefers window seats")}
    assert conn.execute("SELECT COUNT(*), COUNT(minhash) FROM injections").fetchone() == (3, 2)
    conn.close()
