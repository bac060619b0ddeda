"""Review decisions (dismiss / undismiss), the action line, cost-weighted high_cost_low_cite, the order.

Real SDK spans through the real SQLiteSpanExporter into a file (the
``Agent`` of tests/helpers.py: event times set by hand, so every number
is computed by hand); the CLI through click's CliRunner. ``NOW`` is
2025-06-01, the window 30 days (from 2025-05-02).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner

import memobs_otel as memobs
from memobs_otel.cli import main
from helpers import NOW, Agent, day, pb

UTC = timezone.utc


def queue(store, **kwargs):
    return [(c.entity_id, c.signals, c.score, c.wasted_tokens, c.action, c.dismissed)
            for c in store.memory_review(now=kwargs.pop("now", NOW), **kwargs)]


@pytest.fixture
def agent(tmp_path):
    agent = Agent(tmp_path / "m.db")
    # a 708-token manual injected twice, never cited; an 18-token snippet three times, never cited
    agent.search(day(5, 10), [pb("z-manual", tokens=708), pb("a-snippet", tokens=18)], session="s1")
    agent.search(day(5, 11), [pb("z-manual", tokens=708), pb("a-snippet", tokens=18)], session="s2")
    agent.search(day(5, 12), [pb("a-snippet", tokens=18)], session="s3")
    # two-injection entities of the same score band (32): the bigger waste goes first
    agent.search(day(5, 13), [pb("b-short", tokens=40), pb("c-long", tokens=400)], session="s4")
    agent.search(day(5, 14), [pb("b-short", tokens=40), pb("c-long", tokens=400)], session="s5",
                 cite=[("pb", "c-long")])
    # stale: written in January, never injected
    agent.write(day(1, 1), "pb", "old", created_at="2025-01-01T00:00:00Z")
    return agent


def test_708_token_document_injected_twice_never_cited_is_flagged(agent):
    store = agent.store()
    assert queue(store) == [
        ("old", ["stale"], 50 + 151 // 7, 0, "archive or delete: never injected", False),
        ("a-snippet", ["high_cost_low_cite"], 33, 54, "rewrite or shorten: 54 tokens wasted", False),
        ("z-manual", ["high_cost_low_cite"], 32, 1416, "rewrite or shorten: 1,416 tokens wasted", False),
    ]
    # the old rule (min_injections only) missed it: with the waste bar out of reach, it is gone
    assert "z-manual" not in [c.entity_id for c in store.memory_review(now=NOW, min_wasted_tokens=10**9)]
    assert "z-manual" in [c.entity_id for c in store.memory_review(now=NOW, min_wasted_tokens=1416)]
    assert "z-manual" not in [c.entity_id for c in store.memory_review(now=NOW, min_wasted_tokens=1417)]
    # wasted tokens never fire it alone when the entity is cited often enough
    assert "c-long" not in [c.entity_id for c in store.memory_review(now=NOW, min_wasted_tokens=1)]
    with pytest.raises(ValueError, match="min_wasted_tokens must be a non-negative number"):
        store.memory_review(now=NOW, min_wasted_tokens=-1)


def test_order_is_score_then_wasted_tokens_then_key(agent):
    store = agent.store()
    # min_injections=2: b-short (40 x 2, never cited) and c-long (400 x 2, cited once: 0.5 < 0.6)
    got = queue(store, min_injections=2, max_cite_rate=0.6)
    assert [(eid, score, wasted) for eid, _, score, wasted, _, _ in got] == [
        ("old", 71, 0),
        ("a-snippet", 33, 54),
        ("z-manual", 32, 1416),   # same score band: the bigger waste first,
        ("c-long", 32, 400),      # whatever the ids say
        ("b-short", 32, 80),
    ]


def test_dismiss_hides_until_a_new_signal_or_until_passes(agent):
    store = agent.store()
    decision = store.dismiss("pb", "z-manual", note="rewritten in the wiki", now=datetime(2025, 5, 20))
    assert decision.to_dict() == {
        "entity_type": "pb", "entity_id": "z-manual", "signals": None, "until": None,
        "note": "rewritten in the wiki", "decided_at": "2025-05-20T00:00:00Z",
    }
    assert [c[0] for c in queue(store)] == ["old", "a-snippet"]
    assert queue(store, include_dismissed=True)[2] == (
        "z-manual", ["high_cost_low_cite"], 32, 1416, "rewrite or shorten: 1,416 tokens wasted", True)
    # only one signal dismissed: back when another one fires (stale, once the window moved on)
    store.dismiss("pb", "a-snippet", signals=["high_cost_low_cite"], now=datetime(2025, 5, 20))
    assert [c[0] for c in queue(store)] == ["old"]
    later = datetime(2025, 9, 1, tzinfo=UTC)
    assert [(c[0], c[1], c[4]) for c in queue(store, now=later) if c[0] == "a-snippet"] == [
        ("a-snippet", ["stale"], "archive or delete: not injected since 2025-05-12")]
    # until: hidden before, back from that instant on
    store.dismiss("pb", "old", until=date(2025, 6, 15), now=datetime(2025, 5, 20))
    assert "old" not in [c[0] for c in queue(store)]
    assert "old" not in [c[0] for c in queue(store, now=datetime(2025, 6, 14, 23, 59))]
    assert "old" in [c[0] for c in queue(store, now=datetime(2025, 6, 15))]
    # a new dismissal replaces the previous one; undismiss takes it back
    store.dismiss("pb", "old", until="2025-07-01T12:00:00+02:00", now=datetime(2025, 5, 21))
    assert [d.to_dict()["until"] for d in store.dismissals() if d.entity_id == "old"] == ["2025-07-01T10:00:00Z"]
    assert store.undismiss("pb", "old") is True
    assert store.undismiss("pb", "old") is False
    assert "old" in [c[0] for c in queue(store)]
    assert [d.entity_id for d in store.dismissals()] == ["a-snippet", "z-manual"]


def test_bad_dismissals_are_value_errors_and_change_nothing(agent):
    store = agent.store()
    for kwargs, message in (
        ({"entity_id": "nope"}, "no entity pb nope"),
        ({"signals": ["stael"]}, "unknown signal 'stael'"),
        ({"signals": []}, "at least one signal"),
        ({"until": "next week"}, "until must be a date"),
        ({"until": "2999-01-01"}, "until must be between 1970 and 2262"),
    ):
        args = {"entity_type": "pb", "entity_id": "z-manual", **kwargs}
        with pytest.raises(ValueError, match=message):
            store.dismiss(**args)
    assert store.dismissals() == []


def test_decisions_survive_retention_and_purge(agent):
    store = agent.store()
    store.dismiss("pb", "z-manual", signals=["high_cost_low_cite", "duplicate"], note="n", now=datetime(2025, 5, 20))
    before = [d.to_dict() for d in store.dismissals()]
    store.apply_retention(max_age_days=1, now=NOW)
    store.purge_user("u1")
    assert [d.to_dict() for d in store.dismissals()] == before
    assert before[0]["signals"] == ["duplicate", "high_cost_low_cite"]
    conn = sqlite3.connect(agent.path)
    assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (0,)
    assert conn.execute("SELECT entity_type, entity_id, signals, note FROM review_decisions").fetchall() == [
        ("pb", "z-manual", "duplicate,high_cost_low_cite", "n")]


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

DAYS = "100000"  # every event is in the window, whatever today is


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_dismiss_review_undismiss(agent):
    agent.store()
    db = agent.path
    result = run("review", "--db", db, "--days", DAYS, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["entity_id"], r["action"], r["dismissed"]) for r in rows] == [
        ("a-snippet", "rewrite or shorten: 54 tokens wasted", False),
        ("z-manual", "rewrite or shorten: 1,416 tokens wasted", False),
    ]
    assert list(rows[0]) == [
        "entity_type", "entity_id", "title", "signals", "score", "injection_count", "citation_count",
        "citation_rate", "wasted_tokens", "last_injected_at", "last_modified_at", "superseded_by",
        "duplicate_of", "action", "dismissed"]

    result = run("dismiss", "pb", "z-manual", "--db", db, "--signal", "high_cost_low_cite",
                 "--until", "2100-01-01", "--note", "shortened")
    assert (result.exit_code, result.stdout) == (
        0, "dismissed pb z-manual (high_cost_low_cite) until 2100-01-01T00:00:00Z; note: shortened\n")
    table = run("review", "--db", db, "--days", DAYS).stdout
    assert "a-snippet" in table and "z-manual" not in table
    assert "rewrite or shorten: 54 tokens wasted" in table
    shown = run("review", "--db", db, "--days", DAYS, "--include-dismissed").stdout
    assert "z-manual" in shown and "(dismissed)" in shown
    rows = json.loads(run("review", "--db", db, "--days", DAYS, "--include-dismissed", "--json").stdout)
    assert [(r["entity_id"], r["dismissed"]) for r in rows] == [("a-snippet", False), ("z-manual", True)]

    assert run("dismiss", "pb", "a-snippet", "--db", db).stdout == "dismissed pb a-snippet (all signals) for good\n"
    assert run("review", "--db", db, "--days", DAYS).stdout == (
        f"No review candidates in the last {DAYS} days (dismissed ones hidden; --include-dismissed shows them).\n")
    assert run("undismiss", "pb", "a-snippet", "--db", db).stdout == "undismissed pb a-snippet\n"
    assert run("undismiss", "pb", "a-snippet", "--db", db).stdout == "pb a-snippet was not dismissed: nothing to undo\n"
    result = run("dismiss", "pb", "z-manual", "--db", db, "--json")
    assert result.exit_code == 0
    assert {k: v for k, v in json.loads(result.stdout).items() if k != "decided_at"} == {
        "entity_type": "pb", "entity_id": "z-manual", "signals": None, "until": None, "note": None}


def test_cli_bad_input_exits_2_with_one_line_and_changes_nothing(agent, tmp_path):
    agent.store()
    db = agent.path
    before = db.read_bytes()
    for args, message in (
        (("dismiss", "pb", "nope", "--db", db), f"memobs: error: no entity pb nope in {db}"),
        (("dismiss", "pb", "z-manual", "--db", db, "--signal", "stael"),
         "memobs: error: unknown signal 'stael'; known signals: supersedeable, stale, high_cost_low_cite, duplicate"),
        (("dismiss", "pb", "z-manual", "--db", db, "--until", "tomorrow"),
         "memobs: error: until must be a date, a datetime or an ISO 8601 date, got 'tomorrow'"),
        (("review", "--db", db, "--min-wasted-tokens", "lots"), "memobs: error: --min-wasted-tokens: not a number: 'lots'"),
    ):
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [message]
        assert "Traceback" not in result.output
    assert db.read_bytes() == before
    missing = tmp_path / "missing.db"
    result = run("dismiss", "pb", "x", "--db", missing)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert not missing.exists()
