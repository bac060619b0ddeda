"""memobs stats / review / purge: --json equals the API, bad input exits 2 untouched."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

import memobs_otel as memobs
from memobs_otel.cli import main
from helpers import Agent, day, pb

DAYS = "100000"  # every event of the scenario is in the window, whatever today is


@pytest.fixture
def db(tmp_path):
    agent = Agent(tmp_path / "m.db")
    for d in (10, 11, 12):
        agent.search(day(5, d), [pb("a", tokens=100), pb("b", tokens=200)], user="u1",
                     cite=[("pb", "b")] if d == 10 else [])
    agent.write(day(5, 13), "pb", "a", op="update", superseded_by="b", user="u2")
    agent.store()
    return agent.path


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_stats_json_equals_api(db):
    result = run("stats", "--db", db, "--days", DAYS, "--json")
    assert result.exit_code == 0, result.output
    api = [s.to_dict() for s in memobs.open_store(db).injection_stats(days_back=float(DAYS))]
    assert json.loads(result.stdout) == api
    assert [row["entity_id"] for row in api] == ["b", "a"]
    one_user = json.loads(run("stats", "--db", db, "--days", DAYS, "--user", "u2", "--json").stdout)
    assert one_user == []


def test_review_json_equals_api(db):
    result = run("review", "--db", db, "--days", DAYS, "--json", "--signal", "supersedeable",
                 "--signal", "high_cost_low_cite")
    assert result.exit_code == 0, result.output
    api = [c.to_dict() for c in memobs.open_store(db).memory_review(
        days_back=float(DAYS), signal_filter=["supersedeable", "high_cost_low_cite"])]
    assert json.loads(result.stdout) == api
    assert [(c["entity_id"], c["signals"]) for c in api] == [
        ("a", ["supersedeable", "high_cost_low_cite"]), ("b", ["high_cost_low_cite"])]


def test_tables_for_people(db):
    result = run("review", "--db", db, "--days", DAYS)
    assert result.exit_code == 0
    assert "supersedeable" in result.stdout and "superseded by b" in result.stdout
    result = run("stats", "--db", db, "--days", DAYS)
    assert result.exit_code == 0 and "surfaced" in result.stdout


def test_purge_cli(db):
    result = run("purge", "--db", db, "--user", "u1", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"user_id": "u1", "deleted": {
        "spans": 3, "events": 1, "injections": 6, "citations": 1, "writes": 0}}
    assert memobs.open_store(db).injection_stats(days_back=float(DAYS)) == []


def _not_sqlite(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    return path


def _other_sqlite(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("command", [
    ["stats"], ["review"], ["purge", "--user", "u1", "--yes"]])
@pytest.mark.parametrize("make", [_not_sqlite, _other_sqlite])
def test_not_a_memobs_database(tmp_path, command, make):
    path = make(tmp_path)
    before = path.read_bytes()
    result = run(*command, "--db", path)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a memobs database" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", [["stats"], ["review"], ["purge", "--user", "u1", "--yes"]])
def test_missing_file_is_not_created(tmp_path, command):
    path = tmp_path / "missing.db"
    result = run(*command, "--db", path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"memobs: error: {path}: no such file"
    assert not path.exists()


@pytest.mark.parametrize("args, message", [
    (["stats", "--days", "abc"], "--days: not a number: 'abc'"),
    (["review", "--days", "0"], "--days must be a number greater than 0"),
    (["review", "--days", "-3"], "--days must be a number greater than 0"),
    (["review", "--min-injections", "x"], "--min-injections: not a number"),
    (["review", "--max-cite-rate", "nope"], "--max-cite-rate: not a number"),
    (["review", "--signal", "stael"], "unknown signal 'stael'"),
])
def test_bad_input_exits_2_with_one_line(db, args, message):
    before = db.read_bytes()
    result = run(*args, "--db", db)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert db.read_bytes() == before


def test_db_from_environment(db, monkeypatch):
    monkeypatch.setenv("MEMOBS_DB", str(db))
    result = CliRunner().invoke(main, ["stats", "--days", DAYS, "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 2
