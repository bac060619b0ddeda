"""``memobs ingest``: OTLP/JSON files as the Collector writes them -> the store.

The round trip records one real run through ``memobs.configure`` (SQLite
exporter) and, for the same spans, writes the file the Collector's ``file``
exporter would write: the SDK spans go through the real OTLP encoder
(``opentelemetry.exporter.otlp.proto.common``, what the OTLP exporters send)
and protobuf's JSON mapping, with the Collector's conventions on top (hex
ids, enums as integers, ``"parentSpanId": ""`` on roots, 64-bit integers as
strings). Ingesting that file must give exactly the ``injection_stats`` and
``memory_review`` of the SQLite exporter's file.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import sqlite3
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zstandard
from google.protobuf.json_format import MessageToJson
from helpers import collector_lines, ingest, write_text
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel.ingest import ingest_files, read_file_spans
from memobs_otel.store import open_store
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import from_readable_span
from memobs_otel.store.writer import write_records

PLAYBOOKS = {
    "pb-refund": "Refunds over 100 EUR need a manager's approval before they are paid.",
    "pb-tone": "Answer in the customer's language, briefly and politely.",
    "pb-escalate": "Escalate legal threats to the on-call lead at once.",
    "pb-refund-old": "Refunds over 100 EUR need approval.",
}


# --- a real run, and the file a Collector would write for it ---------------

def record_run(db_path: Path) -> list:
    """Record a small agent run through memobs into ``db_path``; return the SDK spans."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    handle = memobs.configure(db_path=str(db_path), tracer_provider=provider)

    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def search(query: str, ids: list[str]):
        return [{"id": i, "content": PLAYBOOKS[i], "score": round(0.9 - 0.1 * n, 2),
                 "metadata": {"updated_at": "2025-01-05T10:00:00Z"}} for n, i in enumerate(ids)]

    try:
        with memobs.context(user_id="u-1", session_id="s-1", request_id="r-1"):
            search("refund", ["pb-refund", "pb-tone"])
            memobs.cite("playbook", "pb-refund")
        with memobs.context(user_id="u-2", session_id="s-2"):
            search("refund again", ["pb-refund", "pb-escalate", "pb-refund-old"])
        with memobs.context(user_id="u-1", session_id="s-3"):
            search("tone", ["pb-tone"])
        memobs.record_write("playbook", "pb-refund-old", "update", superseded_by="pb-refund",
                            updated_at="2025-01-06T09:00:00Z")
        assert handle.force_flush(10_000)
    finally:
        handle.shutdown()
        provider.shutdown()
    spans = seen.get_finished_spans()
    assert len(spans) >= 5
    return list(spans)


NOW = datetime.now(timezone.utc) + timedelta(minutes=5)


def stats(db: Path):
    with open_store(db) as store:
        return (store.injection_stats(days_back=30, now=NOW),
                store.memory_review(days_back=30, now=NOW, min_injections=1))


def span_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def run(tmp_path):
    live_db = tmp_path / "live.db"
    spans = record_run(live_db)
    return live_db, spans


# --- round trip -------------------------------------------------------------

def test_collector_file_gives_the_same_stats_as_the_sqlite_exporter(run, tmp_path):
    live_db, spans = run
    path = write_text(tmp_path / "memobs-spans.json", collector_lines(spans))
    db = tmp_path / "ingested.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    lines = (len(spans) + 1) // 2
    assert result.stdout == (
        f"{path}: {lines} lines, {len(spans)} spans ({len(spans)} new)\n"
        f"ingested {len(spans)} spans ({len(spans)} new) from {lines} lines of 1 file into {db}\n"
    )
    assert result.stderr == ""
    assert span_count(db) == span_count(live_db) == len(spans)
    injection_stats, review = stats(db)
    assert (injection_stats, review) == stats(live_db)
    # and the numbers are the run's, not two equally empty answers
    by_id = {s.entity_id: s for s in injection_stats}
    assert {k: (s.surfaced_count, s.distinct_session_count, s.citation_count) for k, s in by_id.items()} == {
        "pb-refund": (2, 2, 1), "pb-tone": (2, 2, 0), "pb-escalate": (1, 1, 0), "pb-refund-old": (1, 1, 0),
    }
    assert by_id["pb-refund"].citation_rate == 0.5
    assert [c.entity_id for c in review if "supersedeable" in c.signals] == ["pb-refund-old"]


