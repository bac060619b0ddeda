"""One-shot iterator results (issue 17, item 1): the caller gets every item, lazily.

A decorated or instrumented search that returns a generator, a ``map``, an
endless stream or an async generator is handed back as a transparent proxy;
each item is recorded as the caller takes it and the span ends when the
iterator is exhausted, closed or dropped (``memobs_otel.streaming``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import types

import pytest
from helpers import events, finished
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import memobs_otel as memobs
from memobs_otel import config, semconv as sc

DOCS = [{"id": "d1", "content": "refunds take five days"},
        {"id": "d2", "content": "shipping is free over fifty"},
        {"id": "d3", "content": "support answers within a day"}]


def tokens(text):
    return config.settings.get_measurer().measure(text).tokens


def summary(spans):
    return [(e["memobs.entity.id"], e["memobs.entity.rank"], e["memobs.entity.tokens"]) for e in events(spans)]


def expected(docs):
    return [(d["id"], rank, tokens(d["content"])) for rank, d in enumerate(docs)]


def endless_docs():
    for i in itertools.count():
        yield {"id": f"s{i}", "content": f"stream item number {i}"}


def check_span(spans, docs, **more):
    (span,) = finished(spans)
    assert span.attributes["memobs.injection.count"] == len(docs)
    assert span.attributes["memobs.injection.tokens"] == sum(tokens(d["content"]) for d in docs)
    assert span.attributes[sc.GEN_AI_MEMORY_RECORD_COUNT] == len(docs)  # the constant: its value may be renamed
    for rank, doc in enumerate(docs):
        assert span.attributes[f"retrieval.documents.{rank}.document.id"] == doc["id"]
    for key, value in more.items():
        assert span.attributes[key] == value
    return span


# --- sync -----------------------------------------------------------------------------

def test_generator_result_gives_every_item_and_records_each_as_taken(spans):
    @memobs.observe_retrieval(entity_type="fact", store="facts")
    def search(q):
        yield from DOCS

    result = search("q")
    assert isinstance(result, types.GeneratorType)  # the proxy passes isinstance
    assert finished(spans) == []  # nothing read yet: the span is still open
    assert next(result) == DOCS[0]
    assert summary(spans) == []  # the open span's events are not exported yet
    assert list(result) == DOCS[1:]  # before the fix: [] (memobs had consumed it)
    assert summary(spans) == expected(DOCS)
    check_span(spans, DOCS)


def test_map_result(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return map(dict, DOCS)

    result = search("q")
    assert isinstance(result, map)
    assert not hasattr(result, "send")  # a plain iterator does not gain generator methods
    assert [d["id"] for d in result] == ["d1", "d2", "d3"]
    assert summary(spans) == expected(DOCS)
    check_span(spans, DOCS)


def test_endless_generator_caller_takes_three_and_stops(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return endless_docs()

    stream = search("q")  # before the fix: never returned
    taken = list(itertools.islice(stream, 3))
    assert [d["id"] for d in taken] == ["s0", "s1", "s2"]
    assert finished(spans) == []
    del stream  # dropped: the span ends with what was taken
    gc.collect()
    assert summary(spans) == expected(taken)
    check_span(spans, taken)


def test_endless_generator_closed_after_break(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        yield from endless_docs()

    stream = search("q")
    taken = []
    for doc in stream:
        taken.append(doc)
        if len(taken) == 3:
            break
    stream.close()
    assert [d["id"] for d in taken] == ["s0", "s1", "s2"]
    assert summary(spans) == expected(taken)
    check_span(spans, taken)
    with pytest.raises(StopIteration):
        next(stream)  # closed: the generator's own behaviour, recording nothing more
    assert len(finished(spans)) == 1


def test_generator_send_and_throw_pass_through(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        doc = DOCS[0]
        while True:
            try:
                wanted = yield doc
            except KeyError:
                wanted = 2
            if wanted is None:
                return
            doc = DOCS[wanted]

    gen = search("q")
    assert next(gen) == DOCS[0]
    assert gen.send(1) == DOCS[1]
    assert gen.throw(KeyError("x")) == DOCS[2]
    with pytest.raises(StopIteration):
        gen.send(None)
    assert summary(spans) == expected(DOCS)


class Broken(Exception):
    pass


def test_generator_raising_midway_records_the_items_taken_and_the_error(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        yield DOCS[0]
        raise Broken("index gone")

    gen = search("q")
    assert next(gen) == DOCS[0]
    with pytest.raises(Broken, match="index gone"):
        next(gen)
    assert summary(spans) == expected(DOCS[:1])
    span = check_span(spans, DOCS[:1], **{"error.type": "Broken"})
    assert not span.status.is_ok


def test_instrumented_dotted_path_returning_a_generator(spans):
    module = types.ModuleType("memobs_stream_target")
    exec("def search(q):\n    return (dict(d) for d in DOCS)\n", module.__dict__)
    module.DOCS = DOCS
    sys.modules[module.__name__] = module
    try:
        assert memobs.instrument("memobs_stream_target:search", entity_type="fact") == ["memobs_stream_target:search"]
        assert list(module.search("q")) == DOCS
    finally:
        memobs.uninstrument("memobs_stream_target:search")
        del sys.modules[module.__name__]
    assert summary(spans) == expected(DOCS)
    check_span(spans, DOCS)


def test_iterator_inside_a_list_result_is_not_consumed(spans):
    inner = iter(DOCS)

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [DOCS[0], inner]

    result = search("q")
    assert result[1] is inner
    assert list(inner) == DOCS  # before the fix: [] (memobs had read it)
    assert summary(spans) == expected(DOCS[:1])


def test_stream_past_the_event_limit_goes_on_overflow_children():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_events=3))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config.use_tracer_provider(provider)  # the conftest fixture puts the shared one back
    docs = [{"id": f"o{i}", "content": f"overflow item {i}"} for i in range(8)]

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        yield from docs

    assert list(search("q")) == docs
    spans = exporter.get_finished_spans()
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (parent,) = by_name["search_memory"]
    children = by_name["memobs.injection.overflow"]
    assert [e.attributes["memobs.entity.id"] for e in parent.events] == ["o0", "o1", "o2"]
    assert [(c.attributes["memobs.overflow.first_rank"], [e.attributes["memobs.entity.rank"] for e in c.events])
            for c in children] == [(3, [3, 4, 5]), (6, [6, 7])]
    assert all(c.parent.span_id == parent.context.span_id for c in children)
    assert parent.attributes["memobs.injection.count"] == 8


def test_kill_switch_returns_the_generator_itself(spans, monkeypatch):
    gen = iter(DOCS)

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return gen

    monkeypatch.setenv("MEMOBS_ENABLED", "false")
    config.reload_settings()
    assert search("q") is gen
    assert finished(spans) == []


def test_nested_search_inside_a_generator_body_counts_once(spans):
    @memobs.observe_retrieval(entity_type="fact", store="inner")
    def inner(q):
        return DOCS

    @memobs.observe_retrieval(entity_type="fact", store="outer")
    def outer(q):
        yield from inner(q)  # runs while the caller consumes

    assert list(outer("q")) == DOCS
    assert summary(spans) == expected(DOCS)  # not twice
    inner_span, outer_span = finished(spans)
    assert inner_span.attributes["memobs.retrieval.nested"] is True
    assert inner_span.parent.span_id == outer_span.context.span_id


def test_lists_and_tuples_are_recorded_at_once_as_before(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return tuple(DOCS)

    result = search("q")
    assert type(result) is tuple and result == tuple(DOCS)
    assert summary(spans) == expected(DOCS)


# --- async ----------------------------------------------------------------------------

def test_async_generator_result(spans):
    @memobs.observe_retrieval(entity_type="fact")
    async def search(q):
        for doc in DOCS:
            await asyncio.sleep(0)
            yield doc

    async def consume():
        gen = search("q")
        assert finished(spans) == []
        return [doc async for doc in gen]

    assert asyncio.run(consume()) == DOCS
    assert summary(spans) == expected(DOCS)
    check_span(spans, DOCS)


def test_async_function_returning_an_endless_async_generator_caller_takes_three(spans):
    async def endless():
        for doc in endless_docs():
            yield doc

    @memobs.observe_retrieval(entity_type="fact")
    async def search(q):
        return endless()

    async def consume():
        gen = await search("q")  # before the fix: never returned
        taken = []
        async for doc in gen:
            taken.append(doc)
            if len(taken) == 3:
                break
        await gen.aclose()
        return taken

    taken = asyncio.run(consume())
    assert [d["id"] for d in taken] == ["s0", "s1", "s2"]
    assert summary(spans) == expected(taken)
    check_span(spans, taken)
