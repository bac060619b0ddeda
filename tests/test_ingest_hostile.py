"""``memobs ingest`` on hostile files (issue 17, item 6; SPEC §7).

Every case runs the real CLI on a real file into a real SQLite store and
checks exact counts: spans and injections stored, bad lines and their
reasons, the exit status, and that no traceback and no empty store are left.
The decompression bombs run the CLI in a child process and read its peak RSS
as the child reports it (``VmHWM``: a memory bound, not a timing).
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from memobs_otel import semconv as sc
from memobs_otel.cli import main
from memobs_otel.ingest import IngestLimits, ingest_files
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.writer import write_records

TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"
START = time.time_ns() - 3600 * 10**9  # an hour ago: inside every query window
MAX_RSS_MB = 300


# --- OTLP/JSON as the Collector writes it -------------------------------------

def _attrs(**values) -> list[dict]:
    out = []
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, dict):
            out.append({"key": key, "value": value})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        else:
            out.append({"key": key, "value": {"stringValue": value}})
    return out


def injection(entity_id: str, rank: int = 0, **extra) -> dict:
    return {"timeUnixNano": str(START + 1000), "name": sc.EVENT_INJECTION, "attributes": _attrs(**{
        sc.ENTITY_TYPE: "playbook", sc.ENTITY_ID: entity_id, sc.ENTITY_RANK: rank, sc.ENTITY_TOKENS: 12,
        sc.ENTITY_CONTENT_HASH: "ab" * 16, sc.ENTITY_SIMHASH: "0123456789abcdef"}, **extra)}


def span(span_id: str, name: str = "search_memory playbooks", events=(), attributes=(), **fields) -> dict:
    body = {"traceId": TRACE, "spanId": span_id, "parentSpanId": "", "name": name, "kind": 3,
            "startTimeUnixNano": str(START), "endTimeUnixNano": str(START + 5000),
            "attributes": [*_attrs(**{sc.USER_ID: "u-1", sc.SESSION_ID: "s-1"}), *attributes],
            "events": list(events), "status": {}}
    body.update(fields)
    return body


def request(*spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": _attrs(**{"service.name": "agent"})},
                               "scopeSpans": [{"scope": {"name": "memobs_otel"}, "spans": list(spans)}]}]}


def line(*spans: dict) -> str:
    return json.dumps(request(*spans), separators=(",", ":"))


GOOD_1 = line(span("1111111111111111", events=[injection("pb-refund"), injection("pb-tone", 1)]))
GOOD_2 = line(span("2222222222222222", events=[injection("pb-refund")]))


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return path


def ingest(*args: str):
    return CliRunner().invoke(main, ["ingest", *args], catch_exceptions=False)


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def counts(db: Path) -> tuple[int, int]:
    """(spans, injections) stored."""
    return rows(db, "SELECT count(*) FROM spans")[0][0], rows(db, "SELECT count(*) FROM injections")[0][0]


def skipped(result) -> list[str]:
    return [x for x in result.stderr.splitlines() if ": skipped: " in x]


# --- deep nesting, numbers, surrogates, BOM -------------------------------------

def nested_value(depth: int) -> str:
    """The JSON of an AnyValue that is an array in an array ... ``depth`` deep."""
    return '{"arrayValue":{"values":[' * depth + '{"stringValue":"leaf"}' + "]}}" * depth


def with_deep_attribute(depth: int) -> str:
    text = line(span("3333333333333333", attributes=_attrs(deep="PLACEHOLDER")))
    return text.replace('{"stringValue":"PLACEHOLDER"}', nested_value(depth))


def test_json_nested_10_5_deep_is_one_bad_line_and_the_rest_ingested(tmp_path):
    path = write_lines(
        tmp_path / "deep.json",
        GOOD_1,
        "[" * 10**5 + "]" * 10**5,
        '{"a":' * 10**5 + "1" + "}" * 10**5,
        with_deep_attribute(2000),
        GOOD_2,
    )
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    assert skipped(result) == [f"{path}:{n}: skipped: nested too deep" for n in (2, 3, 4)]
    assert result.stdout.splitlines()[-1] == (
        f"ingested 2 spans (2 new) from 2 lines of 1 file into {db}; 3 bad lines skipped")
    assert counts(db) == (2, 3)


def test_numbers_past_64_bits_are_stored_sanitised_as_the_exporter_does(tmp_path):
    big = 2**64
    path = write_lines(
        tmp_path / "big.json",
        line(span("1111111111111111", attributes=_attrs(n={"intValue": str(big)}),
                  events=[injection("pb-refund", **{sc.ENTITY_VERSION: {"intValue": str(2**70)}})])),
        line(span("3333333333333333", startTimeUnixNano=str(big - 1), endTimeUnixNano=2**63)),
        line(span("4444444444444444", events=[{**injection("pb-tone"), "timeUnixNano": "9" * 30}])),
        GOOD_2,
    )
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == (
        f"ingested 4 spans (4 new) from 4 lines of 1 file into {db}; "
        "5 values stored sanitised (lone surrogates, numbers past 64 bits)")
    assert counts(db) == (4, 3)
    max_ns = 2**63 - 1  # times clamped, numbers kept as text: the writer's rules for the SDK's spans
    assert rows(db, "SELECT span_id, start_ns, end_ns FROM spans WHERE span_id = '3333333333333333'") == [
        ("3333333333333333", max_ns, max_ns)]
    assert rows(db, "SELECT time_ns FROM injections JOIN entities ON entities.pk = entity_pk "
                    "WHERE entity_id = 'pb-tone'") == [(max_ns,)]
    attributes = json.loads(rows(db, "SELECT attributes FROM spans WHERE span_id = '1111111111111111'")[0][0])
    assert attributes["n"] == str(big)
    assert rows(db, "SELECT version, typeof(version) FROM injections WHERE version IS NOT NULL") == [
        (str(2**70), "text")]
    assert rows(db, "SELECT kind, count FROM export_losses") == [("values-sanitised", 5)]


def test_lone_surrogate_escapes_become_u_fffd(tmp_path):
    path = tmp_path / "surrogates.json"
    # json.dumps writes a lone surrogate as the escape "\ud800", as a hostile writer would
    first = line(span("1111111111111111", name="bad\ud800name", attributes=_attrs(**{"k\udc00": "v\ud800"}),
                      events=[injection("pb-\ud800")]))
    assert "\\ud800" in first
    pair = line(span("2222222222222222", name="ok \U0001f600", events=[injection("pb-refund")]))
    write_lines(path, first, pair)
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), str(path), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert {k: v for k, v in json.loads(result.stdout).items() if k != "files"} == {
        "db": str(db), "lines": 2, "spans": 2, "added": 2, "bad_count": 0,
        "values_sanitised": 4, "spans_unwritable": 0}
    assert counts(db) == (2, 2)
    assert rows(db, "SELECT name FROM spans ORDER BY span_id") == [("bad\ufffdname",), ("ok \U0001f600",)]
    attributes = json.loads(rows(db, "SELECT attributes FROM spans WHERE span_id = '1111111111111111'")[0][0])
    assert attributes["k\ufffd"] == "v\ufffd"
    assert sorted(rows(db, "SELECT entity_id FROM entities")) == [("pb-refund",), ("pb-\ufffd",)]


def test_utf8_byte_order_marks_are_ignored(tmp_path):
    path = tmp_path / "bom.json"
    # a BOM at the start, and one mid-file where two files were concatenated
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_1.encode() + b"\n" + b"\xef\xbb\xbf" + GOOD_2.encode() + b"\n")
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == (f"{path}: 2 lines, 2 spans (2 new)\n"
                             f"ingested 2 spans (2 new) from 2 lines of 1 file into {db}\n")
    assert counts(db) == (2, 3)


def test_a_file_of_nothing_readable_exits_2_and_leaves_no_store(tmp_path):
    path = write_lines(tmp_path / "hostile.json",
                       "[" * 10**5,
                       line(span("3333333333333333", startTimeUnixNano="-1")))
    db = tmp_path / "never.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}:1: skipped: nested too deep",
        f"{path}:2: skipped: startTimeUnixNano: negative",
        f"memobs: error: {path}: no OTLP/JSON trace data (2 bad lines)",
    ]
    assert not db.exists()


# --- one value the writer refuses costs its line, not the batch ---------------------

def test_a_line_the_writer_refuses_is_counted_and_its_neighbours_stored(tmp_path):
    refused = line(span("3333333333333333", name="refused"))
    path = write_lines(tmp_path / "spans.json", GOOD_1, refused, GOOD_2)
    conn = connect_for_write(tmp_path / "out.db")
    calls: list[int] = []

    def write(c, records):  # the real writer, refusing one value as SQLite would
        calls.append(len(records))
        if any(r.name == "refused" for r in records):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return write_records(c, records)

    report = ingest_files(conn, [path], write=write)
    conn.close()

    assert calls == [3, 1, 1, 1]  # the batch, then line by line
    f = report.files[0]
    assert (f.lines, f.spans, f.added, f.bad_count) == (2, 2, 2, 1)
    assert [(b.line, b.reason) for b in f.bad] == [
        (2, "cannot be stored (OverflowError: Python int too large to convert to SQLite INTEGER)")]
    assert counts(tmp_path / "out.db") == (2, 3)


def test_a_store_this_run_created_but_could_not_fill_is_removed(tmp_path, monkeypatch):
    from memobs_otel.cli import ingest as ingest_cli

    class FullDisk(ingest_cli.Writer):
        def write(self, records):
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ingest_cli, "Writer", FullDisk)
    path = write_lines(tmp_path / "spans.json", GOOD_1)
    db = tmp_path / "new.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 2
    assert result.stderr == (f"memobs: error: {db}: cannot write (database or disk is full); the spans stored "
                             "before the error stay, re-run the same command to add the rest\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spans.json"]


# --- size limits ---------------------------------------------------------------

def test_a_line_past_max_line_mb_is_skipped_and_the_rest_ingested(tmp_path):
    long = line(span("3333333333333333", attributes=_attrs(blob="x" * (2 << 20))))
    path = write_lines(tmp_path / "long.json", GOOD_1, long, GOOD_2)
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), "--max-line-mb", "1", str(path))

    assert result.exit_code == 0, result.stderr
    assert skipped(result) == [f"{path}:2: skipped: line longer than the 1 MiB limit (--max-line-mb)"]
    assert counts(db) == (2, 3)
    # within the default limit the same line is read
    assert ingest("--db", str(db), str(path)).exit_code == 0
    assert counts(db) == (3, 3)


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_limits_are_one_line_and_exit_2(tmp_path, value):
    path = write_lines(tmp_path / "spans.json", GOOD_1)
    for option in ("--max-line-mb", "--max-decompressed-mb"):
        result = ingest("--db", str(tmp_path / "out.db"), option, value, str(path))
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"memobs: error: {option}")
    assert not (tmp_path / "out.db").exists()


def distinct_lines(count: int) -> list[str]:
    return [line(span(f"{n + 1:016x}", events=[injection(f"pb-{n}")])) for n in range(count)]


def test_past_max_decompressed_mb_the_lines_within_it_are_kept(tmp_path):
    lines = distinct_lines(3000)
    data = "".join(x + "\n" for x in lines).encode()
    assert len(data) > 2 << 20
    path = tmp_path / "spans.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(data))
    kept, end = 0, 0
    while end + len(lines[kept]) + 1 <= 1 << 20:  # lines wholly within the first MiB
        end += len(lines[kept]) + 1
        kept += 1
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), "--max-decompressed-mb", "1", str(path))

    assert result.exit_code == 0, result.stderr
    assert skipped(result) == [f"{path}:{kept + 1}: skipped: decompressed data past the 1 MiB limit "
                               "(--max-decompressed-mb); the rest of the file was not read"]
    assert counts(db) == (kept, kept)
    # the automatic limit (100x the file) reads a real file whole
    assert ingest("--db", str(db), str(path)).exit_code == 0
    assert counts(db) == (3000, 3000)


# --- decompression bombs: bounded memory ---------------------------------------------

# The child reports its own peak from /proc/self/status (VmHWM) at exit. Not
# os.wait4's ru_maxrss: that counts the forked child before exec, whose
# resident set is the pytest process's (hundreds of MB late in the suite).
_MEASURED_CLI = """
import atexit, os
def _peak():
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(os.environ["MEMOBS_TEST_PEAK_FILE"], "w") as out:
        out.write(str(kb))
