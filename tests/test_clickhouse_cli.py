"""The CLI over ClickHouse URLs: stats, review, dismiss, clickhouse-schema, bad URLs.

Real chdb folders written as the Collector's exporter writes them, the real
CLI through click's CliRunner; JSON output compared with the SQLite file's.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("clickhouse_connect")
pytest.importorskip("chdb")

import clickhouse_connect  # noqa: E402
from clickhouse_exporter_rows import create_traces_table, export  # noqa: E402
from clickhouse_scenario import build_spans  # noqa: E402

import memobs_otel as memobs  # noqa: E402
from memobs_otel.cli import main  # noqa: E402
from memobs_otel.exporters import SQLiteSpanExporter  # noqa: E402


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    spans = build_spans(seed=5, searches=60)
    root = tmp_path_factory.mktemp("cli")
    exporter = SQLiteSpanExporter(root / "memobs.db")
    for i in range(0, len(spans), 64):  # as a BatchSpanProcessor sends them (see test_clickhouse_parity)
        exporter.export(spans[i:i + 64])
    exporter.shutdown()
    client = clickhouse_connect.get_client(interface="chdb", path=str(root / "ch"))
    create_traces_table(client)
    export(client, spans)
    client.command("CREATE DATABASE IF NOT EXISTS empty")
    client.close()
    return str(root / "memobs.db"), f"chdb://{root / 'ch'}?table=otel.otel_traces", root


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_stats_and_review_json_match_the_sqlite_file(stores):
    sqlite_path, url, _ = stores
    for command in (["stats", "--days", "1000"], ["stats", "--days", "1000", "--user", "bob"],
                    ["review", "--days", "1000"], ["review", "--days", "30", "--signal", "stale"]):
        code_a, out_a, _ = run(*command, "--json", "--db", sqlite_path)
        code_b, out_b, err_b = run(*command, "--json", "--db", url)
        assert (code_a, code_b) == (0, 0), err_b
        assert json.loads(out_b) == json.loads(out_a)
        assert json.loads(out_b)
    code, out, err = run("review", "--days", "1000", "--db", url)
    assert code == 0 and "Memory review queue" in out and err == ""


def test_dismiss_and_undismiss_through_the_cli(stores):
    _, url, _ = stores
    queue = json.loads(run("review", "--days", "1000", "--json", "--db", url)[1])
    first = queue[0]
    code, out, err = run("dismiss", first["entity_type"], first["entity_id"], "--note", "checked", "--db", url)
    assert code == 0, err
    assert out.startswith(f"dismissed {first['entity_type']} {first['entity_id']} (all signals) for good")
    after = json.loads(run("review", "--days", "1000", "--json", "--db", url)[1])
    assert [c["entity_id"] for c in after] == [c["entity_id"] for c in queue[1:]]
    code, out, _ = run("undismiss", first["entity_type"], first["entity_id"], "--db", url)
    assert code == 0 and out.startswith("undismissed")
    assert json.loads(run("review", "--days", "1000", "--json", "--db", url)[1]) == queue
    code, _, err = run("dismiss", "user_memory", "nope", "--db", url)
    assert code == 2 and err.startswith("memobs: error: no entity user_memory nope in chdb://")


def test_a_read_only_user_is_told_what_to_grant(stores):
    _, url, _ = stores
    with memobs.open_store(url) as store:
        store._client.command("SET readonly = 2")  # the session's user may only read now
        assert store.injection_stats(days_back=1000)  # reading still works
        with pytest.raises(memobs.store.StoreError) as caught:
            store.dismiss("user_memory", "us-0")
        assert "GRANT CREATE TABLE, SELECT, INSERT ON otel.memobs_review_decisions" in str(caught.value)
    # (the setting ends with this client's session: the next open_store is not read-only)


@pytest.mark.parametrize("url, message", [
    ("chdb://", "no folder given"),
    ("chdb://host/dir", "three slashes"),
    ("chdb:///no/such/folder?table=otel.otel_traces", "no such folder /no/such/folder"),
    ("chdb:///tmp?table=a.b.c", "is not a plain [database.]table name"),
    ("chdb:///tmp?tabel=x", "unknown option 'tabel'"),
    ("clickhouse://", "no host"),
    ("clickhouse://u:s3cret@127.0.0.1:1/db", "cannot connect"),
    ("clickhouse://u:s3cret@localhost:99999/db", "not a valid URL"),
])
def test_bad_urls_are_one_line_and_exit_2(url, message):
    for command in ("stats", "review"):
        code, out, err = run(command, "--db", url)
        assert code == 2 and out == ""
        assert err.startswith("memobs: error: ") and message in err and err.count("\n") == 1, err
        assert "s3cret" not in err  # a password never reaches a message


def test_a_folder_without_the_table_says_so(stores):
    _, _, root = stores
    code, _, err = run("stats", "--db", f"chdb://{root / 'ch'}?table=empty.otel_traces")
    assert code == 2 and "no table empty.otel_traces" in err and err.count("\n") == 1


def test_purge_on_clickhouse_explains_itself(stores):
    _, url, _ = stores
    code, _, err = run("purge", "--user", "bob", "--yes", "--db", url)
    assert code == 2 and "ALTER TABLE otel.otel_traces DELETE" in err


def test_clickhouse_schema_runs_and_the_store_uses_it(tmp_path):
    code, out, _ = run("clickhouse-schema", "--table", "otel.otel_traces")
    assert code == 0 and "ON CLUSTER" not in out
    statements = [s.strip() for s in out.split(";\n") if s.strip()]
    executable = ["\n".join(line for line in s.splitlines() if not line.startswith("--")) for s in statements]
    executable = [s.rstrip(";") for s in executable if s.strip()]
    assert len(executable) == 3  # narrow table, view, decisions table
    spans = build_spans(seed=9, searches=30)
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path))
    create_traces_table(client)
    for statement in executable:
        client.command(statement)
    export(client, spans)
    narrow_rows = client.query("SELECT count() FROM otel.otel_traces_memobs_events").result_rows[0][0]
    client.close()
    assert narrow_rows == sum(1 for s in spans for e in s.events)
    with memobs.open_store(f"chdb://{tmp_path}?table=otel.otel_traces") as store:
        assert store.uses_narrow_table
        assert store.memory_review(days_back=30)


def test_clickhouse_schema_on_a_cluster():
    code, out, _ = run("clickhouse-schema", "--table", "otel.traces_local", "--cluster", "main",
                       "--distributed", "otel_traces")
    assert code == 0
    assert out.count("ON CLUSTER `main`") == 4  # narrow table, view, its Distributed table, decisions
    assert "ENGINE = Distributed(`main`, `otel`, `traces_local_memobs_events`" in out
    code, _, err = run("clickhouse-schema", "--distributed", "x")
    assert code == 2 and err == "memobs: error: --distributed needs --cluster\n"
    code, _, err = run("clickhouse-schema", "--table", "bad name")
    assert code == 2 and err.count("\n") == 1


def test_report_on_a_clickhouse_url(stores, tmp_path):
    _, url, _ = stores
    out = tmp_path / "fleet.html"
    code, stdout, err = run("report", "--db", url, "--days", "1000", "--out", str(out))
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (") and "in the review queue" in stdout
    page = out.read_text()
    assert "chdb://" in page and "<html" in page.lower()
    code, _, err = run("report", "--db", "chdb:///no/such/folder", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "no such folder" in err and not (tmp_path / "x.html").exists()
