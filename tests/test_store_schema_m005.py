"""Schema m005: the span dedup key and the citation indexes led by time.

An m004 file is upgraded in place with every row, view and answer as it
was; afterwards a span sent again is still stored once, and the queries,
purge and retention give what they gave on the old layout.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from memobs_otel.store.deletion import delete_where
from memobs_otel.store.retention import apply_retention
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.schema import MIGRATIONS, applied_migrations, migrate
from memobs_otel.store.writer import write_records

import store_scenarios
from store_scenarios import NOW, answers, make_records

M004 = MIGRATIONS[:4]
TABLES = ("spans", "events", "entities", "injections", "citations", "writes", "injections_by_entity")
VIEWS = ("v_spans", "v_injections", "v_citations", "v_writes", "v_entities")


def contents(path):
    conn = sqlite3.connect(path)
    try:
        out = {}
        for name in TABLES + VIEWS:
            # m007's minhash column (NULL on these rows) and m008's spans.turn_id (set only
            # by a writer after m008) are not in the m004 layout
            columns = ", ".join(
                row[1] for row in conn.execute(f"PRAGMA table_info({name})")
                if row[1] not in ("minhash", "turn_id"))
            out[name] = conn.execute(f"SELECT {columns} FROM {name} ORDER BY 1, 2, 3").fetchall()
        return out
    finally:
        conn.close()


def indexes(conn, table):
    return sorted(row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)))


def test_m004_file_upgrades_in_place_with_rows_views_and_answers(tmp_path):
    records = make_records(seed=5, n_spans=200)
    path = tmp_path / "m004.db"
    store_scenarios.write_file(path, records, 37, M004).close()
    before_rows, before_answers = contents(path), answers(path)
    assert len(before_rows["spans"]) == 200 and len(before_rows["citations"]) > 50

    conn = connect_for_write(path)  # applies m005
    assert "m005_time_led_keys" in applied_migrations(conn)
    assert indexes(conn, "spans") == ["spans_key", "spans_user"]
    assert indexes(conn, "citations") == ["citations_span", "citations_time", "citations_user_time"]
    assert "UNIQUE" not in conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'spans'").fetchone()[0]
    assert migrate(conn) == []  # idempotent
    conn.close()
    assert contents(path) == before_rows
    assert answers(path) == before_answers


def test_a_span_sent_again_is_stored_once_under_the_new_key(tmp_path):
    records = make_records(seed=6, n_spans=60)
    path = tmp_path / "m005.db"
    conn = store_scenarios.write_file(path, records, 16)
    counts = [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES]
    assert write_records(conn, records[10:30]) == 0
    assert write_records(conn, records[:5] + records[-3:]) == 0
    assert [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES] == counts
    # the same ids with another start time is another span to the key
    moved = dataclasses.replace(records[0], start_ns=records[0].start_ns + 1)
    assert write_records(conn, [moved]) == 1
    conn.close()


def test_queries_purge_and_retention_match_the_m004_layout(tmp_path):
    # both files through raw connections: nothing upgrades the m004 one
    records = make_records(seed=8, n_spans=250)
    old, new = tmp_path / "m004.db", tmp_path / "m005.db"
    store_scenarios.write_file(old, records, 41, M004).close()
    store_scenarios.write_file(new, records, 41).close()
    assert answers(new) == answers(old)
    deleted = []
    for path in (old, new):
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        purged = delete_where(conn, "SELECT pk FROM spans WHERE user_id = ?", ("u1",), user_id="u1")
        conn.execute("COMMIT")
        kept = apply_retention(conn, max_age_days=20, now=NOW)
        deleted.append((purged, kept))
        conn.close()
    assert deleted[0] == deleted[1]
    assert deleted[1][0]["citations"] > 0 and deleted[1][1]["citations"] > 0
    assert answers(new) == answers(old)
    assert contents(new) == contents(old)
    assert applied_migrations(sqlite3.connect(old))[-1] == "m004_entities_generation"
