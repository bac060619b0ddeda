"""Damaged, locked, read-only and full: real files, the real CLI (SPEC §7).

A damaged file (last pages zeroed, a table dropped) gives one line and exit 2
from ``stats``/``review``/``report`` and a failed ``doctor`` (exit 1, its
"a check failed" status) whose integrity check names the damage; a valid file
in a read-only folder, or read-only itself, is read; a file another process
holds an exclusive lock on says "locked"; a full disk is "not writable".
Nothing here changes the file (its bytes are compared before and after).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from memobs_otel.cli import main
from memobs_otel.store.schema import SCHEMA_VERSION
from helpers import build_agent_db

ROWS = "11 spans, 4 events, 4 entities, 9 injections, 3 citations, 1 write"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "agent.db"
    build_agent_db(path)
    return path


def copy(pristine: Path, folder: Path, name: str = "agent.db") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(pristine, folder / name))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def reading_commands(db: Path, out: Path):
    return (["stats", "--db", str(db)], ["review", "--db", str(db)],
            ["report", "--db", str(db), "--out", str(out)])


def doctor_database(db: Path):
    """``memobs doctor``'s exit code and the lines of its database check."""
    code, out, _ = cli("doctor", "--db", str(db))
    lines = out.splitlines()
    end = next(i for i, line in enumerate(lines) if line[6:].startswith("otlp"))
    assert lines[-1] == "1 check failed: database" or code == 0, lines
    return code, lines[1:end]


