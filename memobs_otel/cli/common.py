"""What every ``memobs`` command shares: options, error exit, opening the store.

Options: ``--db`` (default ``memobs.db``, or ``$MEMOBS_DB``), ``--days``,
``--user``, ``--json``. Bad input is one line on stderr and exit status 2
(:func:`fail`); the store is opened read-only so a bad path or a file that is
not a memobs database is reported and never created or changed. A damaged
file (missing table, bad pages) and a file another process has locked are
the same: one line naming the problem, exit 2. A file in a read-only
folder is still read (see :mod:`memobs_otel.store.connection`).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Callable, NoReturn

import click

from ..store import Store, StoreError, open_store
from ..store import losses as export_losses

EXIT_BAD_INPUT = 2
DEFAULT_DB = "memobs.db"


def fail(message: str) -> NoReturn:
    """Print ``memobs: error: <message>`` (one line) to stderr and exit 2."""
    line = " ".join(str(message).split())  # one line, whatever the message held
    click.echo(f"memobs: error: {line}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _parse(name: str, cast: Callable, value: Any):
    # parsed here rather than by click's number types so that a bad number is
    # one line and exit 2 like every other bad input, not a usage screen
    try:
        return cast(value)
    except (TypeError, ValueError):
        fail(f"{name}: not a number: {value!r}")


def positive_number(name: str, what: str = "a number") -> Callable:
    """A click callback: a finite float greater than 0, else :func:`fail`."""
    def convert(ctx, param, value):
        if value is None:
            return value
        number = _parse(name, float, value)
        if not math.isfinite(number) or number <= 0:
            fail(f"{name} must be {what} greater than 0, got {value!r}")
        return number
    return convert


def number_at_least(name: str, cast: Callable, minimum: Any) -> Callable:
    """A click callback: ``cast(value)`` no less than ``minimum``, else :func:`fail`."""
    def convert(ctx, param, value):
        if value is None:
            return None
        number = _parse(name, cast, value)
        if number < minimum:
            fail(f"{name} must be at least {minimum}, got {value!r}")
        return number
    return convert


def db_option(default: str = DEFAULT_DB, envvar: str | None = "MEMOBS_DB", help: str | None = None) -> Callable:
    return click.option(
        "--db",
        "db",
        default=default,
        envvar=envvar,
        show_default=True,
        show_envvar=envvar is not None,
        metavar="PATH",
        help=help or ("memobs SQLite file, or the Collector's ClickHouse traces: "
                      "chdb:///dir?table=otel.otel_traces or "
                      "clickhouse://user:password@host:8123/db?table=otel_traces."),
    )


def days_option(default: float = 30) -> Callable:
    return click.option(
        "--days",
        "days",
        default=str(default),
        show_default=True,
        metavar="N",
        callback=positive_number("--days"),
        help="Window: the last N days.",
    )


user_option = click.option("--user", "user", default=None, metavar="U", help="Only this user's data.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine output: the API's fields as JSON.")


def open_store_or_fail(path: str) -> Store:
    """Open ``path`` read-only, or exit 2 with one line saying why not."""
    try:
        return open_store(path)
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # sqlite3 errors etc.: still one line, no traceback
        fail(f"{path}: cannot open ({type(exc).__name__}: {exc})")


def losses_text(store) -> str | None:
    """The export losses recorded in a SQLite file, in one line (or None).
    A ClickHouse store has none to show: there the Collector's own
    telemetry counts what its pipeline dropped."""
    connection = getattr(store, "connection", None)
    return None if connection is None else export_losses.line(connection)


def run_query(fn: Callable[[], Any]) -> Any:
    """Call the query API; a ``ValueError`` (bad argument) or a
    :class:`StoreError` met while reading (damaged pages, a lock held past
    the busy timeout) exits 2 with its message."""
    try:
        return fn()
    except (ValueError, StoreError) as exc:
        fail(str(exc))


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def rows_as_json(rows) -> list[dict[str, Any]]:
    return [row.to_dict() for row in rows]


def console():
    """A rich console; when output is not a terminal, wide enough for the tables."""
    from rich.console import Console

    plain = Console()
    return plain if plain.is_terminal else Console(width=160)


def fmt_date(value) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "-"


def fmt_time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def fmt_rate(value: float) -> str:
    return f"{value:.0%}"
