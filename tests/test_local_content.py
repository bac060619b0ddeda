"""Local-only content capture: the SQLite file shows what a memory says, no span carries it.

A real mem0 agent recorded through ``configure(capture_content="local")``
with both exporters: the SQLite file and an in-memory exporter standing in
for OTLP (the same spans reach both). mem0 memories have no title, so the
review queue shows the first 80 characters of their text instead of a UUID.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone

import pytest

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="memobs-test-mem0-"))
pytest.importorskip("mem0")

from mem0 import Memory
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import config, local_content
from memobs_otel.fingerprint import content_hash
from mem0_helpers import HashedWords, mem0_config

LONG = "Prefers a window seat on long flights and always asks for the vegetarian meal " * 5


@pytest.fixture
def local_capture(monkeypatch):
    monkeypatch.delenv("MEMOBS_CAPTURE_CONTENT", raising=False)
    local_content.clear()
    yield
    config.reload_settings()
    local_content.clear()


def run_agent(tmp_path, capture):
    otlp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(otlp))
    db = tmp_path / "agent.db"
    handle = memobs.configure(db_path=str(db), capture_content=capture, tracer_provider=provider)
    memobs.instrument("mem0")
    memory = Memory.from_config(mem0_config(tmp_path))
    memory.embedding_model = HashedWords()
    try:
        added = memory.add(LONG, user_id="alice", infer=False)
        memory.add("My dog is called Rex", user_id="alice", infer=False)
        for _ in range(3):
            memory.search("window seat", filters={"user_id": "alice"}, top_k=2)
    finally:
        memobs.uninstrument("mem0")
        memory.close()
        handle.shutdown()
        config.use_tracer_provider(None)
    return db, otlp.get_finished_spans(), added["results"][0]["id"]


def exported_text(spans) -> str:
    parts = []
    for span in spans:
        parts.append(json.dumps(dict(span.attributes), default=str))
        parts.extend(json.dumps(dict(e.attributes), default=str) for e in span.events)
    return "\n".join(parts)


def test_local_capture_keeps_text_in_the_file_only(tmp_path, local_capture):
    db, spans, seat_id = run_agent(tmp_path, "local")
    assert config.settings.capture_local and not config.settings.capture_content

    # no span carries any of it: the OTLP side sees hashes only
    text = exported_text(spans)
    assert "window seat" not in text and "Rex" not in text
    assert '"memobs.entity.content"' not in text

    # the file does: the first 280 characters, on injection and write events alike
    conn = sqlite3.connect(db)
    stored = {json.loads(a).get("memobs.entity.content") for (a,) in conn.execute(
        "SELECT attributes FROM events WHERE name IN ('memobs.injection', 'memobs.entity.write')")}
    conn.close()
    assert stored == {LONG[:280], "My dog is called Rex"}

    later = datetime.now(timezone.utc) + timedelta(days=60)
    with memobs.open_store(db) as store:
        titles = {c.entity_id: c.title for c in store.memory_review(now=later)}
    assert titles[seat_id] == LONG[:80]


def test_without_capture_the_file_has_ids_only(tmp_path, local_capture):
    db, spans, seat_id = run_agent(tmp_path, False)
    conn = sqlite3.connect(db)
    (count,) = conn.execute("SELECT COUNT(*) FROM events WHERE attributes LIKE '%entity.content\"%'").fetchone()
    conn.close()
    assert count == 0
    later = datetime.now(timezone.utc) + timedelta(days=60)
    with memobs.open_store(db) as store:
        titles = {c.entity_id: c.title for c in store.memory_review(now=later)}
    assert titles[seat_id] == seat_id


def test_environment_variable_and_bad_value(monkeypatch, local_capture):
    monkeypatch.setenv("MEMOBS_CAPTURE_CONTENT", "local")
    settings = config.reload_settings()
    assert (settings.capture_local, settings.capture_content) == (True, False)
    measured = settings.get_measurer().measure("Likes green tea in the morning")
    assert local_content.lookup(measured.content_hash) == "Likes green tea in the morning"
    assert measured.content_hash == content_hash("Likes green tea in the morning")
    with pytest.raises(ValueError, match="capture_content must be True, False or 'local'"):
        config.reload_settings(capture_content="everywhere")
