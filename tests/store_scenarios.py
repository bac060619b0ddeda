"""What the store layout tests share: the retrieval span their random data is
made of, and writing records in batches to a current or an older schema."""

from __future__ import annotations

import sqlite3

from memobs_otel import semconv as sc
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import SpanRecord
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
