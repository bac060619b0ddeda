"""LlamaIndex index inserts and deletes as memobs writes, and ``snapshot()`` of an index.

**Writes.** ``insert_nodes``/``ainsert_nodes`` (which ``insert``/``ainsert``
of a ``Document`` go through), ``delete_ref_doc``/``adelete_ref_doc`` and
``delete_nodes``/``adelete_nodes`` are wrapped on ``BaseIndex`` and on every
index class imported at ``memobs.instrument("llamaindex")`` that defines its
own (``VectorStoreIndex``, ``DocumentSummaryIndex``…); only the outermost
call is recorded (``BaseIndex.delete_ref_doc`` calls ``delete_nodes``).
Ids are the retriever's stable ids (``node_entity``: ``"{ref_doc_id}#{hash12}"``
for a node with a source document), so a write names the entity its
retrievals name:

- an insert → one ``create`` write per node (its prompt text, metadata
  lifecycle fields);
- ``delete_ref_doc("kb-gift")`` → one ``delete`` write per node the docstore
  held for that document, read *before* the delete runs (after it they are
  gone); ``delete_nodes(ids)`` → one per node id (the docstore's node, when
  it has it, gives the stable id; else the node id itself).

Writes are recorded only when the call returns without raising. Building an
index (``VectorStoreIndex.from_documents``) is not a write: record what it
holds with ``snapshot``. Where the vector store keeps the text itself (the
docstore does not hold the nodes, e.g. Qdrant or Chroma without
``store_nodes_override``) a ``delete_ref_doc`` cannot name the nodes and is
not recorded; a complete ``snapshot`` is not possible either (see below).
The store name is the index's class name (``VectorStoreIndex``), or the
``store`` option when it is a string.

**Snapshot.** ``memobs_llamaindex.snapshot(index)`` records the index's nodes
from its docstore (``index_struct`` node ids where the index has them) as a
complete inventory. An index whose vector store keeps the text (nothing in
the docstore) is refused (logged once, ``None``): an empty snapshot would
mark every node deleted.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable, Iterator

from memobs_otel import config, guard
from memobs_otel.entities import Entity
from memobs_otel.inventory import record_inventory
from memobs_otel.recording import RetrievalSpec, record_write, result_entities
from memobs_otel.write_patches import outermost_write_wrappers, write_fields

KIND = "llamaindex index write"
WRITE_METHODS = ("insert_nodes", "ainsert_nodes", "delete_ref_doc", "adelete_ref_doc",
                 "delete_nodes", "adelete_nodes")
_ASYNC = frozenset(("ainsert_nodes", "adelete_ref_doc", "adelete_nodes"))

_in_write: ContextVar[bool] = ContextVar("memobs_llamaindex_in_write", default=False)


def store_name(store_option: Any, index: Any) -> str:
    return store_option if isinstance(store_option, str) and store_option else type(index).__name__


def _entities(owner_type: Any, nodes: list, store: str) -> list:
    from . import node_entity  # the retriever's stable ids and prompt text

    return result_entities([node_entity(node, None) for node in nodes], RetrievalSpec(owner_type, store))


class IndexWrites:
    """The write patches of one ``LlamaIndexInstrumentor`` (``owner``)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def instrument(self) -> None:
        from llama_index.core.indices.base import BaseIndex

        pending = [BaseIndex]
        seen = set()
        while pending:
            cls = pending.pop()
            if cls in seen:
                continue
            seen.add(cls)
            for method in WRITE_METHODS:
                if method in vars(cls):
                    self.owner.wrap(cls, method, self._wrapper(method))
            pending.extend(cls.__subclasses__())

    def _wrapper(self, method: str) -> Callable:
        prepare = self._prepare_insert if "insert" in method else (
            self._prepare_ref_doc if "ref_doc" in method else self._prepare_nodes)
        wrapper, async_wrapper = outermost_write_wrappers(KIND, _in_write, prepare, self._record)
        return async_wrapper if method in _ASYNC else wrapper

    # --- what a call writes (read before it runs) ----------------------------------

    def _prepare_insert(self, index: Any, args: tuple, kwargs: dict):
        nodes = args[0] if args else kwargs.get("nodes")
        if not isinstance(nodes, (list, tuple)):
            return None
        store = store_name(self.owner.store, index)
        return "create", store, _entities(self.owner.entity_type, list(nodes), store)

    def _prepare_ref_doc(self, index: Any, args: tuple, kwargs: dict):
        ref_doc_id = args[0] if args else kwargs.get("ref_doc_id")
        info = index.docstore.get_ref_doc_info(ref_doc_id) if ref_doc_id is not None else None
        if info is None or not info.node_ids:
            return None  # nothing memobs can name (see the module docstring)
        store = store_name(self.owner.store, index)
        nodes = index.docstore.get_nodes(list(info.node_ids), raise_error=False)
        return "delete", store, _entities(self.owner.entity_type, nodes, store)

    def _prepare_nodes(self, index: Any, args: tuple, kwargs: dict):
        node_ids = args[0] if args else kwargs.get("node_ids")
        if not isinstance(node_ids, (list, tuple)) or not node_ids:
            return None
        store = store_name(self.owner.store, index)
        found = {node.node_id: node for node in index.docstore.get_nodes(list(node_ids), raise_error=False)}
        known = [found[node_id] for node_id in node_ids if node_id in found]
        entities = _entities(self.owner.entity_type, known, store)
        for node_id in node_ids:  # not in the docstore: a node without source is known by its id
            if node_id not in found:
                entity = Entity("document", str(node_id), "")
                owner_type = self.owner.entity_type
                entity.entity_type = owner_type if isinstance(owner_type, str) else str(owner_type(entity))
                entities.append(entity)
        return "delete", store, entities

    @staticmethod
    def _record(index: Any, prepared: tuple, result: Any) -> None:
        op, store, entities = prepared
        for entity in entities:
            if op == "delete":
                record_write(entity.entity_type, entity.entity_id, "delete", store=store)
            else:
                record_write(entity.entity_type, entity.entity_id, op, store=store,
                             content=entity.content, **write_fields(entity))


