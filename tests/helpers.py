"""Helpers the tests share, imported as ``from helpers import events, finished``
(pytest puts ``tests/`` on ``sys.path``); fixtures live in ``conftest.py``.

What a recorded span holds (``finished``, ``events``, ``listed``); a store
recorded by hand at chosen times (``Agent``); a small agent run through
``configure()`` (``build_agent_db``); recording into a file (``record_to``,
``statuses``); the Collector's OTLP/JSON file lines and ``memobs ingest``
(``collector_line``, ``write_text``, ``ingest``); a plugin registered for a
block (``registered``). Only
memobs and the OpenTelemetry SDK are imported here: a framework's helpers
live in their own module (``mem0_helpers``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import memobs_otel as memobs
from memobs_otel import config, plugins
from memobs_otel.cli import main
from memobs_otel import semconv as sc
from memobs_otel.exporters import SQLiteSpanExporter


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


# --- a store recorded by hand (test_store_signals and the store/CLI tests) -----------------
# Spans recorded the way memobs records them, at chosen times, into one file
# through the real exporter. NOW is 2025-06-01.

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
UTC = timezone.utc


def day(month: int, dom: int, hour: int = 12) -> datetime:
    return datetime(2025, month, dom, hour, tzinfo=UTC)


def ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def fingerprint(entity_type: str, entity_id: str) -> tuple[str, str]:
    """A distinct content hash and a pseudo-random simhash per entity."""
    digest = hashlib.sha256(f"{entity_type}/{entity_id}".encode()).hexdigest()
    return digest[:32], digest[32:48]


class Agent:
    """Records spans the way memobs does, at chosen times, into one file."""

    def __init__(self, path):
        self.path = path
        self.exporter = SQLiteSpanExporter(path)
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def search(self, when, entities, user="u1", session="s1", cite=(), cite_twice=False):
        """One retrieval span injecting ``entities`` (dicts with type/id/...)."""
        span = self.tracer.start_span(
            "search_memory playbooks", start_time=ns(when),
            attributes={sc.USER_ID: user, sc.SESSION_ID: session},
        )
        for rank, entity in enumerate(entities):
            entity = dict(entity)
            etype, eid = entity.pop("type"), entity.pop("id")
            content_hash, simhash = fingerprint(etype, eid)
            attrs = {
                sc.ENTITY_TYPE: etype, sc.ENTITY_ID: eid, sc.ENTITY_RANK: rank,
                sc.ENTITY_TOKENS: entity.pop("tokens", 100),
                sc.ENTITY_CONTENT_HASH: entity.pop("content_hash", content_hash),
                sc.ENTITY_SIMHASH: entity.pop("simhash", simhash),
            }
            attrs.update({sc.LIFECYCLE_ATTRIBUTES[k]: v for k, v in entity.items()})
            span.add_event(sc.EVENT_INJECTION, attrs, timestamp=ns(when))
        for etype, eid in cite:
            for _ in range(2 if cite_twice else 1):
                span.add_event(sc.EVENT_CITATION, {
                    sc.ENTITY_TYPE: etype, sc.ENTITY_ID: eid,
                    sc.CITATION_METHOD: sc.CITATION_EXPLICIT, sc.CITATION_SCORE: 1.0,
                }, timestamp=ns(when))
        span.end(end_time=ns(when) + 1000)

    def write(self, when, etype, eid, op="create", user="u1", **fields):
        content_hash, simhash = fingerprint(etype, eid)
        attrs = {
            sc.ENTITY_TYPE: etype, sc.ENTITY_ID: eid, sc.WRITE_OP: op, sc.USER_ID: user,
            sc.ENTITY_CONTENT_HASH: fields.pop("content_hash", content_hash),
            sc.ENTITY_SIMHASH: fields.pop("simhash", simhash),
        }
        if op == "delete":
            attrs[sc.ENTITY_STATUS] = "deleted"
        if op == "archive":
            attrs[sc.ENTITY_STATUS] = "archived"
        attrs.update({sc.LIFECYCLE_ATTRIBUTES[k]: v for k, v in fields.items()})
        span = self.tracer.start_span(sc.WRITE_SPAN_NAMES[op], start_time=ns(when),
                                      attributes={sc.USER_ID: user})
        span.add_event(sc.EVENT_WRITE, attrs, timestamp=ns(when))
        span.end(end_time=ns(when) + 1000)

    def store(self):
        self.provider.shutdown()
        return memobs.open_store(self.path)


def pb(eid, **fields):
    return {"type": "pb", "id": eid, **fields}


# --- a small agent run through configure() (test_report, the doctor, the browser test) ------

MALICIOUS_TITLE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'

PLAYBOOKS = {
    "pb-refund": "Refunds over 100 EUR need a manager's approval before they are paid.",
    "pb-tone": "Answer in the customer's language, briefly and politely.",
    "pb-refund-old": "Refunds over 100 EUR need approval.",
}
FACTS = {"f-evil": "The customer's preferred channel is e-mail."}


def build_agent_db(db_path: Path) -> None:
    """A small agent run recorded through the real pipeline into ``db_path``.

    Turns (each its own trace):
      1. search pb-refund, pb-tone; cite pb-refund          (user u-1, session s-1)
      2. search pb-refund, pb-tone; cite pb-refund          (user u-1, session s-1)
      3. search pb-refund, pb-tone, pb-refund-old           (user u-2, session s-2)
      4. search pb-tone                                     (user u-2, session s-2)
      5. search facts: f-evil (malicious title); cite it    (user u-1, session s-3)
    plus a write marking pb-refund-old superseded by pb-refund.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
    handle = memobs.configure(db_path=str(db_path), tracer_provider=provider)
    tracer = provider.get_tracer("test-agent")

    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def search_playbooks(query: str, ids: list[str]):
        return [{"id": i, "content": PLAYBOOKS[i], "score": 0.9} for i in ids]

    @memobs.observe_retrieval(entity_type="fact", store="facts")
    def search_facts(query: str):
        return [{"id": "f-evil", "content": FACTS["f-evil"], "title": MALICIOUS_TITLE}]

    def turn(user, session, fn, *args, cite=()):
        with memobs.context(user_id=user, session_id=session), tracer.start_as_current_span("turn"):
            fn(*args)
            for entity_type, entity_id in cite:
                memobs.cite(entity_type, entity_id)

    try:
        turn("u-1", "s-1", search_playbooks, "refund", ["pb-refund", "pb-tone"],
             cite=[("playbook", "pb-refund")])
        turn("u-1", "s-1", search_playbooks, "refund?", ["pb-refund", "pb-tone"],
             cite=[("playbook", "pb-refund")])
        turn("u-2", "s-2", search_playbooks, "refund!", ["pb-refund", "pb-tone", "pb-refund-old"])
        turn("u-2", "s-2", search_playbooks, "tone", ["pb-tone"])
        turn("u-1", "s-3", search_facts, "channel", cite=[("fact", "f-evil")])
        memobs.record_write("playbook", "pb-refund-old", "update", superseded_by="pb-refund")
        assert handle.force_flush(10_000)
    finally:
        handle.shutdown()
        provider.shutdown()


