"""``memobs ingest FILE...``: load the Collector's OTLP/JSON files into a store.

    memobs ingest --db memobs.db memobs-spans.json memobs-spans-2025-*.json

Reads what the Collector's ``file`` exporter writes (JSON lines, zstd in
either of its framings, or gzip'ed; see :mod:`memobs_otel.ingest`) and
stores the spans as the in-process SQLite exporter would; a file holding one
pretty-printed OTLP/JSON document is read too. Re-ingesting adds nothing
twice. Bad lines are reported on stderr with their line numbers and skipped.
Exit status 2 (one line on stderr) only when nothing could be read; then the
store is not created or changed (a store this run created and could put no
span in is removed again).

``--max-line-mb`` (64) bounds a line, record or whole-file document and so
the memory one line can take; ``--max-decompressed-mb`` bounds what one
compressed file may inflate to (default: 100 times its size, at least
``--max-line-mb``; see :mod:`memobs_otel.ingest`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

import click

from ..ingest import AUTO_RATIO, FileReport, IngestLimits, IngestReport, ingest_files
from ..store.connection import StoreError, connect_for_write
from ..store.records import SpanRecord
from ..store.writer import Writer
from .common import db_option, echo_json, fail, number_at_least

PROGRESS_MIN_BYTES = 4 << 20  # a bar only for work that takes a moment
DEFAULT_LIMITS = IngestLimits()
SHOWN_BAD_LINES = 20  # per file on stderr; --json lists up to 1000


class _LazyStore:
    """Opens (creating) the store on the first batch, so input with nothing
    readable never creates or touches it; an existing file is checked first."""

    def __init__(self, path: str):
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.writer: Writer | None = None
        self.created = False  # this run created the file
        self.added = 0

    def open(self) -> None:
        existed = os.path.exists(self.path)
        self.conn = connect_for_write(self.path)
        self.created = not existed
        self.writer = Writer(self.conn)  # one writer: its entity cache stays warm

    def write(self, _conn: Any, records: list[SpanRecord]) -> int:
        if self.conn is None:
            self.open()
        added = self.writer.write(records)
        self.added += added
        return added

    def altered(self) -> tuple[int, int]:
        """(values the writer stored sanitised, spans it could not store), counted
        in the file's ``export_losses`` too (see :mod:`memobs_otel.store.sanitise`)."""
        return (getattr(self.writer, "sanitised_values", 0), getattr(self.writer, "unwritable_spans", 0))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.created and not self.added:
            # every batch failed (a full disk, a value the writer refused):
            # leave no empty store behind, as when nothing was readable
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.remove(self.path + suffix)
                except OSError:
                    pass
            self.created = False


@click.command("ingest")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@db_option(help="memobs SQLite file to add the spans to (created if missing).")
@click.option("--json", "as_json", is_flag=True, help="Machine output: per-file counts and bad lines as JSON.")
@click.option("--max-line-mb", "max_line_mb", default=str(DEFAULT_LIMITS.max_line_bytes >> 20), show_default=True,
              callback=number_at_least("--max-line-mb", int, 1), metavar="MB",
              help="Longest line, record or whole-file JSON document read; a longer one is a bad line. "
                   "Bounds the memory one line takes.")
@click.option("--max-decompressed-mb", "max_decompressed_mb", default=None, type=str,
              callback=number_at_least("--max-decompressed-mb", int, 1), metavar="MB",
              help=f"Most data one compressed file may decompress to; the rest of it is skipped and reported. "
                   f"[default: {AUTO_RATIO} times the file's size, at least --max-line-mb]")
def command(files: tuple[str, ...], db: str, as_json: bool, max_line_mb: int,
            max_decompressed_mb: int | None) -> None:
    """Ingest OTLP/JSON files written by the Collector's file exporter."""
    limits = IngestLimits(max_line_bytes=max_line_mb << 20,
                          max_decompressed_bytes=None if max_decompressed_mb is None else max_decompressed_mb << 20)
    store = _LazyStore(db)
    if os.path.exists(db):
        _or_fail(store.open, db)
    try:
        report = _run(files, store, limits)
    finally:
        store.close()

    if as_json:
        echo_json(_as_dict(report, db, store.altered()))
    else:
        _print_human(report, db, store.altered())
    if not report.anything_read:
        fail(_nothing_read(report))


