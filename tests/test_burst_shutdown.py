"""handle.shutdown() is bounded (issue 17, item 9: shutdown).

It blocked up to 58 s on a file whose write lock another process held, and
14-24 s on an OTLP endpoint that accepts connections and never answers.
Now it returns within ``MEMOBS_SHUTDOWN_TIMEOUT`` (here 1 s) and counts the
spans it could not export. The bound asserted is generous (3x the timeout):
these tests check that the call returns, they do not time it.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import memobs_otel as memobs

TIMEOUT_S = 1.0


@pytest.fixture(autouse=True)
def _short_shutdown(monkeypatch):
    monkeypatch.setenv("MEMOBS_SHUTDOWN_TIMEOUT", str(TIMEOUT_S))


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(i):
    return [{"id": f"f{i}", "content": "one fact"}]


def timed_shutdown(handle) -> float:
    start = time.monotonic()
    handle.shutdown()
    return time.monotonic() - start


def test_shutdown_with_the_file_locked_by_another_process_is_bounded(tmp_path):
    path = tmp_path / "locked.db"
    memobs.configure(db_path=str(path)).shutdown()  # created and migrated
    handle = memobs.configure(db_path=str(path))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a long purge or another writer does
    try:
        for i in range(10):
            search(i)
        assert timed_shutdown(handle) < 3 * TIMEOUT_S
        assert handle.losses() == {"spans-unwritten-at-shutdown": 10}
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def silent_endpoint():
    """A TCP server on loopback that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


def test_shutdown_with_an_otlp_endpoint_that_never_answers_is_bounded(silent_endpoint):
    handle = memobs.configure(db_path=None, otlp_endpoint=silent_endpoint)
    for i in range(10):
        search(i)
    assert timed_shutdown(handle) < 3 * TIMEOUT_S
    assert handle.losses() == {"otlp-spans-unwritten-at-shutdown": 10}


def test_both_exporters_share_one_budget(tmp_path, silent_endpoint):
    """The SQLite file is fine, the endpoint is silent: every span is in the
    file and the OTLP ones are counted there, all within the one budget."""
    path = tmp_path / "m.db"
    handle = memobs.configure(db_path=str(path), otlp_endpoint=silent_endpoint)
    for i in range(10):
        search(i)
    assert timed_shutdown(handle) < 3 * TIMEOUT_S
    assert handle.losses() == {"otlp-spans-unwritten-at-shutdown": 10}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM injections").fetchone() == (10,)
    conn.close()


_EXIT_WITHOUT_SHUTDOWN = """
import sys
import memobs_otel as memobs

memobs.configure(db_path=sys.argv[1])

@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(i):
    return [{"id": f"f{i}", "content": "one fact"}]

for i in range(10):
    search(i)
# no handle.shutdown(): the provider's exit handler runs it
"""


def test_exit_without_shutdown_is_bounded_too(tmp_path):
    """A script that never calls shutdown(): the SDK's exit handler shuts the
    processors down, within the same budget, while another process holds the lock."""
    path = tmp_path / "locked.db"
    memobs.configure(db_path=str(path)).shutdown()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_SHUTDOWN, str(path)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "MEMOBS_SHUTDOWN_TIMEOUT": str(TIMEOUT_S)})
        elapsed = time.monotonic() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 0, done.stderr
    assert "up to 10 span(s) not written" in done.stderr
    # the interpreter's own start-up and imports are in this figure too
    assert elapsed < 3 * TIMEOUT_S + 10
