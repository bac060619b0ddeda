"""After a purge no byte of the user is left in the file or its WAL (SPEC §6).

Real SDK spans through the real ``SQLiteSpanExporter`` into a real file;
the checks read the raw bytes of ``.db`` and ``-wal``, not rows: a deleted
row SQLite merely unlinked is still there for anyone with ``strings``.
Every string of user A carries the marker ``7Q2X``; user B's ``B0B9``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import memobs_otel as memobs
from memobs_otel.cli import main
from memobs_otel.store import PurgePending
from memobs_otel.store.connection import connect_for_write
from memobs_otel.store.deletion import delete_where
from memobs_otel.store.retention import apply_retention
from helpers import NOW, Agent, day, ns, pb

A, B = "alice-7Q2X", "bob-B0B9"


def record(path, month, n=60):
    """``n`` searches per user in ``month``, every string naming its user."""
    agent = Agent(path)
    for i in range(n):
        when = day(month, 1 + i % 28)
        agent.search(when, [pb(f"note-7Q2X-{month}-{i}", title=f"diary 7Q2X {month}/{i}")],
                     user=A, session=f"sess-7Q2X-{month}-{i}")
        agent.search(when, [pb(f"note-B0B9-{month}-{i}", title=f"log B0B9 {month}/{i}")],
                     user=B, session=f"sess-B0B9-{month}-{i}")
        agent.write(when, "pb", f"written-7Q2X-{month}-{i}", user=A, title=f"kept 7Q2X {i}")
    agent.provider.shutdown()


def raw(path, marker: bytes) -> int:
    """How often ``marker`` occurs in the bytes of the file and its WAL."""
    found = 0
    for name in (path, f"{path}-wal"):
        if os.path.exists(name):
            with open(name, "rb") as handle:
                found += handle.read().count(marker)
    return found


def history(tmp_path, before="retention"):
    """February's data, then a deletion that freed pages, then May's data.

    ``before="retention"``: ``apply_retention`` drops February (what the
    issue reported). ``"unzeroed"``: the same rows deleted with
    ``secure_delete`` off, as SQLite builds without ``SECURE_DELETE``
    (python.org, macOS; Debian's turn it on), an older memobs or a user's
    ``sqlite3`` shell leave them: free pages full of February's strings.
    """
    path = str(tmp_path / "m.db")
    record(path, 2, n=120)  # more than May's: not every freed page is reused
    if before == "retention":
        with memobs.open_store(path) as store:
            deleted = store.apply_retention(max_age_days=80, now=NOW)
        assert deleted["spans"] == 360
    else:
        conn = connect_for_write(path)
        conn.execute("PRAGMA secure_delete = OFF")
        conn.execute("BEGIN IMMEDIATE")
        delete_where(conn, "SELECT pk FROM spans WHERE end_ns < ?", (ns(day(3, 1)),))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        with memobs.open_store(path) as store:
            assert store.injection_stats(now=NOW, days_back=365) == []
        assert raw(path, b"7Q2X 2/") > 0  # unlinked, not gone
    record(path, 5, n=40)
    return path


def b_view(path):
    with memobs.open_store(path) as store:
        return [s.to_dict() for s in store.injection_stats(user_id=B, now=NOW, days_back=60)]


@pytest.mark.parametrize("before", ["retention", "unzeroed"])
def test_purge_leaves_no_byte_after_retention_and_more_data(tmp_path, before):
    path = history(tmp_path, before)
    assert raw(path, b"7Q2X") > 0
    before = b_view(path)
    with memobs.open_store(path) as store:
        counts = store.purge_user(A)
        assert counts == {"spans": 80, "events": 40, "injections": 40, "citations": 0,
                          "writes": 40}
    # old code: February's free pages (unzeroed) or stale bytes in index pages
    assert raw(path, b"7Q2X") == 0
    assert raw(path, b"B0B9") > 0
    with memobs.open_store(path) as store:
        assert store.purge_pending is False
    assert len(before) == 40 and b_view(path) == before


def test_retention_zeroes_what_it_deletes(tmp_path):
    """Whatever SQLite's build default: Debian's builds turn ``secure_delete``
    on, others (python.org, macOS) leave it off; the connection here is set
    off, as there, and retention must zero what it deletes all the same."""
    path = str(tmp_path / "m.db")
    record(path, 2)
    record(path, 5, n=5)
    conn = connect_for_write(path)
    try:
        conn.execute("PRAGMA secure_delete = OFF")
        assert apply_retention(conn, max_age_days=80, now=NOW)["spans"] == 180
        assert conn.execute("PRAGMA secure_delete").fetchone() == (0,)  # set back
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    # February's rows are gone from the bytes too, May's are still there
    assert raw(path, b"7Q2X 2/") == 0 and raw(path, b"B0B9 2/") == 0
    assert raw(path, b"7Q2X 5/") > 0


READER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT COUNT(*) FROM spans").fetchone()  # holds this WAL snapshot
    print("reading", flush=True)
    sys.stdin.read()
    conn.execute("COMMIT")
""")


