"""Patched write methods of a framework's store, for plugin authors.

A framework's store often implements one write with another (LangChain's
``add_texts`` calls ``add_documents``; LlamaIndex's ``delete_ref_doc`` calls
``delete_nodes``; an async method may run the sync one). ``outermost_write_wrappers``
records only the outermost call: a context variable of the plugin's
(``in_write``) marks the write in progress, and a call inside it runs untouched.

Per call: ``prepare(instance, args, kwargs)`` reads what the call writes
*before* it runs (a delete must name the entries while they are still there);
``None`` means nothing to record. The call runs; if it returns (does not
raise), ``record(instance, prepared, result)`` records the writes. Both run
through ``guard.safe_invoke(kind, ...)``: a failure is logged once, never
raised into the caller. With memobs disabled the call runs untouched.

``write_fields(entity)`` gives the lifecycle fields of an extracted entity as
``record_write`` keywords, so a write carries what the retrieval of the same
entity carries.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable

from . import config, guard

_WRITE_FIELDS = ("created_at", "updated_at", "status", "version", "parent_id", "superseded_by", "title")


def write_fields(entity: Any) -> dict:
    """The entity's lifecycle fields and title that are set, as ``record_write`` keywords."""
    fields = {name: getattr(entity, name) for name in _WRITE_FIELDS}
    return {name: value for name, value in fields.items() if value is not None}


def outermost_write_wrappers(kind: str, in_write: ContextVar[bool], prepare: Callable[[Any, tuple, dict], Any],
                             record: Callable[[Any, Any, Any], None]) -> tuple[Callable, Callable]:
    """``(sync, async)`` wrapt wrappers recording the outermost write (see the module docstring)."""

    def wrapper(wrapped, instance, args, kwargs):
        if not config.settings.enabled or in_write.get():
            return wrapped(*args, **kwargs)
        prepared = guard.safe_invoke(kind, prepare, instance, args, kwargs)
        token = in_write.set(True)
        try:
            result = wrapped(*args, **kwargs)
        finally:
            in_write.reset(token)
        if prepared is not None:
            guard.safe_invoke(kind, record, instance, prepared, result)
        return result

    async def async_wrapper(wrapped, instance, args, kwargs):
        if not config.settings.enabled or in_write.get():
            return await wrapped(*args, **kwargs)
        prepared = guard.safe_invoke(kind, prepare, instance, args, kwargs)
        token = in_write.set(True)
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            in_write.reset(token)
        if prepared is not None:
            guard.safe_invoke(kind, record, instance, prepared, result)
        return result

    return wrapper, async_wrapper
