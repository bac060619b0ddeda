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

from memobs_otel import config, guard  # noqa: E402

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


def finished(exporter, name=None):
    """Finished spans, optionally only those called ``name``."""
    return [s for s in exporter.get_finished_spans() if name is None or s.name == name]


def events(exporter, name="memobs.injection"):
    """All events called ``name`` across finished spans, as attribute dicts."""
    return [dict(e.attributes) for s in exporter.get_finished_spans() for e in s.events if e.name == name]


_METADATA_ORDER = ("created_at", "updated_at", "status", "version", "parent_id", "superseded_by", "title",
                   "source_id")


def listed(docs, content=None):
    """What a retrieval span lists of its documents beside their id and score, for UIs: each
    one's ``document.metadata`` JSON and the ``output.value`` JSON. ``docs``: ``(id, score,
    metadata)`` with metadata a dict of title, lifecycle fields (plain or ``memobs.entity.*``
    keys) and ``source_id``, or None; ``content``: the documents' contents (capture on)."""
    import json

    def dumps(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    attrs, output = {}, []
    for n, (doc_id, score, metadata) in enumerate(docs):
        doc = {"id": doc_id}
        if score is not None:
            doc["score"] = score
        if content is not None:
            doc["content"] = content[n]
        plain = {key.removeprefix("memobs.entity."): value for key, value in (metadata or {}).items()}
        ordered = {key: plain[key] for key in _METADATA_ORDER if plain.get(key) is not None}
        if ordered:
            doc["metadata"] = ordered
            if n < 32:
                attrs[f"retrieval.documents.{n}.document.metadata"] = dumps(ordered)
        if n < 32:
            output.append(doc)
    attrs["output.value"] = dumps(output)
    attrs["output.mime_type"] = "application/json"
    return attrs
