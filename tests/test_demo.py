"""memobs demo: the simulated agent goes through the real pipeline and trips every signal."""

from __future__ import annotations

import json

from click.testing import CliRunner

import memobs_otel as memobs
from memobs_otel.cli import main
from memobs_otel.demo import near_duplicate_distance, run_agent


def test_near_duplicate_texts_are_within_distance_3():
    assert near_duplicate_distance() <= 3


def test_demo_records_through_the_pipeline_and_every_signal_fires(tmp_path):
    path = str(tmp_path / "demo.db")
    now = run_agent(path)
    store = memobs.open_store(path)
    review = {c.entity_id: c for c in store.memory_review(now=now, include_dismissed=True)}
    assert review["pb-refund-v1"].signals[0] == "supersedeable"
    assert review["pb-refund-v1"].superseded_by == "pb-refund-v2"
    assert review["pb-returns-2023"].signals == ["stale"]
    assert review["fact-old-office"].signals == ["stale"]
    assert review["pb-escalation-manual"].signals == ["high_cost_low_cite"]
    assert review["pb-escalation-manual"].citation_count == 0
    assert "duplicate" in review["pb-shipping-old"].signals
    assert review["pb-shipping-old"].duplicate_of == "pb-shipping"
    # known only from the store's snapshot (record_inventory): never written, never injected
    assert (review["fact-loyalty-2022"].signals, review["fact-loyalty-2022"].score,
            review["fact-loyalty-2022"].title) == (["stale"], 50 + 60 // 7, "Loyalty points 2022")
    # the demo's one review decision: fact-old-office's stale signal dismissed, with its note
    assert review["fact-old-office"].dismissed and not review["pb-returns-2023"].dismissed
    assert [(d.entity_id, sorted(d.signals), d.note) for d in store.dismissals()] == [
        ("fact-old-office", ["stale"], "kept: customers still ask about the old office")]
    assert [(c.entity_id, c.signals, c.score) for c in store.memory_review(now=now)] == [
        ("pb-refund-v1", ["supersedeable", "high_cost_low_cite"], 100),
        ("fact-loyalty-2022", ["stale"], 58),
        ("pb-returns-2023", ["stale"], 57),
        ("pb-escalation-manual", ["high_cost_low_cite"], 49),
        ("pb-shipping-old", ["high_cost_low_cite", "duplicate"], 45),
    ]
    assert store.connection.execute(
        "SELECT w.op, COUNT(*) FROM writes w JOIN entities e ON e.pk = w.entity_pk"
        " WHERE e.entity_id = 'fact-loyalty-2022' GROUP BY w.op").fetchall() == [("inventory", 1)]
    stats = store.injection_stats(now=now)
    assert stats[0].entity_id == "pb-escalation-manual"
    assert {s.entity_type for s in stats} == {"playbook", "user_profile", "fact"}
    assert sum(s.distinct_session_count > 1 for s in stats) >= 3
    # the context budget: every conversation's prompt recorded (record_prompt), all its memory injected
    budget = store.context_budget(now=now)
    assert (budget.turns, budget.prompt_tokens, budget.memory_tokens, budget.cited_memory_tokens,
            budget.uncited_memory_tokens, budget.turns_over_prompt) == (48, 36_632, 33_303, 2_594, 30_709, 0)
    assert [(t.entity_type, t.turns, t.memory_tokens, t.uncited_memory_tokens) for t in budget.by_entity_type] == [
        ("playbook", 48, 32_577, 30_709), ("user_profile", 48, 642, 0), ("fact", 6, 84, 0)]
    # reproducible: a second run gives the same queue
    again = run_agent(path)
    assert [(c.entity_id, c.signals, c.score) for c in memobs.open_store(path).memory_review(now=again)] == [
        (c.entity_id, c.signals, c.score) for c in store.memory_review(now=now)]


def test_demo_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["db"] == "memobs-demo.db" and (tmp_path / "memobs-demo.db").exists()
    signals = {s for c in out["memory_review"] for s in c["signals"]}
    assert signals == {"supersedeable", "stale", "high_cost_low_cite", "duplicate"}
    assert "fact-loyalty-2022" in {c["entity_id"] for c in out["memory_review"]}
    assert (out["context_budget"]["turns"], out["context_budget"]["memory_tokens"]) == (48, 33_303)
    table = CliRunner().invoke(main, ["demo"])
    assert table.exit_code == 0 and "Memory review queue" in table.stdout
    assert "fact-loyalty-2022" in table.stdout
    assert "Context budget, last 30 days: 48 turns, 36,632 prompt tokens" in table.stdout
    assert "│ all types    │    48 │ 33,303 │ 90.9% │ 2,594 │  30,709 │         83.8% │" in table.stdout


def test_demo_never_overwrites_another_file(tmp_path):
    path = tmp_path / "precious.db"
    path.write_text("not a database")
    result = CliRunner().invoke(main, ["demo", "--db", str(path)])
    assert result.exit_code == 2
    assert "not a memobs database" in result.stderr
    assert path.read_text() == "not a database"
