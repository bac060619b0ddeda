"""LlamaIndex: every retriever call recorded — plain retrievers and query engines.

    pip install 'memobs_otel[llamaindex]'
    python examples/llamaindex_retriever.py [memobs-llamaindex.db]

Offline: a small hashed bag-of-words embedding and LlamaIndex's MockLLM
stand in for real models (``Settings`` is set so nothing reaches for the
network). Writes the SQLite file given (default ./memobs-llamaindex.db),
then prints ``memobs stats`` and ``memobs review`` for it.
"""

from __future__ import annotations

import hashlib
import math
import sys

from _report import show
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode
from opentelemetry import trace

import memobs_otel as memobs

DB = sys.argv[1] if len(sys.argv) > 1 else "memobs-llamaindex.db"


class HashedWords(BaseEmbedding):
    """Hashed word counts, L2-normalised: deterministic, local, good enough for a demo."""

    @staticmethod
    def _vector(text: str) -> list[float]:
        v = [0.0] * 128
        for word in text.lower().replace("?", " ").replace(".", " ").split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 128] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


Settings.llm = MockLLM()
Settings.embed_model = HashedWords()

handle = memobs.configure(db_path=DB, service_name="llamaindex-agent")
memobs.instrument("llamaindex")  # every BaseRetriever.retrieve / aretrieve

index = VectorStoreIndex([
    TextNode(id_="hb-leave", text="Employees get twenty five days of paid leave per year.",
             metadata={"title": "Paid leave", "updated_at": "2025-01-01T00:00:00Z"}),
    TextNode(id_="hb-remote", text="Remote work is allowed up to three days per week.",
             metadata={"title": "Remote work", "updated_at": "2024-04-01T00:00:00Z"}),
    TextNode(id_="hb-expenses", text="Travel expenses are reimbursed within one month of the claim.",
             metadata={"title": "Expenses", "updated_at": "2022-10-01T00:00:00Z"}),
])

tracer = trace.get_tracer("llamaindex-agent")
engine = index.as_query_engine(similarity_top_k=2)
for user, question in (("carol", "how many days of paid leave per year"),
                       ("carol", "how many days of remote work per week"),
                       ("dave", "paid leave per year")):
    with memobs.context(user_id=user), tracer.start_as_current_span("agent.answer"):
        response = engine.query(question)  # the query engine's retriever call is recorded
        # MockLLM only echoes its prompt; stand in for a real answer with the top source's text
        answer = response.source_nodes[0].node.get_content()
        print(f"Q: {question}\n   retrieved: {[(n.node.node_id, round(n.score, 3)) for n in response.source_nodes]}"
              f"\nA: {answer}\n   cited: {memobs.record_answer(answer)}")

# a plain retriever call outside a query engine is recorded the same way
index.as_retriever(similarity_top_k=1).retrieve("travel expenses")

memobs.uninstrument("llamaindex")
handle.shutdown()
show(DB)
