"""memobs for Google ADK memory services: searches as injections, ingestion as writes.

    pip install 'memobs_otel[google-adk]'

    import memobs_otel as memobs
    memobs.configure(db_path="memobs.db")
    memobs.instrument("google_adk")         # or memobs.instrument() for every framework

    service = InMemoryMemoryService()
    await service.add_session_to_memory(session)           # one create write per event
    found = await service.search_memory(app_name="travel", user_id="alice", query="seats")   # injections

What is patched: ADK's memory service classes override every method of
``google.adk.memory.BaseMemoryService``, so memobs patches each concrete
class: the ones ``google.adk.memory`` exports (``InMemoryMemoryService``,
``SqliteMemoryService``, ``VertexAiMemoryBankService``,
``VertexAiRagMemoryService`` — each only if it imports) and every other
``BaseMemoryService`` subclass already defined when ``memobs.instrument()``
runs (define your own service before instrumenting, or instrument again
after ``uninstrument``). Only methods a class defines itself are patched,
so an inherited method is never wrapped twice.

- ``search_memory`` → a retrieval span ``"search_memory {store}"`` (the
  service's class name) and one ``memobs.injection`` event per
  ``MemoryEntry``: its ``id`` when it has one (the in-memory service uses
  the event id), else the first 16 hex chars of its content hash (the
  Vertex memory bank returns none); the text is its ``content.parts``
  texts joined with spaces, as ADK's ``preload_memory``/``load_memory``
  tools put it in the prompt; ``created_at`` is the entry's ``timestamp``
  in UTC (the in-memory and SQLite services report naive local time: it is
  converted, so it equals the ``created_at`` of the event's write).
- ``add_session_to_memory(session)`` and ``add_events_to_memory(events=...)``
  → one ``create_memory`` write per event with text (the event id, its
  parts' text, ``created_at`` = the event's timestamp in UTC);
  ``add_memory(memories=...)`` → one create write per entry;
  ``delete_memory(memory_id=...)`` → a ``delete_memory`` write. Writes are
  recorded only when the call succeeds, and once per call (a service whose
  ``add_session_to_memory`` runs its own ``add_events_to_memory`` is not
  counted twice). Events without text (tool calls only) are not recorded:
  they never reach a prompt as memory. Adding a session again records its
  events again.

User ids: the ``user_id`` of each call (the session's for
``add_session_to_memory``) is put on the span and events as ``user.id``
unless a ``memobs.context(user_id=...)`` is already in force.

Content (memory text, query) is exported only with content capture on; the
hashes and token counts always are.

Options (``memobs.instrument("google_adk", ...)``): ``entity_type`` (default
``"memory"``), ``store`` (a string, or a callable given the service).
``memobs.uninstrument("google_adk")`` restores the original methods.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Callable

import memobs_otel as memobs
from memobs_otel import config, guard, semconv
from memobs_otel.context import current_ids
from memobs_otel.instrumentation import Instrumentor, PreparedCall, all_subclasses, prepared_retrieval_wrappers
from memobs_otel.recording import RetrievalSpec, record_write

from .package import _instruments

__all__ = ["GoogleAdkInstrumentor"]

_KIND = "google adk memory"
_WRITE_METHODS = ("add_session_to_memory", "add_events_to_memory", "add_memory", "delete_memory")
# set while a recorded write call runs: a nested one (a service's own delegation) records nothing
_in_write: ContextVar[bool] = ContextVar("memobs_adk_in_write", default=False)


def _text(content: Any) -> str:
    """A ``google.genai`` ``Content``'s text as ADK's memory tools put it in the prompt."""
    parts = getattr(content, "parts", None) or []
    return " ".join(part.text for part in parts if getattr(part, "text", None))


def _user(user_id: Any) -> str | None:
    if user_id is None or semconv.USER_ID in current_ids():
        return None
    return str(user_id)


def _service_classes() -> list[type]:
    """Every BaseMemoryService subclass defined now, ADK's own imported first."""
    import google.adk.memory as adk_memory
    from google.adk.memory import BaseMemoryService

    for name in getattr(adk_memory, "__all__", ()):
        try:
            getattr(adk_memory, name)  # the lazy ones import here
        except Exception as exc:  # noqa: BLE001 - e.g. a missing optional dependency
            guard.log_once(f"{_KIND} import {name}", exc)
    return all_subclasses(BaseMemoryService)


