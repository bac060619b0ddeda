"""Quickstart: record what a plain search function injects into prompts.

    pip install memobs_otel
    python examples/quickstart.py [memobs-quickstart.db]

Offline. Writes the SQLite file given (default ./memobs-quickstart.db), then
prints ``memobs stats`` and ``memobs review`` for it.
"""

from __future__ import annotations

import sys

from _report import show
from opentelemetry import trace

import memobs_otel as memobs

DB = sys.argv[1] if len(sys.argv) > 1 else "memobs-quickstart.db"

PLAYBOOKS = [
    {"id": "pb-refund", "title": "Refunds", "updated_at": "2025-01-10T09:00:00Z",
     "content": "Refunds are issued to the original payment method within fourteen days of the return."},
    {"id": "pb-shipping", "title": "Shipping", "updated_at": "2024-03-02T09:00:00Z",
     "content": "Standard shipping takes three to five working days; express shipping takes one day."},
    {"id": "pb-giftcard", "title": "Gift cards", "updated_at": "2023-11-20T09:00:00Z",
     "content": "Gift cards never expire and cannot be exchanged for cash."},
]


@memobs.observe_retrieval(entity_type="playbook", store="playbooks")
def search_playbooks(query: str, k: int = 2) -> list[dict]:
    """A toy keyword search: the k playbooks sharing most words with the query."""
    words = set(query.lower().split())
    scored = [dict(pb, score=len(words & set(pb["content"].lower().split())) / len(words)) for pb in PLAYBOOKS]
    return sorted(scored, key=lambda pb: -pb["score"])[:k]


def answer(question: str) -> str:
    """The 'agent': retrieve, build a prompt, answer (an LLM would go here), record citations."""
    with tracer.start_as_current_span("agent.answer"):
        hits = search_playbooks(question, k=2)
        best = hits[0]
        text = f"{best['content']} [mem:{best['id']}]"  # the prompt asked the model to cite ids
        cited = memobs.record_answer(text)
        print(f"Q: {question}\nA: {text}\n   cited: {cited}")
        return text


handle = memobs.configure(db_path=DB, service_name="quickstart-agent")
tracer = trace.get_tracer("quickstart")
with memobs.context(user_id="alice", session_id="s-1"):
    answer("how long do refunds take")
    answer("when does express shipping arrive")
with memobs.context(user_id="bob", session_id="s-2"):
    answer("refunds for gift cards")
handle.shutdown()  # flush the spans into the file

show(DB)
