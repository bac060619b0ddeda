"""memobs for LangGraph's long-term memory store: reads as injections, writes as writes.

    pip install 'memobs_otel[langgraph]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("langgraph")          # or memobs.instrument() for every framework

    store = InMemoryStore(index={"dims": 1536, "embed": embed, "fields": ["text"]})
    store.put(("memories", "alice"), "seat", {"text": "Prefers window seats"})   # a create write
    hits = store.search(("memories", "alice"), query="seating")                  # injections

What is patched: ``search``, ``get``, ``put`` and ``delete`` and their async
``asearch``/``aget``/``aput``/``adelete`` of ``langgraph.store.base.BaseStore``
— the public methods, which every store inherits and which call the store's
own ``batch``/``abatch``: ``InMemoryStore``, ``SqliteStore``,
``PostgresStore`` and your own subclasses are covered without patching
their ``batch``. The stores built on ``AsyncBatchedBaseStore``
(``AsyncSqliteStore``, ``AsyncPostgresStore``) override the public methods:
their async ones are patched too (their sync ones run the async ones, so
each call is recorded once). ``batch``/``abatch`` called directly, and
``list_namespaces``, are not recorded.

- ``search``/``get`` → a retrieval span ``"search_memory {store}"`` (the
  store's class name, e.g. ``InMemoryStore``) and one ``memobs.injection``
  event per item: its id, rank, score (``SearchItem.score``; none for
  ``get`` or a search without a query), token count, content hash and
  simhash of its text, and ``created_at``/``updated_at`` from the item.
  ``gen_ai.request.top_k`` is the search's ``limit`` (10 by default).
- ``put`` → a ``create_memory`` write, or ``update_memory`` when the key was
  already there; ``delete`` → a ``delete_memory`` write (status
  ``deleted``). Writes are recorded only when the call succeeds.

Entity ids name the namespace and key: ``"memories/alice:seat"`` for
namespace ``("memories", "alice")`` and key ``"seat"`` (labels joined with
``/``, then ``:`` and the key). The text measured is what the store's index
embeds (its ``fields``), not the serialised value: see ``text.py``.

Timestamps: a read's ``created_at``/``updated_at`` are the item's. For a
``put``, memobs reads the key first (one ``GetOp`` through the store's own
``batch``, TTL not refreshed: one extra lookup per write) to tell a create
from an update; a create's ``created_at`` and an update's ``updated_at`` are
the time the call returned (UTC), an update's ``created_at`` the existing
item's. (``InMemoryStore`` and the SQLite stores themselves restamp
``created_at`` on every put.)

Content (the text, the query) is exported only with content capture on; the
hashes and token counts always are. For ``get`` the span's query is the
entity id looked up.

Inventory: ``memobs_langgraph.snapshot(store, ("memories", "alice"))`` (or
``await asnapshot(...)`` for the async stores) records every item under the
namespace prefix through ``memobs.record_inventory``, read page by page with
the store's own ``batch``/``abatch`` (a ``SearchOp`` without query, TTL not
refreshed): not recorded as a search, nothing counted as injected. It is
complete for that prefix: an item memobs knew there (written or inventoried
under the same store name, id ``"memories/alice:..."`` or
``"memories/alice/...:..."``) and missing from it is marked deleted; other
namespaces are untouched. The empty prefix ``()`` is the whole store.

Options (``memobs.instrument("langgraph", ...)``): ``entity_type`` (default
``"memory"``, or a callable on each entity), ``store`` (a string, or a
callable given the store), ``fields`` (paths overriding the store's index
fields). ``memobs.uninstrument("langgraph")`` restores the original methods.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import memobs_otel as memobs
from memobs_otel import config, guard, semconv
from memobs_otel.instrumentation import Instrumentor, PreparedCall, prepared_retrieval_wrappers
from memobs_otel.recording import RetrievalSpec, record_write

from .package import _instruments
from .text import embedded_text, entity_id, store_paths

__all__ = ["LangGraphInstrumentor", "asnapshot", "snapshot"]

_KIND = "langgraph store"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _stamp(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _namespace_key(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    namespace = args[0] if args else kwargs.get("namespace")
    key = args[1] if len(args) > 1 else kwargs.get("key")
    return namespace, key


class LangGraphInstrumentor(Instrumentor):
    name = "langgraph"
    modules = ("langgraph.store.base",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str | Callable = "memory"
        self.store: str | Callable | None = None
        self.fields: Sequence[str] | None = None

    def _instrument(self, entity_type: str | Callable = "memory", store: str | Callable | None = None,
                    fields: Sequence[str] | None = None, **options: Any) -> None:
        if options:
            raise TypeError(f"unknown langgraph instrument options {sorted(options)}")
        from langgraph.store.base import BaseStore

        self.entity_type, self.store = entity_type, store
        self.fields = [fields] if isinstance(fields, str) else fields
        search, asearch = prepared_retrieval_wrappers(_KIND, self._prepare_search)
        get, aget = prepared_retrieval_wrappers(_KIND, self._prepare_get)
        owners = [BaseStore]
        try:
            from langgraph.store.base.batch import AsyncBatchedBaseStore
            owners.append(AsyncBatchedBaseStore)
        except ImportError:  # an older langgraph without it
            pass
        for owner in owners:
            if owner is BaseStore:  # AsyncBatchedBaseStore's sync methods run its async ones
                self.wrap(owner, "search", search)
                self.wrap(owner, "get", get)
                self.wrap(owner, "put", self._put_wrapper)
                self.wrap(owner, "delete", self._delete_wrapper)
            self.wrap(owner, "asearch", asearch)
            self.wrap(owner, "aget", aget)
            self.wrap(owner, "aput", self._aput_wrapper)
            self.wrap(owner, "adelete", self._adelete_wrapper)

    def _store_name(self, store: Any) -> str:
        if callable(self.store):
            return str(self.store(store))
        return self.store or type(store).__name__

    # --- reads ------------------------------------------------------------------

    def _items(self, store: Any, items: Any) -> list[dict]:
        """The entities of a search's or get's result, as the extractor reads them."""
        if items is None:
            return []
        paths = store_paths(store, self.fields)
        found = []
        for item in items if isinstance(items, list) else [items]:
            found.append({
                "id": entity_id(item.namespace, item.key),
                "content": embedded_text(item.value, paths),
                "score": getattr(item, "score", None),
                "created_at": _stamp(item.created_at),
                "updated_at": _stamp(item.updated_at),
            })
        return found

    def _prepare_search(self, store: Any, args: tuple, kwargs: dict) -> PreparedCall:
        spec = RetrievalSpec(self.entity_type, self._store_name(store), semconv.OPERATION_SEARCH_MEMORY)
        query = kwargs.get("query")
        limit = kwargs.get("limit", 10)
        top_k = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
        return PreparedCall(spec, query if isinstance(query, str) else None, top_k,
                            lambda result: self._items(store, result))

    def _prepare_get(self, store: Any, args: tuple, kwargs: dict) -> PreparedCall:
        spec = RetrievalSpec(self.entity_type, self._store_name(store), semconv.OPERATION_SEARCH_MEMORY)
        namespace, key = _namespace_key(args, kwargs)
        return PreparedCall(spec, entity_id(namespace, key), None, lambda result: self._items(store, result))

    # --- writes -----------------------------------------------------------------

    def _existing(self, store: Any, args: tuple, kwargs: dict) -> tuple:
        from langgraph.store.base import GetOp

        namespace, key = _namespace_key(args, kwargs)
        return (GetOp(tuple(namespace), str(key), False),)

    def _put_wrapper(self, wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return wrapped(*args, **kwargs)
        lookup = guard.safe_invoke(_KIND, self._existing, instance, args, kwargs)
        before = guard.safe_invoke(_KIND, lambda: instance.batch(list(lookup))[0]) if lookup else None
        result = wrapped(*args, **kwargs)
        guard.safe_invoke(_KIND, self._record_put, instance, args, kwargs, before)
        return result

    async def _aput_wrapper(self, wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return await wrapped(*args, **kwargs)
        lookup = guard.safe_invoke(_KIND, self._existing, instance, args, kwargs)
        before = None
        if lookup:
            try:
                before = (await instance.abatch(list(lookup)))[0]
            except Exception as exc:  # noqa: BLE001 - never break the agent's put
                guard.log_once(_KIND, exc)
        result = await wrapped(*args, **kwargs)
        guard.safe_invoke(_KIND, self._record_put, instance, args, kwargs, before)
        return result

    def _delete_wrapper(self, wrapped, instance, args, kwargs):
        result = wrapped(*args, **kwargs)
        if config.settings.enabled:
            guard.safe_invoke(_KIND, self._record_delete, instance, args, kwargs)
        return result

    async def _adelete_wrapper(self, wrapped, instance, args, kwargs):
        result = await wrapped(*args, **kwargs)
        if config.settings.enabled:
            guard.safe_invoke(_KIND, self._record_delete, instance, args, kwargs)
        return result

    def _entity_type_for(self, identifier: str, content: str | None) -> str:
        if isinstance(self.entity_type, str):
            return self.entity_type
        from memobs_otel.entities import Entity

        return str(self.entity_type(Entity("memory", identifier, content or "")))

    def _record_put(self, store: Any, args: tuple, kwargs: dict, before: Any) -> None:
        namespace, key = _namespace_key(args, kwargs)
        value = args[2] if len(args) > 2 else kwargs.get("value")
        identifier = entity_id(namespace, key)
        content = embedded_text(value, store_paths(store, self.fields))
        now = _now()
        if before is None:
            op, stamps = "create", {"created_at": now, "updated_at": now}
        else:
            op, stamps = "update", {"created_at": _stamp(before.created_at), "updated_at": now}
        record_write(self._entity_type_for(identifier, content), identifier, op,
                     store=self._store_name(store), content=content, **stamps)

    def _record_delete(self, store: Any, args: tuple, kwargs: dict) -> None:
        namespace, key = _namespace_key(args, kwargs)
        identifier = entity_id(namespace, key)
        record_write(self._entity_type_for(identifier, None), identifier, "delete",
                     store=self._store_name(store), updated_at=_now())


# --- inventory ------------------------------------------------------------------

PAGE = 1000  # items per SearchOp page


def _snapshot_setup(store: Any, namespace_prefix: Sequence[str], entity_type: Any, store_name: str | None):
    from memobs_otel.instrumentation import frameworks

    if not config.settings.enabled:  # the kill switch: not even the store is read
        return None

    owner = guard.safe_invoke(_KIND, lambda: frameworks().get("langgraph"))
    reader = owner if owner is not None and owner.is_instrumented else LangGraphInstrumentor()
    prefix = tuple(str(label) for label in namespace_prefix)
    joined = "/".join(prefix)
    prefixes = (f"{joined}:", f"{joined}/") if prefix else None
    return (reader, prefix, reader.entity_type if entity_type is None else entity_type,
            store_name or reader._store_name(store), prefixes)


def _page_op(prefix: tuple, offset: int):
    from langgraph.store.base import SearchOp

    return SearchOp(prefix, None, PAGE, offset, None, False)


def snapshot(store: Any, namespace_prefix: Sequence[str] = (), *, entity_type: Any = None,
             store_name: str | None = None, complete: bool = True) -> int | None:
    """Record every item under ``namespace_prefix`` as an inventory (see the module
    docstring). Returns the number recorded, or ``None`` (memobs disabled, or a
    failure: logged once). Never raises."""
    from memobs_otel.inventory import record_inventory

    setup = guard.safe_invoke(_KIND, _snapshot_setup, store, namespace_prefix, entity_type, store_name)
    if setup is None:
        return None
    reader, prefix, entity_type, name, prefixes = setup

    def items():
        offset = 0
        while True:
            page = store.batch([_page_op(prefix, offset)])[0]
            yield from reader._items(store, list(page))
            if len(page) < PAGE:
                return
            offset += PAGE
    return record_inventory(items(), entity_type, name, complete, id_prefixes=prefixes)


async def asnapshot(store: Any, namespace_prefix: Sequence[str] = (), *, entity_type: Any = None,
                    store_name: str | None = None, complete: bool = True) -> int | None:
    """``snapshot`` for the async stores: the pages are read with ``abatch``, then recorded."""
    from memobs_otel.inventory import record_inventory

    setup = guard.safe_invoke(_KIND, _snapshot_setup, store, namespace_prefix, entity_type, store_name)
    if setup is None:
        return None
    reader, prefix, entity_type, name, prefixes = setup
    found: list = []
    offset = 0
    try:
        while True:
            page = (await store.abatch([_page_op(prefix, offset)]))[0]
            found.extend(reader._items(store, list(page)))
            if len(page) < PAGE:
                break
            offset += PAGE
    except Exception as exc:  # noqa: BLE001 - never break the caller; a partial list is not complete
        guard.log_once(_KIND, exc)
        return None
    return record_inventory(found, entity_type, name, complete, id_prefixes=prefixes)


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(LangGraphInstrumentor())
