"""``memobs.configure()``: tracing set up in one call.

    handle = memobs.configure(db_path="memobs.db")                 # local SQLite only
    handle = memobs.configure(otlp_endpoint="http://localhost:4318")  # + OTLP/HTTP
    handle = memobs.configure(tracer_provider=my_provider)          # add to your provider

Without ``tracer_provider`` a new SDK ``TracerProvider`` is created (its
resource honours ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``;
``service_name=`` wins) and installed as the global provider if none was set
yet. memobs records through it either way. With ``tracer_provider`` memobs
adds its span processors to that provider and records through it.

It also adds :class:`~memobs_otel.turns.TurnSpanProcessor`: every span
started inside a ``memobs.context`` block, by any instrumentation, carries
the block's ``memobs.turn.id`` (the context budget ties LLM calls to the
memory of their turn with it).

Exporters, each behind memobs's own batching span processor
(:class:`~memobs_otel.exporters.processor.QueueSpanProcessor`: the SDK's
``BatchSpanProcessor`` drops spans when a burst fills its queue):

- SQLite (``db_path``, default ``memobs.db``; ``None`` turns it off). When
  the queue is full the thread ending a span waits for room (backpressure)
  instead of dropping it; only an exporter stuck for
  ``MEMOBS_EXPORT_BLOCK_TIMEOUT`` seconds (default 10) makes it shed spans,
  and what it sheds is counted in the file (``export_losses``);
- OTLP, when ``otlp_endpoint`` is given or ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set. ``otlp_protocol`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``)
  is ``http/protobuf`` (default) or ``grpc``. ``otlp_endpoint`` is the
  base URL (``http://host:4318``; memobs adds ``/v1/traces`` for HTTP);
  headers come from ``OTEL_EXPORTER_OTLP_HEADERS`` as usual. A full OTLP
  queue sheds spans (a slow collector must not slow the agent); they are
  counted (``handle.losses()``, and in the SQLite file when there is one).

``handle.shutdown()`` (and the provider's own shutdown at exit) exports what
is queued within ``MEMOBS_SHUTDOWN_TIMEOUT`` seconds in total (default 5),
however many exporters: a file locked by another process or an endpoint
that never answers cannot hold the process longer. What could not be
exported in time is counted and logged.

With ``OTEL_SDK_DISABLED=true`` nothing is set up and the handle's methods do
nothing. Calling ``configure`` again replaces memobs's provider; shut the
previous handle down yourself if you no longer need it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace

from . import config, plugins, turns

logger = logging.getLogger("memobs_otel")

OTLP_PROTOCOLS = ("http/protobuf", "grpc")


class MemobsHandle:
    """What ``configure()`` returns: flush and shut down what it set up."""

    def __init__(self, tracer_provider=None, processors=(), owns_provider: bool = False,
                 db_path: str | None = None, otlp_endpoint: str | None = None,
                 shutdown_budget=None) -> None:
        self.tracer_provider = tracer_provider
        self.processors = list(processors)
        self.db_path = db_path
        self.otlp_endpoint = otlp_endpoint
        self._owns_provider = owns_provider
        self._shutdown_budget = shutdown_budget
        self._shut = False
        self._turn_processor = None  # the turns.TurnSpanProcessor configure() added, if any

    def losses(self) -> dict[str, int]:
        """Spans this process's pipeline lost so far, by kind (``spans-shed``,
        ``spans-export-failed``, ``spans-unwritten-at-shutdown``; ``otlp-``
        for the OTLP exporter); ``{}`` when none."""
        total: dict[str, int] = {}
        for processor in self.processors:
            # dict(): a copy taken at once, while the export thread may add a kind
            for kind, count in dict(getattr(processor, "losses", {})).items():
                if count:
                    total[kind] = total.get(kind, 0) + count
        return total

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        ok = True
        for processor in self.processors:
            try:
                ok = bool(processor.force_flush(timeout_millis)) and ok
            except Exception:  # noqa: BLE001
                ok = False
        return ok

    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        if self._shutdown_budget is not None:
            self._shutdown_budget.start()  # one MEMOBS_SHUTDOWN_TIMEOUT for everything below
        try:
            # memobs's processors first, within the budget; the provider's
            # shutdown then finds them done
            for processor in self.processors:
                processor.shutdown()
            if self._turn_processor is not None:
                self._turn_processor.shutdown()  # stops stamping; a new configure() adds a fresh one
            if self._owns_provider and self.tracer_provider is not None:
                self.tracer_provider.shutdown()
        except Exception as exc:  # noqa: BLE001
            logger.warning("memobs: shutdown failed (%s)", type(exc).__name__)


def resolve_otlp(endpoint: str | None, protocol: str | None) -> tuple[str | None, str, bool]:
    """Where OTLP export goes: ``(endpoint or None, protocol, endpoint_came_from_env)``.

    Arguments win over ``OTEL_EXPORTER_OTLP_TRACES_*`` which win over
    ``OTEL_EXPORTER_OTLP_*``; ``ValueError`` for an unknown protocol.
    """
    protocol = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if protocol not in OTLP_PROTOCOLS:
        raise ValueError(f"otlp_protocol must be one of {', '.join(OTLP_PROTOCOLS)}, not {protocol!r}")
    if endpoint:
        return endpoint, protocol, False
    env = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return (env, protocol, True) if env else (None, protocol, False)


def make_otlp_exporter(endpoint: str, protocol: str, from_env: bool):
    """An OTLP span exporter; endpoints from the environment are left to the exporter."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if from_env:
            return OTLPSpanExporter()
        return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if from_env:
        return OTLPSpanExporter()
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url)


