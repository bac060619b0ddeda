"""What the store layout tests share: the retrieval span their random data is
made of, random records (``make_records``), the query answers they compare
(``answers``), and writing records in batches to a current or an older schema."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone

from memobs_otel import semconv as sc
from memobs_otel.store import open_store
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import EventRecord, SpanRecord
from memobs_otel.store.schema import migrate
from memobs_otel.store.writer import write_records


def search_span(rng, user, session, start_ns, end_ns, events):
    """A root ``search_memory notes`` span with random ids drawn from ``rng``."""
    attributes = {sc.USER_ID: user}
    if session:
        attributes[sc.SESSION_ID] = session
    return SpanRecord(
        trace_id=rng.getrandbits(128), span_id=rng.getrandbits(64), parent_span_id=None,
        name="search_memory notes", kind="INTERNAL", start_ns=start_ns, end_ns=end_ns,
        status="UNSET", attributes=attributes, events=tuple(events))


def write_file(path, records, batch, migrations=None):
    """Write ``records`` ``batch`` at a time; ``migrations`` (e.g. up to m002) for an older schema."""
    if migrations is None:
        conn = connect_for_write(path)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
        migrate(conn, migrations=migrations)
    for i in range(0, len(records), batch):
        write_records(conn, records[i:i + batch])
    return conn


NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
NS = 10**9
DAY = 86_400 * NS
NOW_NS = int(NOW.timestamp()) * NS


def make_records(seed=3, n_spans=300):
    rng = random.Random(seed)
    records = []
    used_times = set()

    def fresh_time():
        while True:
            t = NOW_NS - rng.randrange(50 * DAY)
            if t not in used_times:
                used_times.add(t)
                return t

    for s in range(n_spans):
        user = f"u{rng.randrange(4)}"
        span_session = rng.choice([f"s{rng.randrange(12)}", None])
        events = []
        for rank in range(rng.randrange(1, 8)):
            e = rng.randrange(40)
            attrs = {
                sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                sc.ENTITY_RANK: rank, sc.ENTITY_TOKENS: 10 + e,
                sc.ENTITY_CONTENT_HASH: f"{e % 30:032x}",
                sc.ENTITY_SIMHASH: f"{(e % 30) * 7919:016x}",
            }
            if rng.random() < 0.5:
                attrs[sc.ENTITY_CREATED_AT] = f"2025-0{rng.randrange(1, 5)}-01T00:00:00Z"
            if rng.random() < 0.2:
                attrs[sc.ENTITY_UPDATED_AT] = rng.choice(["2025-05-01", 1_740_000_000, "soon"])
            if rng.random() < 0.1:
                attrs[sc.ENTITY_STATUS] = rng.choice(["Active", "ARCHIVED", "active"])
            if rng.random() < 0.1:
                attrs[sc.ENTITY_PARENT_ID] = str(rng.randrange(40))
            if rng.random() < 0.05:
                attrs[sc.ENTITY_SUPERSEDED_BY] = str(rng.randrange(40))
            if rng.random() < 0.2:
                attrs[sc.ENTITY_TITLE] = f"title {e} v{rng.randrange(3)}"
            if rng.random() < 0.1:
                attrs["custom"] = rng.randrange(5)
            if rng.random() < 0.1:
                attrs[sc.SESSION_ID] = f"s{rng.randrange(12)}"
            events.append(EventRecord(sc.EVENT_INJECTION, fresh_time(), attrs))
        if rng.random() < 0.4:
            e = rng.randrange(40)
            events.append(EventRecord(sc.EVENT_CITATION, fresh_time(), {
                sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                sc.CITATION_METHOD: "explicit"}))
        if rng.random() < 0.1:
            e = rng.randrange(45)
            events.append(EventRecord(sc.EVENT_WRITE, fresh_time(), {
                sc.ENTITY_TYPE: ("note", "fact")[e % 2], sc.ENTITY_ID: str(e),
                sc.WRITE_OP: rng.choice(["create", "update", "delete"]),
                sc.ENTITY_CONTENT_HASH: f"{e:032x}", sc.ENTITY_TITLE: f"written {e}"}))
        start = min(ev.time_ns for ev in events)
        records.append(search_span(rng, user, span_session, start, start + 1, events))
    return records



def answers(path):
    store = open_store(path)
    try:
        out = []
        for days in (7, 30, 400):
            for user in (None, "u1"):
                out.append([s.to_dict() for s in store.injection_stats(days_back=days, user_id=user, now=NOW)])
                out.append([c.to_dict() for c in store.memory_review(
                    days_back=days, user_id=user, now=NOW, min_injections=2)])
        return out
    finally:
        store.close()