atexit.register(_peak)
from memobs_otel.cli import main
main()
"""


def run_measured(*args: str) -> tuple[int, str, str, int]:
    """``memobs ingest ARGS`` in a child process: exit code, stdout, stderr, its peak RSS in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        env = {**os.environ, "MEMOBS_TEST_PEAK_FILE": peak.name}
        done = subprocess.run([sys.executable, "-c", _MEASURED_CLI, "ingest", *args],
                              stdout=out, stderr=err, env=env)
        out.seek(0)
        err.seek(0)
        return done.returncode, out.read().decode(), err.read().decode(), int(Path(peak.name).read_text()) // 1024


ZEROS = 64 << 20


@pytest.fixture(scope="module")
def zstd_zeros() -> bytes:
    """One zstd frame of 64 MiB of zero bytes (~2 KB)."""
    return zstandard.ZstdCompressor().compress(bytes(ZEROS))


def zstd_line(text: str) -> bytes:
    return zstandard.ZstdCompressor().compress(text.encode())


def test_zstd_bomb_with_default_limits(tmp_path, zstd_zeros):
    path = tmp_path / "bomb.zst"
    path.write_bytes(zstd_zeros * 32)  # 2 GiB of zeros in ~64 KB
    assert os.path.getsize(path) < 100_000
    db = tmp_path / "never.db"

    code, stdout, stderr, rss_mb = run_measured("--db", str(db), str(path))

    assert code == 2
    assert stderr.splitlines()[-1] == (
        f"memobs: error: {path}: no OTLP/JSON trace data (line 1: decompressed data past the 64 MiB limit "
        "(100 times the file's size, at least --max-line-mb; see --max-decompressed-mb); "
        "the rest of the file was not read)")
    assert "Traceback" not in stderr
    assert rss_mb < MAX_RSS_MB
    assert not db.exists()


