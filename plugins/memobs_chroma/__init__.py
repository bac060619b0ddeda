"""memobs for Chroma used directly: query/get as injections, add/upsert/update/delete as writes.

    pip install 'memobs_otel[chroma]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("chroma")             # or memobs.instrument() for every framework

    notes.add(ids=["n1"], documents=["Refunds take 5 days"], embeddings=[v])   # a write
    hits = notes.query(query_embeddings=[q], n_results=3)                      # injections

What is patched: ``query``, ``get``, ``add``, ``upsert``, ``update`` and
``delete`` of ``chromadb.Collection`` (every client that hands out
``Collection``: ``EphemeralClient``, ``PersistentClient``, ``HttpClient``,
``CloudClient``) and of ``AsyncCollection`` (``AsyncHttpClient``).

- ``query`` → a retrieval span ``"retrieval {collection}"`` and one
  ``memobs.injection`` event per returned record: its id, score, rank, the
  token count, content hash and simhash of its document, and lifecycle
  fields (``created_at``, ``updated_at``, ``status``, ``version``,
  ``parent_id``, ``superseded_by``, ``title``) from its metadata.
  ``gen_ai.request.top_k`` is ``n_results``. Several query embeddings or
  texts in one call: the results of every query in order, a record
  returned by several queries once (at its first place), ranks counted
  across the call.
- The score is Chroma's **distance**, as Chroma returns it: lower is
  closer, and its meaning depends on the collection's space (squared L2 by
  default, ``1 - cosine similarity`` for ``cosine``, ``1 - dot product`` for
  ``ip``). memobs does not turn it into a similarity: that would need the
  space (a read of the collection's configuration) and, for L2, a formula
  of memobs's choosing. It is also the score LangChain's ``Chroma``
  ``similarity_search_with_score`` reports, so a record has the same score
  however it was retrieved. Leave ``"distances"`` out of ``include`` and
  the events have no score.
- ``get`` → the same span and events, without scores; ``gen_ai.request.top_k``
  is ``limit`` when given. (``get`` is how an agent reads records by id or
  by metadata filter into a prompt; ``peek`` and ``count`` are not recorded.)
- The text of a record is its document. For a record without one (stored
  with embeddings only, as mem0 does, or ``documents`` left out of
  ``include``) it is the first string among the metadata's
  ``page_content``, ``text``, ``document``, ``content``, ``data``,
  ``memory``; else the metadata as JSON (sorted keys); else empty (0 tokens).
- ``add`` → one ``create_memory`` write per id, with its document and
  lifecycle fields; ``created_at`` is the metadata's, else the time the call
  returned (UTC, ISO 8601).
- ``upsert`` and ``update`` → one ``update_memory`` write per id (op
  ``update``: an upsert creates or replaces, and memobs does not read your
  collection to tell which); ``updated_at`` is the metadata's, else the
  time the call returned. The content is the document given; without
  one, the text in the metadata (the keys below) if any, else none (Chroma
  keeps the stored document, unknown here).
- ``delete(ids=...)`` → one ``delete_memory`` write per id (status
  ``deleted``). A delete by ``where``/``where_document`` filter → one
  ``delete_memory`` span naming the collection, with
  ``memobs.record.count`` = the number Chroma reports deleted, and no
  entity events: which records matched is unknown without reading them
  first, which memobs does not do. (Ids together with a filter: the ids are
  recorded when Chroma reports every one of them deleted; otherwise it is a
  filter delete.) Records deleted by filter stay in memobs's inventory;
  record them yourself with ``memobs.record_write("document", id, "delete")``.

Writes are recorded only when the call succeeds.

Nesting: a Chroma call made inside another recorded retrieval (a LangChain
``Chroma`` retriever with ``memobs.instrument("langchain")``) is a nested
span without ``memobs.injection`` events: the retriever's documents are the
injections, counted once. With the default entity type (``document``),
LangChain's retriever and these writes name the same entity (LangChain's
document id is the Chroma id), so the inventory joins them.

mem0: while ``memobs.instrument("mem0")`` is on, the calls mem0 itself makes
to a collection (its ``Memory.add``/``search``/``update``/``delete``/``get``/
``get_all`` on a Chroma vector store) are not recorded here: mem0's plugin
records those memories (type ``memory``), and recording their records too
would list every memory twice. The caller is found from the Python stack
(the first frame outside memobs and wrapt), one look per call. With only
the Chroma plugin on, mem0's calls are recorded like any other.

Content (documents, query texts) is exported only with content capture
on; hashes and token counts always are.

Options (``memobs.instrument("chroma", ...)``): ``entity_type`` (default
``"document"``, or a callable given each entity), ``store`` (default: the
collection name), ``operation`` (``"retrieval"``, the default, or
``"search_memory"``). ``memobs.uninstrument("chroma")`` restores the
original methods.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from opentelemetry.trace import SpanKind

import memobs_otel as memobs
from memobs_otel import config, guard, semconv
from memobs_otel.context import current_ids
from memobs_otel.instrumentation import (
    Instrumentor,
    PreparedCall,
    called_by_instrumented_framework,
    prepared_retrieval_wrappers,
)
from memobs_otel.recording import RetrievalSpec, record_write

from . import records as _records
from .package import _instruments

__all__ = ["ChromaInstrumentor"]

# positional indexes (after self) of Collection's arguments
_QUERY_TEXTS, _N_RESULTS, _GET_LIMIT = 1, 5, 2
_IDS, _METADATAS, _DOCUMENTS = 0, 2, 3


def _arg(args: tuple, kwargs: dict, name: str, index: int) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# Calls a framework memobs records itself are left to it (called_by_instrumented_framework
# says why): caller's top-level package -> the memobs framework; mem0's for every call,
_OWNERS = {"mem0": "mem0"}
# LangChain's vector store and LlamaIndex's index for writes only
_WRITE_OWNERS = {**_OWNERS, "langchain_chroma": "langchain", "llama_index": "llamaindex"}
_OWN_FRAMES = frozenset(("memobs_otel", "memobs_chroma", "wrapt"))


def _owned_call(write: bool = False) -> bool:
    """Is the collection being called by a framework that memobs records itself, right now?"""
    return called_by_instrumented_framework(_WRITE_OWNERS if write else _OWNERS, _OWN_FRAMES)


class ChromaInstrumentor(Instrumentor):
    name = "chroma"
    modules = ("chromadb",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str | Callable = "document"
        self.store: str | None = None
        self.operation = semconv.OPERATION_RETRIEVAL

    def _instrument(self, entity_type: str | Callable = "document", store: str | None = None,
                    operation: str = semconv.OPERATION_RETRIEVAL, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown chroma instrument options {sorted(options)}")
        from chromadb.api.models.AsyncCollection import AsyncCollection
        from chromadb.api.models.Collection import Collection

        self.entity_type, self.store, self.operation = entity_type, store, operation
        query = prepared_retrieval_wrappers("chroma query", self._prepare_query)
        get = prepared_retrieval_wrappers("chroma get", self._prepare_get)
        for sync, cls in ((0, Collection), (1, AsyncCollection)):
            self.wrap(cls, "query", query[sync])
            self.wrap(cls, "get", get[sync])
            wrapper = self._awrite_wrapper if sync else self._write_wrapper
            self.wrap(cls, "add", wrapper(self._record_add))
            self.wrap(cls, "upsert", wrapper(self._record_upsert))
            self.wrap(cls, "update", wrapper(self._record_upsert))
            self.wrap(cls, "delete", wrapper(self._record_delete))

    def _store(self, collection: Any) -> str | None:
        if self.store:
            return self.store
        name = getattr(collection, "name", None)
        return str(name) if name is not None else None

    # --- reads ----------------------------------------------------------------

    def _prepare_query(self, collection: Any, args: tuple, kwargs: dict) -> PreparedCall | None:
        if _owned_call():
            return None
        texts = _arg(args, kwargs, "query_texts", _QUERY_TEXTS)
        if isinstance(texts, str):
            query = texts
        elif isinstance(texts, (list, tuple)) and texts and all(isinstance(t, str) for t in texts):
            query = "\n".join(texts)
        else:
            query = None
        n_results = _int(_arg(args, kwargs, "n_results", _N_RESULTS))
        spec = RetrievalSpec(self.entity_type, self._store(collection), self.operation)
        return PreparedCall(spec, query, 10 if n_results is None else n_results, _records.query_items)

    def _prepare_get(self, collection: Any, args: tuple, kwargs: dict) -> PreparedCall | None:
        if _owned_call():
            return None
        spec = RetrievalSpec(self.entity_type, self._store(collection), self.operation)
        return PreparedCall(spec, None, _int(_arg(args, kwargs, "limit", _GET_LIMIT)), _records.get_items)

    # --- writes ---------------------------------------------------------------

    def _write_wrapper(self, record: Callable) -> Callable:
        def wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled or guard.safe_invoke("chroma caller", _owned_call, True, default=True):
                return wrapped(*args, **kwargs)
            result = wrapped(*args, **kwargs)
            guard.safe_invoke("chroma write", record, instance, args, kwargs, result)
            return result
        return wrapper

    def _awrite_wrapper(self, record: Callable) -> Callable:
        async def wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled or guard.safe_invoke("chroma caller", _owned_call, True, default=True):
                return await wrapped(*args, **kwargs)
            result = await wrapped(*args, **kwargs)
            guard.safe_invoke("chroma write", record, instance, args, kwargs, result)
            return result
        return wrapper

    def _write(self, collection: Any, rid: str, op: str, content: str | None, fields: dict) -> None:
        entity_type = self.entity_type
        if not isinstance(entity_type, str):
            from memobs_otel.entities import Entity

            entity_type = str(entity_type(Entity("document", rid, content or "")))
        record_write(entity_type, rid, op, store=self._store(collection), content=content, **fields)

    def _written(self, args: tuple, kwargs: dict):
        return _records.written(_arg(args, kwargs, "ids", _IDS), _arg(args, kwargs, "documents", _DOCUMENTS),
                                _arg(args, kwargs, "metadatas", _METADATAS))

    def _record_add(self, collection: Any, args: tuple, kwargs: dict, result: Any) -> None:
        now = _now()
        for rid, document, metadata in self._written(args, kwargs):
            fields = _records.lifecycle(metadata)
            fields.setdefault("created_at", now)
            self._write(collection, rid, "create", _records.record_text(document, metadata), fields)

    def _record_upsert(self, collection: Any, args: tuple, kwargs: dict, result: Any) -> None:
        now = _now()
        for rid, document, metadata in self._written(args, kwargs):
            fields = _records.lifecycle(metadata)
            fields.setdefault("updated_at", now)
            # no document given: Chroma keeps the stored one, unless the metadata carries the text
            content = document if isinstance(document, str) else _records.metadata_text(metadata)
            self._write(collection, rid, "update", content, fields)

    def _record_delete(self, collection: Any, args: tuple, kwargs: dict, result: Any) -> None:
        ids = _records.id_list(_arg(args, kwargs, "ids", 0))
        filtered = _arg(args, kwargs, "where", 1) is not None or _arg(args, kwargs, "where_document", 2) is not None
        deleted = result.get("deleted") if isinstance(result, dict) else None
        if ids and (not filtered or deleted == len(set(ids))):
            now = _now()
            for rid in ids:
                self._write(collection, rid, "delete", None, {"updated_at": now})
            return
        name = semconv.WRITE_SPAN_NAMES["delete"]
        attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: name, **current_ids()}
        store = self._store(collection)
        if store:
            attrs[semconv.GEN_AI_MEMORY_STORE_ID] = store
        if _int(deleted) is not None:
            attrs[semconv.MEMOBS_RECORD_COUNT] = deleted
        config.get_tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attrs).end()


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(ChromaInstrumentor())
