"""memobs for mem0: searches as injections, add/update/delete as writes.

    pip install 'memobs_otel[mem0]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("mem0")               # or memobs.instrument() for every framework

    m = Memory.from_config(config)
    m.add("I prefer window seats", user_id="alice")                     # a create write
    hits = m.search("seat preference", filters={"user_id": "alice"})   # injections

What is patched: ``search``, ``add``, ``update`` and ``delete`` of
``mem0.Memory`` and ``mem0.AsyncMemory`` (the open-source library; the
hosted ``MemoryClient`` is not covered).

- ``search`` → a retrieval span ``"search_memory {collection}"`` (the mem0
  collection name, ``mem0`` by default) and one ``memobs.injection`` event
  per result: the memory id, its score, rank, token count, content hash and
  simhash, and ``created_at``/``updated_at`` as mem0 reports them.
  ``gen_ai.request.top_k`` is the ``top_k`` (or older ``limit``) argument.
- ``add`` → one ``create_memory`` write span per memory in the result
  (``event`` ``ADD``; with ``infer=True`` mem0 may also report ``UPDATE`` and
  ``DELETE`` events, recorded as such), with the memory id, its content and
  ``created_at``.
- ``update(memory_id, text=...)`` → an ``update_memory`` write with the new
  content and ``updated_at``; ``delete(memory_id)`` → a ``delete_memory``
  write (status ``deleted``). Writes are recorded only when the call
  succeeds. They feed the entity catalog, so the review queue knows an
  updated memory is fresh and a deleted one is gone.

Timestamps: where mem0's return value carries ``created_at``/``updated_at``
they are used, and a ``created_at`` passed in ``add``'s ``metadata`` (mem0
keeps it); otherwise — ``add``/``update``/``delete`` return none — the
write's timestamp is the time the call returned (UTC, ISO 8601), within
milliseconds of the value mem0 stores. ``delete_all`` and ``reset`` are not
recorded.

User and session ids: mem0's own ids scope what memobs records when the
application set none. The ``user_id`` of ``add`` (or ``filters={"user_id":
...}`` of ``search``) becomes ``user.id`` unless a ``memobs.context(user_id=
...)`` is in force, and mem0's ``run_id`` (one conversation or run) becomes
``session.id`` unless the context sets a session, so the stats' sessions
column counts mem0 runs. ``agent_id`` names an agent, not a session: it is
not used as one.

Content (memory text, query) is exported only with content capture on; the
hashes and token counts always are. mem0 memories have no title: to see what each
says in ``memobs review`` and the report without exporting it over OTLP, use
local-only capture (``memobs.configure(capture_content="local")``, see
``memobs_otel.local_content``).

Inventory: ``memobs_mem0.snapshot(memory, user_id="alice")`` records the
user's memories (``memory.get_all``) through ``memobs.record_inventory``, so
memories added before memobs was on (or by another process) are known and,
never searched, show up as ``stale``. With only ``user_id`` given it is
complete for that user: a memory memobs knew for that user (same
collection) and missing from it is marked deleted; other users' memories
are untouched. With ``agent_id``/``run_id`` filters, or when ``get_all``
returns ``limit`` memories (maybe more exist), it is partial unless
``complete=`` says otherwise (a truncated list is never complete).
``Memory`` only (``AsyncMemory.get_all`` is a coroutine: record its result
with ``memobs.record_inventory`` yourself).

Options (``memobs.instrument("mem0", ...)``): ``entity_type`` (default
``"memory"``), ``store`` (default: the collection name).
``memobs.uninstrument("mem0")`` restores the original methods.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import memobs_otel as memobs
from memobs_otel import config, guard, semconv
from memobs_otel.context import current_ids
from memobs_otel.instrumentation import Instrumentor, PreparedCall, prepared_retrieval_wrappers
from memobs_otel.recording import RetrievalSpec, record_write

from .package import _instruments

__all__ = ["Mem0Instrumentor", "snapshot"]

# mem0's event names in add() results -> memobs write ops
_EVENT_OPS = {"ADD": "create", "UPDATE": "update", "DELETE": "delete"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _mem0_id(kwargs: dict, name: str) -> Any:
    value = kwargs.get(name)
    if value is None and isinstance(kwargs.get("filters"), dict):
        value = kwargs["filters"].get(name)
    return value


def _scope_of(kwargs: dict) -> Any:
    """``memobs.context`` with mem0's user_id / run_id where the application set none, or None."""
    ids = current_ids()
    user = _mem0_id(kwargs, "user_id")
    run = _mem0_id(kwargs, "run_id")
    user = None if user is None or semconv.USER_ID in ids else str(user)
    run = None if run is None or semconv.SESSION_ID in ids else str(run)
    if user is None and run is None:
        return None
    return memobs.context(user_id=user, session_id=run)


def _results(result: Any) -> list:
    if isinstance(result, dict):
        result = result.get("results")
    return [item for item in result if isinstance(item, dict)] if isinstance(result, list) else []


def _top_k(kwargs: dict) -> int | None:
    for key in ("top_k", "limit"):
        k = kwargs.get(key)
        if isinstance(k, int) and not isinstance(k, bool):
            return k
    return None


class _Scope:
    """``_scope_of(kwargs)`` held around the write recording, or nothing."""

    __slots__ = ("_ctx",)

    def __init__(self, kwargs: dict) -> None:
        self._ctx = _scope_of(kwargs)

    def __enter__(self) -> None:
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