def test_zstd_bomb_line_between_good_lines(tmp_path, zstd_zeros):
    path = tmp_path / "bomb.zst"
    path.write_bytes(zstd_line(GOOD_1 + "\n") + zstd_zeros * 16 + zstd_line("\n" + GOOD_2 + "\n"))
    db = tmp_path / "out.db"

    code, stdout, stderr, rss_mb = run_measured("--db", str(db), "--max-decompressed-mb", "4096", str(path))

    assert code == 0, stderr
    assert stderr == f"{path}:2: skipped: line longer than the 64 MiB limit (--max-line-mb)\n"
    assert stdout.splitlines()[-1] == f"ingested 2 spans (2 new) from 2 lines of 1 file into {db}; 1 bad line skipped"
    assert rss_mb < MAX_RSS_MB
    assert counts(db) == (2, 3)


def test_gzip_bomb_line_between_good_lines(tmp_path):
    member = gzip.compress(bytes(ZEROS))  # ~64 KB: deflate's 1032:1
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress((GOOD_1 + "\n").encode()) + member * 16
                     + gzip.compress(("\n" + GOOD_2 + "\n").encode()))
    db = tmp_path / "out.db"

    code, stdout, stderr, rss_mb = run_measured("--db", str(db), "--max-decompressed-mb", "4096", str(path))

    assert code == 0, stderr
    assert stderr == f"{path}:2: skipped: line longer than the 64 MiB limit (--max-line-mb)\n"
    assert rss_mb < MAX_RSS_MB
    assert counts(db) == (2, 3)