def _run(files: tuple[str, ...], store: _LazyStore, limits: IngestLimits) -> IngestReport:
    sizes = {path: _size(path) for path in files}
    total = sum(sizes.values())
    if total < PROGRESS_MIN_BYTES or not _interactive():
        return _or_fail(lambda: ingest_files(None, files, write=store.write, limits=limits), store.path)

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    offsets, done = {}, 0
    for path in files:
        offsets[path] = done
        done += sizes[path]
    with Progress(
        TextColumn("[bold]ingest[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total)

        def on_progress(path: str, bytes_read: int) -> None:
            progress.update(task, completed=offsets.get(path, 0) + min(bytes_read, sizes.get(path, 0)),
                            description=os.path.basename(path))

        return _or_fail(lambda: ingest_files(None, files, write=store.write, on_progress=on_progress,
                                             limits=limits), store.path)


def _interactive() -> bool:
    return sys.stderr.isatty()


def _or_fail(fn, db: str):
    try:
        return fn()
    except StoreError as exc:
        fail(str(exc))
    except sqlite3.Error as exc:
        # batches before this one are committed whole; this one rolled back
        fail(f"{db}: cannot write ({exc}); the spans stored before the error stay, "
             "re-run the same command to add the rest")
    except MemoryError:
        # the limits bound one line, not the machine: say which knob to turn
        fail(f"out of memory while ingesting into {db}; the spans stored before stay, "
             "lower --max-line-mb and re-run the same command to add the rest")


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size if os.path.isfile(path) else 0
    except OSError:
        return 0


def _print_human(report: IngestReport, db: str, altered: tuple[int, int] = (0, 0)) -> None:
    alone = len(report.files) == 1 and not report.anything_read  # fail() says it all
    for f in report.files:
        if f.error is not None:
            if not alone:
                click.echo(f"memobs: error: {f.error}", err=True)
            continue
        for bad in f.bad[:SHOWN_BAD_LINES]:
            click.echo(f"{f.path}:{bad.line}: skipped: {bad.reason}", err=True)
        if f.bad_count > SHOWN_BAD_LINES:
            click.echo(f"{f.path}: ... and {f.bad_count - SHOWN_BAD_LINES} more bad lines", err=True)
        if not alone:
            click.echo(f"{f.path}: {_counts(f)}")
    if not report.anything_read:
        return
    failed = len(report.failed_files)
    click.echo(
        f"ingested {_plural(report.spans, 'span')} ({report.added} new)"
        f" from {_plural(report.lines, 'line')} of {_plural(len(report.files) - failed, 'file')} into {db}"
        + (f"; {_plural(report.bad_count, 'bad line')} skipped" if report.bad_count else "")
        + (f"; {failed} {'file' if failed == 1 else 'files'} could not be read" if failed else "")
        + (f"; {_plural(altered[0], 'value')} stored sanitised (lone surrogates, numbers past 64 bits)"
           if altered[0] else "")
        + (f"; {_plural(altered[1], 'span')} could not be stored" if altered[1] else "")
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _counts(f: FileReport) -> str:
    text = f"{_plural(f.lines, 'line')}, {_plural(f.spans, 'span')} ({f.added} new)"
    if f.bad_count:
        text += f", {_plural(f.bad_count, 'bad line')} skipped"
    if f.format and f.format != "json lines":
        text += f" [{f.format}]"
    return text


def _nothing_read(report: IngestReport) -> str:
    if len(report.files) == 1:
        f = report.files[0]
        if f.error is not None:
            return f.error
        if f.bad_count == 1 and f.bad:
            return f"{f.path}: no OTLP/JSON trace data (line {f.bad[0].line}: {f.bad[0].reason})"
        if f.bad_count:
            return f"{f.path}: no OTLP/JSON trace data ({_plural(f.bad_count, 'bad line')})"
        return f"{f.path}: no OTLP/JSON trace data"
    return f"nothing could be read from the {len(report.files)} files; the store was not changed"


def _as_dict(report: IngestReport, db: str, altered: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {
        "db": db,
        "lines": report.lines,
        "spans": report.spans,
        "added": report.added,
        "bad_count": report.bad_count,
        "values_sanitised": altered[0],
        "spans_unwritable": altered[1],
        "files": [
            {
                "path": f.path,
                "format": f.format or None,
                "error": f.error,
                "lines": f.lines,
                "spans": f.spans,
                "added": f.added,
                "bad_count": f.bad_count,
                "bad": [{"line": b.line, "reason": b.reason} for b in f.bad],
            }
            for f in report.files
        ],
    }
