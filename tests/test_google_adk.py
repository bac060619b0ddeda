"""Google ADK plugin against the real google-adk: InMemoryMemoryService and a real Session, offline."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from framework_helpers import check_instrument_cycle, measured
from helpers import events, finished

pytest.importorskip("google.adk.memory")

from google.adk.events.event import Event
from google.adk.memory import BaseMemoryService, InMemoryMemoryService
from google.adk.memory.base_memory_service import SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types

import memobs_otel as memobs
from memobs_otel.fingerprint import content_hash

T0 = 1_767_000_000.0  # fixed event timestamps: exact created_at values


def utc(stamp):
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat()


def event(event_id, author, *texts, stamp=T0):
    parts = [types.Part(text=text) for text in texts]
    return Event(id=event_id, author=author, timestamp=stamp,
                 content=types.Content(role="user" if author == "user" else "model", parts=parts))


def session():
    tool_call = Event(id="e3", author="agent", timestamp=T0 + 2, content=types.Content(
        role="model", parts=[types.Part(function_call=types.FunctionCall(name="lookup", args={}))]))
    return Session(id="s1", app_name="travel", user_id="alice", events=[
        event("e1", "user", "I prefer window seats", "on long flights", stamp=T0),
        event("e2", "agent", "Noted: window seats.", stamp=T0 + 1),
        tool_call,
    ])


@pytest.fixture
def instrumented():
    assert memobs.instrument("google_adk") == ["google_adk"]
    yield
    memobs.uninstrument("google_adk")


def test_add_session_and_search(spans, instrumented):
    service = InMemoryMemoryService()

    async def run():
        await service.add_session_to_memory(session())
        return await service.search_memory(app_name="travel", user_id="alice", query="window seats")

    found = asyncio.run(run())
    text1, text2 = "I prefer window seats on long flights", "Noted: window seats."
    # one create per event with text; the tool-call event has none and is not recorded
    assert events(spans, "memobs.entity.write") == [
        {"memobs.entity.type": "memory", "memobs.entity.id": "e1", "memobs.write.op": "create",
         "memobs.entity.created_at": utc(T0), "user.id": "alice", **measured(text1)},
        {"memobs.entity.type": "memory", "memobs.entity.id": "e2", "memobs.write.op": "create",
         "memobs.entity.created_at": utc(T0 + 1), "user.id": "alice", **measured(text2)},
    ]
    assert [m.id for m in found.memories] == ["e1", "e2"]
    assert events(spans) == [
        {"memobs.entity.type": "memory", "memobs.entity.id": m.id, "memobs.entity.rank": rank,
         "memobs.entity.created_at": utc(T0 + rank), "user.id": "alice", **measured(text)}
        for rank, (m, text) in enumerate(zip(found.memories, (text1, text2)))
    ]
    write1, write2, search = finished(spans)
    assert (write1.name, write1.attributes["gen_ai.memory.store.id"]) == ("update_memory", "InMemoryMemoryService")
    assert search.name == "search_memory InMemoryMemoryService"
    assert search.attributes["user.id"] == "alice"
    assert search.attributes["memobs.injection.count"] == 2


def test_events_memories_and_delete(spans, instrumented):
    service = InMemoryMemoryService()

    async def run():
        await service.add_events_to_memory(app_name="travel", user_id="bob", session_id="s2",
                                           events=[event("e9", "user", "Allergic to peanuts")])
        with pytest.raises(NotImplementedError):  # the in-memory service has no direct writes
            await service.add_memory(app_name="travel", user_id="bob", memories=[])
        await service.delete_memory(app_name="travel", user_id="bob", memory_id="e9")

    asyncio.run(run())
    create, delete = events(spans, "memobs.entity.write")
    assert create == {"memobs.entity.type": "memory", "memobs.entity.id": "e9", "memobs.write.op": "create",
                      "memobs.entity.created_at": utc(T0), "user.id": "bob", **measured("Allergic to peanuts")}
    delete.pop("memobs.entity.updated_at")
    assert delete == {"memobs.entity.type": "memory", "memobs.entity.id": "e9", "memobs.write.op": "delete",
                      "memobs.entity.status": "deleted", "user.id": "bob"}


class Bank(BaseMemoryService):
    """A service like the Vertex memory bank: entries without ids; writes through add_events_to_memory."""

    def __init__(self):
        self.facts = []

    async def add_session_to_memory(self, session):
        await self.add_events_to_memory(app_name=session.app_name, user_id=session.user_id,
                                        events=session.events)

    async def add_events_to_memory(self, *, app_name, user_id, events, session_id=None, custom_metadata=None):
        self.facts += [e.content.parts[0].text for e in events if e.content and e.content.parts[0].text]

    async def add_memory(self, *, app_name, user_id, memories, custom_metadata=None):
        self.facts += [m.content.parts[0].text for m in memories]

    async def search_memory(self, *, app_name, user_id, query):
        return SearchMemoryResponse(memories=[
            MemoryEntry(content=types.Content(role="user", parts=[types.Part(text=fact)]), author="user")
            for fact in self.facts if query in fact])


def test_service_subclasses_no_ids_and_no_double_count(spans):
    memobs.instrument("google_adk")  # Bank is defined: it is patched too
    try:
        bank = Bank()

        async def run():
            await bank.add_session_to_memory(session())
            await bank.add_memory(app_name="travel", user_id="alice", memories=[
                MemoryEntry(content=types.Content(role="user", parts=[types.Part(text="Lives in Lyon")]))])
            return await bank.search_memory(app_name="travel", user_id="alice", query="Lyon")

        found = asyncio.run(run())
    finally:
        memobs.uninstrument("google_adk")
    writes = events(spans, "memobs.entity.write")
    # add_session_to_memory ran add_events_to_memory: its two events are recorded once
    assert [w["memobs.entity.id"] for w in writes] == ["e1", "e2", content_hash("Lives in Lyon")[:16]]
    (injection,) = events(spans)
    assert injection["memobs.entity.id"] == content_hash("Lives in Lyon")[:16]
    assert len(found.memories) == 1


def test_result_unchanged_and_uninstrument_restores(spans):
    names = ("search_memory", "add_session_to_memory", "add_events_to_memory", "delete_memory")
    originals = {name: InMemoryMemoryService.__dict__[name] for name in names}
    bank_search = Bank.__dict__["search_memory"]

    def run():
        async def go():
            service = InMemoryMemoryService()
            await service.add_session_to_memory(session())
            return await service.search_memory(app_name="travel", user_id="alice", query="seats")
        return asyncio.run(go()).model_dump()

    def restored():
        assert {name: InMemoryMemoryService.__dict__[name] for name in names} == originals
        assert Bank.__dict__["search_memory"] is bank_search

    check_instrument_cycle(spans, "google_adk", run, 2, restored)


def test_instrument_without_argument_covers_adk(spans):
    assert "google_adk" in memobs.instrument()
    try:
        asyncio.run(InMemoryMemoryService().add_session_to_memory(session()))
        assert len(events(spans, "memobs.entity.write")) == 2
    finally:
        memobs.uninstrument()


def test_memobs_context_user_wins(spans, instrumented):
    async def run():
        service = InMemoryMemoryService()
        await service.add_session_to_memory(session())
        with memobs.context(user_id="outer"):
            await service.search_memory(app_name="travel", user_id="alice", query="seats")

    asyncio.run(run())
    assert {e["user.id"] for e in events(spans)} == {"outer"}


def test_a_failing_option_never_breaks_the_service(spans, caplog):
    def broken(service):
        raise RuntimeError("boom")

    memobs.instrument("google_adk", store=broken)
    try:
        service = InMemoryMemoryService()

        async def run():
            await service.add_session_to_memory(session())
            return await service.search_memory(app_name="travel", user_id="alice", query="seats")

        found = asyncio.run(run())
    finally:
        memobs.uninstrument("google_adk")
    assert [m.id for m in found.memories] == ["e1", "e2"]
    assert finished(spans) == []
    assert [r.getMessage() for r in caplog.records].count(
        "memobs: google adk memory failed (RuntimeError); memobs keeps going and will not repeat this warning") == 1
