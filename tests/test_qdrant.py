"""Qdrant plugin against the real qdrant-client in local mode (":memory:", no server), sync and async."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from helpers import events, finished, listed
from vector_client_helpers import (
    ENC,
    KB_TEXTS,
    between,
    check_langchain_over_client,
    check_langchain_over_client_alone,
    measured,
)

pytest.importorskip("qdrant_client")

from qdrant_client import AsyncQdrantClient, QdrantClient, models

import memobs_otel as memobs
from memobs_otel import config
from memobs_otel.fingerprint import content_hash

UUID = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"

# id -> (vector, payload); the payloads show each place the text can be found
POINTS = {
    1: ([1.0, 0.0, 0.0, 0.0], {"text": "Refunds take five days", "created_at": "2024-01-01T00:00:00+00:00"}),
    2: ([0.9, 0.1, 0.0, 0.0], {"page_content": "Express shipping is free",
                               "metadata": {"title": "Shipping", "status": "active", "version": 3}}),
    UUID: ([0.0, 1.0, 0.0, 0.0], {"body": "Gift cards", "updated_at": "2025-02-02T00:00:00+00:00"}),
}
# the text memobs reads from each payload
TEXTS = {"1": "Refunds take five days", "2": "Express shipping is free",
         UUID: json.dumps(POINTS[UUID][1], sort_keys=True)}
LIFECYCLE = {
    "1": {"memobs.entity.created_at": "2024-01-01T00:00:00+00:00"},
    "2": {"memobs.entity.title": "Shipping", "memobs.entity.status": "active", "memobs.entity.version": 3},
    UUID: {"memobs.entity.updated_at": "2025-02-02T00:00:00+00:00"},
}
QUERY = [1.0, 0.05, 0.0, 0.0]


def injection(pid, rank, score, entity_type="document"):
    return {"memobs.entity.type": entity_type, "memobs.entity.id": pid, **measured(TEXTS[pid]),
            **LIFECYCLE[pid], "memobs.entity.score": score, "memobs.entity.rank": rank}


def point_structs():
    # the UUID upper-cased: Qdrant returns it lower-case, and so does memobs for the write
    return [models.PointStruct(id=UUID.upper() if pid == UUID else pid, vector=v, payload=p)
            for pid, (v, p) in POINTS.items()]


def new_client():
    client = QdrantClient(":memory:")
    client.create_collection("notes", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    return client


@pytest.fixture
def instrumented():
    assert memobs.instrument("qdrant") == ["qdrant"]
    yield
    memobs.uninstrument("qdrant")


def check_writes(spans, before):
    writes = events(spans, "memobs.entity.write")
    for write in writes:
        if "memobs.entity.updated_at" in write and write["memobs.entity.id"] != UUID:
            assert between(write.pop("memobs.entity.updated_at"), before)  # the time of the call
    assert writes == [
        {"memobs.entity.type": "document", "memobs.entity.id": pid, **measured(TEXTS[pid]), **LIFECYCLE[pid],
         "memobs.write.op": "update"} for pid in ("1", "2", UUID)]
    assert [s.name for s in finished(spans)] == ["update_memory"] * 3
    assert {s.attributes["gen_ai.memory.store.id"] for s in finished(spans)} == {"notes"}


def check_query(spans, response, top_k=3):
    got = [(str(p.id), p.score) for p in response.points]
    assert [pid for pid, _ in got] == ["1", "2", UUID]
    assert events(spans) == [injection(pid, rank, score) for rank, (pid, score) in enumerate(got)]
    (span,) = finished(spans)
    assert span.name == "retrieval notes"
    attrs = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": "notes",
        "openinference.span.kind": "RETRIEVER",
        "gen_ai.request.top_k": top_k,
        "memobs.record.count": 3,
        "memobs.injection.count": 3,
        "memobs.injection.tokens": sum(len(ENC.encode_ordinary(TEXTS[pid])) for pid, _ in got),
        "memobs.tokenizer": "tiktoken/cl100k_base",
        **listed([(pid, score, LIFECYCLE[pid]) for pid, score in got]),
    }
    for n, (pid, score) in enumerate(got):
        attrs[f"retrieval.documents.{n}.document.id"] = pid
        attrs[f"retrieval.documents.{n}.document.score"] = score
    assert dict(span.attributes) == attrs  # no content: capture is off


def test_upsert_query_delete_exact_events(spans, instrumented):
    client = new_client()
    before = datetime.now(timezone.utc)
    client.upsert("notes", points=point_structs())
    check_writes(spans, before)

    spans.clear()
    response = client.query_points("notes", query=QUERY, limit=3)
    check_query(spans, response)

    spans.clear()
    client.delete("notes", points_selector=[1])
    client.delete("notes", points_selector=models.PointIdsList(points=[UUID.upper()]))
    deletes = events(spans, "memobs.entity.write")
    assert all(between(d.pop("memobs.entity.updated_at"), before) for d in deletes)
    assert deletes == [{"memobs.entity.type": "document", "memobs.entity.id": pid, "memobs.write.op": "delete",
                        "memobs.entity.status": "deleted"} for pid in ("1", UUID)]
    assert [s.name for s in finished(spans)] == ["delete_memory", "delete_memory"]

    spans.clear()
    client.delete("notes", points_selector=models.FilterSelector(filter=models.Filter(must=[])))
    (span,) = finished(spans)  # which points matched is unknown: a span, no entity event
    assert (span.name, dict(span.attributes), list(span.events)) == (
        "delete_memory", {"gen_ai.operation.name": "delete_memory", "gen_ai.memory.store.id": "notes"}, [])
    assert client.count("notes").count == 0


def test_results_unchanged_and_batch(spans):
    client = new_client()
    client.upsert("notes", points=point_structs())
    plain = client.query_points("notes", query=QUERY, limit=2)
    requests = [models.QueryRequest(query=QUERY, limit=2, with_payload=True),
                models.QueryRequest(query=[0.0, 1.0, 0.0, 0.0], limit=2, with_payload=True)]
    plain_batch = client.query_batch_points("notes", requests=requests)
    memobs.instrument("qdrant")
    try:
        assert client.query_points("notes", query=QUERY, limit=2) == plain
        spans.clear()
        batch = client.query_batch_points("notes", requests=requests)
    finally:
        memobs.uninstrument("qdrant")
    assert batch == plain_batch
    # the second request returns the UUID point and point 2 again: listed once, at its first place
    assert [[str(p.id) for p in r.points] for r in batch] == [["1", "2"], [UUID, "2"]]
    first, second = batch[0].points, batch[1].points
    expected = [(p.id, p.score) for p in first] + [(second[0].id, second[0].score)]
    assert events(spans) == [injection(str(pid), rank, score) for rank, (pid, score) in enumerate(expected)]
    (span,) = finished(spans)
    assert "gen_ai.request.top_k" not in span.attributes


def test_content_field_entity_type_store_and_capture(spans):
    client = new_client()
    client.upsert("notes", points=[models.PointStruct(id=7, vector=[1, 0, 0, 0],
                                                      payload={"text": "ignored", "answer": "Use the portal"})])
    memobs.instrument("qdrant", content_field="answer", entity_type=lambda e: f"faq-{e.entity_id}",
                      store="kb", operation="search_memory")
    try:
        config.reload_settings(capture_content=True)
        hits = client.query_points("notes", query=models.NearestQuery(nearest=[1, 0, 0, 0]), limit=1)
        spans.clear()
        client.query_points("notes", query=[1, 0, 0, 0])
        client.upsert("notes", points=models.Batch(ids=[8], vectors=[[0, 1, 0, 0]], payloads=[{"answer": "Call us"}]))
    finally:
        memobs.uninstrument("qdrant")
    (read, write) = finished(spans)
    assert read.name == "search_memory kb" and read.attributes["gen_ai.memory.store.id"] == "kb"
    assert read.attributes["gen_ai.request.top_k"] == 10  # Qdrant's default limit
    assert read.attributes["retrieval.documents.0.document.content"] == "Use the portal"
    assert events(spans) == [{"memobs.entity.type": "faq-7", "memobs.entity.id": "7", **measured("Use the portal"),
                              "memobs.entity.content": "Use the portal",
                              "memobs.entity.score": hits.points[0].score, "memobs.entity.rank": 0}]
    (w,) = events(spans, "memobs.entity.write")
    assert (w["memobs.entity.type"], w["memobs.entity.id"], w["memobs.entity.content"]) == ("faq-8", "8", "Call us")
    assert write.attributes["gen_ai.memory.store.id"] == "kb"


def test_failed_calls_record_no_write_and_raise_unchanged(spans, instrumented):
    client = new_client()
    with pytest.raises(ValueError, match="missing"):
        client.upsert("missing", points=point_structs())
    with pytest.raises(ValueError, match="missing"):
        client.query_points("missing", query=QUERY)
    assert events(spans, "memobs.entity.write") == [] and events(spans) == []
    (span,) = finished(spans)
    assert span.attributes["error.type"] == "ValueError"


def test_async_client(spans, instrumented):
    async def run():
        client = AsyncQdrantClient(":memory:")
        await client.create_collection("notes", vectors_config=models.VectorParams(
            size=4, distance=models.Distance.COSINE))
        before = datetime.now(timezone.utc)
        await client.upsert("notes", points=point_structs())
        check_writes(spans, before)
        spans.clear()
        check_query(spans, await client.query_points("notes", query=QUERY, limit=3))
        spans.clear()
        batch = await client.query_batch_points("notes", requests=[models.QueryRequest(query=QUERY, limit=1)])
        assert [e["memobs.entity.id"] for e in events(spans)] == ["1"] == [str(p.id) for p in batch[0].points]
        spans.clear()
        await client.delete("notes", points_selector=[2])
        assert [(e["memobs.entity.id"], e["memobs.write.op"]) for e in events(spans, "memobs.entity.write")] == [
            ("2", "delete")]
        await client.close()

    asyncio.run(run())


def test_instrument_uninstrument_instrument_again(spans):
    names = ("query_points", "query_batch_points", "upsert", "delete")
    originals = {(cls, n): cls.__dict__[n] for cls in (QdrantClient, AsyncQdrantClient) for n in names}
    client = new_client()
    client.upsert("notes", points=point_structs())

    assert "qdrant" in memobs.instrument()  # every installed framework
    memobs.instrument("qdrant")
    client.query_points("notes", query=QUERY, limit=1)
    assert len(events(spans)) == 1  # wrapped once, not twice

    memobs.uninstrument()
    assert {key: key[0].__dict__[key[1]] for key in originals} == originals
    spans.clear()
    client.query_points("notes", query=QUERY, limit=1)
    client.delete("notes", points_selector=[1])
    assert finished(spans) == []

    memobs.instrument("qdrant")
    try:
        client.query_points("notes", query=QUERY, limit=1)
        assert [e["memobs.entity.id"] for e in events(spans)] == ["2"]
    finally:
        memobs.uninstrument("qdrant")


# --- nesting: a LangChain retriever over Qdrant -------------------------------------------------------

KB = dict(zip(  # point id -> text
    ("00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b",
     "00000000-0000-0000-0000-00000000000c"), KB_TEXTS))


def kb_store():
    langchain_qdrant = pytest.importorskip("langchain_qdrant")
    from langchain_core.embeddings import DeterministicFakeEmbedding

    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE))
    return langchain_qdrant.QdrantVectorStore(client=client, collection_name="kb",
                                              embedding=DeterministicFakeEmbedding(size=16))


def _point_id(doc):
    return doc.metadata["_id"]


def test_langchain_retriever_over_qdrant_counted_once(spans):
    check_langchain_over_client(spans, kb_store(), KB, "qdrant", "QdrantVectorStore", "kb", _point_id)


def test_langchain_retriever_over_qdrant_with_only_the_qdrant_plugin(spans):
    check_langchain_over_client_alone(spans, kb_store(), KB, "qdrant", "kb", _point_id)


# --- mem0 over Qdrant: mem0's own calls are mem0's to record -------------------------------------------


def test_mem0_calls_recorded_by_mem0_only_while_it_is_instrumented(spans, tmp_path):
    pytest.importorskip("mem0")
    from mem0 import Memory
    from mem0_helpers import HashedWords, mem0_config

    memory = Memory.from_config(mem0_config(tmp_path))
    memory.embedding_model = HashedWords()
    try:
        memobs.instrument("mem0")
        memobs.instrument("qdrant")
        try:
            added = memory.add("I prefer window seats", user_id="alice", infer=False)
            memory.search("window seats", filters={"user_id": "alice"})
            memory.delete(added["results"][0]["id"])
        finally:
            memobs.uninstrument("mem0")
        memory_id = added["results"][0]["id"]
        # one write per mem0 call and mem0's search alone: no Qdrant span, no "document" entity
        assert [s.name for s in finished(spans)] == ["update_memory", "search_memory prefs", "delete_memory"]
        assert {e["memobs.entity.type"] for e in events(spans) + events(spans, "memobs.entity.write")} == {"memory"}

        spans.clear()  # mem0 not instrumented: its calls to the client are recorded as Qdrant's
        added = memory.add("Vegetarian", user_id="bob", infer=False)
        memory.search("vegetarian", filters={"user_id": "bob"})
    finally:
        memobs.uninstrument("qdrant")
        memory.close()
    point_id = added["results"][0]["id"]
    assert point_id != memory_id
    (write,) = events(spans, "memobs.entity.write")
    assert (write["memobs.entity.type"], write["memobs.entity.id"], write["memobs.write.op"]) == (
        "document", point_id, "update")
    assert write["memobs.entity.content_hash"] == content_hash("Vegetarian")  # mem0's payload "data"
    (injection,) = events(spans)
    assert (injection["memobs.entity.type"], injection["memobs.entity.id"]) == ("document", point_id)
    assert [s.name for s in finished(spans)] == ["update_memory", "retrieval prefs"]


def test_a_failing_memobs_step_never_reaches_the_caller(spans, caplog):
    client = new_client()
    client.upsert("notes", points=point_structs())
    plain = client.query_points("notes", query=QUERY, limit=2)
    memobs.instrument("qdrant", entity_type=lambda entity: 1 / 0)
    try:
        with caplog.at_level("WARNING", logger="memobs_otel"):
            for _ in range(2):
                assert client.query_points("notes", query=QUERY, limit=2) == plain
                client.upsert("notes", points=point_structs()[:1])
                client.delete("notes", points_selector=[99])
    finally:
        memobs.uninstrument("qdrant")
    assert events(spans) == [] and events(spans, "memobs.entity.write") == []
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["memobs: record retrieval failed (ZeroDivisionError); memobs keeps going and will not "
                        "repeat this warning",
                        "memobs: qdrant write failed (ZeroDivisionError); memobs keeps going and will not "
                        "repeat this warning"]


def test_grpc_point_structs_and_ids_read_like_rest_ones():
    # a gRPC-mode client (prefer_grpc=True) accepts the deprecated gRPC structs; local mode refuses
    # them, so memobs's reading of them is checked directly on the real qdrant_client.grpc types
    import warnings

    from qdrant_client import grpc

    from memobs_qdrant import points

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        struct = grpc.PointStruct(id=grpc.PointId(uuid=UUID.upper()),
                                  vectors=grpc.Vectors(vector=grpc.Vector(data=[1.0, 0.0, 0.0, 0.0])),
                                  payload={"text": grpc.Value(string_value="Gift cards")})
    assert list(points.written_points([struct])) == [(UUID, {"text": "Gift cards"})]
    assert points.point_id(grpc.PointId(num=5)) == "5"
    ids = grpc.PointsSelector(points=grpc.PointsIdsList(ids=[grpc.PointId(num=5), grpc.PointId(uuid=UUID.upper())]))
    assert points.selected_ids(ids) == ["5", UUID]
    assert points.selected_ids(grpc.PointsSelector(filter=grpc.Filter())) is None  # which points: unknown
