"""Store URLs: which ClickHouse, which table.

    chdb:///path/to/dir?table=otel_traces            embedded ClickHouse (chdb), a folder
    chdb:///path/to/dir?table=otel.otel_traces       ... the table in database ``otel``
    clickhouse://user:password@host:8123/db?table=otel_traces
    clickhouses://user:password@host:8443/db?table=otel_traces    (HTTPS)

``table`` defaults to ``otel_traces`` and the database to ``default``
(the Collector's ``clickhouse`` exporter's defaults) unless ``table`` or,
for a server, the URL's path names one. On a cluster, name the Distributed table. The password may be left
out of the URL and given in ``MEMOBS_CLICKHOUSE_PASSWORD`` (a URL ends up
in shell history). Anything that is not such a URL is a SQLite path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ..connection import StoreError

SCHEMES = ("chdb", "clickhouse", "clickhouses")
DEFAULT_TABLE = "otel_traces"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPTIONS = frozenset({"table", "secure", "verify"})


class BadStoreURL(StoreError, ValueError):
    """The URL names ClickHouse but cannot be used (one line says why)."""


@dataclass(frozen=True)
class Target:
    """Where the traces are: an embedded folder (``path``) or a server."""

    kind: str  # "chdb" or "server"
    database: str
    table: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    secure: bool = False
    verify: bool = True

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.table}"

    def display(self) -> str:
        """The URL without its password (for messages)."""
        if self.kind == "chdb":
            return f"chdb://{self.path}?table={self.qualified}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        who = f"{self.user}@" if self.user else ""
        return f"{scheme}://{who}{self.host}:{self.port}/{self.database}?table={self.table}"


def is_clickhouse_url(value) -> bool:
    return isinstance(value, str) and value.split(":", 1)[0].lower() in SCHEMES and "://" in value


def parse(url: str) -> Target:
    """The :class:`Target` of a ``chdb://`` / ``clickhouse://`` URL, else :class:`BadStoreURL`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadStoreURL(f"{_safe(url)}: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadStoreURL(f"{_safe(url)}: unknown scheme {scheme!r}; use chdb:// or clickhouse://")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise BadStoreURL(f"{_safe(url)}: unknown option {unknown[0]!r}; known: table, secure, verify")
    table = (options.get("table") or [DEFAULT_TABLE])[-1]
    db_in_table, _, name = table.rpartition(".")
    for part in (name, db_in_table) if db_in_table else (name,):
        if not _NAME.match(part):
            raise BadStoreURL(f"{_safe(url)}: table {table!r} is not a plain [database.]table name")
    if scheme == "chdb":
        if parts.netloc:
            raise BadStoreURL(f"{_safe(url)}: chdb URLs name a folder: chdb:///path/to/dir (three slashes)")
        path = unquote(parts.path)
        if not path or path == "/":
            raise BadStoreURL(f"{_safe(url)}: no folder given (chdb:///path/to/dir)")
        return Target("chdb", db_in_table or "default", name, path=path)
    if not parts.hostname:
        raise BadStoreURL(f"{_safe(url)}: no host (clickhouse://user:password@host:8123/database)")
    database = unquote(parts.path.strip("/")) or "default"
    if db_in_table and database not in ("default", db_in_table):
        raise BadStoreURL(f"{_safe(url)}: the path names database {database!r}, the table {db_in_table!r}")
    database = db_in_table or database
    if not _NAME.match(database):
        raise BadStoreURL(f"{_safe(url)}: database {database!r} is not a plain name")
    secure = scheme == "clickhouses" or _flag(options, "secure", False, url)
    password = unquote(parts.password) if parts.password is not None else os.environ.get(
        "MEMOBS_CLICKHOUSE_PASSWORD", "")
    return Target(
        "server", database, name, host=parts.hostname, port=port or (8443 if secure else 8123),
        user=unquote(parts.username) if parts.username else "default", password=password,
        secure=secure, verify=_flag(options, "verify", True, url),
    )


def _flag(options, name: str, default: bool, url: str) -> bool:
    if name not in options:
        return default
    value = options[name][-1].lower()
    if value in ("1", "true", "yes", ""):
        return True
    if value in ("0", "false", "no"):
        return False
    raise BadStoreURL(f"{_safe(url)}: {name}={value!r} is not true or false")


def _safe(url: str) -> str:
    """The URL with any password masked (it goes into error messages)."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)