def zero_last_pages(path: Path) -> None:
    """Zero the second half of the file (as a torn copy or a bad disk would):
    the first page (the schema) survives, so SQLite opens the file."""
    pages = path.stat().st_size // 4096
    with open(path, "r+b") as handle:
        handle.seek((pages - pages // 2) * 4096)
        handle.write(b"\0" * (pages // 2) * 4096)


def zero_table_root(path: Path, table: str = "injections") -> None:
    """Zero the root page of one table: opening works, reading it does not."""
    conn = sqlite3.connect(path)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * 4096)
        handle.write(b"\0" * 4096)


def drop_table(path: Path, table: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"DROP TABLE {table}")
    conn.commit()
    conn.close()


# --- damaged files ---------------------------------------------------------

@pytest.mark.parametrize("damage", ["last half", "a table's root page"])
def test_zeroed_pages_one_line_exit_2_and_doctor_fails(pristine, tmp_path, damage):
    db = copy(pristine, tmp_path)
    (zero_last_pages if damage == "last half" else zero_table_root)(db)
    before = digest(db)
    damaged = (f"memobs: error: {db}: damaged memobs database (database disk image is malformed); "
               f"`memobs doctor --db {db}` checks it\n")
    for args in reading_commands(db, tmp_path / "r.html"):
        # old code: stats/review exit 1 with a traceback (or, damage met at
        # open, exit 2 calling it "not a memobs database")
        assert cli(*args) == (2, "", damaged), args
    code, lines = doctor_database(db)
    assert code == 1  # old code: 0, "all 4 checks passed" (root page case)
    found = ("database disk image is malformed" if damage == "last half"
             else "SQLite's quick_check failed")
    assert lines[0] == f"FAIL  database   {db}: damaged memobs database ({found})"
    # then quick_check's own findings, one per line, up to 5, and the hint
    assert 1 <= len(lines) - 2 <= 5 and lines[1].startswith(" " * 17), lines
    assert lines[-1] == ("                 hint: restore it from a backup, or save what is readable: "
                         "sqlite3 OLD.db .recover | sqlite3 NEW.db")
    assert digest(db) == before
    assert not (tmp_path / "r.html").exists()


def test_dropped_table_one_line_exit_2_and_doctor_fails(pristine, tmp_path):
    db = copy(pristine, tmp_path)
    drop_table(db, "injections")
    before = digest(db)
    damaged = (f"{db}: damaged memobs database (table injections missing); "
               f"`memobs doctor --db {db}` checks it")
    for args in reading_commands(db, tmp_path / "r.html"):
        assert cli(*args) == (2, "", f"memobs: error: {damaged}\n"), args
    code, out, _ = cli("doctor", "--db", str(db))
    lines = out.splitlines()
    assert code == 1  # old code: 0, "all 4 checks passed"
    assert lines[1:3] == [
        f"FAIL  database   {db}: damaged memobs database (table injections missing)",
        "                 hint: restore it from a backup, or save what is readable: "
        "sqlite3 OLD.db .recover | sqlite3 NEW.db",
    ]
    assert digest(db) == before


# --- read-only ---------------------------------------------------------------

def read_only(path: Path):
    """Make ``path`` (a file or a folder) unwritable for this user: chmod, or
    as root (which ignores modes) the immutable flag. Returns the undo."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
        return lambda: os.chmod(path, mode)
    subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)


@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_folder_or_file_is_read(pristine, tmp_path, what):
    db = copy(pristine, tmp_path / "ro")
    assert sorted(os.listdir(db.parent)) == ["agent.db"]  # no -wal, no -shm
    before = digest(db)
    undo = read_only(db.parent if what == "folder" else db)
    try:
        stats = cli("stats", "--db", str(db), "--json")
        review = cli("review", "--db", str(db), "--json")
        report = cli("report", "--db", str(db), "--out", str(tmp_path / "r.html"))
        listing = sorted(os.listdir(db.parent))
    finally:
        undo()
    # old code (folder): exit 2, "not a memobs database (unable to open database file)"
    assert stats[0] == 0 and stats[2] == "", stats
    assert '"entity_id": "pb-refund"' in stats[1]
    assert review[0] == 0 and '"entity_id": "pb-refund-old"' in review[1], review
    assert report[0] == 0 and report[1].startswith(f"wrote {tmp_path / 'r.html'} ("), report
    if what == "folder":
        assert listing == ["agent.db"]
    assert digest(db) == before


def test_read_only_folder_with_unsaved_wal_says_why(pristine, tmp_path):
    db = copy(pristine, tmp_path / "ro")
    (db.parent / "agent.db-wal").write_bytes(b"\1" * 4096)  # a writer's leftovers, no -shm
    undo = read_only(db.parent)
    try:
        result = cli("stats", "--db", str(db))
    finally:
        undo()
    assert result == (2, "", (
        f"memobs: error: {db}: cannot open read-only (unable to open database file): its -wal "
        "file holds unsaved changes and the -shm file SQLite needs to read it cannot be created "
        "here\n"))


# --- locked ------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE _memobs_migrations SET applied_at = applied_at")
    print("locked", flush=True)
    sys.stdin.read()
    conn.execute("ROLLBACK")
""")


def test_locked_file_says_locked(pristine, tmp_path):
    db = copy(pristine, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        # the real command line, in its own process
        run = subprocess.run([str(Path(sys.executable).parent / "memobs"), "stats", "--db", str(db)],
                             capture_output=True, text=True)
        code, out, _ = cli("doctor", "--db", str(db))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # old code: "not a memobs database (database is locked)"
    assert (run.returncode, run.stdout, run.stderr) == (2, "", (
        f"memobs: error: {db}: locked by another process (database is locked); "
        "try again when it is done\n"))
    lines = out.splitlines()
    assert code == 1
    assert lines[1:3] == [
        f"FAIL  database   {db}: locked by another process (database is locked); "
        "try again when it is done",
        "                 hint: another process holds the file locked; run doctor again when it is done",
    ]


# --- a full disk -------------------------------------------------------------

def fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 2 MB tmpfs mounted on a folder of ``tmp_path`` (needs root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_doctor_full_disk_is_not_writable(pristine, small_filesystem):
    """A real full filesystem: a 2 MB tmpfs, filled up to the last byte."""
    db = copy(pristine, small_filesystem)
    fill(small_filesystem)
    assert os.statvfs(small_filesystem).f_bavail == 0
    before = digest(db)
    code, out, _ = cli("doctor", "--db", str(db))
    lines = out.splitlines()
    assert code == 1  # old code: 0, "writable"
    assert lines[1] == (f"FAIL  database   {db}: schema version {SCHEMA_VERSION} (current), "
                        f"not writable; {ROWS}")
    assert lines[2].startswith("                 the disk is full (0 bytes free); a test write of "
                               "1 MB (rolled back) failed: SQLITE_")
    assert digest(db) == before
    # with room again, the same file is writable
    os.remove(small_filesystem / "filler")
    code, out, _ = cli("doctor", "--db", str(db))
    assert out.splitlines()[1].startswith(
        f"ok    database   {db}: schema version {SCHEMA_VERSION} (current), writable; ")
    assert digest(db) == before


FSIZE_DOCTOR = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    from memobs_otel.cli import main
    sys.argv = ["memobs", "doctor", "--db", sys.argv[1]]
    main()
""")


def test_doctor_file_that_cannot_grow_is_not_writable(pristine, tmp_path):
    """No root needed: the doctor process may not write past 64 KB in any
    file (RLIMIT_FSIZE), so the WAL cannot take the 1 MB probe — as on a
    full disk, SQLite's write fails inside the rolled-back transaction."""
    db = copy(pristine, tmp_path)
    before = digest(db)
    run = subprocess.run([sys.executable, "-c", FSIZE_DOCTOR, str(db)], capture_output=True,
                         text=True)
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[1] == (f"FAIL  database   {db}: schema version {SCHEMA_VERSION} (current), "
                        f"not writable; {ROWS}")
    assert lines[2].startswith("                 a test write of 1 MB (rolled back) failed: "
                               "SQLITE_IOERR"), lines[2]
    assert digest(db) == before