def configure(db_path: str | None = "memobs.db", otlp_endpoint: str | None = None,
              otlp_protocol: str | None = None, service_name: str | None = None,
              capture_content: bool | None = None, encoding: str | None = None,
              tracer_provider: Any = None) -> MemobsHandle:
    """Set up memobs tracing in one call; returns a handle with ``force_flush()`` and ``shutdown()``.

    Raises ``ValueError`` for an unknown ``otlp_protocol`` (a set-up error,
    raised before anything is installed).
    """
    config.reload_settings(capture_content=capture_content, encoding=encoding)
    endpoint, protocol, from_env = resolve_otlp(otlp_endpoint, otlp_protocol)
    if config.env_flag("OTEL_SDK_DISABLED", False):
        return MemobsHandle()

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from .exporters.processor import QueueSpanProcessor, ShutdownBudget
    from .store.losses import OTLP

    owns = tracer_provider is None
    if owns:
        attributes = {"service.name": service_name} if service_name else {}
        tracer_provider = TracerProvider(resource=Resource.create(attributes))
    processors = []
    budget = ShutdownBudget()  # one MEMOBS_SHUTDOWN_TIMEOUT for all of them
    on_loss = None
    if db_path is not None:
        from .exporters import SQLiteSpanExporter

        sqlite_exporter = SQLiteSpanExporter(db_path)
        on_loss = sqlite_exporter.record_losses
        # the exporter counts its own failed batches: report_failures=False
        processors.append(QueueSpanProcessor(sqlite_exporter, block=True, shutdown_budget=budget,
                                             on_loss=on_loss, report_failures=False, name="sqlite"))
    if endpoint:
        processors.append(QueueSpanProcessor(
            make_otlp_exporter(endpoint, protocol, from_env), block=False, shutdown_budget=budget,
            on_loss=on_loss, loss_prefix=OTLP, name="otlp"))
    turn_processor = turns.add_to(tracer_provider)  # memobs.turn.id on spans started in a memobs.context block
    for processor in processors:
        tracer_provider.add_span_processor(processor)

    if owns and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tracer_provider)
    config.use_tracer_provider(tracer_provider)
    plugins.load_plugins()
    config.settings.get_measurer()  # load the encoding now, not on the first search
    handle = MemobsHandle(tracer_provider, processors, owns, db_path, endpoint, budget)
    handle._turn_processor = turn_processor
    return handle