def test_framed_zstd_record_bomb(tmp_path):
    """``compression: zstd``: each request a length-prefixed zstd frame; one is 1 GiB of zeros."""
    compressor = zstandard.ZstdCompressor().compressobj()
    zeros = bytes(ZEROS)
    bomb = b"".join(compressor.compress(zeros) for _ in range(16)) + compressor.flush()  # one frame
    assert len(bomb) < 100_000
    records = [zstd_line(GOOD_1), bomb, zstd_line(GOOD_2)]
    path = tmp_path / "framed.bin"
    path.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in records))
    db = tmp_path / "out.db"

    code, stdout, stderr, rss_mb = run_measured("--db", str(db), str(path))

    assert code == 0, stderr
    assert stderr == f"{path}:2: skipped: record decompresses past the 64 MiB limit (--max-line-mb)\n"
    assert rss_mb < MAX_RSS_MB
    assert counts(db) == (2, 3)


def test_a_stream_of_newlines_is_skipped_whole(tmp_path):
    path = tmp_path / "newlines.zst"
    path.write_bytes(zstd_line(GOOD_1 + "\n" + "\n" * (50 << 20) + GOOD_2 + "\n"))
    report = ingest_files(None, [path], write=lambda c, records: len(records),
                          limits=IngestLimits(max_decompressed_bytes=1 << 30))
    f = report.files[0]
    assert (f.lines, f.spans, f.bad_count) == (2, 2, 0)


