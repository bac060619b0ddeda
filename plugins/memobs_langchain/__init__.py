"""memobs for LangChain: every retriever call recorded, documents as injections.

    pip install 'memobs_otel[langchain]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("langchain")          # or memobs.instrument() for every framework

    docs = retriever.invoke("refund policy")   # recorded

What is patched: LangChain's retriever runs — the callback managers'
``on_retriever_start``, ``on_retriever_end`` and ``on_retriever_error``
(sync and async), which every retriever call goes through — and, lightly,
``langchain_core.retrievers.BaseRetriever.invoke``/``ainvoke`` (which
retriever a run belongs to). So every retriever is covered — vector-store
retrievers, BM25, ensembles (also those defining their own ``invoke``, as
langchain-classic's ``EnsembleRetriever`` does), your own subclasses — and
every way of calling one: ``invoke``, ``ainvoke``, ``batch``/``abatch``,
``stream``, and a retriever inside an LCEL chain
(``{"context": retriever | format_docs, ...} | prompt | llm``). See ``runs``.

Beside OpenInference or OpenLLMetry: when their LangChain instrumentation is
active it already has a span for each retriever run; memobs then records onto
that span (its ``memobs.injection`` events, ``memobs.*`` totals, the listed
documents, and the attributes the span does not have yet, e.g.
``openinference.span.kind=RETRIEVER`` on OpenLLMetry's) instead of starting
its own: one retriever span per call, in the chain's trace, and
``memobs.record_answer`` finds the documents there. See ``peers``. The events
then go wherever that instrumentation's spans go: set both up on the same
tracer provider (``memobs.configure(tracer_provider=...)``, or both on the
global one) so that memobs's SQLite file gets them.

What is recorded, per call: a retrieval span ``"retrieval {store}"`` (or the
other instrumentation's span, above) covering the retriever's own work, and one
``memobs.injection`` event per returned ``Document`` (id, rank, token count,
content hash and simhash; lifecycle fields such as ``created_at`` from its
``metadata``). ``store`` is the vector store's class name for a
``VectorStoreRetriever`` (``InMemoryVectorStore``, ``Chroma``, …), else the
retriever's class name (for a retriever with its own ``invoke``: its run's
name, i.e. the class name unless a ``run_name`` was given). A document
without ``id`` gets a stable id from its content hash. The query text is put on the span only with content capture on.

Scores: where the vector store computes them (``similarity_search_with_score``,
``similarity_search_with_relevance_scores`` and their async forms, which most
stores' ``similarity_search`` goes through) each document's score is put on
its event; with ``search_type="similarity_score_threshold"`` it is the
relevance score the threshold was applied to. MMR search has no scores.
LangChain's own warnings are untouched: the method that warns about
out-of-range relevance scores is not wrapped (see ``scores``), so its
``stacklevel`` still names your code.

Composite retrievers (``EnsembleRetriever``, ``MergerRetriever``,
``MultiQueryRetriever``, ``ContextualCompressionRetriever``…) are recorded
once: the outer call's documents are the injections; each member
retriever's call is a nested span listing its documents without
``memobs.injection`` events, so no document is counted twice.

Options (``memobs.instrument("langchain", ...)``):

- ``entity_type``: a string (default ``"document"``) or a callable given each
  entity that returns its type (e.g. from ``entity.metadata["kind"]``);
- ``store``: a string, or a callable given the retriever that returns the
  store name (a retriever with its own ``invoke`` is not seen: its run's
  name is used);
- ``operation``: ``"retrieval"`` (default) or ``"search_memory"``.

Vector store writes (``add_documents``, ``add_texts``, ``delete`` and their
async forms) are recorded as writes, and ``memobs_langchain.snapshot(vector_store)``
records what a store holds (an inventory): see ``writes``.

A chat model's prompt size (``usage_metadata["input_tokens"]``) is recorded
for the context budget when neither OpenInference nor OpenLLMetry is active
(they record it themselves): see ``prompts``.

``memobs.uninstrument("langchain")`` restores the original methods.
"""

from __future__ import annotations

from typing import Any, Callable

import memobs_otel as memobs
from memobs_otel import semconv
from memobs_otel.instrumentation import Instrumentor
from memobs_otel.recording import RetrievalSpec

from . import prompts, runs, scores
from .package import _instruments
from .writes import VectorStoreWrites, snapshot

__all__ = ["LangChainInstrumentor", "snapshot"]


def _top_k(retriever: Any, kwargs: dict) -> int | None:
    for source in (kwargs, getattr(retriever, "search_kwargs", None)):
        if isinstance(source, dict):
            k = source.get("k")
            if isinstance(k, int) and not isinstance(k, bool):
                return k
    k = getattr(retriever, "k", None)
    return k if isinstance(k, int) and not isinstance(k, bool) else None


