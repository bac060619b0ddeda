"""The CLI for people: tables fit a 100-column terminal without cutting the
ids a person acts on, an empty result is a sentence, ``review --type`` and
numeric options out of range.

The file is written by the real exporter (``Agent`` from
``helpers``); ids are realistic and long: a mem0 UUID, a
document chunk id with a hash, a LangGraph namespace key. The terminal
width is set with ``COLUMNS`` (what rich reads), as a 100-column terminal
would give it.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from memobs_otel.cli import main
from helpers import Agent, day

DAYS = "100000"  # every event of the scenario is in the window, whatever today is
UUID = "9b2f4c1e-7d3a-4f5b-8c6d-0e1f2a3b4c5d"
UUID_NEWER = "0c7e1a2b-3d4e-4f5a-9b8c-7d6e5f4a3b2c"
DOC = "kb-gift#3f2a9c1d0e4b"
DOC_NEW = "kb-gift#77aa00bb11cc"
KEY = "memories/alice:seat-preferences"
LONG = "tenant-eu-west-1/customers/acme-industries/threads/2025-05/summary-0001"  # 72 characters
TYPES = {UUID: "mem0_memory", DOC: "document", KEY: "langgraph_item", LONG: "conversation_summary"}


@pytest.fixture
def db(tmp_path):
    agent = Agent(tmp_path / "agent.db")
    injected = [{"type": TYPES[i], "id": i, "tokens": 700} for i in (UUID, DOC, KEY, LONG)]
    twin = {"type": "mem0_memory", "id": UUID_NEWER, "tokens": 20, "updated_at": "2025-05-20T00:00:00Z"}
    injected[0]["updated_at"] = "2025-05-01T00:00:00Z"
    injected[0]["content_hash"] = twin["content_hash"] = "same-content-hash-0123456789abcd"
    injected[0]["simhash"] = twin["simhash"] = "00ff00ff00ff00ff"
    for d in (10, 11, 12, 13):
        agent.search(day(5, d), injected + [twin], user="alice",
                     cite=[("mem0_memory", UUID), ("mem0_memory", UUID_NEWER)])
    agent.write(day(5, 13), "document", DOC, op="update", superseded_by=DOC_NEW, user="alice")
    agent.store()
    return agent.path


def run(*args, columns: int | None = 100):
    env = {"COLUMNS": str(columns)} if columns else {}
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def column_text(output: str, header: str, next_header: str) -> str:
    """The text of one table column, its lines joined: where an id folded
    onto the next line, it reads whole again."""
    lines = output.splitlines()
    head = next(line for line in lines if header in line and next_header in line)
    start = head.index(header)
    end = head.index(next_header)
    return "".join(line[start:end].strip() for line in lines[lines.index(head) + 1:])


def column_lines(output: str, header: str) -> list[str]:
    """The non-empty lines of the last column, headed ``header``."""
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if header in line)
    start = lines[head].index(header)
    return [line[start:].strip() for line in lines[head + 2:] if line[start:].strip()]


def assert_fits(output: str, width: int = 100) -> None:
    too_long = [line for line in output.splitlines() if len(line) > width]
    assert too_long == []
    assert "…" not in output


def test_stats_fits_100_columns_and_shows_every_id(db):
    result = run("stats", "--db", db, "--days", DAYS)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    lines = result.stdout.splitlines()
    # ids up to 36 characters (a UUID) stay on one line, copyable whole
    for entity_id in (UUID, UUID_NEWER, DOC, KEY):
        assert any(line.strip().startswith(entity_id) for line in lines), entity_id
        assert any(line.strip().startswith(TYPES.get(entity_id, "mem0_memory")) for line in lines)
    # a longer id folds onto the next line, every character kept, in order
    assert LONG in column_text(result.stdout, "entity", "surfaced")
    # the numbers of the row are there too
    assert "2025-05-13 12:00" in result.stdout


def test_review_fits_100_columns_and_shows_every_id_and_action(db):
    result = run("review", "--db", db, "--days", DAYS)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    lines = [line.strip() for line in result.stdout.splitlines()]
    # the entity column: each id of 36 characters or less on a line of its own
    for entity_id in (UUID, DOC, KEY):
        assert any(line.startswith(entity_id) for line in lines), entity_id
    assert LONG in column_text(result.stdout, "entity", "cited")
    # the action column: the id to act on whole, on a line of its own
    actions = column_lines(result.stdout, "signals / action")
    assert actions == [
        "supersedeable, high_cost_low_cite", "archive: superseded by", DOC_NEW,
        "high_cost_low_cite", "rewrite or shorten: 2,800 tokens", "wasted",
        "high_cost_low_cite", "rewrite or shorten: 2,800 tokens", "wasted",
        "duplicate", "merge into", UUID_NEWER,
    ]
    scores = [line.split()[0] for line in result.stdout.splitlines()[3:] if line.startswith(" ")]
    assert [s for s in scores if s.isdigit()] == ["100", "34", "34", "29"]
    assert "0% of 4" in result.stdout and "100% of 4" in result.stdout


def test_review_type_filter(db):
    rows = json.loads(run("review", "--db", db, "--days", DAYS, "--json").stdout)
    assert sorted({r["entity_type"] for r in rows}) == [
        "conversation_summary", "document", "langgraph_item", "mem0_memory"]
    only = json.loads(run("review", "--db", db, "--days", DAYS, "--type", "mem0_memory", "--json").stdout)
    assert [(r["entity_id"], r["signals"], r["duplicate_of"], r["action"]) for r in only] == [
        (UUID, ["duplicate"], UUID_NEWER, f"merge into {UUID_NEWER}")]
    table = run("review", "--db", db, "--days", DAYS, "--type", "mem0_memory").stdout
    assert UUID in table and DOC not in table and "type mem0_memory" in table
    stats = json.loads(run("stats", "--db", db, "--days", DAYS, "--type", "document", "--json").stdout)
    assert [s["entity_id"] for s in stats] == [DOC]


def test_empty_results_say_so(db):
    result = run("stats", "--db", db, "--days", DAYS, "--user", "bob")
    assert (result.exit_code, result.stdout) == (0, f"No injections recorded in the last {DAYS} days for user bob.\n")
    result = run("stats", "--db", db, "--days", DAYS, "--type", "fact")
    assert result.stdout == f"No injections recorded in the last {DAYS} days (type fact).\n"
    result = run("review", "--db", db, "--days", DAYS, "--user", "bob", columns=None)
    assert result.stdout == (f"No review candidates in the last {DAYS} days for user bob "
                             "(dismissed ones hidden; --include-dismissed shows them).\n")
    result = run("review", "--db", db, "--days", DAYS, "--type", "fact", "--include-dismissed")
    assert result.stdout == f"No review candidates of type fact in the last {DAYS} days.\n"
    for command in ("stats", "review"):
        assert run(command, "--db", db, "--days", DAYS, "--user", "bob", "--json").stdout == "[]\n"


def test_dismiss_confirmation_fits_and_keeps_ids_whole(db):
    note = "merged by hand into the newer memory after the customer call of 2025-05-20"
    result = run("dismiss", "mem0_memory", UUID, "--db", db, "--signal", "duplicate",
                 "--signal", "high_cost_low_cite", "--until", "2100-01-01", "--note", note)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    assert result.stdout == (
        f"dismissed mem0_memory {UUID} (duplicate, high_cost_low_cite) until\n"
        f"  2100-01-01T00:00:00Z; note: merged by hand into the newer memory after the customer call of\n"
        "  2025-05-20\n")
    result = run("undismiss", "conversation_summary", LONG, "--db", db)
    assert result.stdout == f"conversation_summary {LONG} was not\n  dismissed: nothing to undo\n"


@pytest.mark.parametrize("args, message", [
    (["review", "--max-cite-rate", "1.5"], "--max-cite-rate must be between 0 and 1, got '1.5'"),
    (["review", "--max-cite-rate", "-0.1"], "--max-cite-rate must be between 0 and 1, got '-0.1'"),
    (["review", "--max-cite-rate", "nan"], "--max-cite-rate must be a finite number, got 'nan'"),
    (["review", "--min-injections", "-1"], "--min-injections must be at least 0, got '-1'"),
    (["review", "--min-wasted-tokens", "-5"], "--min-wasted-tokens must be at least 0, got '-5'"),
    (["review", "--limit", "-1"], "--limit must be at least 0, got '-1'"),
    (["stats", "--limit", "ten"], "--limit: not a number: 'ten'"),
    (["stats", "--days", "0"], "--days must be a number greater than 0, got '0'"),
    (["review", "--days", "-2"], "--days must be a number greater than 0, got '-2'"),
    (["stats", "--days", "inf"], "--days must be a number greater than 0, got 'inf'"),
])
def test_numbers_out_of_range_are_one_line_and_exit_2(db, args, message):
    before = db.read_bytes()
    result = run(*args, "--db", db)
    assert result.exit_code == 2
    assert result.stderr == f"memobs: error: {message}\n"
    assert result.stdout == ""
    assert db.read_bytes() == before


@pytest.mark.parametrize("value, message", [
    ("0", "--ttl-days must be at least 1, got '0'"),
    ("week", "--ttl-days: not a number: 'week'"),
])
def test_clickhouse_schema_ttl_days_is_one_line(value, message):
    result = run("clickhouse-schema", "--ttl-days", value)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"memobs: error: {message}\n")


def test_short_types_and_ids_keep_the_entity_header_whole(tmp_path):
    """Found trying memobs as a new user: with type "note" and id "n0" the column was 4 wide and
    its header printed as "enti" / "ty"."""
    agent = Agent(tmp_path / "short.db")
    for d in (10, 11, 12):
        agent.search(day(5, d), [{"type": "note", "id": "n0", "tokens": 1500}], user="alice")
    agent.store()
    for command in ("stats", "review"):
        result = run(command, "--db", agent.path, "--days", DAYS)
        assert result.exit_code == 0, result.output
        assert any(line.split()[:2] in (["entity", "surfaced"], ["score", "entity"])
                   for line in result.output.splitlines() if line.strip()), result.output