def test_records_equal_the_sdk_spans_field_by_field(run, tmp_path):
    _, spans = run
    path = write_text(tmp_path / "spans.json", collector_lines(spans, per_line=3))
    records, report = read_file_spans(path)
    assert (report.lines, report.spans, report.bad_count, report.error) == ((len(spans) + 2) // 3, len(spans), 0, None)
    key = lambda r: (r.trace_id, r.span_id)  # noqa: E731
    assert sorted(records, key=key) == sorted((from_readable_span(s) for s in spans), key=key)


def test_reingesting_adds_nothing_twice(run, tmp_path):
    live_db, spans = run
    path = write_text(tmp_path / "spans.json", collector_lines(spans))
    db = tmp_path / "ingested.db"
    assert ingest("--db", str(db), str(path)).exit_code == 0
    before = stats(db)

    again = ingest("--db", str(db), str(path), str(path))

    assert again.exit_code == 0
    assert again.stdout.endswith(f"ingested {2 * len(spans)} spans (0 new) from {2 * ((len(spans) + 1) // 2)} "
                                 f"lines of 2 files into {db}\n")
    assert span_count(db) == len(spans)
    assert stats(db) == before
    # the Collector's copy of spans the live exporter already stored adds nothing either
    overlap = ingest("--db", str(live_db), str(path))
    assert overlap.exit_code == 0 and f"({0} new)" in overlap.stdout
    assert stats(live_db) == before


def test_canonical_protobuf_json_is_read_too(run, tmp_path):
    """MessageToJson's own mapping: base64 ids, enum names, no empty parent."""
    live_db, spans = run
    path = tmp_path / "canonical.json"
    path.write_text(MessageToJson(encode_spans(spans), indent=None) + "\n", encoding="utf-8")
    db = tmp_path / "ingested.db"
    assert ingest("--db", str(db), str(path)).exit_code == 0
    assert stats(db) == stats(live_db)


def _framed(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in payloads)


def _zstd_frames(lines: list[str]) -> bytes:
    # nativeCompression: a standard .zst stream, one frame per flush
    compressor = zstandard.ZstdCompressor()
    return b"".join(compressor.compress((line + "\n").encode()) for line in lines)


ENCODINGS = {
    # compression: zstd (legacy): each request compressed alone, length-prefixed
    "zstd-framed": lambda lines, spans: _framed([zstandard.ZstdCompressor().compress(x.encode()) for x in lines]),
    # feature gate exporter.file.nativeCompression: JSON lines in a zstd stream
    "zstd-stream": lambda lines, spans: _zstd_frames(lines),
    "gzip": lambda lines, spans: gzip.compress("".join(x + "\n" for x in lines).encode()),
    # format: proto: length-prefixed protobuf requests
    "proto": lambda lines, spans: _framed([encode_spans(spans[i:i + 2]).SerializeToString()
                                           for i in range(0, len(spans), 2)]),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_compressed_and_proto_files(run, tmp_path, encoding):
    live_db, spans = run
    path = tmp_path / f"spans.{encoding}"
    path.write_bytes(ENCODINGS[encoding](collector_lines(spans), spans))
    db = tmp_path / "ingested.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert f"{(len(spans) + 1) // 2} lines, {len(spans)} spans ({len(spans)} new)" in result.stdout
    assert stats(db) == stats(live_db)


# --- bad lines ---------------------------------------------------------------

def _one_span_line(trace_id: str = "5b8aa5a2d2c872e8321cf37308d69df2", span_id: str = "051581bf3cb55c13",
                   **span) -> str:
    body = {"traceId": trace_id, "spanId": span_id, "parentSpanId": "", "name": "s", "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000", **span}
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [body]}]}]})


