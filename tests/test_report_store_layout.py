"""The report reads injections through the store's access path (schema m003:
merged ``injections_by_entity`` + unmerged tail; before m003: the old
indexes) and gives exactly the same page data whatever share of the rows
is merged — and the same numbers as plain SQL over ``injections``."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
from datetime import datetime, timezone

import pytest

from memobs_otel import semconv as sc
from memobs_otel.report import gather
from memobs_otel.report.data import NS_PER_DAY, make_buckets
from memobs_otel.store import entity_index, open_store
from memobs_otel.store.query import window
from memobs_otel.store.records import EventRecord
from memobs_otel.store.schema import m001_initial, m002_readable_views

import store_scenarios
from store_scenarios import search_span

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
NOW_NS = int(NOW.timestamp()) * 10**9


def make_records(seed=5, n_spans=400):
    """Spans over 40 days, written in shuffled order (late batches), with
    three users, sessions on the span, on the event or none, citations and
    writes."""
    rng = random.Random(seed)
    records = []
    for s in range(n_spans):
        t0 = NOW_NS - rng.randrange(40 * NS_PER_DAY)
        events = []
        for rank in range(rng.randrange(1, 7)):
            e = rng.randrange(30)
            attrs = {sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                     sc.ENTITY_RANK: rank, sc.ENTITY_TOKENS: 10 + e,
                     sc.ENTITY_TITLE: f"title {e}"}
            if rng.random() < 0.15:
                attrs[sc.SESSION_ID] = f"ev-{rng.randrange(3)}"
            events.append(EventRecord(sc.EVENT_INJECTION, t0 + rank, attrs))
        if rng.random() < 0.4:
            e = rng.randrange(30)
            events.append(EventRecord(sc.EVENT_CITATION, t0 + 10, {
                sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                sc.CITATION_METHOD: "explicit"}))
        if rng.random() < 0.1:
            e = rng.randrange(34)
            events.append(EventRecord(sc.EVENT_WRITE, t0 + 11, {
                sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                sc.WRITE_OP: "update", sc.ENTITY_TITLE: f"written {e}"}))
        user = f"u{rng.randrange(3)}"
        session = rng.choice([f"s{rng.randrange(15)}", f"s{rng.randrange(15)}", None])
        records.append(search_span(rng, user, session, t0, t0 + 12, events))
    return records


def write_file(path, records, migrations=None):
    return store_scenarios.write_file(path, records, 23, migrations)


def layout(path):
    conn = sqlite3.connect(path)
    try:
        if not entity_index.present(conn):
            return "pre-m003"
        merged = conn.execute("SELECT COUNT(*) FROM injections_by_entity").fetchone()[0]
        tail = conn.execute("SELECT COUNT(*) FROM injections WHERE pk > ?",
                            (entity_index.merged_pk(conn),)).fetchone()[0]
        return merged, tail
    finally:
        conn.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same records as: merged + tail, fully merged, and a pre-m003 file."""
    folder = tmp_path_factory.mktemp("layouts")
    records = make_records()
    random.Random(1).shuffle(records)  # batches arrive out of time order
    partial, merged, old = folder / "partial.db", folder / "merged.db", folder / "m002.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(entity_index, "MERGE_MIN_ROWS", 300)
        write_file(partial, records).close()
    conn = write_file(merged, records)
    conn.execute("BEGIN IMMEDIATE")
    entity_index.merge_all(conn)
    conn.execute("COMMIT")
    conn.close()
    write_file(old, records, migrations=(m001_initial, m002_readable_views)).close()
    total = sum(1 for r in records for e in r.events if e.name == sc.EVENT_INJECTION)
    merged_rows, tail_rows = layout(partial)
    assert merged_rows > 0 and tail_rows > 0 and merged_rows + tail_rows == total
    assert layout(merged) == (total, 0)
    assert layout(old) == "pre-m003"
    return {"partial": partial, "merged": merged, "pre-m003": old}


CASES = [(days, user) for days in (7, 30) for user in (None, "u1")]


def report(path, days, user):
    with open_store(path) as store:
        data = gather(store, days=days, user_id=user, now=NOW)
        assert not store.connection.in_transaction  # the read is ended
    fields = dataclasses.asdict(data)
    del fields["db_path"], fields["schema_version"]
    return fields


@pytest.mark.parametrize("days,user", CASES)
def test_same_report_whatever_is_merged(files, days, user):
    full = report(files["merged"], days, user)
    assert report(files["partial"], days, user) == full
    assert report(files["pre-m003"], days, user) == full


def plain(path, sql, params):
    """Plain SQL over all of ``injections`` (no access path involved)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("days,user", CASES)
def test_numbers_equal_plain_sql_over_injections(files, days, user):
    start, end = window(days, NOW)
    buckets = make_buckets(start, end)
    params = {"start": start, "end": end, "user": user,
              "origin": buckets.origin_ns, "width": buckets.width_ns}
    match = "time_ns BETWEEN :start AND :end" + (" AND user_id = :user" if user else "")
    for name in ("partial", "merged"):
        data = report(files[name], days, user)
        path = files[name]
        # time series
        series = [0] * buckets.count
        tokens = [0] * buckets.count
        for b, n, t in plain(path, f"SELECT (time_ns - :origin) / :width, COUNT(*), SUM(tokens)"
                                   f" FROM injections WHERE {match} GROUP BY 1", params):
            series[b], tokens[b] = n, t
        assert data["injections_series"] == series
        assert data["tokens_series"] == tokens
        assert data["headline"]["injections"] == sum(series) > 0
        assert data["headline"]["tokens"] == sum(tokens)
        # known entities
        known_sql = (
            "SELECT COUNT(*) FROM entities WHERE first_seen_ns <= :end" if user is None else
            "SELECT COUNT(*) FROM (SELECT entity_pk FROM injections WHERE user_id = :user AND time_ns <= :end"
            " UNION SELECT entity_pk FROM writes WHERE user_id = :user AND time_ns <= :end)")
        assert data["headline"]["known_entities"] == plain(path, known_sql, params)[0][0]
        # per entity: injections per bucket and the five most recent sessions
        assert data["details"]
        for detail in data["details"]:
            params["type"], params["id"] = detail["entity_type"], detail["entity_id"]
            entity = "entity_pk = (SELECT pk FROM entities WHERE entity_type = :type AND entity_id = :id)"
            per_bucket = [0] * buckets.count
            for b, n in plain(path, f"SELECT (time_ns - :origin) / :width, COUNT(*) FROM injections"
                                    f" WHERE {entity} AND {match} GROUP BY 1", params):
                per_bucket[b] = n
            assert detail["per_bucket"] == per_bucket
            sessions = plain(path, f"SELECT session_id, COUNT(*), MAX(time_ns) AS last FROM injections"
                                   f" WHERE {entity} AND {match}"
                                   " GROUP BY session_id ORDER BY last DESC, session_id LIMIT 5", params)
            expected = [{"session_id": s, "injections": n, "last_ns": last} for s, n, last in sessions] \
                if detail["injections"] else []
            assert detail["recent_sessions"] == expected
    # the sessions shown include injections without a session (None)
    data = report(files["partial"], 30, None)
    assert any(s["session_id"] is None for d in data["details"] for s in d["recent_sessions"])


def test_connection_is_the_read_only_one(files):
    with open_store(files["partial"]) as store:
        assert store.connection is store.connection
        assert store.connection.execute("SELECT COUNT(*) FROM injections").fetchone()[0] > 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.connection.execute("DELETE FROM injections")
        with pytest.raises(AttributeError):
            store.connection = None
