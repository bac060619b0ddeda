"""Vector store writes as memobs writes, and ``snapshot()`` of a vector store.

**Writes.** ``add_documents``/``aadd_documents``, ``add_texts``/``aadd_texts``
and ``delete``/``adelete`` are wrapped on ``VectorStore`` and on every
subclass that defines its own (``InMemoryVectorStore.add_documents``,
``Chroma.add_texts``, ``QdrantVectorStore.delete``…): the classes imported
when ``memobs.instrument("langchain")`` runs, and those defined later (a
``VectorStore.__init_subclass__`` hook patches each new class as it is
created). The base class's methods call one another (``add_texts`` builds
documents and calls ``add_documents``, the async ones run the sync ones in an
executor, a subclass may call ``super()``): only the outermost call is
recorded (a context variable marks the write in progress), so a document is
written once.

What is recorded, when the call returns without raising (a ``delete`` that
returns ``False`` is not recorded): one ``create`` write per document — the
id the store returned (so also the ids it generated), its text and the
lifecycle fields of its ``metadata`` (``created_at``, ``updated_at``,
``status``, ``title``…), extracted as the retriever's documents are, so
the ids match — and one ``delete`` write per id given to ``delete``
(``delete()`` with no ids is not recorded). ``add_texts`` given a one-shot
iterator is recorded with ids only: memobs does not read what the store
consumes. Store-specific methods beside these (``Chroma.update_documents``,
``QdrantVectorStore``'s own upserts) are not recorded. The store name is the vector store's class name (what the
retriever spans use), or the ``store`` option when it is a string; a
callable ``store`` is given the vector store here.

**Snapshot.** ``memobs_langchain.snapshot(vector_store)`` records what the
store holds through ``memobs.record_inventory``. It is complete (entries
memobs knew for that store and are gone are marked deleted) when the store
is named — ``snapshot(vs, store="faq")`` or ``memobs.instrument("langchain",
store=...)`` — or when you say ``complete=True``: unnamed stores go by their
class name, which two stores of one class share. Supported:

- ``InMemoryVectorStore`` (its ``store`` dict): the whole store;
- ``langchain_chroma.Chroma`` (``get`` paged by ``limit``/``offset``): the whole collection;
- any store with ``get_by_ids``, given ``ids=[...]``: those documents
  (``complete`` defaults to False then: say ``complete=True`` only when
  the ids are the whole store).

Other stores without ``ids`` are logged once and not recorded (``None``).
"""

from __future__ import annotations

from contextvars import ContextVar
from itertools import count
from typing import Any, Callable, Iterable, Iterator

from memobs_otel import config, guard
from memobs_otel.inventory import record_inventory
from memobs_otel.recording import RetrievalSpec, record_write, result_entities
from memobs_otel.write_patches import outermost_write_wrappers, write_fields

KIND = "langchain vector store write"
WRITE_METHODS = ("add_texts", "aadd_texts", "add_documents", "aadd_documents", "delete", "adelete")
PAGE = 1000  # documents per page read from a store that pages

_in_write: ContextVar[bool] = ContextVar("memobs_langchain_in_write", default=False)
_MISSING = object()


def store_name(store_option: Any, vector_store: Any) -> str:
    """The store a write or snapshot is recorded under (see the module docstring)."""
    if isinstance(store_option, str) and store_option:
        return store_option
    if callable(store_option):
        name = guard.safe_invoke(KIND, store_option, vector_store)
        if name is not None:
            return str(name)
    return type(vector_store).__name__