def test_bad_lines_are_counted_reported_and_skipped(run, tmp_path):
    _, spans = run
    good = collector_lines(spans, per_line=len(spans))[0]
    mixed_line = json.loads(_one_span_line(span_id="00000000000000aa"))
    mixed_line["resourceSpans"][0]["scopeSpans"][0]["spans"].append(json.loads(_one_span_line(span_id="xyz"))
                                                                   ["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    path = tmp_path / "collector.json"
    path.write_bytes(b"".join([
        good.encode() + b"\n",                                      # 1 good
        b"this is not json\n",                                      # 2
        b"\n",                                                      # 3 blank: ignored
        b'{"resourceMetrics": []}\n',                               # 4 metrics
        _one_span_line(trace_id="abc").encode() + b"\n",            # 5 bad trace id
        b"[1, 2, 3]\n",                                             # 6 not an object
        b"\x00\x01\xff\xfe\x80binary junk\n",                       # 7 not UTF-8
        json.dumps(mixed_line).encode() + b"\n",                    # 8 one good span, one bad: whole line out
        _one_span_line(startTimeUnixNano="soon").encode() + b"\n",  # 9 bad time
        _one_span_line(span_id="1111111111111111").encode() + b"\n",  # 10 good, one span
        # 11 truncated last line, cut inside a string (its length moves with the attributes)
        good[: good.index('"traceId"') + 4].encode(),
    ]))
    db = tmp_path / "ingested.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0
    errors = result.stderr.splitlines()
    assert errors[:-1] == [
        f"{path}:2: skipped: not JSON (Expecting value: line 1 column 1 (char 0))",
        f"{path}:4: skipped: metrics, not traces",
        f"{path}:5: skipped: bad traceId 'abc'",
        f"{path}:6: skipped: not an OTLP/JSON object",
        f"{path}:7: skipped: not UTF-8 text (binary data)",
        f"{path}:8: skipped: bad spanId 'xyz'",
        f"{path}:9: skipped: startTimeUnixNano: not an integer",
    ]
    assert errors[-1].startswith(f"{path}:11: skipped: truncated last line (not JSON (Unterminated string")
    assert result.stdout == (
        f"{path}: 2 lines, {len(spans) + 1} spans ({len(spans) + 1} new), 8 bad lines skipped\n"
        f"ingested {len(spans) + 1} spans ({len(spans) + 1} new) from 2 lines of 1 file into {db}; "
        "8 bad lines skipped\n"
    )
    assert span_count(db) == len(spans) + 1  # nothing of line 8 was stored

    as_json = json.loads(ingest("--db", str(db), "--json", str(path)).stdout)
    assert {k: as_json[k] for k in ("lines", "spans", "added", "bad_count")} == {
        "lines": 2, "spans": len(spans) + 1, "added": 0, "bad_count": 8}
    assert [b["line"] for b in as_json["files"][0]["bad"]] == [2, 4, 5, 6, 7, 8, 9, 11]


def test_truncated_compressed_files_keep_what_came_before(run, tmp_path):
    _, spans = run
    lines = collector_lines(spans, per_line=1)
    stream = _zstd_frames(lines)
    cut = len(stream) - 10  # inside the last frame
    (tmp_path / "cut.zst").write_bytes(stream[:cut])
    framed = _framed([zstandard.ZstdCompressor().compress(x.encode()) for x in lines])
    (tmp_path / "cut.framed").write_bytes(framed[:-10])
    gz = gzip.compress("".join(x + "\n" for x in lines).encode())
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) * 3 // 4])

    for name, reason in [("cut.zst", "zstd stream ends early (file truncated?)"),
                         ("cut.framed", "truncated last record")]:
        records, report = read_file_spans(tmp_path / name)
        assert (report.lines, len(records), report.bad_count) == (len(lines) - 1, len(lines) - 1, 1), name
        assert report.bad[0].line == len(lines)
        assert report.bad[0].reason.startswith(reason)
    records, report = read_file_spans(tmp_path / "cut.gz")
    assert report.bad_count == 1 and report.bad[0].reason == "gzip stream ends early (file truncated?)"
    assert 0 < report.lines < len(lines) and len(records) == report.lines
    assert report.bad[0].line == report.lines + 1


# --- whole files that cannot be read ----------------------------------------

def _file(name: str, data: bytes):
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path
    return make


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.json", "{p}: no such file"),
    (lambda d: d, "{p}: is a directory, not a file"),
    (_file("empty.json", b""), "{p}: empty file"),
    (_file("blank.json", b"\n\n"), "{p}: no OTLP/JSON trace data"),
    (_file("bad.json", b"nope\n{}\n"), "{p}: no OTLP/JSON trace data (2 bad lines)"),
    (_file("empty.gz", gzip.compress(b"")), "{p}: empty gzip file"),
    (_file("junk.zst", b"\x28\xb5\x2f\xfd" + b"\xff" * 64), "{p}: not a readable zstd file (corrupt zstd data"),
])
def test_nothing_readable_exits_2_and_creates_no_store(tmp_path, make, message):
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = make(inputs)
    db = tmp_path / "never.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 2
    # one error line, last (a file of bad lines lists them first)
    errors = [line for line in result.stderr.splitlines() if line.startswith("memobs:")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0]
    assert errors[0].startswith("memobs: error: " + message.format(p=path))
    assert "Traceback" not in result.stderr
    assert not db.exists()