class LangChainInstrumentor(Instrumentor):
    name = "langchain"
    modules = ("langchain_core",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self._score_classes: set[type] = set()
        self._vector_store_base: type | None = None
        self.entity_type: str | Callable = "document"
        self.store: str | Callable | None = None
        self.operation = semconv.OPERATION_RETRIEVAL
        self._specs: dict[str, RetrievalSpec] = {}
        self._writes = VectorStoreWrites(self)

    def _instrument(self, entity_type: str | Callable = "document", store: str | Callable | None = None,
                    operation: str = semconv.OPERATION_RETRIEVAL, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown langchain instrument options {sorted(options)}")
        from langchain_core.callbacks import (AsyncCallbackManager, AsyncCallbackManagerForRetrieverRun,
                                              CallbackManager, CallbackManagerForRetrieverRun)
        from langchain_core.retrievers import BaseRetriever
        from langchain_core.vectorstores import VectorStore

        self.entity_type, self.store, self.operation = entity_type, store, operation
        self._specs = {}
        self._vector_store_base = VectorStore
        wrappers = runs.wrappers(self._describe)
        for method, (sync_owner, async_owner) in (
                ("on_retriever_start", (CallbackManager, AsyncCallbackManager)),
                ("on_retriever_end", (CallbackManagerForRetrieverRun, AsyncCallbackManagerForRetrieverRun)),
                ("on_retriever_error", (CallbackManagerForRetrieverRun, AsyncCallbackManagerForRetrieverRun))):
            sync_wrapper, async_wrapper = wrappers[method]
            self.wrap(sync_owner, method, sync_wrapper)
            self.wrap(async_owner, method, async_wrapper)
        invoke, ainvoke = wrappers["invoke"]
        self.wrap(BaseRetriever, "invoke", invoke)
        self.wrap(BaseRetriever, "ainvoke", ainvoke)
        pending = [VectorStore]
        while pending:  # every vector store class defined so far; later ones on first use
            cls = pending.pop()
            self._patch_scores(cls)
            pending.extend(cls.__subclasses__())
        self._writes.instrument(VectorStore)  # add/delete as writes (writes.py)
        # a model call's prompt size, when no LLM instrumentation records it (prompts.py)
        from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun

        self.wrap(CallbackManagerForLLMRun, "on_llm_end", prompts.on_llm_end)
        self.wrap(AsyncCallbackManagerForLLMRun, "on_llm_end", prompts.aon_llm_end)

    def _uninstrument(self) -> None:
        self._score_classes.clear()
        self._writes.uninstrument()

    # --- vector store scores ------------------------------------------------

    def _patch_scores(self, cls: type) -> None:
        if cls in self._score_classes:
            return
        with self._lock:
            if cls in self._score_classes:
                return
            for method in scores.SCORE_METHODS:
                if method in vars(cls):  # inherited ones are wrapped on the class defining them
                    wrapper = scores.anote_scores if method.startswith("a") else scores.note_scores
                    self.wrap(cls, method, wrapper)
            self._score_classes.add(cls)

    def _ensure_scores(self, retriever: Any) -> None:
        store = getattr(retriever, "vectorstore", None)
        base = self._vector_store_base
        if store is None or base is None or type(store) in self._score_classes:
            return
        for cls in type(store).__mro__:
            if isinstance(cls, type) and issubclass(cls, base):
                self._patch_scores(cls)

    # --- retriever calls ----------------------------------------------------

    def _spec(self, retriever: Any, name: Any = None) -> RetrievalSpec:
        store = self.store
        if callable(store):
            store = store(retriever) if retriever is not None else name
        elif store is None:
            vector_store = getattr(retriever, "vectorstore", None)
            if vector_store is not None:
                store = type(vector_store).__name__
            else:  # a retriever with its own invoke is known by its run's name only
                store = type(retriever).__name__ if retriever is not None else name
        try:
            return self._specs[store]  # one per store name (entity_type and operation are fixed)
        except (KeyError, TypeError):
            spec = RetrievalSpec(self.entity_type, store, self.operation)
            if type(store) is str and len(self._specs) < 256:
                self._specs[store] = spec
            return spec

    def _describe(self, retriever: Any, name: Any, kwargs: dict) -> tuple[RetrievalSpec, int | None]:
        """The run's spec and ``k`` (``retriever`` is None for a retriever with its own ``invoke``)."""
        if retriever is None:
            return self._spec(None, name if isinstance(name, str) else None), None
        self._ensure_scores(retriever)
        return self._spec(retriever), _top_k(retriever, kwargs)


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(LangChainInstrumentor())
