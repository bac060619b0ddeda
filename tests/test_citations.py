"""memobs.record_answer: marker and overlap citations of entities injected in the same trace."""

from __future__ import annotations

import pytest
from helpers import events

import memobs_otel as memobs
from memobs_otel import citations, config, plugins, trace_buffer
from memobs_otel.citations import Citation

FACTS = [
    {"id": "f1", "content": "The refund window is fourteen days from the delivery date"},
    {"id": "f2", "content": "Premium members get free express shipping on every order"},
    {"id": "f3", "content": "Gift cards cannot be exchanged for cash under any circumstances"},
]


@memobs.observe_retrieval(entity_type="fact", store="facts")
def search(query, k=3):
    return FACTS[:k]


@pytest.fixture(autouse=True)
def _fresh():
    trace_buffer.clear()
    citations.marker_pattern = None
    citations.overlap_threshold = None
    yield
    citations.marker_pattern = None
    citations.overlap_threshold = None


def _agent(tracer_provider, answer, k=3):
    with tracer_provider.get_tracer("test").start_as_current_span("agent"):
        search("refunds", k=k)
        return memobs.record_answer(answer)


def test_marker_and_overlap_citations(spans, tracer_provider):
    answer = ("You can get your money back: the refund window is fourteen days from the delivery date. "
              "Premium members also ship free [mem:f2].")
    cited = _agent(tracer_provider, answer)

    assert cited == [("fact", "f1"), ("fact", "f2")]
    assert events(spans, "memobs.citation") == [
        {"memobs.entity.type": "fact", "memobs.entity.id": "f1",
         "memobs.citation.method": "overlap", "memobs.citation.score": 1.0},
        {"memobs.entity.type": "fact", "memobs.entity.id": "f2",
         "memobs.citation.method": "marker", "memobs.citation.score": 1.0},
    ]
    # the citations are on the agent span, in the same trace as the injections
    agent = [s for s in spans.get_finished_spans() if s.name == "agent"][0]
    assert [e.name for e in agent.events] == ["memobs.citation", "memobs.citation"]


def test_typed_marker_must_match_the_type(spans, tracer_provider):
    assert _agent(tracer_provider, "See [fact:f3] and [playbook:f1].") == [("fact", "f3")]


def test_near_miss_below_threshold_is_not_a_citation(spans, tracer_provider):
    # f1 has 8 shingles; the answer repeats "the refund window is fourteen days" = 4 of them (0.5 would cite)
    # and only 3 here: "the refund window", "refund window is", "window is fourteen" -> 3/8 = 0.375
    answer = "Note that the refund window is fourteen or so."
    assert _agent(tracer_provider, answer) == []
    assert events(spans, "memobs.citation") == []

    citations.overlap_threshold = 0.375
    spans.clear()
    assert _agent(tracer_provider, answer) == [("fact", "f1")]
    assert events(spans, "memobs.citation")[0]["memobs.citation.score"] == 0.375


def test_threshold_from_environment(spans, tracer_provider, monkeypatch):
    monkeypatch.setenv("MEMOBS_CITATION_OVERLAP", "0.3")
    assert _agent(tracer_provider, "Note that the refund window is fourteen or so.") == [("fact", "f1")]


def test_entity_from_another_trace_is_never_cited(spans, tracer_provider):
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("first request"):
        search("refunds", k=3)
    with tracer.start_as_current_span("second request"):
        @memobs.observe_retrieval(entity_type="fact", store="facts")
        def other(query):
            return [{"id": "f9", "content": "Returns need the original receipt"}]

        other("returns")
        answer = "[mem:f1] the refund window is fourteen days from the delivery date [mem:f9]"
        assert memobs.record_answer(answer) == [("fact", "f9")]
    assert [e["memobs.entity.id"] for e in events(spans, "memobs.citation")] == ["f9"]


def test_custom_pattern_from_environment(spans, tracer_provider, monkeypatch):
    monkeypatch.setenv("MEMOBS_CITATION_PATTERN", r"\(source: (?P<id>\w+)\)")
    assert _agent(tracer_provider, "Gift cards are final (source: f3). [mem:f1]") == [("fact", "f3")]


def test_bad_pattern_falls_back_to_the_default(spans, tracer_provider):
    citations.marker_pattern = "([unclosed"
    assert _agent(tracer_provider, "[mem:f2]") == [("fact", "f2")]


def test_outside_a_trace_or_without_injections(spans, tracer_provider):
    assert memobs.record_answer("[mem:f1]") == []
    with tracer_provider.get_tracer("test").start_as_current_span("agent"):
        assert memobs.record_answer("[mem:f1]") == []
        assert memobs.record_answer(None) == []  # never raises
    assert events(spans, "memobs.citation") == []


def test_plugin_detector_merged_highest_score_wins(spans, tracer_provider):
    class Detector:
        @memobs.hookimpl
        def memobs_detect_citations(self, answer, entities):
            return [Citation("fact", "f2", "overlap", 0.2),      # lower than the marker: dropped
                    Citation("fact", "f3", "overlap", 0.9),
                    Citation("fact", "nope", "marker", 1.0),     # never injected: ignored
                    "garbage"]

    class Broken:
        @memobs.hookimpl
        def memobs_detect_citations(self, answer, entities):
            raise RuntimeError("boom")

    plugins.load_plugins()
    detector, broken = Detector(), Broken()
    plugins.pm.register(detector)
    plugins.pm.register(broken)
    try:
        assert _agent(tracer_provider, "[mem:f2]") == [("fact", "f2"), ("fact", "f3")]
    finally:
        plugins.pm.unregister(detector)
        plugins.pm.unregister(broken)
    assert [(e["memobs.entity.id"], e["memobs.citation.method"], e["memobs.citation.score"])
            for e in events(spans, "memobs.citation")] == [("f2", "marker", 1.0), ("f3", "overlap", 0.9)]


def test_kill_switch(spans, tracer_provider, monkeypatch):
    with tracer_provider.get_tracer("test").start_as_current_span("agent"):
        search("refunds")
        monkeypatch.setenv("MEMOBS_ENABLED", "false")
        config.reload_settings()
        assert memobs.record_answer("[mem:f1]") == []
    assert events(spans, "memobs.citation") == []


def test_without_a_span_a_memobs_context_is_the_turn(spans):
    """An agent that opens no span of its own: each turn in a memobs.context block."""

    @memobs.observe_retrieval(entity_type="fact", store="facts")
    def search(ids):
        return [{"id": i, "content": f"content of {i}"} for i in ids]

    with memobs.context(session_id="s1"):
        search(["a1", "a2"])
        search(["b1"])  # a second trace: the block holds both
        assert memobs.record_answer("Per [mem:a2] and [mem:b1].") == [("fact", "a2"), ("fact", "b1")]
    # the next turn only sees its own retrievals
    with memobs.context(session_id="s1"):
        search(["c1"])
        assert memobs.record_answer("Per [mem:a2] and [mem:c1].") == [("fact", "c1")]
    cited = [(e["memobs.entity.id"], e["memobs.citation.method"]) for e in events(spans, "memobs.citation")]
    assert cited == [("a2", "marker"), ("b1", "marker"), ("c1", "marker")]
    # each answer's citations on one span of its own, with the block's ids
    cite_spans = [s for s in spans.get_finished_spans() if s.name == "cite_memory"]
    assert [len(s.events) for s in cite_spans] == [2, 1]
    assert all(dict(s.attributes) == {"session.id": "s1", "gen_ai.conversation.id": "s1"} for s in cite_spans)
