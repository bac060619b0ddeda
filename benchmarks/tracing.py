"""The tracing set-up every benchmark shares: a real SDK TracerProvider
whose only processor is a ``SimpleSpanProcessor`` feeding an exporter that
drops what it gets. Every span therefore pays the SDK's whole per-span cost
(creation, attributes, events, ``on_end``, the ``ReadableSpan`` handed to the
exporter) and nothing for I/O."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

PROCESSOR = "SimpleSpanProcessor -> exporter that drops"


class DropExporter(SpanExporter):
    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_provider(exporter: SpanExporter | None = None) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter or DropExporter()))
    return provider


def record_one(action):
    """The one span memobs records while ``action()`` runs, on a private provider."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from memobs_otel import config

    exporter = InMemorySpanExporter()
    config.use_tracer_provider(make_provider(exporter))
    try:
        action()
    finally:
        config.use_tracer_provider(None)
    (span,) = exporter.get_finished_spans()
    return span
