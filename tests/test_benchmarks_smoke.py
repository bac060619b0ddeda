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
from benchmarks.bench_peers import peer_differences  # noqa: E402
from benchmarks.common import compare, format_table, median_interval, round_order  # noqa: E402
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


def test_budget_rows():
    rows = run.collect(quick=True, only={"budget"})
    assert names(rows) == [
        "context_budget, 20k events, all users",
        "context_budget, 20k events, one user",
        "writer ingest with m008 / without, 20k events",
    ]
    assert rows[0].detail == "1,023 turns of 30 days counted"


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
    # section 7: the simhash rows, then bench_duplicates's four MinHash rows
    assert [row.section for row in rows] == ["5", "5", "5", "5", "6", "6", "6", "6"] + ["7"] * 6
    assert rows[0].name.startswith("SQLite exporter ingest")
    assert rows[0].name.endswith("(export())")
    assert rows[2].name == "  the writer's own statements replayed (SQL alone)"
    # 2,000 injections, 200 spans, 200 events, 200 citations, 866 first-seen entities,
    # and m008's per-turn rows (400)
    assert "the 3,866 rows the writer built" in rows[2].detail
    assert rows[3].name == "  the same events on memobs-shaped spans (32 span attributes)"


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
        "  memobs - openinference, paired by round",
        "  memobs - openllmetry, paired by round",
        "  memobs on top of openinference (its overhead there)",
        "  memobs on openinference - memobs alone, paired by round",
    ]
    assert rows[1].figure != "not run", rows[1].detail  # memobs always runs; the peers need .venv-bench
    # the test extra installs OpenInference: memobs on top of it runs, and adds no span of its own
    assert rows[6].figure != "not run", rows[6].detail
    assert "1 span(s)/call" in rows[6].detail, rows[6].detail
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
        "  one-process memobs - openinference, paired by round",
        "  one-process memobs - openllmetry, paired by round",
    ]
    assert rows[0].figure.endswith(" µs") and rows[1].figure.endswith(" µs"), rows[0].detail  # memobs always runs
    assert rows[1].detail.startswith("rounds' middle half ")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_instruction_rows():
    rows = run.collect(quick=True, only={"instructions"})[6:]  # after the one-process timed rows
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
    assert count == len(recorded) + 2 == 32  # + user.id, session.id
    for plain, span in zip(spans, shaped):
        assert list(span.attributes)[: len(recorded)] == list(recorded)
        assert span.attributes["user.id"] == plain.attributes["user.id"]
        ids = [span.attributes[f"retrieval.documents.{i}.document.id"] for i in range(10)]
        assert ids == [event.attributes["memobs.entity.id"] for event in plain.events[:10]]
        assert span.events is plain.events


def test_median_interval_is_the_sign_tests():
    # n = 33: P(X <= 10) = 0.0175 <= 0.025 < P(X <= 11) = 0.0401, so the 11th value to the 23rd
    assert median_interval(list(range(1, 34))) == (11, 23)
    assert median_interval(list(range(60, 0, -1))) == (22, 39)  # n = 60: the 22nd to the 39th, order ignored
    assert median_interval([3, 1, 2, 5, 4]) == (1, 5)  # too few rounds for 95 %: the whole range
    assert median_interval(list(range(1, 34)), confidence=0.5) == (15, 19)  # P(X <= 14) = 0.243
    with pytest.raises(ValueError):
        median_interval([])


def test_compare_says_what_the_interval_shows():
    lower = [-(10 + i % 7) * 1e-6 for i in range(33)]
    assert compare(lower, "memobs") == (-13e-6, "95% interval -14.0 µs to -12.0 µs (sign test over 33 rounds;"
                                                " lower in 33); memobs lower: the whole interval is below 0")
    mixed = [(i - 16) * 1e-6 for i in range(33)]
    assert compare(mixed, "memobs")[1].endswith("lower in 16); no difference shown: the interval holds 0")
    higher = [-x for x in lower]
    assert compare(higher, "memobs")[1].endswith("memobs higher: the whole interval is above 0")


def test_peer_differences_pair_the_rounds():
    overheads = {"memobs": [100.0, 120.0, 90.0, 110.0, 105.0, 95.0],
                 "openllmetry": [90.0, 100.0, 95.0, 100.0, 100.0, 80.0]}  # µs; differences 10, 20, -5, 10, 5, 15
    rows = peer_differences(overheads, "one-process ", scale=1e6)
    assert [(row.name, row.figure) for row in rows] == [
        ("  one-process memobs - openinference, paired by round", "not run"),
        ("  one-process memobs - openllmetry, paired by round", "+10.0 µs"),
    ]
    assert rows[1].detail.startswith("95% interval -5.00 µs to 20.0 µs (sign test over 6 rounds; lower in 1)")


def test_round_order_alternates_two_and_shuffles_more():
    assert [round_order(["a", "b"], r) for r in range(4)] == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    names = ["bare", "memobs", "openinference", "openllmetry", "hand"]
    orders = [round_order(names, r) for r in range(60)]
    assert all(sorted(order) == sorted(names) for order in orders)  # every variant once a round
    assert orders == [round_order(names, r) for r in range(60)]  # seeded: the same orders every run
    assert names == ["bare", "memobs", "openinference", "openllmetry", "hand"]  # not shuffled in place
    # every variant in every place, and right after every other one
    assert all({order[place] for order in orders} == set(names) for place in range(len(names)))
    after = {(order[i], order[i + 1]) for order in orders for i in range(len(names) - 1)}
    assert after == {(a, b) for a in names for b in names if a != b}


def test_burst_rows():
    rows = run.collect(quick=True, only={"burst"})
    assert [(row.section, row.name) for row in rows] == [
        ("9", "2k-search burst through configure(): spans lost"),
        ("9", "  peak memory growth during the burst"),
    ]
    assert rows[0].figure == "0" and rows[0].ok  # a count, not a timing: nothing lost
    assert "stored 2,000 spans, 2,000 injections of 2,000" in rows[0].detail


def test_minhash_duplicate_rows():
    from benchmarks import bench_duplicates

    rows = bench_duplicates.run("quick")
    assert [row.name for row in rows] == [
        "MinHash duplicates, labelled pairs (146)",
        "MinHash duplicate detection, 1,000 entities",
        "  recall vs all pairs, 200-entity sample",
        "  one MinHash fingerprint (memory texts)",
    ]
    assert rows[0].figure == "P 0.986 / R 0.986" and rows[0].ok is True
    assert rows[2].figure == "1.000"
