"""memobs for Qdrant used directly: queries as injections, upserts and deletes as writes.

    pip install 'memobs_otel[qdrant]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("qdrant")             # or memobs.instrument() for every framework

    client.upsert("notes", points=[PointStruct(id=1, vector=v, payload={"text": "..."})])  # a write
    hits = client.query_points("notes", query=embedding, limit=5)                          # injections

What is patched: ``query_points``, ``query_batch_points``, ``upsert`` and
``delete`` of ``qdrant_client.QdrantClient`` and ``AsyncQdrantClient`` (every
mode: server, gRPC, local ``":memory:"`` or on-disk), and ``search`` in the
client versions that still have it (it is gone from qdrant-client 1.20).

- ``query_points`` → a retrieval span ``"retrieval {collection}"`` and one
  ``memobs.injection`` event per returned point: its id (as text, UUIDs
  lower-case as Qdrant returns them), Qdrant's score, the rank, token count,
  content hash and simhash of its text, and lifecycle fields (``created_at``,
  ``updated_at``, ``status``, ``version``, ``parent_id``, ``superseded_by``,
  ``title``) read from the payload, or from the payload's ``metadata`` dict
  (the layout LangChain's ``QdrantVectorStore`` writes).
  ``gen_ai.request.top_k`` is ``limit``.
- ``query_batch_points`` → one span for the batch: the points of every
  request in order, a point returned by several requests once (at its first
  place), ranks counted across the batch. No ``top_k`` (each request has
  its own limit).
- The text of a point is the payload field named by the ``content_field``
  option; unset, the first string among ``page_content``, ``text``,
  ``document``, ``content``, ``data``, ``memory``; else the whole payload as
  JSON (sorted keys). A query made with ``with_payload=False`` returns no
  text: such points are recorded with 0 tokens.
- ``upsert`` → one ``update_memory`` write per point (op ``update``: an
  upsert creates or replaces, and memobs does not read your database to
  tell which), with the point's text and lifecycle fields; ``updated_at``
  is the payload's, else the time the call returned (UTC, ISO 8601). Both
  a list of ``PointStruct`` and a ``Batch`` are understood. With an
  ``update_filter`` or an ``update_mode`` other than ``upsert``, Qdrant may
  skip some of the points and does not say which: every point given is
  recorded.
- ``delete`` with ids (a list or ``PointIdsList``) → one ``delete_memory``
  write per id (status ``deleted``). ``delete`` with a filter
  (``Filter``/``FilterSelector``) → one ``delete_memory`` span naming the
  collection, without entity events: which points matched is not known
  without reading the collection first, which memobs does not do. Those
  points stay in memobs's inventory; record them yourself with
  ``memobs.record_write("document", id, "delete")`` if you know them.

Writes are recorded only when the call succeeds. ``upload_points``,
``upload_collection``, ``batch_update_points``, the payload and vector
setters, ``retrieve``, ``scroll`` and ``query_points_groups`` are not recorded.

Nesting: a Qdrant call made inside another recorded retrieval (a LangChain
``QdrantVectorStore`` retriever with ``memobs.instrument("langchain")``, a
mem0 search with ``memobs.instrument("mem0")``) is a nested span without
``memobs.injection`` events: the outer call's documents are the
injections, counted once. With the default entity type (``document``),
LangChain's retriever and these writes name the same entity (LangChain's
document id is the point id), so the inventory joins them.

mem0: while ``memobs.instrument("mem0")`` is on, the calls mem0 itself makes
to the client (its ``Memory.add``/``search``/``update``/``delete``/``get_all``
on a Qdrant vector store) are not recorded here: mem0's plugin records those
memories (type ``memory``), and recording their points too would list every
memory twice. The caller is found from the Python stack (the first frame
outside memobs and wrapt), one look per call. With only the Qdrant plugin
on, mem0's calls are recorded like any other.

Content (point text, query text) is exported only with content capture on;
hashes and token counts always are. The query text is known only for a
``models.Document`` query.

Options (``memobs.instrument("qdrant", ...)``): ``entity_type`` (default
``"document"``, or a callable given each entity), ``store`` (default: the
collection name), ``content_field`` (see above), ``operation``
(``"retrieval"``, the default, or ``"search_memory"``).
``memobs.uninstrument("qdrant")`` restores the original methods.
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

from . import points as _points
from .package import _instruments

__all__ = ["QdrantInstrumentor"]


def _arg(args: tuple, kwargs: dict, name: str, index: int) -> Any:
    """An argument given by keyword or at ``index`` (after ``self``)."""
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Calls a framework memobs records itself are left to it (called_by_instrumented_framework
# says why): caller's top-level package -> the memobs framework; mem0's for every call,
_OWNERS = {"mem0": "mem0"}
# LangChain's vector store and LlamaIndex's index for writes only
_WRITE_OWNERS = {**_OWNERS, "langchain_qdrant": "langchain", "llama_index": "llamaindex"}
_OWN_FRAMES = frozenset(("memobs_otel", "memobs_qdrant", "wrapt"))


def _owned_call(write: bool = False) -> bool:
    """Is the client being called by a framework that memobs records itself, right now?"""
    return called_by_instrumented_framework(_WRITE_OWNERS if write else _OWNERS, _OWN_FRAMES)


class QdrantInstrumentor(Instrumentor):
    name = "qdrant"
    modules = ("qdrant_client",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str | Callable = "document"
        self.store: str | None = None
        self.content_field: str | None = None
        self.operation = semconv.OPERATION_RETRIEVAL

    def _instrument(self, entity_type: str | Callable = "document", store: str | None = None,
                    content_field: str | None = None, operation: str = semconv.OPERATION_RETRIEVAL,
                    **options: Any) -> None:
        if options:
            raise TypeError(f"unknown qdrant instrument options {sorted(options)}")
        from qdrant_client import AsyncQdrantClient, QdrantClient

        self.entity_type, self.store = entity_type, store
        self.content_field, self.operation = content_field, operation
        query = prepared_retrieval_wrappers("qdrant query_points", self._prepare_query)
        batch = prepared_retrieval_wrappers("qdrant query_batch_points", self._prepare_batch)
        search = prepared_retrieval_wrappers("qdrant search", self._prepare_search)
        for sync, cls in ((0, QdrantClient), (1, AsyncQdrantClient)):
            self.wrap(cls, "query_points", query[sync])
            self.wrap(cls, "query_batch_points", batch[sync])
            if hasattr(cls, "search"):  # removed from qdrant-client 1.20
                self.wrap(cls, "search", search[sync])
            wrapper = self._awrite_wrapper if sync else self._write_wrapper
            self.wrap(cls, "upsert", wrapper(self._record_upsert))
            self.wrap(cls, "delete", wrapper(self._record_delete))

    # --- reads ----------------------------------------------------------------

    def _entities_of(self, result: Any) -> list[dict]:
        return _points.entity_items(result, self.content_field)

    def _spec(self, args: tuple, kwargs: dict) -> RetrievalSpec:
        store = self.store or _arg(args, kwargs, "collection_name", 0)
        return RetrievalSpec(self.entity_type, str(store) if store is not None else None, self.operation)

    def _prepare_query(self, client: Any, args: tuple, kwargs: dict) -> PreparedCall | None:
        if _owned_call():
            return None
        query = _arg(args, kwargs, "query", 1)
        text = getattr(query, "text", None)  # a models.Document query (embedded by Qdrant)
        limit = _int(_arg(args, kwargs, "limit", 6))
        return PreparedCall(self._spec(args, kwargs), text if isinstance(text, str) else None,
                            10 if limit is None else limit, self._entities_of)

    def _prepare_batch(self, client: Any, args: tuple, kwargs: dict) -> PreparedCall | None:
        if _owned_call():
            return None
        return PreparedCall(self._spec(args, kwargs), None, None, self._entities_of)

    def _prepare_search(self, client: Any, args: tuple, kwargs: dict) -> PreparedCall | None:
        if _owned_call():
            return None
        limit = _int(_arg(args, kwargs, "limit", 4))
        return PreparedCall(self._spec(args, kwargs), None, 10 if limit is None else limit, self._entities_of)

    # --- writes ---------------------------------------------------------------

    def _write_wrapper(self, record: Callable) -> Callable:
        def wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled or guard.safe_invoke("qdrant caller", _owned_call, True, default=True):
                return wrapped(*args, **kwargs)
            result = wrapped(*args, **kwargs)
            guard.safe_invoke("qdrant write", record, args, kwargs)
            return result
        return wrapper

    def _awrite_wrapper(self, record: Callable) -> Callable:
        async def wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled or guard.safe_invoke("qdrant caller", _owned_call, True, default=True):
                return await wrapped(*args, **kwargs)
            result = await wrapped(*args, **kwargs)
            guard.safe_invoke("qdrant write", record, args, kwargs)
            return result
        return wrapper

    def _entity_type_for(self, entity_id: str, content: str | None) -> str:
        if isinstance(self.entity_type, str):
            return self.entity_type
        from memobs_otel.entities import Entity

        return str(self.entity_type(Entity("document", entity_id, content or "")))

    def _record_upsert(self, args: tuple, kwargs: dict) -> None:
        store = self._spec(args, kwargs).store
        now = datetime.now(timezone.utc).isoformat()
        for pid, payload in _points.written_points(_arg(args, kwargs, "points", 1)):
            content = _points.payload_text(payload, self.content_field) if payload is not None else None
            fields = _points.lifecycle(payload)
            fields.setdefault("updated_at", now)
            record_write(self._entity_type_for(pid, content), pid, "update", store=store,
                         content=content, **fields)

    def _record_delete(self, args: tuple, kwargs: dict) -> None:
        store = self._spec(args, kwargs).store
        now = datetime.now(timezone.utc).isoformat()
        ids = _points.selected_ids(_arg(args, kwargs, "points_selector", 1))
        if ids is None:
            _filter_delete_span(store)
            return
        for pid in ids:
            record_write(self._entity_type_for(pid, None), pid, "delete", store=store, updated_at=now)


def _filter_delete_span(store: str | None) -> None:
    """A ``delete_memory`` span for a delete by filter: the deleted ids are unknown."""
    name = semconv.WRITE_SPAN_NAMES["delete"]
    attrs = {semconv.GEN_AI_OPERATION_NAME: name, **current_ids()}
    if store:
        attrs[semconv.GEN_AI_MEMORY_STORE_ID] = store
    config.get_tracer().start_span(name, kind=SpanKind.CLIENT, attributes=attrs).end()


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(QdrantInstrumentor())
