"""``memobs.context``: user, session and request ids for everything inside.

    with memobs.context(user_id="u-42", session_id="s-7"):
        answer = agent.run(question)

The ids live in a ``contextvars.ContextVar``, so they follow ``await`` and
asyncio tasks. Nested contexts inherit the outer ids they do not set.
Plain threads do not inherit context variables in Python, so on first use
memobs makes ``threading.Thread`` and ``ThreadPoolExecutor.submit`` carry
the memobs ids and turn (and nothing else) from the starting thread into the
new one — the same thing ``opentelemetry-instrumentation-threading`` does
for the OTel context.

Each block is also a *turn* for ``memobs.record_answer`` (see
``citations``): on entering, a block gets a new turn id, and
``current_turns()`` is the chain of turn ids of the blocks in force,
outermost first. A retrieval recorded inside the block is remembered under
each of these turns (``trace_buffer``), so an answer recorded in the block
sees what was retrieved in it — also by a framework whose spans start
traces of their own, in threads its pool runs — and nothing retrieved in a
sibling block. Each turn id is a random non-zero 64-bit int, unique across
processes; it is exported as ``memobs.turn.id`` (16 hex chars) on every span
started inside the block (``turns.TurnSpanProcessor``, which ``configure()``
adds), so the store can tie LLM calls to the memory of the same turn.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import wrapt

from . import semconv

_EMPTY: dict[str, str] = {}
_ids: ContextVar[dict[str, str]] = ContextVar("memobs_ids", default=_EMPTY)
_turns: ContextVar[tuple[int, ...]] = ContextVar("memobs_turns", default=())


def _new_turn_id() -> int:
    # os.urandom, not the random module: a forked child would repeat its parent's ids
    return int.from_bytes(os.urandom(8), "big") or 1


def current_ids() -> dict[str, str]:
    """The ids in force, as span attributes (``user.id``, ``session.id``, ``memobs.request.id``)."""
    return _ids.get()


def current_turns() -> tuple[int, ...]:
    """The turn ids of the ``memobs.context`` blocks in force, outermost first (``()``: none)."""
    return _turns.get()


class context:
    """Context manager putting ``user_id``/``session_id``/``request_id`` on every span and event inside."""

    __slots__ = ("_ids", "_token", "_turn_token")

    def __init__(self, user_id: Any = None, session_id: Any = None, request_id: Any = None) -> None:
        merged = dict(_ids.get())
        for key, value in ((semconv.USER_ID, user_id), (semconv.SESSION_ID, session_id),
                           (semconv.MEMOBS_REQUEST_ID, request_id)):
            if value is not None:
                merged[key] = str(value)
        self._ids = merged
        self._token = None
        self._turn_token = None

    def __enter__(self) -> "context":
        _install_thread_propagation()
        self._token = _ids.set(self._ids)
        self._turn_token = _turns.set(_turns.get() + (_new_turn_id(),))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._turn_token is not None:
            _turns.reset(self._turn_token)
            self._turn_token = None
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
    ids, turns = _ids.get(), _turns.get()
    if ids or turns:
        instance._memobs_ids = (ids, turns)
    return wrapped(*args, **kwargs)


def _thread_run(wrapped, instance, args, kwargs):
    carried = getattr(instance, "_memobs_ids", None)
    if not carried:
        return wrapped(*args, **kwargs)
    token, turn_token = _ids.set(carried[0]), _turns.set(carried[1])
    try:
        return wrapped(*args, **kwargs)
    finally:
        _turns.reset(turn_token)
        _ids.reset(token)


def _executor_submit(wrapped, instance, args, kwargs):
    ids, turns = _ids.get(), _turns.get()
    if not (ids or turns) or not args:
        return wrapped(*args, **kwargs)
    fn = args[0]

    def run_with_ids(*a, **kw):
        token, turn_token = _ids.set(ids), _turns.set(turns)
        try:
            return fn(*a, **kw)
        finally:
            _turns.reset(turn_token)
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
