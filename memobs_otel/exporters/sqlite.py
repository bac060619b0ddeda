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

Retention from ``MEMOBS_RETENTION_DAYS`` / ``MEMOBS_RETENTION_MAX_ROWS`` is
applied when the file is first opened and at ``shutdown()``, and at most once
an hour in between.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..store.connection import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, connect_for_write
from ..store.records import READABLE_SPANS
from ..store.retention import apply_retention, retention_from_env
from ..store.writer import Writer

logger = logging.getLogger(__name__)

_RETENTION_INTERVAL_S = 3600.0


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
        self._logged: set[str] = set()
        self._writer: Writer | None = None

    # -- SpanExporter -----------------------------------------------------
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            with self._lock:
                if self._stopped:
                    return SpanExportResult.FAILURE
                conn = self._connection()
                if self._writer is None or self._writer.conn is not conn:
                    self._writer = Writer(conn, self._retries)  # keeps the entity cache warm
                # the spans are read in place (no SpanRecord copies): see records.py
                self._writer.write_spans(spans, READABLE_SPANS)
                self._maybe_retention(conn)
            return SpanExportResult.SUCCESS
        except Exception as exc:  # never reach the host application
            self._log_once(exc, f"could not export {len(spans)} span(s) to {self.path}")
            return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        # every export() is committed before it returns: nothing is pending
        return not self._stopped

    def shutdown(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            try:
                if self._conn is not None and self._retention:
                    self._run_retention(self._conn)
            except Exception as exc:
                self._log_once(exc, f"retention on {self.path} failed")
            finally:
                if self._owns_connection and self._conn is not None:
                    try:
                        self._conn.close()
                    except Exception:  # pragma: no cover - close never matters
                        pass
                self._conn = None

    # -- internals ----------------------------------------------------------
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
        kind = _failure_kind(exc)
        if kind in self._logged:
            return
        self._logged.add(kind)
        logger.error("memobs: %s (%s: %s); further %s errors are not logged",
                     message, type(exc).__name__, exc, kind)
