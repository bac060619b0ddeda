"""``memobs report``: write the memory health report as one HTML file.

    memobs report                                  # memobs.db -> memobs-report.html
    memobs report --db agent.db --days 7 --user alice --out alice.html
    memobs report --json                           # the page's data on stdout, no file

``--json`` prints the numbers the page shows (see
:mod:`memobs_otel.report.json_data`) and writes no HTML.

The database is opened read-only and never changed; a missing file, a file
that is not a memobs database or a bad ``--days`` exits 2 with one line.
On big files a progress bar (on stderr, when it is a terminal) shows the
steps.
"""

from __future__ import annotations

import os
import sys

import click

from ..doctor import missing_db_hint
from ..report import write_report
from ..report.json_data import build_report_dict
from ..store import StoreError
from ..store.clickhouse.url import is_clickhouse_url
from .common import days_option, db_option, echo_json, fail, json_option, user_option

DEFAULT_OUT = "memobs-report.html"
PROGRESS_MIN_BYTES = 32 << 20  # a bar only when gathering takes a moment
STEPS = ("entity statistics", "review queue", "time series", "entity details", "rendering")


@click.command("report")
@db_option()
@days_option()
@user_option
@click.option("--out", "out", default=DEFAULT_OUT, show_default=True, metavar="FILE",
              help="HTML file to write (replaced if it exists).")
@json_option
def command(db: str, days: float, user: str | None, out: str, as_json: bool) -> None:
    """Write a self-contained HTML memory health report."""
    if as_json:
        _check_db(db)
        echo_json(_guarded(db, None, lambda: build_report_dict(db, days=days, user_id=user)))
        return
    _check_paths(db, out)
    data = _run(db, out, days, user)
    h = data.headline
    size = os.path.getsize(out)
    click.echo(
        f"wrote {out} ({_size(size)}): {h.known_entities:,} entities, {h.injections:,} injections, "
        f"{h.tokens:,} tokens injected, {h.review_candidates:,} in the review queue"
    )


def _check_db(db: str) -> None:
    if not is_clickhouse_url(db) and not os.path.exists(db):  # a URL is checked when opened
        fail(f"{db}: no such file; {missing_db_hint(db)}")


def _check_paths(db: str, out: str) -> None:
    url = is_clickhouse_url(db)
    _check_db(db)
    if os.path.isdir(out):
        fail(f"--out {out}: is a directory")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        fail(f"--out {out}: no such directory {folder}")
    if not url and os.path.exists(out) and os.path.samefile(out, db):
        fail(f"--out {out}: is the database itself; choose another file")


def _run(db: str, out: str, days: float, user: str | None):
    big = not is_clickhouse_url(db) and os.path.getsize(db) >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    if not big:
        return _write(db, out, days, user, None)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]report[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(STEPS[0], total=len(STEPS))
        seen: list[str] = []

        def on_step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=name)

        data = _write(db, out, days, user, on_step)
        progress.update(task, completed=len(STEPS))
        return data


def _write(db, out, days, user, on_step):
    return _guarded(db, out, lambda: write_report(db, out, days=days, user_id=user, on_step=on_step))


def _guarded(db, out, fn):
    """Run ``fn``; any failure is one line and exit 2."""
    try:
        return fn()
    except StoreError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"--out {out}: cannot write ({exc.strerror or exc})" if out is not None
             else f"{db}: cannot read ({exc.strerror or exc})")
    except Exception as exc:  # sqlite3 errors etc.: one line, no traceback
        fail(f"{db}: cannot read ({type(exc).__name__}: {exc})")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"
