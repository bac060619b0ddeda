"""``memobs.context``: user, session and request ids for everything inside.

    with memobs.context(user_id="u-42", session_id="s-7"):
        answer = agent.run(question)

The ids live in a ``contextvars.ContextVar``, so they follow ``await`` and
asyncio tasks. Nested contexts inherit the outer ids they do not set.
Plain threads do not inherit context variables in Python, so on first use
memobs makes ``threading.Thread`` and ``ThreadPoolExecutor.submit`` carry
the memobs ids (and nothing else) from the starting thread into the new one
— the same thing ``opentelemetry-instrumentation-threading`` does for the
OTel context.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import wrapt

from . import semconv

_EMPTY: dict[str, str] = {}
_ids: ContextVar[dict[str, str]] = ContextVar("memobs_ids", default=_EMPTY)


def current_ids() -> dict[str, str]:
    """The ids in force, as span attributes (``user.id``, ``session.id``, ``memobs.request.id``)."""
    return _ids.get()


class context:
    """Context manager putting ``user_id``/``session_id``/``request_id`` on every span and event inside."""

    __slots__ = ("_ids", "_token")

    def __init__(self, user_id: Any = None, session_id: Any = None, request_id: Any = None) -> None:
        merged = dict(_ids.get())
        for key, value in ((semconv.USER_ID, user_id), (semconv.SESSION_ID, session_id),
                           (semconv.MEMOBS_REQUEST_ID, request_id)):
            if value is not None:
                merged[key] = str(value)
        self._ids = merged
        self._token = None

    def __enter__(self) -> "context":
        _install_thread_propagation()
        self._token = _ids.set(self._ids)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._token is not None:
            _ids.reset(self._token)
            self._token = None

    async def __aenter__(self) -> "context":
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)


_installed = False
_install_lock = threading.Lock()


def _thread_start(wrapped, instance, args, kwargs):
    ids = _ids.get()
    if ids:
        instance._memobs_ids = ids
    return wrapped(*args, **kwargs)


def _thread_run(wrapped, instance, args, kwargs):
    ids = getattr(instance, "_memobs_ids", None)
    if not ids:
        return wrapped(*args, **kwargs)
    token = _ids.set(ids)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _ids.reset(token)


def _executor_submit(wrapped, instance, args, kwargs):
    ids = _ids.get()
    if not ids or not args:
        return wrapped(*args, **kwargs)
    fn = args[0]

    def run_with_ids(*a, **kw):
        token = _ids.set(ids)
        try:
            return fn(*a, **kw)
        finally:
            _ids.reset(token)

    return wrapped(run_with_ids, *args[1:], **kwargs)


def _install_thread_propagation() -> None:
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        wrapt.wrap_function_wrapper(threading.Thread, "start", _thread_start)
        wrapt.wrap_function_wrapper(threading.Thread, "run", _thread_run)
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _executor_submit)
        _installed = True
