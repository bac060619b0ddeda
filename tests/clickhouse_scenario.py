"""A rich set of real SDK spans for the ClickHouse parity tests.

Several users and sessions, injections of two entity types with every kind
of lifecycle field (ISO and epoch timestamps — ints, floats, milliseconds —
and unparseable ones), citations (some twice in one trace), writes
(create, update, archive, delete) with supersedes and parents, identical
and near-identical content (MinHash twins), stale entries and entries only
ever written. Spans come from the real OpenTelemetry SDK (typed attribute
values), each event at its own nanosecond (see facts.py on ties), sorted by
start time as an exporter would receive them.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context

from memobs_otel import fingerprint, semconv as sc

NS = 1_000_000_000
DAY = 86_400 * NS
END = datetime(2025, 6, 1, tzinfo=timezone.utc)
END_NS = int(END.timestamp()) * NS
USERS = ("alice", "bob", "carol", "dave")
TYPES = ("user_memory", "playbook")
STORES = {"user_memory": "notes", "playbook": "kb"}

TEXTS = [
    "prefers a window seat", "prefers window seats", "prefers an aisle seat",
    "User is vegetarian", "user is vegetarian.", "Lives in Lyon", "Works as a nurse",
    "Refund policy: customers may return items within 30 days with a receipt",
    "Refund policy: customers may return items within 30 days with the receipt",
    "Escalate billing disputes above 500 euros to a human agent",
    "Escalate billing disputes above 600 euros to a human agent",
    "Has a dog named Pixel", "Allergic to peanuts", "Favourite colour is blue",
    "Speaks French and German", "Uses a standing desk", "Shipping to Norway takes 5 days",
]


def _created(rng: random.Random, i: int):
    """The many shapes a memory store reports created_at in."""
    base = END_NS // NS - (i * 7 + 20) * 86_400
    return [
        None,
        f"{datetime.fromtimestamp(base, timezone.utc).isoformat()}",            # +00:00
        datetime.fromtimestamp(base, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        base,                      # epoch seconds, int
        base * 1000,               # epoch milliseconds
        base + 0.25,               # float seconds
        "soon",                    # unparseable: no stale signal, never a guess
        datetime.fromtimestamp(base).strftime("%Y-%m-%d %H:%M:%S"),  # naive: UTC
    ][i % 8]


def entity_attrs(rng: random.Random, etype: str, n: int, text: str) -> dict:
    attrs = {
        sc.ENTITY_TYPE: etype,
        sc.ENTITY_ID: f"{etype[:2]}-{n}",
        sc.ENTITY_CONTENT_HASH: fingerprint.content_hash(text),
        sc.ENTITY_SIMHASH: fingerprint.simhash_hex(fingerprint.simhash(text)),
    }
    minhash = fingerprint.minhash(text)
    if minhash is not None:
        attrs[sc.ENTITY_MINHASH] = fingerprint.minhash_hex(minhash)
    created = _created(rng, n)
    if created is not None:
        attrs[sc.ENTITY_CREATED_AT] = created
    if n % 5 == 1:
        attrs[sc.ENTITY_UPDATED_AT] = (END_NS // NS - n * 86_400) * 1000
    if n % 6 == 2:
        attrs[sc.ENTITY_TITLE] = f"Title of {n}"
    if n % 4 == 3:
        attrs[sc.ENTITY_CONTENT] = text  # content capture on for some
    if n % 9 == 4:
        attrs[sc.ENTITY_PARENT_ID] = f"{etype[:2]}-{n - 1}"
    if n % 13 == 6:
        attrs[sc.ENTITY_SUPERSEDED_BY] = f"{etype[:2]}-{n + 1}"
    if n % 11 == 7:
        attrs[sc.ENTITY_STATUS] = "Active"
    return attrs


def build_spans(seed: int = 21, searches: int = 220, entities: int = 34):
    rng = random.Random(seed)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent", "deployment": "eu-1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(sc.TRACER_NAME, "1.0")
    texts = {n: TEXTS[n % len(TEXTS)] if n < 2 * len(TEXTS) else f"memory number {n} about topic {n % 7}"
             for n in range(entities)}
    # searches over 120 days before END; entities >= 28 are never injected (write-only / stale)
    for s in range(searches):
        t0 = END_NS - rng.randrange(120 * DAY) - rng.randrange(10**9)
        user = rng.choice(USERS)
        span_attrs = {sc.GEN_AI_OPERATION_NAME: sc.OPERATION_SEARCH_MEMORY, sc.GEN_AI_REQUEST_TOP_K: 5}
        if s % 7:
            span_attrs[sc.USER_ID] = user  # else: only on the events
        if s % 3:
            span_attrs[sc.SESSION_ID] = f"{user}-s{rng.randrange(6)}"
        span = tracer.start_span("search_memory notes", kind=SpanKind.CLIENT, start_time=t0,
                                 attributes=span_attrs)
        chosen = rng.sample(range(28), rng.randrange(1, 6))
        for rank, n in enumerate(chosen):
            etype = TYPES[n % 2]
            attrs = entity_attrs(rng, etype, n, texts[n])
            attrs[sc.ENTITY_RANK] = rank
            attrs[sc.ENTITY_SCORE] = round(rng.random(), 3) if rank % 4 else 1.0
            attrs[sc.ENTITY_TOKENS] = 40 + (n * 37) % 900 if n % 10 else 4500 + n
            if s % 7 == 0:
                attrs[sc.USER_ID] = user
            if s % 11 == 0:
                attrs[sc.SESSION_ID] = f"{user}-event"
            span.add_event(sc.EVENT_INJECTION, attrs, timestamp=t0 + 1000 * (rank + 1))
        cited = [n for n in chosen if (n + s) % 3 == 0]
        for j, n in enumerate(cited):
            attrs = {sc.ENTITY_TYPE: TYPES[n % 2], sc.ENTITY_ID: f"{TYPES[n % 2][:2]}-{n}",
                     sc.CITATION_METHOD: "explicit", sc.CITATION_SCORE: 0.9}
            span.add_event(sc.EVENT_CITATION, attrs, timestamp=t0 + 100_000 + j)
            if n % 4 == 0:  # cited twice in one trace: counts once
                span.add_event(sc.EVENT_CITATION, attrs, timestamp=t0 + 200_000 + j)
        span.end(end_time=t0 + 300_000)
        if s % 17 == 0 and chosen:  # a citation in its own span of another trace
            n = chosen[0]
            cite = tracer.start_span(sc.CITE_SPAN_NAME, start_time=t0 + 400_000, attributes={sc.USER_ID: user})
            cite.add_event(sc.EVENT_CITATION, {sc.ENTITY_TYPE: TYPES[n % 2], sc.ENTITY_ID: f"{TYPES[n % 2][:2]}-{n}",
                                               sc.CITATION_METHOD: "overlap"}, timestamp=t0 + 400_001)
            cite.end(end_time=t0 + 400_002)
    # writes: creations long ago (stale, some never injected), updates, archives, deletes
    for n in range(entities):
        etype = TYPES[n % 2]
        ops = ["create"]
        if n % 5 == 0:
            ops.append("update")
        if n in (8, 30):
            ops.append("archive")
        if n in (12, 31):
            ops.append("delete")
        t0 = END_NS - (200 - n) * DAY
        for k, op in enumerate(ops):
            when = t0 + k * 40 * DAY + n
            user = USERS[n % len(USERS)]
            span = tracer.start_span(sc.WRITE_SPAN_NAMES[op], start_time=when,
                                     attributes={sc.USER_ID: user, sc.GEN_AI_MEMORY_STORE_ID: STORES[etype]})
            attrs = entity_attrs(rng, etype, n, texts[n] if op != "update" else texts[n] + " (revised)")
            attrs[sc.WRITE_OP] = op
            attrs[sc.ENTITY_TOKENS] = 10 + n
            if op == "update" and n % 10 == 0:
                attrs[sc.ENTITY_SUPERSEDED_BY] = f"{etype[:2]}-{n + 2}"
            span.add_event(sc.EVENT_WRITE, attrs, timestamp=when + 1)
            span.end(end_time=when + 2)
    _inventories(tracer, rng, texts, entities)
    spans = list(exporter.get_finished_spans())
    spans.sort(key=lambda span: span.start_time)
    provider.shutdown()
    return spans


def _inventories(tracer, rng, texts, entities):
    """Snapshots as ``memobs.record_inventory`` records them: complete ones
    delete what they lack (by scope: type, store, user, id prefixes), a
    partial one deletes nothing, an item on an overflow child counts."""
    def snapshot(when, etype, ids, complete, user=None, prefixes=None, overflow=()):
        attrs = {sc.GEN_AI_MEMORY_STORE_ID: STORES[etype], sc.INVENTORY_ENTITY_TYPE: etype,
                 sc.INVENTORY_COUNT: len(ids) + len(overflow)}
        attrs[sc.INVENTORY_COMPLETE] = complete  # record_inventory always sets it
        if user:
            attrs[sc.USER_ID] = user
        if prefixes:
            attrs[sc.INVENTORY_ID_PREFIXES] = list(prefixes)
        span = tracer.start_span(f"{sc.INVENTORY_SPAN_NAME} {STORES[etype]}", start_time=when, attributes=attrs)

        def item(target, n, at):
            event = entity_attrs(rng, etype, n, texts[n])
            event[sc.WRITE_OP] = sc.WRITE_OP_INVENTORY
            target.add_event(sc.EVENT_WRITE, event, timestamp=at)

        for k, n in enumerate(ids):
            item(span, n, when + 10 + k)
        if overflow:
            # as inventory.py's overflow children: the scope, never the complete flag
            scope = {k: v for k, v in attrs.items() if k not in (sc.INVENTORY_COMPLETE, sc.INVENTORY_COUNT)}
            child = tracer.start_span(sc.INVENTORY_OVERFLOW_SPAN_NAME, context=set_span_in_context(span),
                                      start_time=when + 5_000,
                                      attributes={**scope, sc.MEMOBS_OVERFLOW_FIRST_RANK: len(ids)})
            for k, n in enumerate(overflow):
                item(child, n, when + 5_010 + k)
            child.end(end_time=when + 6_000)
        span.end(end_time=when + 10_000)

    playbooks = [n for n in range(entities) if TYPES[n % 2] == "playbook"]
    # an older complete snapshot lacks 3 (the latest one too). An entity lacked
    # by it and back in the latest one is left out: when both snapshots reach
    # the SQLite store in one export batch it keeps the older delete (its
    # status time is when "active" was first seen, not last said).
    snapshot(END_NS - 70 * DAY, "playbook", [n for n in playbooks if n != 3], True)
    # a partial one lacking nearly everything: deletes nothing
    snapshot(END_NS - 20 * DAY, "playbook", playbooks[:2], False)
    # the latest complete one lacks 3, 9 and 13; 11 is on its overflow child
    snapshot(END_NS - 10 * DAY, "playbook",
             [n for n in playbooks if n not in (3, 9, 11, 13)], True, overflow=(11,))
    # alice's notes under "us-1": only her entities with ids us-1… are in scope
    snapshot(END_NS - 5 * DAY, "user_memory", [10], True, user="alice", prefixes=("us-1",))
