"""``QueueSpanProcessor``: batch export that applies backpressure instead of dropping.

The SDK's ``BatchSpanProcessor`` drops a span when its queue (2,048) is
full and only logs "Queue full". A thread that ends spans as fast as it can
(100k single-entity searches in a loop) holds the GIL while the export
thread starves, so most spans were dropped: 68k of 100k stored on a busy
machine, ~5k on a quiet one. ``configure()`` puts this processor in front of
its exporters instead. It uses only the public SDK API (``SpanProcessor``,
``SpanExporter.export``) and works with any exporter.

How it behaves:

- ``on_end`` appends the span to a bounded queue (``max_queue_size``, default
  ``OTEL_BSP_MAX_QUEUE_SIZE`` or 2,048) and returns; a worker thread exports
  batches of ``max_export_batch_size`` (``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` or
  512) as soon as a batch is full, else every ``schedule_delay_millis``
  (``OTEL_BSP_SCHEDULE_DELAY`` or 5,000).
- **Queue full, ``block=True``** (the SQLite file): the thread ending the
  span waits (releasing the GIL, so the worker runs) until there is room.
  Memory stays bounded (the queue plus the batch in flight), and nothing is
  lost as long as the exporter makes progress. Only when the exporter has
  made no progress for ``max_block_s`` (``MEMOBS_EXPORT_BLOCK_TIMEOUT``,
  default 10 s: a file locked by another process, a hung disk) does it shed
  spans instead, until an export succeeds again, so a stuck exporter costs
  the host one such wait, not one per span or per failed retry. (Several
  processes bursting into one file see exports of a few seconds under
  contention: 10 s leaves room for that.)
- **Queue full, ``block=False``** (OTLP: a slow collector must not slow the
  agent): the span is shed at once.
- Every shed span and every span of a batch the exporter failed is counted
  (``losses``, kinds ``spans-shed`` / ``spans-export-failed`` /
  ``spans-unwritten-at-shutdown``, prefixed with ``loss_prefix``) and handed
  to ``on_loss(kind, count)``; ``configure()`` sends those to the SQLite
  exporter, which stores them in the file (:mod:`memobs_otel.store.losses`).
  ``report_failures=False`` keeps failed batches out of ``on_loss`` (the
  SQLite exporter counts its own failures).
- ``shutdown()`` exports what is queued within a time budget
  (:class:`ShutdownBudget`, ``MEMOBS_SHUTDOWN_TIMEOUT``, default 5 s, shared
  by the processors of one ``configure()``), then shuts the exporter down
  within what is left. Spans it could not export in time are counted under
  ``spans-unwritten-at-shutdown`` and logged; the worker is a daemon thread, so
  an export stuck on a lock or a silent endpoint never holds the process.
- A span ended on the worker thread itself (an instrumented exporter) never
  waits: it is queued if there is room, else shed.
- After ``fork()`` the child starts with an empty queue and its own worker
  (the SQLite exporter opens its own connection there, and makes ``fork()``
  wait up to 1 s for an export in progress: see ``exporters/sqlite.py``).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from typing import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..guard import env_number
from ..store.losses import SPANS_EXPORT_FAILED, SPANS_SHED, SPANS_UNWRITTEN_AT_SHUTDOWN

logger = logging.getLogger("memobs_otel")

DEFAULT_MAX_QUEUE_SIZE = 2048
DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
DEFAULT_SCHEDULE_DELAY_MS = 5000
DEFAULT_MAX_BLOCK_S = 10.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0


class ShutdownBudget:
    """One time budget for shutting down several processors: the clock
    starts at the first ``start()``, so two processors share ``timeout_s``
    (``MEMOBS_SHUTDOWN_TIMEOUT``, seconds, default 5) instead of each
    taking it in full."""

    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = (env_number("MEMOBS_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT_S, 0.0)
                          if timeout_s is None else max(0.0, float(timeout_s)))
        self._deadline: float | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._deadline is None:
                self._deadline = time.monotonic() + self.timeout_s

    def remaining(self) -> float:
        self.start()
        return max(0.0, self._deadline - time.monotonic())


class QueueSpanProcessor(SpanProcessor):
    """Export finished spans in batches from a bounded queue (see the module doc)."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: float | None = None,
        block: bool = True,
        max_block_s: float | None = None,
        shutdown_budget: ShutdownBudget | None = None,
        on_loss: Callable[[str, int], None] | None = None,
        loss_prefix: str = "",
        report_failures: bool = True,
        name: str = "memobs",
    ) -> None:
        self.span_exporter = exporter
        self.max_queue_size = int(max_queue_size or env_number(
            "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE, 1))
        batch = int(max_export_batch_size or env_number(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE, 1))
        self.max_export_batch_size = min(batch, self.max_queue_size)
        delay_ms = (schedule_delay_millis if schedule_delay_millis is not None
                    else env_number("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, 0))
        self.schedule_delay_s = max(0.001, delay_ms / 1000)
        self.block = block
        self.max_block_s = (env_number("MEMOBS_EXPORT_BLOCK_TIMEOUT", DEFAULT_MAX_BLOCK_S, 0.0)
                            if max_block_s is None else max_block_s)
        self.shutdown_budget = shutdown_budget or ShutdownBudget()
        self.on_loss = on_loss
        self.shed_kind = loss_prefix + SPANS_SHED
        self.failed_kind = loss_prefix + SPANS_EXPORT_FAILED
        self.unwritten_kind = loss_prefix + SPANS_UNWRITTEN_AT_SHUTDOWN
        self.report_failures = report_failures
        self.name = name
        # what was lost, by kind (shed / export failed / not written at shutdown)
        self.losses: collections.Counter[str] = collections.Counter()
        self._init_state()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (ref() or (lambda: None))())

    def _init_state(self, start_worker: bool = True) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the worker waits for spans
        self._room = threading.Condition(self._lock)  # producers wait for room
        self._idle = threading.Condition(self._lock)  # force_flush waits for the queue to empty
        self._queue: collections.deque = collections.deque()
        self._in_flight = 0
        self._flush_requested = 0
        self._stopping = False
        self._shut = False
        self._shedding = False
        self._progress_at = time.monotonic()
        self._worker = threading.Thread(target=self._run, name=f"{self.name}-span-export", daemon=True)
        if start_worker:
            self._worker.start()
        else:  # a processor shut down before the fork stays shut in the child
            self._stopping = self._shut = True

    def _after_fork(self) -> None:
        # the parent's queue belongs to the parent (it exports it); the child
        # starts empty, with a live worker of its own
        self._init_state(start_worker=not self._stopping)

    # -- SpanProcessor ---------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            if self._shut:
                return
            queue = self._queue
            if len(queue) >= self.max_queue_size and not self._wait_for_room():
                self._lose(self.shed_kind, 1)
                return
            queue.append(span)
            if len(queue) >= self.max_export_batch_size:
                self._work.notify()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            if self._shut:
                return False
            self._flush_requested += 1
            self._work.notify()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or not self._worker.is_alive():
                    return False
                self._idle.wait(left)
        try:
            return bool(self.span_exporter.force_flush(max(0, int((deadline - time.monotonic()) * 1000))))
        except Exception:  # noqa: BLE001 - never into the host
            return False

    def shutdown(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._work.notify_all()
            self._room.notify_all()
        budget = self.shutdown_budget
        self._worker.join(budget.remaining())
        with self._lock:
            self._shut = True
            unwritten = len(self._queue) + self._in_flight
            self._queue.clear()
        if unwritten:
            self._lose(self.unwritten_kind, unwritten)
            logger.warning(
                "memobs: shutdown of the %s exporter ran out of time (%.3g s, MEMOBS_SHUTDOWN_TIMEOUT):"
                " up to %d span(s) not written", self.name, budget.timeout_s, unwritten)
        stopper = threading.Thread(target=self._shutdown_exporter, name=f"{self.name}-span-export-stop",
                                   daemon=True)
        stopper.start()
        stopper.join(budget.remaining())
        if stopper.is_alive():
            logger.warning("memobs: the %s exporter did not shut down within %.3g s"
                           " (MEMOBS_SHUTDOWN_TIMEOUT); left to finish in the background",
                           self.name, budget.timeout_s)

    # -- internals ---------------------------------------------------------------
    def _wait_for_room(self) -> bool:
        """With the lock held and the queue full: wait for room; ``False`` = shed."""
        if not self.block or self._stopping or threading.current_thread() is self._worker:
            return False
        while len(self._queue) >= self.max_queue_size:
            if self._shedding or self._stopping:
                return False
            stalled = time.monotonic() - self._progress_at
            if stalled >= self.max_block_s:
                self._shedding = True
                logger.warning("memobs: the %s exporter made no progress for %.3g s"
                               " (MEMOBS_EXPORT_BLOCK_TIMEOUT); shedding spans until it does,"
                               " counted in the file", self.name, self.max_block_s)
                return False
            self._room.wait(self.max_block_s - stalled)
        return True

    def _lose(self, kind: str, count: int, report: bool = True) -> None:
        self.losses[kind] += count
        if report and self.on_loss is not None:
            try:
                self.on_loss(kind, count)
            except Exception:  # noqa: BLE001 - counting must not fail the host
                pass

    def _run(self) -> None:
        while True:
            with self._lock:
                queue = self._queue
                if len(queue) < self.max_export_batch_size and not self._stopping and not self._flush_requested:
                    self._work.wait(self.schedule_delay_s)
                if not queue:
                    self._flush_requested = 0
                    self._idle.notify_all()
                    if self._stopping:
                        return
                    continue
                n = min(len(queue), self.max_export_batch_size)
                batch = [queue.popleft() for _ in range(n)]
                self._in_flight = n
                self._progress_at = time.monotonic()
                self._room.notify_all()
            ok = self._export(batch)
            batch = None  # noqa: F841 - the spans are not held while waiting
            with self._lock:
                self._in_flight = 0
                self._progress_at = time.monotonic()
                if ok:  # a failed export (lock held past the retries) is no recovery
                    self._shedding = False
                else:
                    self._lose(self.failed_kind, n, self.report_failures)
                if not self._queue:
                    self._idle.notify_all()

    def _export(self, batch: list) -> bool:
        try:
            return self.span_exporter.export(batch) == SpanExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - exporters should not raise; some do
            logger.warning("memobs: the %s exporter raised %s", self.name, type(exc).__name__)
            return False

    def _shutdown_exporter(self) -> None:
        try:
            self.span_exporter.shutdown()
        except Exception as exc:  # noqa: BLE001
            logger.warning("memobs: shutting down the %s exporter failed (%s)", self.name, type(exc).__name__)
