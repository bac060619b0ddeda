"""Content leaves the process only when content capture is on."""

from __future__ import annotations

import pytest
from helpers import finished

import memobs_otel as memobs
from memobs_otel import config

SECRET = "the customer's card ends in 4242"
QUERY = "what card does the customer use"


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(query):
    return [{"id": "f1", "content": SECRET, "score": 0.9}]


def all_exported_values(exporter):
    values = []
    for span in exporter.get_finished_spans():
        values.append(span.name)
        values.extend(str(v) for v in span.attributes.values())
        for event in span.events:
            values.append(event.name)
            values.extend(str(v) for v in event.attributes.values())
    return values


def test_no_content_by_default(spans):
    search(QUERY)
    memobs.record_write("fact", "f1", "update", content=SECRET)
    values = all_exported_values(spans)
    assert not any(SECRET in v or QUERY in v for v in values)
    span = finished(spans)[0]
    assert "input.value" not in span.attributes
    assert "retrieval.documents.0.document.content" not in span.attributes
    assert all("memobs.entity.content" not in e.attributes for s in finished(spans) for e in s.events)


def _assert_content_present(spans):
    search(QUERY)
    memobs.record_write("fact", "f1", "update", content=SECRET)
    span, write = finished(spans)
    assert span.attributes["input.value"] == QUERY
    assert span.attributes["retrieval.documents.0.document.content"] == SECRET
    assert span.events[0].attributes["memobs.entity.content"] == SECRET
    assert write.events[0].attributes["memobs.entity.content"] == SECRET


def test_capture_by_argument(spans, tracer_provider):
    memobs.configure(db_path=None, tracer_provider=tracer_provider, capture_content=True)
    _assert_content_present(spans)


@pytest.mark.parametrize(("name", "value"), [
    ("MEMOBS_CAPTURE_CONTENT", "true"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT"),
])
def test_capture_by_environment(spans, tracer_provider, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    memobs.configure(db_path=None, tracer_provider=tracer_provider)
    _assert_content_present(spans)


def test_argument_false_beats_environment(spans, tracer_provider, monkeypatch):
    monkeypatch.setenv("MEMOBS_CAPTURE_CONTENT", "true")
    memobs.configure(db_path=None, tracer_provider=tracer_provider, capture_content=False)
    search(QUERY)
    assert not any(SECRET in v for v in all_exported_values(spans))
    assert config.settings.capture_content is False