class GoogleAdkInstrumentor(Instrumentor):
    name = "google_adk"
    modules = ("google.adk.memory",)
    instruments = _instruments

    def __init__(self) -> None:
        super().__init__()
        self.entity_type: str = "memory"
        self.store: str | Callable | None = None

    def _instrument(self, entity_type: str = "memory", store: str | Callable | None = None,
                    **options: Any) -> None:
        if options:
            raise TypeError(f"unknown google_adk instrument options {sorted(options)}")
        self.entity_type, self.store = entity_type, store
        _, search = prepared_retrieval_wrappers(_KIND, self._prepare_search, scoped=True)
        records = {"add_session_to_memory": self._record_session, "add_events_to_memory": self._record_events,
                   "add_memory": self._record_memories, "delete_memory": self._record_delete}
        for cls in _service_classes():
            own = vars(cls)
            if "search_memory" in own:
                self.wrap(cls, "search_memory", search)
            for method in _WRITE_METHODS:
                if method in own:
                    self.wrap(cls, method, self._write_wrapper(records[method]))

    def _store_name(self, service: Any) -> str:
        if callable(self.store):
            return str(self.store(service))
        return self.store or type(service).__name__

    # --- search -------------------------------------------------------------------

    def _prepare_search(self, service: Any, args: tuple, kwargs: dict) -> PreparedCall:
        spec = RetrievalSpec(self.entity_type, self._store_name(service), semconv.OPERATION_SEARCH_MEMORY)
        query = kwargs.get("query")
        user = _user(kwargs.get("user_id"))
        scope = memobs.context(user_id=user) if user is not None else None
        return PreparedCall(spec, query if isinstance(query, str) else None, None, _entries, scope)

    # --- writes -------------------------------------------------------------------

    def _write_wrapper(self, record: Callable) -> Callable:
        async def wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled or _in_write.get():
                return await wrapped(*args, **kwargs)
            token = _in_write.set(True)
            try:
                result = await wrapped(*args, **kwargs)
            finally:
                _in_write.reset(token)
            guard.safe_invoke(_KIND, record, instance, args, kwargs)
            return result
        return wrapper

    def _write(self, service: Any, user_id: Any, items: list[tuple[Any, str | None, Any]], op: str) -> None:
        user = _user(user_id)
        scope = memobs.context(user_id=user) if user is not None else None
        if scope is not None:
            scope.__enter__()
        try:
            for memory_id, content, created_at in items:
                fields = {"content": content, "created_at": created_at}
                if op == "delete":
                    fields = {"updated_at": datetime.now(timezone.utc).isoformat()}
                record_write(self.entity_type, memory_id, op, store=self._store_name(service),
                             **{k: v for k, v in fields.items() if v is not None})
        finally:
            if scope is not None:
                scope.__exit__(None, None, None)

    def _event_items(self, events: Any) -> list[tuple[Any, str | None, Any]]:
        items = []
        for event in events or ():
            text = _text(getattr(event, "content", None))
            if not text or not getattr(event, "id", None):
                continue
            stamp = getattr(event, "timestamp", None)
            created = (datetime.fromtimestamp(stamp, timezone.utc).isoformat()
                       if isinstance(stamp, (int, float)) else None)
            items.append((event.id, text, created))
        return items

    def _record_session(self, service: Any, args: tuple, kwargs: dict) -> None:
        session = args[0] if args else kwargs.get("session")
        self._write(service, getattr(session, "user_id", None),
                    self._event_items(getattr(session, "events", None)), "create")

    def _record_events(self, service: Any, args: tuple, kwargs: dict) -> None:
        self._write(service, kwargs.get("user_id"), self._event_items(kwargs.get("events")), "create")

    def _record_memories(self, service: Any, args: tuple, kwargs: dict) -> None:
        from memobs_otel.fingerprint import content_hash

        items = []
        for entry in kwargs.get("memories") or ():
            text = _text(getattr(entry, "content", None))
            memory_id = getattr(entry, "id", None) or content_hash(text)[:16]
            items.append((memory_id, text, getattr(entry, "timestamp", None)))
        self._write(service, kwargs.get("user_id"), items, "create")

    def _record_delete(self, service: Any, args: tuple, kwargs: dict) -> None:
        memory_id = kwargs.get("memory_id")
        if memory_id:
            self._write(service, kwargs.get("user_id"), [(memory_id, None, None)], "delete")


def _utc(stamp: Any) -> Any:
    """An entry's ISO timestamp in UTC. The in-memory and SQLite services write the event's
    time as a naive local ISO string (``datetime.fromtimestamp(ts).isoformat()``): read as
    local time, it is the same instant, and the same string, as the event's write."""
    try:
        parsed = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return stamp
    return parsed.astimezone(timezone.utc).isoformat()


def _entries(response: Any) -> list[dict]:
    """A ``SearchMemoryResponse``'s entries, as memobs's extractor reads them."""
    found = []
    for entry in getattr(response, "memories", None) or ():
        item: dict[str, Any] = {"content": _text(getattr(entry, "content", None))}
        if getattr(entry, "id", None):
            item["id"] = entry.id
        if getattr(entry, "timestamp", None):
            item["created_at"] = _utc(entry.timestamp)
        found.append(item)
    return found


@memobs.hookimpl
def memobs_register_instrumentations(register):
    register(GoogleAdkInstrumentor())
