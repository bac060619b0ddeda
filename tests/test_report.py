"""memobs report: exact headline numbers from a real recorded run, the empty
state, escaping of untrusted titles, bounded size on a bigger file, and the
CLI's bad-input handling (exit 2, one line, the file untouched)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import FACTS, MALICIOUS_TITLE, PLAYBOOKS, build_agent_db

import memobs_otel as memobs
from memobs_otel.cli import main
from memobs_otel.report import build_report, write_report
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.records import EventRecord, SpanRecord
from memobs_otel.store.writer import write_records
from memobs_otel.tokens import count_tokens


def tokens(*texts: str) -> int:
    return sum(count_tokens(t) for t in texts)


# token counts of the recorded contents under cl100k_base (checked below)
T_REFUND, T_TONE, T_OLD, T_EVIL = 16, 11, 9, 9


def test_token_counts_used_below_are_the_tokenizers():
    assert [tokens(PLAYBOOKS["pb-refund"]), tokens(PLAYBOOKS["pb-tone"]),
            tokens(PLAYBOOKS["pb-refund-old"]), tokens(FACTS["f-evil"])] == [T_REFUND, T_TONE, T_OLD, T_EVIL]


@pytest.fixture
def agent_db(tmp_path) -> Path:
    path = tmp_path / "agent.db"
    build_agent_db(path)
    return path


def metric(page: str, name: str) -> str:
    match = re.search(rf'data-metric="{name}"><div class="label">[^<]*</div><div class="value">([^<]*)</div>', page)
    assert match, f"no {name} card"
    return unescape(match.group(1))


def review_rows(page: str) -> list[str]:
    body = re.search(r'<table id="review-queue".*?<tbody>(.*?)</tbody>', page, re.S)
    assert body, "no review table"
    rows = re.findall(r"<tr data-signals=\"([^\"]*)\">.*?<a href=\"#entity-\d+\"><code>(.*?)</code>",
                      body.group(1), re.S)
    # ids may carry <wbr> (a line-break opportunity after / : #): the text is the same
    return [(signals, entity.replace("<wbr>", "")) for signals, entity in rows]


def test_headline_numbers_are_exact(agent_db):
    data, page = build_report(agent_db)
    h = data.headline
    injected = 3 * T_REFUND + 4 * T_TONE + T_OLD + T_EVIL
    # pb-refund: 3 injections, 2 cited; pb-tone: 4, 0; pb-refund-old: 1, 0; f-evil: 1, 1
    wasted = round(3 * T_REFUND * (1 - 2 / 3)) + 4 * T_TONE + T_OLD
    assert (h.known_entities, h.injected_entities, h.injections, h.tokens, h.citations) == (4, 4, 9, injected, 3)
    assert h.citation_rate == pytest.approx(3 / 9)
    assert h.wasted_tokens == wasted
    assert h.review_candidates == 2
    assert metric(page, "entities") == "4"
    assert metric(page, "injections") == "9"
    assert metric(page, "tokens") == f"{injected:,}"
    assert metric(page, "citation-rate") == "33%"
    assert metric(page, "wasted-tokens") == f"{wasted:,}"
    assert metric(page, "review") == "2"


def test_review_queue_and_details(agent_db):
    data, page = build_report(agent_db)
    assert review_rows(page) == [
        ("supersedeable", "playbook/pb-refund-old"),
        ("high_cost_low_cite", "playbook/pb-tone"),
    ]
    assert "superseded by pb-refund" in page
    assert "injected 4× but cited 0× (0%, below 50%); 44 tokens wasted" in page
    # details: every injected entity (top by tokens) and the review entities, each once
    assert [(d.entity_type, d.entity_id) for d in data.details] == [
        ("playbook", "pb-refund"), ("playbook", "pb-tone"), ("fact", "f-evil"), ("playbook", "pb-refund-old"),
    ]
    refund = data.details[0]
    assert (refund.injections, refund.tokens, refund.sessions, refund.citations) == (3, 3 * T_REFUND, 2, 2)
    assert [(s.session_id, s.injections) for s in refund.recent_sessions] == [("s-2", 1), ("s-1", 2)]
    assert sum(refund.per_bucket) == 3
    assert sum(data.injections_series) == 9 and sum(data.tokens_series) == data.headline.tokens
    assert sum(data.citations_series) == 3
    assert data.rate_bins == [("0%", 2), ("1–24%", 0), ("25–49%", 0), ("50–74%", 1), ("75–99%", 0), ("100%", 1)]
    assert page.count('<details class="entity"') == 4


def test_user_filter(agent_db):
    data, _ = build_report(agent_db, user_id="u-2")
    h = data.headline
    assert (h.injections, h.tokens, h.citations) == (4, T_REFUND + 2 * T_TONE + T_OLD, 0)
    assert h.known_entities == 3  # pb-refund, pb-tone, pb-refund-old


def test_untrusted_title_is_escaped(agent_db):
    _, page = build_report(agent_db)
    assert MALICIOUS_TITLE not in page
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # the only script is ours, allowed by hash in the Content-Security-Policy
    assert page.count("<script>") == 1
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = __import__("base64").b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1))
    assert f"script-src 'sha256-{digest}'" in csp
    assert csp.startswith("default-src 'none';")


def test_self_contained(agent_db):
    _, page = build_report(agent_db)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert page.count("<svg") == 4 + 4  # 2 over time, top entities, histogram + 4 sparklines


def test_empty_database(tmp_path):
    path = tmp_path / "empty.db"
    connect_for_write(path).close()
    data, page = build_report(path)
    assert data.empty
    assert 'id="empty-state"' in page
    assert "No memory activity yet" in page
    assert 'id="review-queue"' not in page


def test_old_data_outside_the_window_is_not_counted(agent_db):
    later = datetime.now(timezone.utc) + timedelta(days=60)
    data, page = build_report(agent_db, days=30, now=later)
    assert data.headline.injections == 0
    assert data.headline.known_entities == 4
    assert not data.empty  # known entities: the stale ones are in the review queue
    assert data.headline.review_candidates == 4
    assert {c.entity_id: c.signals for c in data.review}["pb-tone"] == ["stale"]


# --- a bigger file: aggregated, capped, bounded -------------------------------

def build_big_db(path: Path, entities: int, injections: int, days: int = 30) -> None:
    """Hand-built spans written by the store writer: ``injections`` events over
    ``entities`` entities, spread over ``days`` days, 10 per span."""
    end = int(datetime.now(timezone.utc).timestamp() * 1e9)
    span_ns = days * 86_400 * 10**9 // (injections // 10)
    records, trace = [], 1
    for s in range(injections // 10):
        t = end - s * span_ns - 10**9
        events = [
            EventRecord("memobs.injection", t, {
                "memobs.entity.type": "doc", "memobs.entity.id": f"d-{(s * 10 + r) % entities}",
                "memobs.entity.rank": r, "memobs.entity.tokens": 50 + r,
                "memobs.entity.content_hash": f"h{(s * 10 + r) % entities}",
                "memobs.entity.simhash": f"{((s * 10 + r) % entities) * 0x9E3779B97F4A7C15 % 2**64:016x}",
                "memobs.entity.title": f"Document {(s * 10 + r) % entities}",
            })
            for r in range(10)
        ]
        if s % 4 == 0:
            events.append(EventRecord("memobs.citation", t, {
                "memobs.entity.type": "doc", "memobs.entity.id": f"d-{(s * 10) % entities}",
                "memobs.citation.method": "explicit", "memobs.citation.score": 1.0}))
        records.append(SpanRecord(trace, trace, None, "search_memory docs", "INTERNAL", t, t + 1000, "UNSET",
                                  {"session.id": f"s-{s % 300}"}, tuple(events)))
        trace += 1
    conn = connect_for_write(path)
    try:
        for i in range(0, len(records), 2000):
            write_records(conn, records[i:i + 2000])
    finally:
        conn.close()


def test_bigger_db_is_aggregated_and_capped(tmp_path):
    path = tmp_path / "big.db"
    build_big_db(path, entities=3000, injections=60_000)
    out = tmp_path / "big.html"
    data = write_report(path, out)
    assert data.headline.injections == 60_000
    assert data.headline.known_entities == 3000
    assert data.headline.tokens == 6000 * sum(50 + r for r in range(10))
    assert len(data.top_entities) == 20
    assert len(data.details) <= 100
    assert len(data.review) <= 500
    size = out.stat().st_size
    assert size < 1_500_000, size
    page = out.read_text()
    assert page.count('<details class="entity"') == len(data.details)


# --- CLI ------------------------------------------------------------------

def snapshot(path: Path) -> tuple:
    files = sorted(p.name for p in path.parent.iterdir())
    return files, hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_writes_the_report(agent_db, tmp_path):
    out = tmp_path / "r.html"
    before = snapshot(agent_db)
    result = CliRunner().invoke(main, ["report", "--db", str(agent_db), "--out", str(out), "--days", "7"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (")
    assert result.output.endswith(
        f"): 4 entities, 9 injections, {3 * T_REFUND + 4 * T_TONE + T_OLD + T_EVIL} tokens injected,"
        " 2 in the review queue\n")
    assert metric(out.read_text(), "injections") == "9"
    assert hashlib.sha256(agent_db.read_bytes()).hexdigest() == before[1]


def test_cli_default_out(agent_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report", "--db", str(agent_db)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "memobs-report.html").exists()


@pytest.mark.parametrize("args, message", [
    (["--days", "abc"], "memobs: error: --days: not a number: 'abc'"),
    (["--days", "0"], "memobs: error: --days must be a number greater than 0, got '0'"),
    (["--days", "-3"], "memobs: error: --days must be a number greater than 0, got '-3'"),
])
def test_cli_bad_numbers(agent_db, tmp_path, args, message):
    before = snapshot(agent_db)
    result = CliRunner().invoke(main, ["report", "--db", str(agent_db), "--out", str(tmp_path / "x.html"), *args])
    assert result.exit_code == 2
    assert result.output == message + "\n"
    assert not (tmp_path / "x.html").exists()
    assert snapshot(agent_db) == before


def test_cli_missing_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 2
    assert result.output == (
        "memobs: error: memobs.db: no such file; `memobs demo` creates an example (memobs-demo.db, "
        "then use --db memobs-demo.db); or pass --db PATH (or set MEMOBS_DB) to the file "
        "memobs.configure(db_path=...) writes\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cli_missing_db_points_at_the_demo_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    connect_for_write(tmp_path / "memobs-demo.db").close()
    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 2
    assert result.output == ("memobs: error: memobs.db: no such file; memobs-demo.db is here "
                             "(written by `memobs demo`): try --db memobs-demo.db\n")
    assert not (tmp_path / "memobs-report.html").exists()


def test_cli_not_a_memobs_db(tmp_path):
    import sqlite3

    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = snapshot(db)
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert result.output == f"memobs: error: {db}: not a memobs database (no _memobs_migrations table)\n"
    assert snapshot(db) == before


def test_cli_refuses_to_overwrite_the_db(agent_db):
    before = snapshot(agent_db)
    result = CliRunner().invoke(main, ["report", "--db", str(agent_db), "--out", str(agent_db)])
    assert result.exit_code == 2
    assert result.output == f"memobs: error: --out {agent_db}: is the database itself; choose another file\n"
    assert snapshot(agent_db) == before


# --- time buckets ---------------------------------------------------------

def _stat(first: datetime, last: datetime):
    from memobs_otel.store import InjectionStat

    return InjectionStat("fact", "f", 1, 10, 1, 0, 0.0, first, last)


def test_buckets_are_hours_when_everything_happened_within_two_days():
    from memobs_otel.report.data import NS_PER_HOUR, choose_buckets
    from memobs_otel.store.query import window
    from memobs_otel.store.timeparse import datetime_to_ns

    now = datetime(2025, 6, 1, 18, 30, tzinfo=timezone.utc)
    start, end = window(30, now)
    # one afternoon: the 24 hours up to the last injection's hour
    b = choose_buckets(start, end, [_stat(datetime(2025, 6, 1, 14, 5, tzinfo=timezone.utc),
                                          datetime(2025, 6, 1, 16, 59, tzinfo=timezone.utc))])
    assert (b.width_ns, b.count) == (NS_PER_HOUR, 24)
    assert b.origin_ns == datetime_to_ns(datetime(2025, 5, 31, 17, tzinfo=timezone.utc))
    # 40 hours: every hour from the first injection's
    b = choose_buckets(start, end, [_stat(datetime(2025, 5, 31, 2, 0, tzinfo=timezone.utc),
                                          datetime(2025, 6, 1, 17, 10, tzinfo=timezone.utc))])
    assert (b.width_ns, b.count) == (NS_PER_HOUR, 40)
    assert b.origin_ns == datetime_to_ns(datetime(2025, 5, 31, 2, tzinfo=timezone.utc))
    # two days or more: days over the window
    b = choose_buckets(start, end, [_stat(datetime(2025, 5, 30, 17, 0, tzinfo=timezone.utc),
                                          datetime(2025, 6, 1, 17, 0, tzinfo=timezone.utc))])
    assert (b.width_ns, b.count) == (24 * NS_PER_HOUR, 31)


def test_single_day_report_says_per_hour(agent_db):
    data, page = build_report(agent_db)  # recorded just now: within the last hour
    assert (data.bucket_hours, data.bucket_unit, len(data.bucket_starts)) == (1, "hour", 24)
    assert sum(data.injections_series[-2:]) == 9  # the last hour (or two, if the run crossed one)
    assert "<figcaption>Injections per hour</figcaption>" in page
    assert f'{data.bucket_starts[-1].strftime("%Y-%m-%d %H:00")}</text>' in page


# --- report --json ----------------------------------------------------------

def test_cli_json_is_the_pages_data_and_writes_no_file(agent_db, tmp_path, monkeypatch):
    import dataclasses
    import json

    from memobs_otel.report.data import ReportData

    monkeypatch.chdir(tmp_path)
    before = snapshot(agent_db)
    result = CliRunner().invoke(main, ["report", "--db", str(agent_db), "--days", "7", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert not (tmp_path / "memobs-report.html").exists()
    assert snapshot(agent_db)[1] == before[1]  # the file's bytes are unchanged
    assert set(out) == {f.name for f in dataclasses.fields(ReportData)} | {"bucket_unit", "empty"}
    injected = 3 * T_REFUND + 4 * T_TONE + T_OLD + T_EVIL
    assert out["headline"] == {
        "known_entities": 4, "injected_entities": 4, "injections": 9, "tokens": injected, "citations": 3,
        "citation_rate": 3 / 9, "wasted_tokens": round(3 * T_REFUND / 3) + 4 * T_TONE + T_OLD,
        "review_candidates": 2}
    assert (out["days"], out["user_id"], out["empty"], out["bucket_unit"]) == (7, None, False, "hour")
    assert sum(out["injections_series"]) == 9 and len(out["bucket_starts"]) == len(out["injections_series"])
    assert out["rate_bins"][0] == {"label": "0%", "entities": 2}
    assert [(r["entity_id"], r["action"], r["reasons"]) for r in out["review"]] == [
        ("pb-refund-old", "archive: superseded by pb-refund", ["superseded by pb-refund"]),
        ("pb-tone", "rewrite or shorten: 44 tokens wasted",
         ["injected 4× but cited 0× (0%, below 50%); 44 tokens wasted"]),
    ]
    assert [d["entity_id"] for d in out["details"]] == ["pb-refund", "pb-tone", "f-evil", "pb-refund-old"]
    assert [(s["session_id"], s["injections"]) for s in out["details"][0]["recent_sessions"]] == [
        ("s-2", 1), ("s-1", 2)]
    assert out["window_end"].endswith("Z") and out["schema_version"][0] >= 1


def test_cli_json_empty_and_missing(tmp_path, monkeypatch):
    import json

    db = tmp_path / "empty.db"
    connect_for_write(db).close()
    result = CliRunner().invoke(main, ["report", "--db", str(db), "--json"])
    out = json.loads(result.stdout)
    assert (out["empty"], out["review"], out["top_entities"], out["headline"]["injections"]) == (True, [], [], 0)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report", "--db", "nope.db", "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("memobs: error: nope.db: no such file;")