def test_nothing_readable_leaves_an_existing_store_unchanged(run, tmp_path):
    live_db, _ = run
    before = live_db.read_bytes()
    result = ingest("--db", str(live_db), str(tmp_path / "missing.json"), str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"memobs: error: {tmp_path / 'missing.json'}: no such file",
        f"memobs: error: {tmp_path}: is a directory, not a file",
        "memobs: error: nothing could be read from the 2 files; the store was not changed",
    ]
    assert live_db.read_bytes() == before


def test_unreadable_files_among_good_ones_are_reported_and_the_rest_ingested(run, tmp_path):
    _, spans = run
    good = write_text(tmp_path / "good.json", collector_lines(spans))
    db = tmp_path / "ingested.db"
    result = ingest("--db", str(db), str(tmp_path / "missing.json"), str(good))
    assert result.exit_code == 0
    assert result.stderr == f"memobs: error: {tmp_path / 'missing.json'}: no such file\n"
    assert result.stdout.splitlines()[-1] == (
        f"ingested {len(spans)} spans ({len(spans)} new) from {(len(spans) + 1) // 2} lines of 1 file "
        f"into {db}; 1 file could not be read")
    assert span_count(db) == len(spans)


def test_a_db_that_is_not_a_memobs_store_is_refused_untouched(run, tmp_path):
    _, spans = run
    good = write_text(tmp_path / "good.json", collector_lines(spans))
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n")
    result = ingest("--db", str(other), str(good))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"memobs: error: {other}: not a memobs database")
    assert len(result.stderr.splitlines()) == 1
    assert other.read_text() == "not a database\n"


# --- batches, transactions, progress ----------------------------------------

def test_one_transaction_per_batch_of_whole_lines_and_resume_after_a_failure(run, tmp_path):
    _, spans = run
    lines = collector_lines(spans, per_line=2)
    path = write_text(tmp_path / "spans.json", lines)
    db = tmp_path / "ingested.db"
    conn = connect_for_write(db)
    batches: list[int] = []

    def failing_write(c, records):
        if len(batches) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        batches.append(len(records))
        return write_records(c, records)

    with pytest.raises(sqlite3.OperationalError):
        ingest_files(conn, [path], write=failing_write, batch_spans=3)
    assert batches == [4]  # two whole lines reached 3 spans: one batch of 4
    assert span_count(db) == 4  # the failed batch left nothing behind

    seen: list[tuple[str, int]] = []
    report = ingest_files(conn, [path], batch_spans=3, on_progress=lambda p, n: seen.append((p, n)))
    conn.close()
    assert (report.spans, report.added) == (len(spans), len(spans) - 4)
    assert span_count(db) == len(spans)
    assert seen[-1] == (str(path), os.path.getsize(path))


def test_progress_bar_path_on_large_input(run, tmp_path, monkeypatch):
    from memobs_otel.cli import ingest as ingest_cli

    _, spans = run
    monkeypatch.setattr(ingest_cli, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr(ingest_cli, "_interactive", lambda: True)
    first = write_text(tmp_path / "a.json", collector_lines(spans[:2]))
    second = write_text(tmp_path / "b.json", collector_lines(spans[2:]))
    db = tmp_path / "ingested.db"
    result = ingest("--db", str(db), str(first), str(second))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"ingested {len(spans)} spans ({len(spans)} new)")
    assert span_count(db) == len(spans)
