"""``SQLiteSpanExporter``: keep a local, queryable copy of every span.

A standard OpenTelemetry ``SpanExporter``: put it behind a
``BatchSpanProcessor`` (or any processor) on any ``TracerProvider``::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from memobs_otel.exporters import SQLiteSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SQLiteSpanExporter("memobs.db")))

The file is created and migrated on the first export. Several processes may
export into one file at once (WAL, busy timeout, retry). ``export()`` never
raises: a failure (read-only file, disk full, database locked past the
retries, …) returns ``FAILURE`` and is logged once per kind of failure.

Nothing is lost silently. A value SQLite cannot store (a lone surrogate in
a string, an integer past 64 bits) costs only that value: it is stored
sanitised (U+FFFD, decimal text) and the rest of its batch as given. The
spans of a batch that could not be written, and the losses other parts
report through :meth:`SQLiteSpanExporter.record_losses` (the span
processor's shed spans), are counted in the file's ``export_losses`` table
(see :mod:`memobs_otel.store.losses`), written with the next export or at
``shutdown()``.

Retention from ``MEMOBS_RETENTION_DAYS`` / ``MEMOBS_RETENTION_MAX_ROWS`` is
applied when the file is first opened and at ``shutdown()``, and at most once
an hour in between.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import local_content
from ..guard import log_once
from ..store.connection import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, connect_for_write
from ..store.losses import SPANS_EXPORT_FAILED
from ..store.records import READABLE_SPANS
from ..store.retention import apply_retention, retention_from_env
from ..store.writer import Writer

logger = logging.getLogger(__name__)

_RETENTION_INTERVAL_S = 3600.0
_CONTENDED_S = 0.005  # a BEGIN that waited longer: another process holds the file
_YIELD_MAX_S = 0.1  # SQLite's busy handler sleeps at most this long between tries
_instances = itertools.count(1)  # each exporter logs each kind of failure once


def _failure_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "locked"
    if "full" in text:
        return "disk-full"
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "read-only"
    if "unable to open" in text or isinstance(exc, OSError):
        return "open"
    return type(exc).__name__


# fork() while the export thread is inside SQLite could copy one of SQLite's
# process-wide mutexes locked into the child, whose first connect would then
# hang: fork waits (this long at most) for an export in progress to end.
# An export stuck longer is waiting on a lock held elsewhere, outside them.
_FORK_WAIT_S = 1.0


def _before_fork(exporter: "SQLiteSpanExporter | None") -> None:
    if exporter is not None:
        exporter._held_for_fork = exporter._lock.acquire(timeout=_FORK_WAIT_S)


def _after_fork_in_parent(exporter: "SQLiteSpanExporter | None") -> None:
    if exporter is not None and exporter._held_for_fork:
        exporter._held_for_fork = False
        exporter._lock.release()


def _after_fork(exporter: "SQLiteSpanExporter | None") -> None:
    # SQLite connections must not cross fork(): the child opens its own on
    # its first export. The parent's is kept referenced, never used nor
    # closed here (closing it in the child could disturb the parent's WAL).
    if exporter is None:
        return
    exporter._held_for_fork = False
    exporter._lock = threading.Lock()
    exporter._pending_lock = threading.Lock()
    exporter._pending = {}
    if exporter._conn is not None:
        _INHERITED.append(exporter._conn)
    exporter._conn = None
    exporter._writer = None


_INHERITED: list = []  # connections inherited across fork(): kept, never used


class SQLiteSpanExporter(SpanExporter):
    """Export spans into a memobs SQLite file.

    ``path`` is the file; ``connection`` injects an already open autocommit
    connection instead (the exporter then neither migrates nor closes it).
    ``timeout`` is SQLite's busy timeout in seconds, ``retries`` how many
    more times a locked write is attempted.
    """

    def __init__(
        self,
        path: str | os.PathLike = "memobs.db",
        *,
        connection: sqlite3.Connection | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        apply_env_retention: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._conn = connection
        self._owns_connection = connection is None
        self._timeout = timeout
        self._retries = retries
        self._retention = retention_from_env() if apply_env_retention else None
        self._last_retention = 0.0
        self._lock = threading.Lock()
        self._stopped = False
        self._log_key = f"sqlite-exporter:{next(_instances)}"
        self._writer: Writer | None = None
        self._pending: dict[str, int] = {}  # losses not stored in the file yet
        self._pending_lock = threading.Lock()
        self._held_for_fork = False
        if self._owns_connection and hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(before=lambda: _before_fork(ref()),
                                after_in_parent=lambda: _after_fork_in_parent(ref()),
                                after_in_child=lambda: _after_fork(ref()))

    # -- SpanExporter -----------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            with self._lock:
                if self._stopped:
                    return SpanExportResult.FAILURE
                try:
                    self._write(spans)
                finally:
                    if self._stopped:  # shutdown() gave up waiting for this export
                        self._close()
            return SpanExportResult.SUCCESS
        except Exception as exc:  # never reach the host application
            self.record_losses(SPANS_EXPORT_FAILED, len(spans))
            self._log_once(exc, f"could not export {len(spans)} span(s) to {self.path}"
                           " (counted in the file's export_losses once it can be written;"
                           f" `memobs doctor --db {self.path}` says why)")
            return SpanExportResult.FAILURE

    def record_losses(self, kind: str, count: int) -> None:
        """Count ``count`` spans (or values) lost as ``kind`` (see
        :mod:`memobs_otel.store.losses`); stored in the file with the next
        export, or at ``shutdown()``. Never blocks on an export in progress."""
        if count:
            with self._pending_lock:
                self._pending[kind] = self._pending.get(kind, 0) + int(count)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # every export() is committed before it returns: nothing is pending
        return not self._stopped

    def shutdown(self) -> None:
        # an export stuck on a lock held elsewhere may hold ours for up to
        # timeout x retries: wait one busy timeout, then leave the connection
        # for that export to close when it returns
        if not self._lock.acquire(timeout=self._timeout):
            self._stopped = True
            self._log_unstored_losses()
            return
        try:
            if self._stopped:
                return
            self._stopped = True
            try:
                if self._pending:
                    self._write(())  # the loss counts not stored yet
                if self._conn is not None and self._retention:
                    self._run_retention(self._conn)
            except Exception as exc:
                self._log_once(exc, f"shutdown of the export to {self.path} failed")
            finally:
                self._log_unstored_losses()
                self._close()
        finally:
            self._lock.release()

    # -- internals ----------------------------------------------------------
    def _write(self, spans: Sequence[ReadableSpan]) -> None:
        """One transaction: ``spans`` and the loss counts not stored yet (lock held)."""
        conn = self._connection()
        if self._writer is None or self._writer.conn is not conn:
            self._writer = Writer(conn, self._retries)  # keeps the entity cache warm
        writer = self._writer
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        sanitised = writer.sanitised_values
        try:
            # the spans are read in place (no SpanRecord copies): see records.py
            # with local content capture, events also get the text kept in this process
            writer.write_spans(spans, local_content.source(READABLE_SPANS), pending)
        except BaseException:
            for kind, count in pending.items():  # not stored: keep them for the next write
                self.record_losses(kind, count)
            raise
        if writer.sanitised_values != sanitised:
            log_once("sqlite-export-sanitised", message=(
                f"memobs: {self.path}: stored {writer.sanitised_values - sanitised} value(s) that SQLite"
                " cannot store as given (lone surrogates -> U+FFFD, integers past 64 bits -> text);"
                " counted in the file's export_losses"))
        self._maybe_retention(conn)
        if writer.lock_wait_s > _CONTENDED_S:
            # Other processes write this file too. SQLite's busy handler lets
            # a waiter sleep up to 100 ms between tries, so a writer that
            # begins its next batch right after COMMIT keeps taking the lock
            # from them, and their exports stall. Stepping aside as long as
            # we waited (capped) shares the file fairly.
            time.sleep(min(writer.lock_wait_s, _YIELD_MAX_S))

    def _close(self) -> None:
        if self._owns_connection and self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pragma: no cover - close never matters
                pass
        self._conn = None

    def _log_unstored_losses(self) -> None:
        with self._pending_lock:
            pending = dict(self._pending)
        if pending:
            logger.warning("memobs: %s: could not store these export losses in the file: %s",
                           self.path, ", ".join(f"{kind} {n}" for kind, n in sorted(pending.items())))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_for_write(self.path, timeout=self._timeout, retries=self._retries)
            self._maybe_retention(self._conn)
        return self._conn

    def _maybe_retention(self, conn: sqlite3.Connection) -> None:
        if not self._retention or time.monotonic() - self._last_retention < _RETENTION_INTERVAL_S:
            return
        try:
            self._run_retention(conn)
        except Exception as exc:
            # retention failing must not fail the export that triggered it
            self._log_once(exc, f"retention on {self.path} failed")

    def _run_retention(self, conn: sqlite3.Connection) -> None:
        self._last_retention = time.monotonic()
        max_age_days, max_rows = self._retention
        apply_retention(conn, max_age_days=max_age_days, max_rows=max_rows, retries=self._retries)

    def _log_once(self, exc: BaseException, message: str) -> None:
        # the failure's kind is read from the error text; the text itself
        # is not logged (guard.log_once's rule: it may quote content)
        kind = _failure_kind(exc)
        log_once(f"{self._log_key}:{kind}", exc, f"memobs: {message} [{kind}]", level=logging.ERROR)