class VectorStoreWrites:
    """The write patches of one ``LangChainInstrumentor`` (``owner``)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.patched: set[type] = set()
        self._base: type | None = None
        self._original_hook: Any = _MISSING

    # --- patching -----------------------------------------------------------

    def instrument(self, base: type) -> None:
        self._base = base
        pending = [base]
        while pending:  # every vector store class defined so far
            cls = pending.pop()
            self.patch_class(cls)
            pending.extend(cls.__subclasses__())
        self._hook_new_subclasses(base)

    def uninstrument(self) -> None:
        base = self._base
        if base is not None and self._original_hook is not _MISSING:
            if self._original_hook is None:
                try:
                    delattr(base, "__init_subclass__")
                except AttributeError:
                    pass
            else:
                setattr(base, "__init_subclass__", self._original_hook)
        self._original_hook = _MISSING
        self.patched.clear()

    def _hook_new_subclasses(self, base: type) -> None:
        original = vars(base).get("__init_subclass__")
        self._original_hook = original
        writes = self

        def __init_subclass__(cls, **kwargs):  # noqa: N807 - the hook's own name
            if original is not None:
                original.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)
            if writes.owner.is_instrumented:
                guard.safe_invoke(KIND, writes.patch_class, cls)

        base.__init_subclass__ = classmethod(__init_subclass__)

    def patch_class(self, cls: type) -> None:
        if cls in self.patched:
            return
        with self.owner._lock:
            if cls in self.patched:
                return
            for method in WRITE_METHODS:
                if method in vars(cls):  # inherited ones are wrapped on the class defining them
                    self.owner.wrap(cls, method, self._wrapper(method))
            self.patched.add(cls)

    def _wrapper(self, method: str) -> Callable:
        prepare = self._prepare_delete if method.endswith("delete") else (
            self._prepare_texts if method.endswith("add_texts") else self._prepare_documents)
        wrapper, async_wrapper = outermost_write_wrappers(KIND, _in_write, prepare, self._record)
        return async_wrapper if method in ("aadd_texts", "aadd_documents", "adelete") else wrapper

    # --- what a call writes -----------------------------------------------------

    @staticmethod
    def _prepare_documents(vector_store: Any, args: tuple, kwargs: dict):
        documents = args[0] if args else kwargs.get("documents")
        if not isinstance(documents, (list, tuple)):
            return None
        ids = kwargs.get("ids")
        return ("create", [(d.page_content, d.metadata, d.id) for d in documents],
                list(ids) if isinstance(ids, (list, tuple)) else None)

    @staticmethod
    def _prepare_texts(vector_store: Any, args: tuple, kwargs: dict):
        texts = args[0] if args else kwargs.get("texts")
        metadatas = args[1] if len(args) > 1 else kwargs.get("metadatas")
        ids = kwargs.get("ids")
        if not isinstance(texts, (list, tuple)):  # a one-shot iterator: the store's to consume
            return ("create", None, None)
        metadatas = metadatas if isinstance(metadatas, (list, tuple)) else [None] * len(texts)
        return ("create", list(zip(texts, metadatas, [None] * len(texts))),
                list(ids) if isinstance(ids, (list, tuple)) else None)

    @staticmethod
    def _prepare_delete(vector_store: Any, args: tuple, kwargs: dict):
        ids = args[0] if args else kwargs.get("ids")
        if not isinstance(ids, (list, tuple)) or not ids:
            return None  # delete() with no ids (or a filter): nothing memobs can name
        return ("delete", None, list(ids))

    def _record(self, vector_store: Any, prepared: tuple, result: Any) -> None:
        op, items, ids = prepared
        store = store_name(self.owner.store, vector_store)
        entity_type = self.owner.entity_type
        if op == "delete":
            if result is False:
                return
            for entity_id in ids:
                name = entity_type if isinstance(entity_type, str) else _type_of(entity_type, entity_id)
                record_write(name, entity_id, "delete", store=store)
            return
        returned = list(result) if isinstance(result, (list, tuple)) else None
        if items is None:  # ids only
            for entity_id in returned or ():
                name = entity_type if isinstance(entity_type, str) else _type_of(entity_type, entity_id)
                record_write(name, entity_id, "create", store=store)
            return
        from langchain_core.documents import Document

        docs = []
        for index, (text, metadata, doc_id) in enumerate(items):
            if returned is not None and index < len(returned):
                doc_id = returned[index]
            elif ids is not None and index < len(ids):
                doc_id = ids[index]
            docs.append(Document(page_content=text if isinstance(text, str) else str(text),
                                 metadata=metadata if isinstance(metadata, dict) else {}, id=doc_id))
        for entity in result_entities(docs, RetrievalSpec(entity_type, store)):
            record_write(entity.entity_type, entity.entity_id, "create", store=store,
                         content=entity.content, **write_fields(entity))


def _type_of(entity_type: Callable, entity_id: Any) -> str:
    from memobs_otel.entities import Entity

    return str(entity_type(Entity("document", str(entity_id), "")))


# --- snapshot --------------------------------------------------------------------

def _in_memory_documents(vector_store: Any) -> Iterator[Any] | None:
    table = getattr(vector_store, "store", None)
    if not isinstance(table, dict):
        return None
    from langchain_core.documents import Document

    def documents():
        for entry in list(table.values()):  # a copy of the values: the store may change meanwhile
            if isinstance(entry, dict) and "id" in entry:
                yield Document(id=entry["id"], page_content=entry.get("text") or "",
                               metadata=entry.get("metadata") or {})
    return documents()


def _chroma_documents(vector_store: Any) -> Iterator[Any] | None:
    if not type(vector_store).__module__.startswith("langchain_chroma"):
        return None
    from langchain_core.documents import Document

    def documents():
        for offset in count(0, PAGE):
            page = vector_store.get(limit=PAGE, offset=offset, include=["documents", "metadatas"])
            ids = page.get("ids") or []
            for doc_id, text, metadata in zip(ids, page.get("documents") or [None] * len(ids),
                                              page.get("metadatas") or [None] * len(ids)):
                yield Document(id=doc_id, page_content=text or "", metadata=metadata or {})
            if len(ids) < PAGE:
                return
    return documents()


def snapshot(vector_store: Any, entity_type: Any = None, *, store: str | None = None,
             ids: Iterable[str] | None = None, complete: bool | None = None) -> int | None:
    """Record what ``vector_store`` holds as an inventory (see the module docstring).

    ``entity_type`` and ``store`` default to what the LangChain integration
    records for this store (``"document"`` and the class name, or the
    options given to ``memobs.instrument("langchain", ...)``). Returns the
    number of documents recorded, or ``None`` (unsupported store without
    ``ids``, memobs disabled, or a failure: logged once). Never raises.

    ``complete`` (the snapshot is the whole store: documents of this store
    missing from it are marked deleted) defaults to true only when the store
    is named — ``store=`` here or ``memobs.instrument("langchain", store=...)``
    — and the whole store was read: two stores of one class share the
    class name, and a complete snapshot of one would delete the other's.
    """
    from memobs_otel.instrumentation import frameworks

    if not config.settings.enabled:  # the kill switch: not even the store is read
        return None
    owner = guard.safe_invoke(KIND, lambda: frameworks().get("langchain"))
    if entity_type is None:
        entity_type = owner.entity_type if owner is not None and owner.is_instrumented else "document"
    named = store is not None or (owner is not None and owner.is_instrumented and owner.store is not None)
    if store is None:
        store = store_name(owner.store if owner is not None and owner.is_instrumented else None, vector_store)
    if ids is not None:
        documents = guard.safe_invoke(KIND, vector_store.get_by_ids, list(ids))
        if documents is None:
            return None
        return record_inventory(documents, entity_type, store, bool(complete))
    documents = guard.safe_invoke(KIND, _in_memory_documents, vector_store)
    if documents is None:
        documents = guard.safe_invoke(KIND, _chroma_documents, vector_store)
    if documents is None:
        guard.log_once(f"{KIND}: snapshot {type(vector_store).__name__}",
                       message=f"memobs: snapshot() cannot list the documents of a "
                               f"{type(vector_store).__name__}; pass ids=[...] (read with get_by_ids)")
        return None
    return record_inventory(documents, entity_type, store, named if complete is None else complete)