# --- one whole OTLP/JSON document ------------------------------------------------------

def trace_json_document() -> dict:
    """opentelemetry-proto's examples/trace.json, its structure and conventions
    (upper-case hex ids, times as JSON numbers, scope version and attributes),
    with a memobs retrieval as a child of its server span."""
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                      "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
            "spans": [
                {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                 "parentSpanId": "EEE19B7EC3C1B173", "name": "I'm a server span",
                 "startTimeUnixNano": START, "endTimeUnixNano": START + 10**9, "kind": 2,
                 "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]},
                {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B175",
                 "parentSpanId": "EEE19B7EC3C1B174", "name": "search_memory playbooks",
                 "startTimeUnixNano": START + 1000, "endTimeUnixNano": START + 5000, "kind": 3,
                 "attributes": _attrs(**{sc.USER_ID: "u-1", sc.SESSION_ID: "s-1"}),
                 "events": [injection("pb-refund"), injection("pb-tone", 1), injection("pb-escalate", 2),
                            {"timeUnixNano": START + 4000, "name": sc.EVENT_CITATION, "attributes": _attrs(**{
                                sc.ENTITY_TYPE: "playbook", sc.ENTITY_ID: "pb-refund",
                                sc.CITATION_METHOD: sc.CITATION_EXPLICIT})}]},
            ]}]}]}


def test_one_pretty_printed_otlp_json_document_is_ingested(tmp_path):
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace_json_document(), indent=2), encoding="utf-8")
    assert len(path.read_text().splitlines()) > 100
    db = tmp_path / "out.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == (f"{path}: 1 line, 2 spans (2 new) [json document]\n"
                             f"ingested 2 spans (2 new) from 1 line of 1 file into {db}\n")
    assert counts(db) == (2, 3)
    assert rows(db, "SELECT count(*) FROM citations")[0][0] == 1
    assert rows(db, "SELECT span_id, parent_span_id FROM spans ORDER BY span_id") == [
        ("eee19b7ec3c1b174", "eee19b7ec3c1b173"), ("eee19b7ec3c1b175", "eee19b7ec3c1b174")]
    # again: nothing twice; and compressed, with a byte order mark, it is read the same
    again = tmp_path / "trace.json.gz"
    again.write_bytes(gzip.compress(b"\xef\xbb\xbf" + path.read_bytes()))
    result = ingest("--db", str(db), str(path), str(again))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}: 1 line, 2 spans (0 new) [json document]",
        f"{again}: 1 line, 2 spans (0 new) [gzip json document]",
        f"ingested 4 spans (0 new) from 2 lines of 2 files into {db}",
    ]
    assert counts(db) == (2, 3)


def test_a_document_that_is_not_trace_data_is_one_bad_entry(tmp_path):
    document = trace_json_document()
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"] = "XYZ"
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    db = tmp_path / "never.db"

    result = ingest("--db", str(db), str(path))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"memobs: error: {path}: no OTLP/JSON trace data "
        "(line 1: bad traceId 'XYZ' (the file read as one JSON document))")
    assert not db.exists()


def test_a_document_past_max_line_mb_is_read_as_lines(tmp_path):
    document = trace_json_document()
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] += _attrs(blob="x" * (1 << 20))
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    lines = len(path.read_text().splitlines())

    result = ingest("--db", str(tmp_path / "never.db"), "--max-line-mb", "1", str(path))

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"memobs: error: {path}: no OTLP/JSON trace data ({lines} bad lines)"
    assert not (tmp_path / "never.db").exists()
    assert ingest("--db", str(tmp_path / "out.db"), "--max-line-mb", "2", str(path)).exit_code == 0
    assert counts(tmp_path / "out.db") == (2, 3)


def test_a_json_lines_file_with_a_broken_first_line_is_still_read_as_lines(tmp_path):
    path = write_lines(tmp_path / "broken.json", '{"resourceSpans": [', GOOD_1, GOOD_2)
    db = tmp_path / "out.db"
    result = ingest("--db", str(db), str(path))
    assert result.exit_code == 0, result.stderr
    assert [x.split(": skipped: ")[0] for x in skipped(result)] == [f"{path}:1"]
    assert counts(db) == (2, 3)