# --- recording into a file (the inventory tests) ----------------------------------------------

def record_to(db):
    """memobs records through a new provider exporting into the SQLite file ``db``
    (the ``_clean_memobs_env`` fixture puts the session provider back afterwards)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SQLiteSpanExporter(str(db))))
    config.use_tracer_provider(provider)
    return provider


def statuses(db):
    """entity id -> status of every entity the file ``db`` knows."""
    with sqlite3.connect(str(db)) as conn:
        return dict(conn.execute("SELECT entity_id, status FROM entities ORDER BY entity_id"))


# --- plugins ----------------------------------------------------------------------------------

@contextmanager
def registered(plugin):
    """``plugin`` registered with memobs's plugin manager for the block, unregistered after."""
    plugins.pm.register(plugin)
    try:
        yield plugin
    finally:
        plugins.pm.unregister(plugin)


# --- the Collector's files and memobs ingest (test_ingest, test_inventory) ---------------------

def collector_line(spans) -> str:
    """One ExportTraceServiceRequest as the Collector's file exporter writes it."""
    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                span.setdefault("parentSpanId", "")
    return json.dumps(request, separators=(",", ":"))


def collector_lines(spans, per_line: int = 2) -> list[str]:
    """Several requests, as the batch processor and the Collector split them."""
    return [collector_line(spans[i:i + per_line]) for i in range(0, len(spans), per_line)]


def write_text(path: Path, lines: list[str]) -> Path:
    """``lines`` written to ``path``, one per line, as the Collector's file exporter does."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def ingest(*args: str):
    """``memobs ingest ARGS...`` through click's CliRunner."""
    return CliRunner().invoke(main, ["ingest", *args], catch_exceptions=False)
