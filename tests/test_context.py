"""memobs.context ids on spans and events, across await and threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from helpers import events, finished

import memobs_otel as memobs

IDS = {"user.id": "u-1", "session.id": "s-1", "memobs.request.id": "r-1"}


@memobs.observe_retrieval(entity_type="fact")
def search(q):
    return [{"id": q, "content": "c"}]


@memobs.observe_retrieval(entity_type="fact")
async def asearch(q):
    await asyncio.sleep(0.001)
    return [{"id": q, "content": "c"}]


def ids_of(attrs):
    return {k: v for k, v in attrs.items() if k in IDS}


def test_ids_on_span_and_every_event(spans):
    with memobs.context(user_id="u-1", session_id="s-1", request_id="r-1"):
        search("a")
        memobs.record_write("fact", "a", "create", content="c")
        memobs.cite("fact", "a")
    for span in finished(spans):
        assert ids_of(span.attributes) == IDS, span.name
        for event in span.events:
            assert ids_of(event.attributes) == IDS, event.name
    search("outside")
    assert ids_of(finished(spans)[-1].attributes) == {}


def test_nested_context_inherits_and_overrides(spans):
    with memobs.context(user_id="u-1", session_id="s-1"):
        with memobs.context(request_id="r-1"):
            search("a")
        with memobs.context(user_id="u-2"):
            search("b")
    assert ids_of(finished(spans)[0].attributes) == IDS
    assert ids_of(finished(spans)[1].attributes) == {"user.id": "u-2", "session.id": "s-1"}


def test_across_await_and_tasks(spans):
    async def main():
        async with memobs.context(user_id="u-1", session_id="s-1", request_id="r-1"):
            await asearch("a")
            await asyncio.gather(asearch("b"), asearch("c"))

    asyncio.run(main())
    assert len(finished(spans)) == 3
    assert all(ids_of(s.attributes) == IDS for s in finished(spans))
    assert all(ids_of(e) == IDS for e in events(spans))


def test_concurrent_tasks_keep_their_own_ids(spans):
    async def one(user):
        with memobs.context(user_id=user):
            await asearch(user)

    async def main():
        await asyncio.gather(*(one(f"u{i}") for i in range(5)))

    asyncio.run(main())
    assert sorted((e["memobs.entity.id"], e["user.id"]) for e in events(spans)) == [(f"u{i}", f"u{i}") for i in range(5)]


def test_threads_started_inside_context(spans):
    with memobs.context(user_id="u-1", session_id="s-1", request_id="r-1"):
        thread = threading.Thread(target=search, args=("t",))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(search, ["p1", "p2"]))
            pool.submit(search, "p3").result()
    assert sorted(e["memobs.entity.id"] for e in events(spans)) == ["p1", "p2", "p3", "t"]
    assert all(ids_of(e) == IDS for e in events(spans))
    # a thread started outside the context gets no ids
    thread = threading.Thread(target=search, args=("bare",))
    thread.start()
    thread.join()
    assert ids_of(events(spans)[-1]) == {}
