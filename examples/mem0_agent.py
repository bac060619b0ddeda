"""mem0: searches recorded as injections, add/update/delete as writes.

    pip install 'memobs_otel[mem0]'
    python examples/mem0_agent.py [memobs-mem0.db]

Offline: mem0 runs on a local qdrant directory with a small local embedder
(mem0 telemetry off, its files in a temporary directory); ``add(...,
infer=False)`` stores messages as they are, so no LLM is called. Writes the
SQLite file given (default ./memobs-mem0.db), then prints ``memobs stats``
and ``memobs review`` for it.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import tempfile

WORKDIR = tempfile.mkdtemp(prefix="memobs-mem0-example-")
os.environ.setdefault("MEM0_TELEMETRY", "False")       # read by mem0 when it is imported
os.environ.setdefault("MEM0_DIR", os.path.join(WORKDIR, "mem0"))

from _report import show  # noqa: E402
from mem0 import Memory  # noqa: E402
from mem0.embeddings.base import EmbeddingBase  # noqa: E402
from opentelemetry import trace  # noqa: E402

import memobs_otel as memobs  # noqa: E402

DB = sys.argv[1] if len(sys.argv) > 1 else "memobs-mem0.db"
DIMS = 64


class HashedWords(EmbeddingBase):
    """Hashed word counts, L2-normalised: a local stand-in for an embedding model."""

    def embed(self, text, memory_action=None):
        v = [0.0] * DIMS
        for word in text.lower().replace(",", " ").replace(".", " ").split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]


handle = memobs.configure(db_path=DB, service_name="mem0-agent")
memobs.instrument("mem0")

memory = Memory.from_config({
    "vector_store": {"provider": "qdrant", "config": {
        "path": os.path.join(WORKDIR, "qdrant"), "collection_name": "travel", "embedding_model_dims": DIMS}},
    # mem0 builds these clients at start-up; with the embedder replaced below and infer=False they
    # are never called
    "embedder": {"provider": "openai", "config": {"api_key": "unused-offline", "embedding_dims": DIMS}},
    "llm": {"provider": "openai", "config": {"api_key": "unused-offline"}},
    "history_db_path": os.path.join(WORKDIR, "history.db"),
})
memory.embedding_model = HashedWords()

ids = {}
for key, text in (("seat", "Alice prefers a window seat on long flights"),
                  ("meal", "Alice is vegetarian and avoids mushrooms"),
                  ("city", "Alice lives in Lyon")):
    ids[key] = memory.add(text, user_id="alice", infer=False)["results"][0]["id"]

tracer = trace.get_tracer("mem0-agent")


def answer(question: str) -> None:
    with tracer.start_as_current_span("agent.answer"):
        hits = memory.search(question, filters={"user_id": "alice"}, top_k=2)["results"]
        best = hits[0] if hits else None
        text = f"Booked: {best['memory'].lower()} [mem:{best['id']}]" if best else "Nothing known."
        print(f"Q: {question}\nA: {text}\n   cited: {memobs.record_answer(text)}")


answer("which seat on a long flight")
answer("any meal preferences, vegetarian")
memory.update(ids["seat"], text="Alice now prefers an aisle seat on long flights")   # an update write
memory.delete(ids["city"])                                                          # a delete write
answer("which seat on a long flight")
memory.close()
for store in (memory.vector_store, memory._entity_store):  # close() leaves mem0's qdrant clients open
    if getattr(store, "client", None) is not None:
        store.client.close()

memobs.uninstrument("mem0")
handle.shutdown()
shutil.rmtree(WORKDIR, ignore_errors=True)  # mem0's own files; the memobs file stays
show(DB)
