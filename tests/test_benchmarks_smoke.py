"""The benchmarks still run (tiny sizes) and print the expected rows.

Benchmarks are not tests: nothing here looks at a timing.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from memobs_otel import fingerprint

pytest.importorskip("langchain_core")
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, ROOT)

from benchmarks import bench_instructions, bench_overhead, bench_store, reference, run  # noqa: E402
from benchmarks.common import format_table  # noqa: E402
from benchmarks.texts import memory_texts  # noqa: E402


def names(rows):
    return [row.name for row in rows]


def test_overhead_and_tokens_rows():
    rows = run.collect(quick=True, only={"overhead", "tokens"})
    assert names(rows) == [
        "decorated search k=10 / hand-written span (cache warm)",
        "decorated search k=1 / hand-written span (cache warm)",
        "decorated search k=50 / hand-written span (cache warm)",
        "kill switch on: decorated - bare function",
        "cold Measurer (tokens + sha256 + simhash) / tiktoken throughput",
        "cold token count alone (Tokenizer.count) / tiktoken throughput",
        "  of which simhash per text (now / before)",
        "warm cache: Measurer.measure per entity",
    ]
    assert [row.section for row in rows] == ["1", "2", "2", "3", "4", "4", "4", "4"]
    table = format_table(rows)
    assert "kill switch on" in table and "target" in table.splitlines()[0]


def test_hand_written_span_is_the_same_span():
    for k in (1, 10, 50):
        assert bench_overhead.same_spans(k)


def test_simhash_equals_the_reference_implementation():
    texts = memory_texts(50) + ["", "one", "two words", "naïve café — ünïcödé 🎉 too", "x\ud800y z w",
                                " ".join(f"w{i}" for i in range(300))]
    for text in texts:
        assert fingerprint.simhash(text) == reference.simhash(text)


def test_store_rows():
    rows = run.collect(quick=True, only={"store"})
    assert rows[0].figure != "not run", rows[0].detail
    assert [row.section for row in rows] == ["5", "5", "5", "5", "6", "6", "6", "6", "7", "7"]
    assert rows[0].name.startswith("SQLite exporter ingest")
    assert rows[0].name.endswith("(export())")
    assert rows[2].name == "  the writer's own statements replayed (SQL alone)"
    # 2,000 injections, 200 spans, 200 events, 200 citations, 866 first-seen entities
    assert "the 3,466 rows the writer built" in rows[2].detail
    assert rows[3].name == "  the same events on memobs-shaped spans (30 span attributes)"


def test_replayed_statements_make_the_same_file(tmp_path):
    """The replay row's premise: the recorded statements, run again, store exactly what the writer stored."""
    spans = bench_store.make_spans(3_000, 500)
    log = bench_store.writer_statements(str(tmp_path / "written.db"), spans)
    bench_store.replay(str(tmp_path / "replayed.db"), log)
    tables = ("spans", "events", "entities", "injections", "citations")
    written, replayed = (sqlite3.connect(tmp_path / name) for name in ("written.db", "replayed.db"))
    try:
        for table in tables:
            rows = written.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
            assert rows, table
            assert replayed.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall() == rows, table
        assert written.execute("SELECT COUNT(*) FROM injections").fetchone() == (3_000,)
    finally:
        written.close()
        replayed.close()


def test_peer_rows():
    rows = run.collect(quick=True, only={"peers"})
    assert names(rows) == [
        "LangChain retriever k=10: bare invoke",
        "  overhead under memobs",
        "  overhead under openinference",
        "  overhead under openllmetry",
    ]
    assert rows[1].figure != "not run", rows[1].detail  # memobs always runs; the peers need .venv-bench
    assert "span(s)/call" in rows[1].detail
    assert rows[1].detail.startswith("rounds' middle half ")  # the spread beside the median


def test_command_line_quick(capsys):
    assert run.main(["--quick", "--only", "overhead"]) == 0
    out = capsys.readouterr().out
    assert "decorated search k=10" in out and "medians of interleaved rounds" in out


def test_one_process_timed_rows():
    rows = bench_instructions.timed_rows(quick=True)
    assert names(rows) == [
        "LangChain k=10, one process, wall clock: bare invoke",
        "  one-process overhead under memobs",
        "  one-process overhead under openinference",
        "  one-process overhead under openllmetry",
    ]
    assert rows[0].figure.endswith(" µs") and rows[1].figure.endswith(" µs"), rows[0].detail  # memobs always runs
    assert rows[1].detail.startswith("rounds' middle half ")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_instruction_rows():
    rows = run.collect(quick=True, only={"instructions"})[4:]  # after the one-process timed rows
    assert names(rows) == [
        "LangChain k=10, instructions per call: bare (callgrind)",
        "  instructions over bare under memobs",
        "  instructions over bare under openinference",
        "  instructions over bare under openllmetry",
    ]
    assert rows[0].figure.endswith(" M"), rows[0].detail
    assert rows[1].figure.endswith(" k"), rows[1].detail  # memobs always runs
    assert int(rows[1].figure[:-2].replace(",", "")) > 0  # recording costs something: it really ran


def test_memobs_shaped_spans_carry_what_memobs_records():
    spans = bench_store.make_spans(40, 20)
    shaped, count = bench_store.memobs_shaped(spans)
    recorded = dict(bench_store._recorded_span().attributes)
    assert count == len(recorded) + 2 == 30  # + user.id, session.id
    for plain, span in zip(spans, shaped):
        assert list(span.attributes)[: len(recorded)] == list(recorded)
        assert span.attributes["user.id"] == plain.attributes["user.id"]
        ids = [span.attributes[f"retrieval.documents.{i}.document.id"] for i in range(10)]
        assert ids == [event.attributes["memobs.entity.id"] for event in plain.events[:10]]
        assert span.events is plain.events