# --- snapshot --------------------------------------------------------------------

def _index_nodes(index: Any) -> Iterator[Any] | None:
    vector_store = getattr(index, "vector_store", None)
    if vector_store is not None and getattr(vector_store, "stores_text", False) \
            and not getattr(index, "_store_nodes_override", False):
        return None  # the nodes live in the vector store, not the docstore
    docstore = index.docstore
    nodes_dict = getattr(getattr(index, "index_struct", None), "nodes_dict", None)
    node_ids = list(nodes_dict.values()) if isinstance(nodes_dict, dict) else list(docstore.docs)

    def nodes():
        from . import node_entity

        for start in range(0, len(node_ids), 1024):
            for node in docstore.get_nodes(node_ids[start : start + 1024], raise_error=False):
                yield node_entity(node, None)
    return nodes()


def snapshot(index: Any, entity_type: Any = None, *, store: str | None = None,
             complete: bool = True) -> int | None:
    """Record the nodes ``index`` holds as an inventory (see the module docstring).

    ``entity_type`` and ``store`` default to what the LlamaIndex integration
    records (``"document"`` and the index's class name, or the options of
    ``memobs.instrument("llamaindex", ...)``). Returns the number of nodes
    recorded, or ``None`` (an index whose vector store keeps the text,
    memobs disabled, or a failure: logged once). Never raises.
    """
    from memobs_otel.instrumentation import frameworks

    if not config.settings.enabled:  # the kill switch: not even the index is read
        return None
    owner = guard.safe_invoke(KIND, lambda: frameworks().get("llamaindex"))
    on = owner is not None and owner.is_instrumented
    if entity_type is None:
        entity_type = owner.entity_type if on else "document"
    if store is None:
        store = store_name(owner.store if on else None, index)
    nodes = guard.safe_invoke(KIND, _index_nodes, index)
    if nodes is None:
        guard.log_once(f"{KIND}: snapshot {type(index).__name__}",
                       message="memobs: snapshot() cannot list this index's nodes: its vector store keeps "
                               "the text and the docstore holds none (snapshot the vector store itself)")
        return None
    return record_inventory(nodes, entity_type, store, complete)
