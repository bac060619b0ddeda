"""Chroma plugin against the real chromadb: EphemeralClient in process; AsyncHttpClient against a local
``chroma run`` server (the one chromadb ships) on loopback.

Embeddings are always passed explicitly and collections are created with ``embedding_function=None``:
Chroma's default embedding function downloads a model, and must never run here.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from backend_process import free_port
from helpers import events, finished, listed
from vector_client_helpers import (
    ENC,
    KB_TEXTS,
    between,
    check_langchain_over_client,
    check_langchain_over_client_alone,
    measured,
)

os.environ["ANONYMIZED_TELEMETRY"] = "False"

pytest.importorskip("chromadb")

import chromadb
from chromadb.api.models.AsyncCollection import AsyncCollection
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel.fingerprint import content_hash

SETTINGS = Settings(anonymized_telemetry=False)

IDS = ["n1", "n2", "n3"]
EMBEDDINGS = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0]]
DOCUMENTS = ["Refunds take five days", "Express shipping is free", None]
METADATAS = [{"created_at": "2024-01-01T00:00:00+00:00", "topic": "refunds"},
             {"title": "Shipping", "status": "active", "version": 3},
             {"kind": "gift", "updated_at": "2025-02-02T00:00:00+00:00"}]
# n3 has no document: its text is its metadata as JSON
TEXTS = {"n1": DOCUMENTS[0], "n2": DOCUMENTS[1], "n3": json.dumps(METADATAS[2], sort_keys=True)}
LIFECYCLE = {
    "n1": {"memobs.entity.created_at": "2024-01-01T00:00:00+00:00"},
    "n2": {"memobs.entity.title": "Shipping", "memobs.entity.status": "active", "memobs.entity.version": 3},
    "n3": {"memobs.entity.updated_at": "2025-02-02T00:00:00+00:00"},
}
QUERY = [1.0, 0.05, 0.0]


def injection(rid, rank, score=None, entity_type="document"):
    event = {"memobs.entity.type": entity_type, "memobs.entity.id": rid, **measured(TEXTS[rid]), **LIFECYCLE[rid]}
    if score is not None:
        event["memobs.entity.score"] = score
    event["memobs.entity.rank"] = rank
    return event


@pytest.fixture(scope="module")
def client():
    return chromadb.EphemeralClient(settings=SETTINGS)


@pytest.fixture
def notes(client):
    name = f"notes-{uuid.uuid4().hex[:8]}"  # the ephemeral client is shared by the module's tests
    collection = client.create_collection(name, embedding_function=None)
    yield collection
    client.delete_collection(name)


@pytest.fixture
def instrumented():
    assert memobs.instrument("chroma") == ["chroma"]
    yield
    memobs.uninstrument("chroma")


def check_adds(spans, store, before):
    writes = events(spans, "memobs.entity.write")
    for write in writes:
        if write["memobs.entity.id"] != "n1":
            assert between(write.pop("memobs.entity.created_at"), before)  # the time of the call
    assert writes == [{"memobs.entity.type": "document", "memobs.entity.id": rid, **measured(TEXTS[rid]),
                       **LIFECYCLE[rid], "memobs.write.op": "create"} for rid in IDS]
    assert [s.name for s in finished(spans)] == ["update_memory"] * 3
    assert {s.attributes["gen_ai.memory.store.id"] for s in finished(spans)} == {store}


def check_query(spans, result, store):
    got = list(zip(result["ids"][0], result["distances"][0]))
    assert [rid for rid, _ in got] == IDS
    assert events(spans) == [injection(rid, rank, distance) for rank, (rid, distance) in enumerate(got)]
    (span,) = finished(spans)
    assert span.name == f"retrieval {store}"
    attrs = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": store,
        "openinference.span.kind": "RETRIEVER",
        "gen_ai.request.top_k": 3,
        "memobs.record.count": 3,
        "memobs.injection.count": 3,
        "memobs.injection.tokens": sum(len(ENC.encode_ordinary(TEXTS[rid])) for rid in IDS),
        "memobs.tokenizer": "tiktoken/cl100k_base",
        **listed([(rid, distance, LIFECYCLE[rid]) for rid, distance in got]),
    }
    for n, (rid, distance) in enumerate(got):
        attrs[f"retrieval.documents.{n}.document.id"] = rid
        attrs[f"retrieval.documents.{n}.document.score"] = distance
    assert dict(span.attributes) == attrs  # no content, no query text: capture is off


def test_add_query_get_exact_events(spans, instrumented, notes):
    before = datetime.now(timezone.utc)
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
    check_adds(spans, notes.name, before)

    spans.clear()
    check_query(spans, notes.query(query_embeddings=[QUERY], n_results=3), notes.name)

    spans.clear()
    got = notes.get(ids=["n3", "n1"])
    assert events(spans) == [injection(rid, rank) for rank, rid in enumerate(got["ids"])]
    (span,) = finished(spans)
    assert "gen_ai.request.top_k" not in span.attributes
    spans.clear()
    notes.get(where={"topic": "refunds"}, limit=5)
    assert events(spans) == [injection("n1", 0)]
    assert finished(spans)[0].attributes["gen_ai.request.top_k"] == 5


def test_several_queries_include_and_results_unchanged(spans, notes):
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
    calls = [
        dict(query_embeddings=[QUERY, [0.0, 1.0, 0.0]], n_results=2),
        dict(query_embeddings=[QUERY], n_results=2, include=["metadatas", "documents"]),
        dict(query_embeddings=[[0.0, 1.0, 0.0]], n_results=1, include=["distances"]),
    ]
    plain = [notes.query(**kwargs) for kwargs in calls]
    plain_get = notes.get()
    memobs.instrument("chroma")
    try:
        results = []
        for kwargs in calls:
            spans.clear()
            results.append((notes.query(**kwargs), events(spans)))
        assert notes.get() == plain_get
    finally:
        memobs.uninstrument("chroma")
    assert [result for result, _ in results] == plain

    (two, two_events), (no_distances, nd_events), (bare, bare_events) = results
    # the second query returns n3 and n2 again: listed once, at its first place
    assert two["ids"] == [["n1", "n2"], ["n3", "n2"]]
    ranked = [(two["ids"][0][0], two["distances"][0][0]), (two["ids"][0][1], two["distances"][0][1]),
              (two["ids"][1][0], two["distances"][1][0])]
    assert two_events == [injection(rid, rank, d) for rank, (rid, d) in enumerate(ranked)]
    assert nd_events == [injection("n1", 0), injection("n2", 1)]  # no distances: no scores
    # neither documents nor metadatas included: the text is unknown (0 tokens), no lifecycle fields
    assert bare_events == [{"memobs.entity.type": "document", "memobs.entity.id": "n3", **measured(""),
                            "memobs.entity.score": bare["distances"][0][0], "memobs.entity.rank": 0}]


def test_upsert_update_delete(spans, instrumented, notes):
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
    spans.clear()
    before = datetime.now(timezone.utc)
    notes.upsert(ids="n1", embeddings=[1.0, 0.0, 0.1], documents="Refunds take three days")
    notes.update(ids=["n2"], metadatas=[{"status": "archived"}])
    notes.upsert(ids=["n4"], embeddings=[[0.0, 0.0, 1.0]], documents=["New"],
                 metadatas=[{"updated_at": "2026-01-01T00:00:00+00:00"}])
    writes = events(spans, "memobs.entity.write")
    assert all(between(w.pop("memobs.entity.updated_at"), before) for w in writes[:2])
    assert writes == [
        {"memobs.entity.type": "document", "memobs.entity.id": "n1", **measured("Refunds take three days"),
         "memobs.write.op": "update"},
        {"memobs.entity.type": "document", "memobs.entity.id": "n2", "memobs.entity.status": "archived",
         "memobs.write.op": "update"},  # no documents given: content unknown
        {"memobs.entity.type": "document", "memobs.entity.id": "n4", **measured("New"),
         "memobs.entity.updated_at": "2026-01-01T00:00:00+00:00", "memobs.write.op": "update"},
    ]
    assert [s.name for s in finished(spans)] == ["update_memory"] * 3

    spans.clear()
    notes.delete(ids=["n1"])
    (delete,) = events(spans, "memobs.entity.write")
    assert between(delete.pop("memobs.entity.updated_at"), before)
    assert delete == {"memobs.entity.type": "document", "memobs.entity.id": "n1", "memobs.write.op": "delete",
                      "memobs.entity.status": "deleted"}

    spans.clear()
    notes.delete(where={"kind": "gift"})  # by filter: which ids is unknown, the count is Chroma's
    notes.delete(ids=["n2", "n4"], where={"status": "archived"})  # only n2 matches: not every id deleted
    notes.delete(ids=["n4"], where={"updated_at": "2026-01-01T00:00:00+00:00"})  # every id deleted
    first, second, third = finished(spans)
    for span in (first, second):
        assert (span.name, dict(span.attributes), list(span.events)) == (
            "delete_memory", {"gen_ai.operation.name": "delete_memory", "gen_ai.memory.store.id": notes.name,
                              "memobs.record.count": 1}, [])
    assert [(e["memobs.entity.id"], e["memobs.write.op"]) for e in events(spans, "memobs.entity.write")] == [
        ("n4", "delete")]
    assert notes.count() == 0


def test_options_capture_and_failures(spans, notes):
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
    memobs.instrument("chroma", entity_type=lambda e: f"kb-{e.entity_id}", store="kb", operation="search_memory")
    try:
        config.reload_settings(capture_content=True)
        spans.clear()
        result = notes.query(query_embeddings=[QUERY], n_results=1)
        with pytest.raises(ValueError):
            notes.add(ids=["x1", "x2"], embeddings=[[1.0, 0.0, 0.0]], documents=["only one"])
        notes.add(ids=["n5"], embeddings=[[0.5, 0.5, 0.0]], documents=["Captured"])
    finally:
        memobs.uninstrument("chroma")
    read, write = finished(spans)  # the failed add recorded nothing
    assert (read.name, read.attributes["gen_ai.memory.store.id"]) == ("search_memory kb", "kb")
    assert read.attributes["retrieval.documents.0.document.content"] == DOCUMENTS[0]
    assert events(spans) == [{**injection("n1", 0, result["distances"][0][0], "kb-n1"),
                              "memobs.entity.content": DOCUMENTS[0]}]
    (w,) = events(spans, "memobs.entity.write")
    assert (w["memobs.entity.type"], w["memobs.entity.content"]) == ("kb-n5", "Captured")
    assert write.attributes["gen_ai.memory.store.id"] == "kb"


def test_instrument_uninstrument_instrument_again(spans, notes):
    names = ("query", "get", "add", "upsert", "update", "delete")
    originals = {(cls, n): cls.__dict__[n] for cls in (Collection, AsyncCollection) for n in names}
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)

    assert "chroma" in memobs.instrument()  # every installed framework
    memobs.instrument("chroma")
    spans.clear()
    notes.query(query_embeddings=[QUERY], n_results=1)
    assert len(events(spans)) == 1  # wrapped once, not twice

    memobs.uninstrument()
    assert {key: key[0].__dict__[key[1]] for key in originals} == originals
    spans.clear()
    notes.query(query_embeddings=[QUERY], n_results=1)
    notes.delete(ids=["n3"])
    assert finished(spans) == []

    memobs.instrument("chroma")
    try:
        notes.get(ids=["n2"])
        assert [e["memobs.entity.id"] for e in events(spans)] == ["n2"]
    finally:
        memobs.uninstrument("chroma")


# --- async: AsyncCollection needs AsyncHttpClient, i.e. a server ------------------------------------
# chromadb has no in-process async client; the server it ships (`chroma run`) is started here on
# loopback with a temporary data directory, and stopped after the test.


@pytest.fixture
def chroma_server(tmp_path):
    exe = Path(sys.executable).with_name("chroma")
    exe = str(exe) if exe.exists() else shutil.which("chroma")
    if exe is None:
        pytest.skip("the chroma CLI (chromadb's server) is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("chroma run did not start")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_async_collection_against_a_local_server(spans, instrumented, chroma_server):
    async def run():
        client = await chromadb.AsyncHttpClient(host="127.0.0.1", port=chroma_server, settings=SETTINGS)
        notes = await client.create_collection("notes", embedding_function=None)
        before = datetime.now(timezone.utc)
        await notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
        check_adds(spans, "notes", before)
        spans.clear()
        check_query(spans, await notes.query(query_embeddings=[QUERY], n_results=3), "notes")
        spans.clear()
        got = await notes.get(ids=["n2"])
        assert events(spans) == [injection("n2", 0)] and got["ids"] == ["n2"]
        spans.clear()
        await notes.upsert(ids=["n2"], embeddings=[[0.9, 0.1, 0.0]], documents=["Shipping costs 5 euros"])
        await notes.delete(ids=["n3"])
        assert [(e["memobs.entity.id"], e["memobs.write.op"]) for e in events(spans, "memobs.entity.write")] == [
            ("n2", "update"), ("n3", "delete")]

    asyncio.run(run())


# --- nesting: a LangChain retriever over Chroma -------------------------------------------------------

KB = dict(zip(("kb-a", "kb-b", "kb-c"), KB_TEXTS))


@pytest.fixture
def kb_store(client):
    langchain_chroma = pytest.importorskip("langchain_chroma")
    from langchain_core.embeddings import DeterministicFakeEmbedding

    name = f"kb-{uuid.uuid4().hex[:8]}"
    # LangChain embeds; the Chroma collection gets no embedding function of its own
    yield langchain_chroma.Chroma(collection_name=name, client=client,
                                  embedding_function=DeterministicFakeEmbedding(size=16)), name
    client.delete_collection(name)


def test_langchain_retriever_over_chroma_counted_once(spans, kb_store):
    store, name = kb_store
    # LangChain's Chroma score is Chroma's distance: the same score either way
    check_langchain_over_client(spans, store, KB, "chroma", "Chroma", name, lambda d: d.id)


def test_langchain_retriever_over_chroma_with_only_the_chroma_plugin(spans, kb_store):
    store, name = kb_store
    check_langchain_over_client_alone(spans, store, KB, "chroma", name, lambda d: d.id)


# --- mem0 over Chroma: mem0's own calls are mem0's to record -------------------------------------------


def test_mem0_calls_recorded_by_mem0_only_while_it_is_instrumented(spans, tmp_path):
    pytest.importorskip("mem0")
    from mem0 import Memory
    from mem0_helpers import HashedWords, mem0_config

    cfg = mem0_config(tmp_path)
    cfg["vector_store"] = {"provider": "chroma", "config": {"collection_name": "prefs",
                                                            "path": str(tmp_path / "chroma")}}
    memory = Memory.from_config(cfg)
    memory.embedding_model = HashedWords()
    try:
        memobs.instrument("mem0")
        memobs.instrument("chroma")
        try:
            added = memory.add("I prefer window seats", user_id="alice", infer=False)
            memory.search("window seats", filters={"user_id": "alice"})
            memory.get_all(filters={"user_id": "alice"})
            memory.delete(added["results"][0]["id"])
        finally:
            memobs.uninstrument("mem0")
        # one write per mem0 call and mem0's search alone: no Chroma span, no "document" entity
        assert [s.name for s in finished(spans)] == ["update_memory", "search_memory prefs", "delete_memory"]
        assert {e["memobs.entity.type"] for e in events(spans) + events(spans, "memobs.entity.write")} == {"memory"}

        spans.clear()  # mem0 not instrumented: its calls to the collection are recorded as Chroma's
        added = memory.add("Vegetarian", user_id="bob", infer=False)
        memory.search("vegetarian", filters={"user_id": "bob"})
        memory.update(added["results"][0]["id"], text="Vegan")  # mem0 updates the metadata only
    finally:
        memobs.uninstrument("chroma")
    record_id = added["results"][0]["id"]
    write, update = events(spans, "memobs.entity.write")
    assert (write["memobs.entity.type"], write["memobs.entity.id"], write["memobs.write.op"]) == (
        "document", record_id, "create")
    assert write["memobs.entity.content_hash"] == content_hash("Vegetarian")  # mem0's metadata "data"
    assert (update["memobs.entity.id"], update["memobs.write.op"]) == (record_id, "update")
    assert update["memobs.entity.content_hash"] == content_hash("Vegan")
    # mem0's search, then the get its update makes first
    assert [(e["memobs.entity.type"], e["memobs.entity.id"], e["memobs.entity.content_hash"]) for e in events(spans)] \
        == [("document", record_id, content_hash("Vegetarian"))] * 2
    assert [s.name for s in finished(spans)] == ["update_memory", "retrieval prefs", "retrieval prefs",
                                                 "update_memory"]


def test_a_failing_memobs_step_never_reaches_the_caller(spans, notes, caplog):
    notes.add(ids=IDS, embeddings=EMBEDDINGS, documents=DOCUMENTS, metadatas=METADATAS)
    plain = notes.query(query_embeddings=[QUERY], n_results=2)
    memobs.instrument("chroma", entity_type=lambda entity: 1 / 0)
    try:
        with caplog.at_level("WARNING", logger="memobs_otel"):
            for _ in range(2):
                assert notes.query(query_embeddings=[QUERY], n_results=2) == plain
                notes.upsert(ids=["n1"], embeddings=[EMBEDDINGS[0]], documents=[DOCUMENTS[0]])
    finally:
        memobs.uninstrument("chroma")
    assert events(spans) == [] and events(spans, "memobs.entity.write") == []
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["memobs: record retrieval failed (ZeroDivisionError); memobs keeps going and will not "
                        "repeat this warning",
                        "memobs: chroma write failed (ZeroDivisionError); memobs keeps going and will not "
                        "repeat this warning"]
