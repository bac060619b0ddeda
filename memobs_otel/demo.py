"""A simulated support agent, instrumented with memobs, for ``memobs demo``.

The agent answers customer questions from a small memory store (playbooks,
user profiles, facts) over about 60 simulated days, for three users in
several sessions. Everything is recorded through the real pipeline:
``memobs.configure(db_path=…)`` → ``@memobs.observe_retrieval`` search →
OpenTelemetry SDK → ``SQLiteSpanExporter``; writes go through
``memobs.record_write`` and citations through ``memobs.cite``. There is no
LLM: each answer's prompt (instructions, the retrieved memory, the question)
is recorded with ``memobs.record_prompt``, so ``memobs budget`` shows what
share of it the memory took.

Simulated time: span events are stamped by the real clock (the demo takes
seconds), so the simulated 60 days live in the entities' ``created_at`` /
``updated_at`` fields, counted back from the moment the demo starts, and
the queries pass ``now=`` (the end of the run). The review queue is then the
same on every run, only the absolute dates move.

The store is built so that every review signal fires:
- ``pb-refund-v1`` was superseded by ``pb-refund-v2`` (``supersedeable``);
- ``pb-returns-2023`` and ``fact-old-office`` were written ~50 days ago and
  never retrieved since (``stale``);
- ``pb-escalation-manual`` is long, retrieved for every question and never
  cited (``high_cost_low_cite``);
- ``pb-shipping-old`` is ``pb-shipping`` with one word changed (simhash
  distance 2: ``duplicate``);
- ``fact-loyalty-2022`` was in the store before memobs was set up: no write,
  no retrieval, only the end-of-run snapshot of the store
  (``memobs.record_inventory``) tells memobs it exists, and it is the
  stalest entry of all (``stale``).

One decision is already taken: ``fact-old-office``'s stale signal is
dismissed (``store.dismiss``, with a note), so the queue hides it until
another signal fires; ``memobs review --include-dismissed`` shows it.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .fingerprint import hamming, simhash

SIM_DAYS = 60
DEMO_DB = "memobs-demo.db"

_SHIPPING = (
    "Shipping policy: standard orders leave our Rotterdam warehouse within two business days. "
    "Customers receive a tracking link by email as soon as the parcel is handed to the carrier. "
    "Express orders placed before noon ship the same day. We ship to every country in the "
    "European Union and to the United Kingdom, Norway and Switzerland; customs fees outside "
    "the EU are paid by the {payer}."
)
_ESCALATION = " ".join(
    f"Escalation step {i}: if the customer is still unhappy after the previous step, "
    "acknowledge the frustration, summarise the case history, check the order, payment and "
    "shipping records, and hand the case to the next support tier with a written summary."
    for i in range(1, 13)
)


@dataclass
class Memory:
    entity_id: str
    entity_type: str
    title: str
    content: str
    created_day: int  # simulated day (0 = 60 days ago)
    keywords: tuple[str, ...]
    updated_day: int | None = None
    superseded_by: str | None = None
    parent_id: str | None = None
    always: bool = False  # retrieved for every question (the expensive one)
    boost: float = 0.0  # ranks above equally matching entries
    metadata: dict = field(default_factory=dict)


MEMORIES = (
    Memory("pb-refund-v1", "playbook", "Refunds (old: 14 days)",
           "Refunds: customers may request a refund within 14 days of delivery by replying to "
           "their order confirmation email.", 2, ("refund", "money", "return"),
           updated_day=31, superseded_by="pb-refund-v2"),
    Memory("pb-refund-v2", "playbook", "Refunds (30 days)",
           "Refunds: since the policy change customers may request a refund within 30 days of "
           "delivery from the orders page; refunds reach the card within five business days.",
           31, ("refund", "money", "return"), boost=0.1),
    Memory("pb-shipping", "playbook", "Shipping policy", _SHIPPING.format(payer="buyer"), 20,
           ("ship", "delivery", "tracking", "parcel")),
    Memory("pb-shipping-old", "playbook", "Shipping policy (copy)",
           _SHIPPING.format(payer="customer"), 5, ("ship", "delivery", "customs")),
    Memory("pb-returns-2023", "playbook", "Returns process 2023",
           "Returns 2023: print the label from the portal, pack the item in its original box "
           "and drop it at any post office.", 8, ("label-printing",)),
    Memory("pb-escalation-manual", "playbook", "Escalation manual", _ESCALATION, 1, (),
           always=True),
    Memory("profile-alice", "user_profile", "Alice: prefers email, lives in Lyon",
           "Alice prefers email over phone, lives in Lyon and orders mostly books.", 3,
           ("alice",)),
    Memory("profile-bob", "user_profile", "Bob: business account, Oslo",
           "Bob has a business account, lives in Oslo and needs VAT invoices.", 4, ("bob",)),
    Memory("profile-carol", "user_profile", "Carol: new customer",
           "Carol is a new customer from Manchester who ordered a bicycle.", 44, ("carol",)),
    Memory("fact-vat", "fact", "VAT invoices",
           "VAT invoices can be downloaded from the orders page for business accounts.", 12,
           ("invoice", "vat")),
    Memory("fact-old-office", "fact", "Old office address",
           "Our old office address was Keizersgracht 12, Amsterdam.", 9, ("office-address",)),
)

# in the store since before memobs was on: known only from the inventory
INVENTORY_ONLY = (
    Memory("fact-loyalty-2022", "fact", "Loyalty points 2022",
           "Loyalty points earned in 2022 expire at the end of 2023.", 0, ("loyalty-2022",)),
)

QUESTIONS = (
    ("refund", "Can I still get a refund for my order?"),
    ("ship", "When will my parcel ship?"),
    ("tracking", "Where is my tracking link?"),
    ("customs", "Do I pay customs to Norway?"),
    ("invoice", "I need a VAT invoice."),
    ("money", "How long until I see my money back?"),
)
USERS = {"alice": ("s-alice-1", "s-alice-2"), "bob": ("s-bob-1", "s-bob-2", "s-bob-3"),
         "carol": ("s-carol-1",)}


def near_duplicate_distance() -> int:
    """Simhash distance between the two shipping texts (the demo relies on ≤ 3)."""
    return hamming(simhash(_SHIPPING.format(payer="buyer")), simhash(_SHIPPING.format(payer="customer")))


def _iso(anchor: datetime, sim_day: int) -> str:
    return (anchor - timedelta(days=SIM_DAYS - sim_day)).isoformat().replace("+00:00", "Z")


def _item(anchor: datetime, m: Memory) -> dict:
    """A memory as the store hands it out (search hits and the inventory)."""
    return {"id": m.entity_id, "content": m.content,
            "metadata": {"entity_type": m.entity_type, "title": m.title,
                         "created_at": _iso(anchor, m.created_day),
                         **({"updated_at": _iso(anchor, m.updated_day)} if m.updated_day else {}),
                         **({"superseded_by": m.superseded_by} if m.superseded_by else {})}}


SYSTEM_PROMPT = (
    "You are the support agent of an online shop. Answer the customer's question in two or three "
    "friendly sentences, using only the memory below; say so when it does not cover the question. "
    "Never promise a refund, a delivery date or a discount that the memory does not state."
)


def _prompt(question: str, hits: list[dict]) -> str:
    """The prompt built from the retrieved memory (all of it is injected)."""
    memory = "\n\n".join(hit["content"] for hit in hits)
    return f"{SYSTEM_PROMPT}\n\nMemory:\n{memory}\n\nCustomer: {question}\nAgent:"


def _is_memobs_or_absent(path: str) -> bool:
    from .store.connection import StoreError, connect_read_only

    if not os.path.exists(path):
        return True
    try:
        connect_read_only(path).close()
    except StoreError:
        return False
    return True


def remove_previous(path: str) -> None:
    """Delete a previous demo file (a memobs database) and its WAL side files."""
    if not _is_memobs_or_absent(path):
        raise ValueError(f"{path}: exists and is not a memobs database; not overwriting it")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def run_agent(db_path: str = DEMO_DB, seed: int = 7, conversations: int = 48) -> datetime:
    """Record the simulated agent's history into ``db_path``; return ``now`` for queries."""
    import memobs_otel as memobs

    remove_previous(db_path)
    anchor = datetime.now(timezone.utc).replace(microsecond=0)
    handle = memobs.configure(db_path=db_path, service_name="memobs-demo-agent")
    try:
        by_id = {m.entity_id: m for m in MEMORIES}
        # the store's history: creates, the v1 -> v2 supersession
        for memory in sorted(MEMORIES, key=lambda m: m.created_day):
            memobs.record_write(memory.entity_type, memory.entity_id, "create",
                                content=memory.content, title=memory.title,
                                created_at=_iso(anchor, memory.created_day))
        for memory in MEMORIES:
            if memory.updated_day is not None:
                memobs.record_write(memory.entity_type, memory.entity_id, "update",
                                    updated_at=_iso(anchor, memory.updated_day),
                                    superseded_by=memory.superseded_by)

        @memobs.observe_retrieval(entity_type=lambda e: e.metadata.get("entity_type", "memory"),
                                  store="support-memory")
        def search_memory(question: str, topic: str, user: str, k: int = 4) -> list[dict]:
            hits = []
            for memory in MEMORIES:
                score = (1.0 if topic in memory.keywords else 0.0) + (0.9 if user in memory.keywords else 0.0)
                if score:
                    score += memory.boost
                if memory.always:
                    score = 0.5
                if score > 0:
                    hits.append((score, memory))
            hits.sort(key=lambda pair: (-pair[0], pair[1].entity_id))
            return [{**_item(anchor, m), "score": round(score, 3)} for score, m in hits[:k]]

        rng = random.Random(seed)
        for n in range(conversations):
            user = rng.choice(sorted(USERS))
            session = rng.choice(USERS[user])
            topic, question = rng.choice(QUESTIONS)
            with memobs.context(user_id=user, session_id=session, request_id=f"req-{n:03d}"):
                hits = search_memory(question, topic, user)
                # the prompt the agent would send: no LLM here, so its size is recorded
                # (counted, never exported) for the context budget
                memobs.record_prompt(text=_prompt(question, hits), model="demo-model")
                # the answer uses the best topical playbook and the user's profile,
                # never the escalation manual
                for hit in hits:
                    memory = by_id[hit["id"]]
                    if memory.always or memory.entity_id == "pb-shipping-old":
                        continue
                    if memory.entity_type == "user_profile" or hit is hits[0] or rng.random() < 0.3:
                        memobs.cite(memory.entity_type, memory.entity_id)
        # a snapshot of the whole store: the only way memobs hears of fact-loyalty-2022
        memobs.record_inventory([_item(anchor, m) for m in MEMORIES + INVENTORY_ONLY],
                                entity_type=lambda e: e.metadata["entity_type"], store="support-memory")
        handle.force_flush()
    finally:
        handle.shutdown()
    # a review decision: the team keeps the old office's address on purpose
    with memobs.open_store(db_path) as store:
        store.dismiss("fact", "fact-old-office", signals=["stale"],
                      note="kept: customers still ask about the old office")
    return datetime.now(timezone.utc)