class Mem0Instrumentor(Instrumentor):
    name = "mem0"
    modules = ("mem0",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str | Callable = "memory"
        self.store: str | None = None

    def _instrument(self, entity_type: str | Callable = "memory", store: str | None = None,
                    **options: Any) -> None:
        if options:
            raise TypeError(f"unknown mem0 instrument options {sorted(options)}")
        from mem0.memory.main import AsyncMemory, Memory

        self.entity_type, self.store = entity_type, store
        search, asearch = prepared_retrieval_wrappers("mem0 search", self._prepare_search, scoped=True)
        self.wrap(Memory, "search", search)
        self.wrap(AsyncMemory, "search", asearch)
        for method, record in (("add", self._record_add), ("update", self._record_update),
                               ("delete", self._record_delete)):
            self.wrap(Memory, method, self._write_wrapper(record))
            self.wrap(AsyncMemory, method, self._awrite_wrapper(record))

    def _store(self, memory: Any) -> str:
        return self.store or str(getattr(memory, "collection_name", None) or "mem0")

    # --- search ---------------------------------------------------------------

    def _prepare_search(self, memory: Any, args: tuple, kwargs: dict) -> PreparedCall:
        query = args[0] if args else kwargs.get("query")
        spec = RetrievalSpec(self.entity_type, self._store(memory), semconv.OPERATION_SEARCH_MEMORY)
        scope = _scope_of(kwargs)
        return PreparedCall(spec, query if isinstance(query, str) else None, _top_k(kwargs), None, scope)

    # --- writes ---------------------------------------------------------------

    def _write_wrapper(self, record: Callable) -> Callable:
        def wrapper(wrapped, instance, args, kwargs):
            result = wrapped(*args, **kwargs)
            if config.settings.enabled:
                guard.safe_invoke("mem0 write", record, instance, args, kwargs, result)
            return result
        return wrapper

    def _awrite_wrapper(self, record: Callable) -> Callable:
        async def wrapper(wrapped, instance, args, kwargs):
            result = await wrapped(*args, **kwargs)
            if config.settings.enabled:
                guard.safe_invoke("mem0 write", record, instance, args, kwargs, result)
            return result
        return wrapper

    def _write(self, memory: Any, memory_id: Any, op: str, **fields: Any) -> None:
        fields = {k: v for k, v in fields.items() if v is not None}
        record_write(self._entity_type_for(memory_id, fields.get("content")), memory_id, op,
                     store=self._store(memory), **fields)

    def _entity_type_for(self, memory_id: Any, content: Any) -> str:
        if isinstance(self.entity_type, str):
            return self.entity_type
        from memobs_otel.entities import Entity

        entity = Entity("memory", str(memory_id), content if isinstance(content, str) else "")
        return str(self.entity_type(entity))

    def _record_add(self, memory: Any, args: tuple, kwargs: dict, result: Any) -> None:
        metadata = kwargs.get("metadata") if isinstance(kwargs.get("metadata"), dict) else {}
        now = _now()
        created = metadata.get("created_at") or now  # mem0 keeps a created_at given in metadata
        with _Scope(kwargs):
            for item in _results(result):
                op = _EVENT_OPS.get(str(item.get("event", "ADD")).upper())
                memory_id = item.get("id")
                if op is None or memory_id is None:
                    continue
                content = item.get("memory") if op != "delete" else None
                stamps = {"created_at": item.get("created_at") or (created if op == "create" else None),
                          "updated_at": item.get("updated_at") or (now if op != "create" else None)}
                self._write(memory, memory_id, op, content=content, **stamps)

    def _record_update(self, memory: Any, args: tuple, kwargs: dict, result: Any) -> None:
        memory_id = args[0] if args else kwargs.get("memory_id")
        if memory_id is None:
            return
        text = args[1] if len(args) > 1 else kwargs.get("text")
        if text is None:
            text = kwargs.get("data")
        self._write(memory, memory_id, "update", content=text if isinstance(text, str) else None,
                    updated_at=_now())

    def _record_delete(self, memory: Any, args: tuple, kwargs: dict, result: Any) -> None:
        memory_id = args[0] if args else kwargs.get("memory_id")
        if memory_id is not None:
            self._write(memory, memory_id, "delete", updated_at=_now())


def snapshot(memory: Any, user_id: Any = None, *, agent_id: Any = None, run_id: Any = None,
             entity_type: Any = None, store: str | None = None, complete: bool | None = None,
             limit: int = 10_000) -> int | None:
    """Record the memories ``memory.get_all`` returns for these ids as an inventory
    (see the module docstring). Returns the number recorded, or ``None`` (memobs
    disabled, or a failure: logged once). Never raises."""
    from memobs_otel.instrumentation import frameworks
    from memobs_otel.inventory import record_inventory

    if not config.settings.enabled:  # the kill switch: not even get_all is called
        return None
    owner = guard.safe_invoke("mem0 snapshot", lambda: frameworks().get("mem0"))
    on = owner is not None and owner.is_instrumented
    if entity_type is None:
        entity_type = owner.entity_type if on else "memory"
    if store is None:
        store = (owner.store if on else None) or str(getattr(memory, "collection_name", None) or "mem0")
    filters = {name: value for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id))
               if value is not None}
    result = guard.safe_invoke("mem0 snapshot", lambda: memory.get_all(filters=filters, top_k=limit))
    if result is None:
        return None
    items = _results(result)
    whole = user_id is not None and agent_id is None and run_id is None
    complete = (whole if complete is None else bool(complete)) and len(items) < limit
    with _Scope({"filters": filters}):  # the user's snapshot: complete for that user only
        return record_inventory({"results": items}, entity_type, store, complete)


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(Mem0Instrumentor())
