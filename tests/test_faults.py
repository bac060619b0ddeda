"""Never break the host: memobs failures never reach the decorated call."""

from __future__ import annotations

import logging

import pytest
from helpers import events, finished, registered
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

import memobs_otel as memobs
from memobs_otel import config, tokens


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(q):
    return [{"id": "f1", "content": "twelve characters"}]


def warnings_from_memobs(caplog):
    return [r for r in caplog.records if r.name == "memobs_otel" and r.levelno == logging.WARNING]


class RaisingExtractor:
    @memobs.hookimpl
    def memobs_extract_entities(self, result, entity_type):
        raise RuntimeError("extractor bug")


class RaisingRedactor:
    @memobs.hookimpl
    def memobs_entity_attributes(self, entity, attributes):
        raise ValueError("redactor bug")


class Redactor:
    @memobs.hookimpl
    def memobs_entity_attributes(self, entity, attributes):
        attributes.pop("memobs.entity.simhash", None)
        attributes.pop("memobs.entity.rank", None)  # every attribute is there to redact
        attributes["team"] = "support"


class CustomExtractor:
    @memobs.hookimpl
    def memobs_extract_entities(self, result, entity_type):
        if isinstance(result, dict) and "hits" in result:
            from memobs_otel.entities import Entity
            return [Entity(entity_type, h["key"], h["body"], rank=i) for i, h in enumerate(result["hits"])]
        return None


def test_extractor_plugin_raising_falls_back_to_builtin(spans, caplog):
    with registered(RaisingExtractor()):
        assert search("q") == [{"id": "f1", "content": "twelve characters"}]
        search("q")
    assert [e["memobs.entity.id"] for e in events(spans)] == ["f1", "f1"]
    assert len(warnings_from_memobs(caplog)) == 1  # once per kind, not per call


def test_attribute_hook_raising_keeps_event(spans, caplog):
    with registered(RaisingRedactor()):
        search("q")
    assert [e["memobs.entity.id"] for e in events(spans)] == ["f1"]
    assert len(warnings_from_memobs(caplog)) == 1


def test_attribute_hook_redacts_and_enriches(spans):
    with registered(Redactor()):
        search("q")
    (event,) = events(spans)
    assert "memobs.entity.simhash" not in event
    assert "memobs.entity.rank" not in event
    assert event["team"] == "support"


def test_extractor_plugin_takes_over_its_shape(spans):
    with registered(CustomExtractor()):
        @memobs.observe_retrieval(entity_type="kb")
        def find(q):
            return {"hits": [{"key": "k1", "body": "b1"}, {"key": "k2", "body": "b2"}]}

        find("q")
    assert [(e["memobs.entity.id"], e["memobs.entity.rank"]) for e in events(spans)] == [("k1", 0), ("k2", 1)]


def test_builtin_extractor_bug_still_returns_value(spans, caplog, monkeypatch):
    from memobs_otel import recording

    def broken(result, entity_type):
        raise TypeError("boom")

    monkeypatch.setattr(recording, "extract_entities", broken)
    assert search("q") == [{"id": "f1", "content": "twelve characters"}]
    (span,) = finished(spans)  # the span still ends
    assert span.events == ()
    assert len(warnings_from_memobs(caplog)) == 1


def test_tokenizer_unavailable_estimates_and_marks(spans, tracer_provider, caplog):
    try:
        memobs.configure(db_path=None, tracer_provider=tracer_provider, encoding="no_such_encoding")
        search("q")
        (span,) = finished(spans)
        assert span.attributes["memobs.tokens.estimated"] is True
        assert span.attributes["memobs.tokenizer"] == "estimate/chars_per_token=4"
        assert span.events[0].attributes["memobs.entity.tokens"] == 5  # ceil(17 / 4)
        search("q")
        assert len([r for r in warnings_from_memobs(caplog) if "no_such_encoding" in r.getMessage()]) == 1
    finally:
        tokens.reset_tokenizers()
        config.reload_settings()


def test_tokenizer_never_downloads(monkeypatch):
    """An encoding with no offline copy and no local cache is estimated, not fetched."""
    import tiktoken.load

    fetched = []
    monkeypatch.setattr(tiktoken.load, "read_file", lambda path: fetched.append(path) or b"")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    tokens.reset_tokenizers()
    try:
        tok = tokens.get_tokenizer("p50k_base")
        assert tok.estimated is True
        assert fetched == []
    finally:
        tokens.reset_tokenizers()


class ExplodingExporter(SpanExporter):
    def export(self, spans):
        raise OSError("collector down")

    def shutdown(self):
        pass


def test_exporter_raising_never_reaches_caller():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ExplodingExporter()))
    config.use_tracer_provider(provider)
    assert search("q") == [{"id": "f1", "content": "twelve characters"}]


def test_broken_tracer_falls_back_to_plain_call(monkeypatch, caplog):
    class BrokenTracer:
        def start_span(self, *a, **k):
            raise RuntimeError("no tracer")

    monkeypatch.setattr(config, "_tracer", BrokenTracer())
    assert search("q") == [{"id": "f1", "content": "twelve characters"}]
    assert len(warnings_from_memobs(caplog)) == 1


@pytest.mark.parametrize(("name", "value"), [("MEMOBS_ENABLED", "false"), ("OTEL_SDK_DISABLED", "true")])
def test_kill_switch_no_span_function_still_works(spans, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    config.reload_settings()
    assert search("q") == [{"id": "f1", "content": "twelve characters"}]
    memobs.record_write("fact", "f1", "create", content="x")
    memobs.cite("fact", "f1")
    memobs.record_injection(["x"])
    assert finished(spans) == []


def test_configure_with_sdk_disabled_sets_nothing_up(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    handle = memobs.configure(db_path=None)
    assert handle.tracer_provider is None
    assert handle.force_flush() is True
    handle.shutdown()


def test_no_provider_set_up_says_so_once(caplog):
    """instrument()/decorate without configure(): nothing can be recorded, and memobs says why, once."""
    import logging

    from opentelemetry import trace as trace_api

    from memobs_otel import guard, recording

    @memobs.observe_retrieval(entity_type="fact")
    def search(query):
        return [{"id": "f1", "content": "Refunds take five days"}]

    guard.reset_logged()
    recording._warned_no_provider = False
    config.use_tracer_provider(trace_api.NoOpTracerProvider())
    try:
        with caplog.at_level(logging.WARNING, logger="memobs_otel"):
            assert search("refunds") == [{"id": "f1", "content": "Refunds take five days"}]
            assert search("refunds") == [{"id": "f1", "content": "Refunds take five days"}]
        assert [r.getMessage() for r in caplog.records].count(recording.NO_PROVIDER_MESSAGE + "; memobs will not "
                                                              "repeat this warning") == 1
    finally:
        config.use_tracer_provider(None)
        recording._warned_no_provider = False
