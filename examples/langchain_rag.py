"""LangChain RAG: every retriever call recorded, with one line of set-up.

    pip install 'memobs_otel[langchain]'
    python examples/langchain_rag.py [memobs-langchain.db]

Offline: an InMemoryVectorStore with LangChain's DeterministicFakeEmbedding
and a FakeListLLM stand in for a real embedding model and LLM. Writes the
SQLite file given (default ./memobs-langchain.db), then prints ``memobs
stats`` and ``memobs review`` for it.
"""

from __future__ import annotations

import sys

from _report import show
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListLLM
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from opentelemetry import trace

import memobs_otel as memobs

DB = sys.argv[1] if len(sys.argv) > 1 else "memobs-langchain.db"

handle = memobs.configure(db_path=DB, service_name="langchain-rag")
memobs.instrument("langchain")  # every BaseRetriever, sync and async

store = InMemoryVectorStore(DeterministicFakeEmbedding(size=64))
store.add_documents([
    Document(id="kb-returns", page_content="Items can be returned within thirty days in their original packaging.",
             metadata={"title": "Returns", "updated_at": "2025-02-01T00:00:00Z"}),
    Document(id="kb-warranty", page_content="Every laptop carries a two year warranty covering hardware faults.",
             metadata={"title": "Warranty", "updated_at": "2024-06-15T00:00:00Z"}),
    Document(id="kb-shipping", page_content="Orders ship within two working days from our Lyon warehouse.",
             metadata={"title": "Shipping", "updated_at": "2023-09-01T00:00:00Z"}),
])
retriever = store.as_retriever(search_kwargs={"k": 2})

prompt = PromptTemplate.from_template(
    "Answer from the context and cite sources as [mem:<id>].\n{context}\n\nQuestion: {question}")
llm = FakeListLLM(responses=[
    "Every laptop carries a two year warranty covering hardware faults.",   # repeats kb-warranty
    "You have thirty days to send it back [mem:kb-returns].",               # cites by marker
    "I could not find that in the knowledge base.",                         # cites nothing
])


def format_docs(docs):
    return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)


chain = {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()} | prompt | llm

tracer = trace.get_tracer("langchain-rag")
for user, question in (("alice", "what warranty does a laptop have"),
                       ("alice", "how long can I return items"),
                       ("bob", "do you ship to Mars")):
    with memobs.context(user_id=user), tracer.start_as_current_span("rag.answer"):
        answer = chain.invoke(question)
        print(f"Q: {question}\nA: {answer}\n   cited: {memobs.record_answer(answer)}")

memobs.uninstrument("langchain")
handle.shutdown()
show(DB)
