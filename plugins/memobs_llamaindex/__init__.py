"""memobs for LlamaIndex: every retriever call recorded, nodes as injections.

    pip install 'memobs_otel[llamaindex]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("llamaindex")         # or memobs.instrument() for every framework

    nodes = index.as_retriever(similarity_top_k=3).retrieve("refund policy")   # recorded

What is patched: ``llama_index.core.base.base_retriever.BaseRetriever.retrieve``
and ``aretrieve``, which every LlamaIndex retriever inherits — vector index,
BM25, auto-merging, router, ``QueryFusionRetriever`` and your own — so
query engines (``index.as_query_engine().query(...)``), chat engines and
agents that retrieve through a retriever are covered too. The query may be a
``str`` or a ``QueryBundle``.

What is recorded, per call: a retrieval span ``"retrieval {store}"`` (``store``
= the retriever's class name, e.g. ``VectorIndexRetriever``) and one
``memobs.injection`` event per returned ``NodeWithScore``: its id, score,
rank, token count, content hash and simhash, and lifecycle fields
(``created_at``, ``updated_at``, ``status``, ``version``…) from the node's
``metadata``.

Ids are stable across re-indexing. LlamaIndex gives the nodes it splits from
a ``Document`` a random id per index build, so a node with a source document
is identified by that document's id and its text:
``"{ref_doc_id}#{first 12 hex of the text's SHA-256}"`` (e.g.
``kb-gift#3f2a9c1d0e4b``) — the same text of the same source gets the same id
every time, and the source id is readable in it (and recorded as the
entity's ``source_id`` metadata). A node with no source document (a
``TextNode`` you built with your own ``id_``) keeps its node id.

Token counts are of the text the LLM sees: ``node.get_content(
metadata_mode=MetadataMode.LLM)``, i.e. the metadata LlamaIndex puts into
the prompt included (minus ``excluded_llm_metadata_keys``), exactly as the
query and chat engines format it. The query text is put on the
span only with content capture on. ``gen_ai.request.top_k`` is the
retriever's ``similarity_top_k``.

Nested retrievers are counted once: a ``QueryFusionRetriever`` (or a router,
or a recursive retriever) is the outer call and its nodes are the
injections; each member retriever's call is a nested span listing its nodes
without ``memobs.injection`` events.

Options (``memobs.instrument("llamaindex", ...)``): ``entity_type`` (a string,
default ``"document"``, or a callable on each entity), ``store`` (a string,
or a callable given the retriever), ``operation`` (``"retrieval"`` default, or
``"search_memory"``), ``chat_entity_type`` (default ``"chat_message"``).
``memobs.uninstrument("llamaindex")`` restores the original methods.

Chat memory: the chat history a chat engine reads from its memory and puts
in the prompt is recorded too, one injection per message: see
``chat_memory.py``.

Index inserts and deletes (``insert``, ``insert_nodes``, ``delete_ref_doc``,
``delete_nodes``) are recorded as writes under the same stable ids, and
``memobs_llamaindex.snapshot(index)`` records the nodes an index holds (an
inventory): see ``writes.py``.

An LLM call's prompt size (``prompt_tokens`` the LLM reports) is recorded for
the context budget when neither OpenInference nor OpenLLMetry is active: see
``prompts.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import memobs_otel as memobs
from memobs_otel import semconv
from memobs_otel.entities import Entity, entity_from_item
from memobs_otel.measure import content_hash  # bounded: a 10 MB node costs what a 64K one does
from memobs_otel.instrumentation import Instrumentor, PreparedCall, prepared_retrieval_wrappers
from memobs_otel.recording import RetrievalSpec

from .package import _instruments
from .prompts import PromptSizes

__all__ = ["LlamaIndexInstrumentor", "snapshot"]


def _query_text(args: tuple, kwargs: dict) -> str | None:
    query = args[0] if args else kwargs.get("str_or_query_bundle")
    if isinstance(query, str):
        return query
    text = getattr(query, "query_str", None)
    return text if isinstance(text, str) else None


def node_entity(node: Any, score: Any) -> Entity:
    """What memobs records of one retrieved node: a stable id, the prompt's text, its metadata.

    ``content`` (tokens, hashes, captured content) is the text the LLM sees,
    metadata lines included; ``cite_text`` is the node's own text, which is
    what an answer repeats (citations compare against it).
    """
    from llama_index.core.schema import MetadataMode

    raw = node.get_content(metadata_mode=MetadataMode.NONE)
    metadata = dict(node.metadata or {})
    source = node.ref_doc_id
    if source:
        entity_id = f"{source}#{content_hash(raw)[:12]}"
        metadata["source_id"] = source
    else:
        entity_id = node.node_id
    prompt_text = node.get_content(metadata_mode=MetadataMode.LLM)
    entity = entity_from_item({"id": entity_id, "content": prompt_text, "metadata": metadata}, "document",
                              float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None)
    if raw != prompt_text:
        entity.cite_text = raw
    return entity


def nodes_as_entities(result: Any) -> Any:
    """``entities_of`` for a retriever's result: each ``NodeWithScore`` as ``node_entity``.

    Anything that is not a list of ``NodeWithScore`` is passed on unchanged
    (the built-in extractors take it).
    """
    if not isinstance(result, list):
        return result
    out = []
    for item in result:
        node = getattr(item, "node", None)
        if node is None or not hasattr(node, "ref_doc_id") or not hasattr(node, "get_content"):
            return result
        out.append(node_entity(node, getattr(item, "score", None)))
    return out


def _top_k(retriever: Any) -> int | None:
    for name in ("similarity_top_k", "_similarity_top_k"):
        k = getattr(retriever, name, None)
        if isinstance(k, int) and not isinstance(k, bool):
            return k
    return None


class LlamaIndexInstrumentor(Instrumentor):
    name = "llamaindex"
    modules = ("llama_index.core",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str | Callable = "document"
        self.store: str | Callable | None = None
        self.operation = semconv.OPERATION_RETRIEVAL
        self._prompt_sizes = PromptSizes()

    def _instrument(self, entity_type: str | Callable = "document", store: str | Callable | None = None,
                    operation: str = semconv.OPERATION_RETRIEVAL, chat_entity_type: str = "chat_message",
                    **options: Any) -> None:
        if options:
            raise TypeError(f"unknown llamaindex instrument options {sorted(options)}")
        from llama_index.core.base.base_retriever import BaseRetriever

        self.entity_type, self.store, self.operation = entity_type, store, operation
        retrieve, aretrieve = prepared_retrieval_wrappers("llamaindex retriever", self._prepare)
        self.wrap(BaseRetriever, "retrieve", retrieve)
        self.wrap(BaseRetriever, "aretrieve", aretrieve)
        from .chat_memory import wrap_chat_memory  # the chat history engines inject (chat_memory.py)

        wrap_chat_memory(self, chat_entity_type)
        from .writes import IndexWrites  # index inserts and deletes as writes (writes.py)

        IndexWrites(self).instrument()
        # an LLM call's prompt size, when no LLM instrumentation records it (prompts.py)
        self._prompt_sizes.instrument()

    def _uninstrument(self) -> None:
        self._prompt_sizes.uninstrument()

    def _prepare(self, retriever: Any, args: tuple, kwargs: dict) -> PreparedCall:
        store = self.store
        if callable(store):
            store = store(retriever)
        elif store is None:
            store = type(retriever).__name__
        spec = RetrievalSpec(self.entity_type, store, self.operation)
        return PreparedCall(spec, _query_text(args, kwargs), _top_k(retriever), nodes_as_entities)


def snapshot(index: Any, entity_type: Any = None, *, store: str | None = None,
             complete: bool = True) -> int | None:
    """Record the nodes ``index`` holds as an inventory: see ``writes.snapshot``."""
    from .writes import snapshot as _snapshot

    return _snapshot(index, entity_type, store=store, complete=complete)


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(LlamaIndexInstrumentor())
