"""What every ``memobs`` command shares: options, error exit, opening the store.

Options: ``--db`` (default ``memobs.db``, or ``$MEMOBS_DB``), ``--days``,
``--user``, ``--json``. Bad input is one line on stderr and exit status 2
(:func:`fail`); the store is opened read-only so a bad path or a file that is
not a memobs database is reported and never created or changed. A damaged
file (missing table, bad pages) and a file another process has locked are
the same: one line naming the problem, exit 2. A file in a read-only
folder is still read (see :mod:`memobs_otel.store.connection`).

Tables fit the terminal (100 columns included) without cutting an id: an
entity is shown as its type over its id (:func:`entity_cell`), long ids
fold onto the next line, never end in "…". An empty result is a sentence,
not an empty table; ``--json`` prints ``[]``. When stdout is not a
terminal the width is ``$COLUMNS`` if set, else 160 (:func:`console`).
"""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
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


def _finite(name: str, number, value):
    if isinstance(number, float) and not math.isfinite(number):  # nan passes every comparison
        fail(f"{name} must be a finite number, got {value!r}")
    return number


def number_at_least(name: str, cast: Callable, minimum: Any) -> Callable:
    """A click callback: ``cast(value)`` no less than ``minimum``, else :func:`fail`."""
    def convert(ctx, param, value):
        if value is None:
            return None
        number = _finite(name, _parse(name, cast, value), value)
        if number < minimum:
            fail(f"{name} must be at least {minimum}, got {value!r}")
        return number
    return convert


def number_between(name: str, cast: Callable, low: Any, high: Any) -> Callable:
    """A click callback: ``cast(value)`` within [low, high], else :func:`fail`."""
    def convert(ctx, param, value):
        if value is None:
            return None
        number = _finite(name, _parse(name, cast, value), value)
        if not low <= number <= high:
            fail(f"{name} must be between {low:g} and {high:g}, got {value!r}")
        return number
    return convert


def limit_option(what: str) -> Callable:
    """``--limit N``: rows in the table; a bad number is one line and exit 2
    like every other bad input (click's IntRange would print a usage screen)."""
    return click.option("--limit", "limit", default="50", show_default=True, metavar="N",
                        callback=number_at_least("--limit", int, 0),
                        help=f"{what} in the table (0 = all); --json prints all.")


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


WIDE = 160


def width() -> int:
    """The columns the output may use: the terminal's, else ``$COLUMNS``,
    else ``WIDE`` (a pipe or a file gets unwrapped rows)."""
    return console().width


def console():
    """A rich console. On a terminal, its width; otherwise ``$COLUMNS`` when
    set (so a script can ask for the layout a given terminal gets), else
    ``WIDE`` columns."""
    from rich.console import Console

    plain = Console()
    if plain.is_terminal:
        return plain
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else WIDE)


def echo_wrapped(line: str) -> None:
    """Echo ``line`` folded at spaces to :func:`width`; a word (an id) is
    never broken, so it can be copied whole."""
    click.echo(textwrap.fill(line, width=width(), subsequent_indent="  ", break_long_words=False,
                             break_on_hyphens=False) if len(line) > width() else line)


def entity_cell(entity_type: str, entity_id: str):
    """A table cell naming an entity: its type (dim) over its id, the two
    arguments ``memobs dismiss TYPE ID`` takes. Stacked so that a 36-character
    UUID stays on one line of a 100-column table."""
    from rich.text import Text

    return Text(entity_type, style="dim") + Text("\n" + entity_id)


GAP = 2  # columns between two cells: collapse_padding=True, no edges


def new_table(title: str):
    """A table laid out so that :func:`flexible_widths` can count its columns:
    no edges, two blanks between cells."""
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True)


def flexible_widths(total: int, fixed_columns: list[list[str]], needs: list[int]) -> list[int]:
    """Maximum widths for a table's wrapping columns so it fits ``total``.

    ``fixed_columns`` are the short columns (numbers, dates: header and
    cells), kept whole; ``needs`` the width each wrapping column would like
    (its longest id or line). Space left goes smallest need first, each no
    more than an equal share of what remains, so an id that fits is never
    folded because another column wanted more. A wrapping column given
    less than it needs folds its long words onto the next line: rich sizes
    a column to at least its longest word unless ``max_width`` caps it, and
    past the console's width it would crop the row, cutting ids."""
    fixed = sum(max(map(len, column)) for column in fixed_columns)
    count = len(fixed_columns) + len(needs)
    left = max(len(needs) * 8, total - fixed - GAP * (count - 1))
    widths = [0] * len(needs)
    for rank, index in enumerate(sorted(range(len(needs)), key=needs.__getitem__)):
        share = left // (len(needs) - rank)
        widths[index] = max(1, min(needs[index], share))
        left -= widths[index]
    return widths


def fmt_date(value) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "-"


def fmt_time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def fmt_rate(value: float) -> str:
    return f"{value:.0%}"