@pytest.fixture
def reader():
    """Start a separate process holding a read transaction on a file's WAL."""
    procs = []

    def start(path):
        proc = subprocess.Popen([sys.executable, "-c", READER, path], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline() == "reading\n"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=30)


def stop(proc):
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_cli_purge_with_a_reader_says_pending_then_finishes(tmp_path, reader):
    path = history(tmp_path)
    before = b_view(path)
    held = reader(path)
    result = CliRunner().invoke(main, ["purge", "--db", path, "--user", A, "--yes"])
    assert result.exit_code == 3  # old code: 0, "Purged user ..." with every string still there
    assert result.stdout == ""
    assert result.stderr == (
        f"memobs: {path}: purge pending: 200 rows deleted, but their bytes stay in the file until "
        "no other connection holds a read transaction on its WAL; run the purge again then "
        "(the next writer to open the file also finishes it)\n")
    assert raw(path, b"7Q2X") > 0  # which is why it must not say done
    assert b_view(path) == before  # the rows themselves are gone for every query
    with memobs.open_store(path) as store:
        assert store.purge_pending is True
        assert store.injection_stats(user_id=A, now=NOW, days_back=60) == []
    stop(held)
    again = CliRunner().invoke(main, ["purge", "--db", path, "--user", A, "--yes", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"user_id": A, "deleted": {
        "spans": 0, "events": 0, "injections": 0, "citations": 0, "writes": 0}}
    assert raw(path, b"7Q2X") == 0
    assert b_view(path) == before
    with memobs.open_store(path) as store:
        assert store.purge_pending is False


def test_api_purge_pending_is_finished_by_the_next_writer(tmp_path, reader):
    path = history(tmp_path)
    held = reader(path)
    with memobs.open_store(path) as store:
        with pytest.raises(PurgePending) as caught:
            store.purge_user(A)
        assert caught.value.counts == {"spans": 80, "events": 40, "injections": 40,
                                       "citations": 0, "writes": 40}
        # still held: finishing says pending again, and means it
        with pytest.raises(PurgePending):
            store.finish_purge()
        assert raw(path, b"7Q2X") > 0
    stop(held)
    # an exporter (or any writer) opening the file completes the purge
    conn = connect_for_write(path)
    try:
        assert raw(path, b"7Q2X") == 0
    finally:
        conn.close()
    with memobs.open_store(path) as store:
        assert store.purge_pending is False
        store.finish_purge()  # nothing left to do: no error
    assert raw(path, b"B0B9") > 0


def test_cli_purge_pending_json(tmp_path, reader):
    path = history(tmp_path)
    held = reader(path)
    result = CliRunner().invoke(main, ["purge", "--db", path, "--user", A, "--json"])
    stop(held)
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "user_id": A,
        "deleted": {"spans": 80, "events": 40, "injections": 40, "citations": 0, "writes": 40},
        "pending": "no other connection holds a read transaction on its WAL",
    }
    assert result.stderr.startswith(f"memobs: {path}: purge pending: 200 rows deleted")
