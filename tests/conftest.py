"""Shared fixtures: one real SDK TracerProvider, an in-memory exporter per test."""

from __future__ import annotations

import os
import tempfile

# mem0 writes ~/.mem0 and turns telemetry on when first imported (memobs.instrument()
# with no target imports every installed framework): keep it offline and in a temp dir.
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="memobs-mem0-"))

import pytest  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from memobs_otel import config, guard, turns  # noqa: E402

_MEMOBS_ENV = (
    "MEMOBS_ENABLED", "OTEL_SDK_DISABLED", "MEMOBS_CAPTURE_CONTENT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "MEMOBS_TOKEN_ENCODING",
    "MEMOBS_PLUGINS", "MEMOBS_DB", "MEMOBS_RETENTION_DAYS", "MEMOBS_RETENTION_MAX_ROWS",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "MEMOBS_SHUTDOWN_TIMEOUT", "MEMOBS_EXPORT_BLOCK_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY",
)

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture(autouse=True)
def _clean_memobs_env(monkeypatch):
    """Each test starts from memobs defaults and leaves them behind."""
    for name in _MEMOBS_ENV:
        monkeypatch.delenv(name, raising=False)
    config.reload_settings()
    guard.reset_logged()
    yield
    monkeypatch.undo()
    config.reload_settings()
    config.use_tracer_provider(_provider)
    # a test that configured memobs on the session provider without shutting its handle
    # down must not leave memobs.turn.id stamped on every later test's spans
    turns.stop(_provider)


@pytest.fixture
def tracer_provider():
    """The session's real SDK TracerProvider (memobs records through it)."""
    return _provider


@pytest.fixture
def spans():
    """The in-memory exporter, cleared, with memobs recording into it."""
    config.use_tracer_provider(_provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()
