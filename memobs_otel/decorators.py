"""``@memobs.observe_retrieval``: record a search function's results.

    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def search_playbooks(query: str, k: int = 5) -> list[dict]:
        ...

Works on sync and async functions, methods, classmethods and staticmethods.
The result, exceptions and ``inspect.signature`` are unchanged (wrapt keeps
the signature, docstring and ``__wrapped__``). The query text is taken
from a ``query``/``q``/``text``/``input``/``question`` keyword or the first
string argument (exported only with content capture on); ``k``/``top_k``/
``limit`` keywords give ``gen_ai.request.top_k``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import wrapt

from . import semconv
from .entities import Entity
from .recording import RetrievalSpec, observe_call, observe_call_async


def observe_retrieval(entity_type: str | Callable[[Entity], str] = "memory", store: str | None = None,
                      operation: str = semconv.OPERATION_SEARCH_MEMORY):
    """Decorate a search function so that each entity it returns is recorded.

    ``entity_type`` is a string, or a callable given each ``Entity`` that
    returns its type. ``store`` names the memory store (span name
    ``"{operation} {store}"``); ``operation`` is ``search_memory`` or
    ``retrieval``.
    """
    spec = RetrievalSpec(entity_type, store, operation)

    def sync_wrapper(wrapped, instance, args, kwargs):
        return observe_call(wrapped, args, kwargs, spec)

    def async_wrapper(wrapped, instance, args, kwargs):
        return observe_call_async(wrapped, args, kwargs, spec)

    def decorate(func: Any) -> Any:
        target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
        wrapper = async_wrapper if inspect.iscoroutinefunction(target) else sync_wrapper
        return wrapt.FunctionWrapper(func, wrapper)

    return decorate
