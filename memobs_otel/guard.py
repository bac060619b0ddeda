"""The never-raise guard.

memobs sits on the agent's hot path; nothing it does may raise into the
agent's code. Every piece of memobs work that could fail (extraction,
tokenizer, hooks, exporter) runs through ``safe_invoke`` or ``log_once``:
failures are logged at WARNING at most once per *kind* (so a broken plugin
does not flood the log on every call) and swallowed.

**What is caught.** Everything but ``KeyboardInterrupt``: ``Exception`` and
also ``SystemExit``, ``GeneratorExit``, ``asyncio.CancelledError`` and other
``BaseException``s. memobs runs foreign code the host never asked to run (a
property of a result item read during extraction, a plugin's import or hook),
so an exit raised there is not the host's decision and must not end the
host's call or process. ``KeyboardInterrupt`` is the user's (Ctrl-C arrives
wherever the interpreter happens to be) and always propagates. The same rule
is applied, with the same two ``except`` clauses, where memobs reads a result
item's attributes (``entities``) and where it imports and calls plugins
(``plugins``). The host's own exceptions are never caught: the decorated
call runs outside every guard.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

logger = logging.getLogger("memobs_otel")

_seen: set[str] = set()
_seen_lock = threading.Lock()


def log_once(kind: str, exc: BaseException | None = None, message: str | None = None,
             level: int = logging.WARNING) -> None:
    """Log a memobs failure of ``kind`` the first time it happens.

    The one logging rule: an exception is named by its class only, never by
    its message, which may quote memory content (the traceback is added only
    when DEBUG is on). ``message`` must not quote content either.
    """
    with _seen_lock:
        if kind in _seen:
            return
        _seen.add(kind)
    text = message or f"memobs: {kind} failed"
    what = "warning" if level == logging.WARNING else "message"
    if exc is not None:
        logger.log(level, "%s (%s); memobs keeps going and will not repeat this %s",
                   text, type(exc).__name__, what, exc_info=logger.isEnabledFor(logging.DEBUG))
    else:
        logger.log(level, "%s; memobs will not repeat this %s", text, what)


def reset_logged() -> None:
    """Forget which kinds were logged (tests)."""
    with _seen_lock:
        _seen.clear()


def safe_invoke(kind: str, fn: Callable[..., Any], *args: Any, default: Any = None, **kwargs: Any) -> Any:
    """Call ``fn``; on any exception but ``KeyboardInterrupt`` log it once under ``kind``
    and return ``default``."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the whole point (see the module docstring)
        log_once(kind, exc)
        return default


def env_number(name: str, default, minimum: float = 0, *, above: bool = False, cast=float):
    """Environment variable ``name`` as a number (``cast``: ``float`` or ``int``) at least
    ``minimum`` (greater than it with ``above``); unset or blank: ``default``; anything
    else: ``default``, logged once. Never raises."""
    import os

    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = cast(raw.strip())
    except ValueError:
        value = None
    if value is not None and (value > minimum if above else value >= minimum):
        return value
    bound = f"{'greater than' if above else 'at least'} {minimum}"
    log_once(f"{name}={raw!r}", message=f"memobs: {name}={raw!r} is not a number {bound}; using {default}")
    return default
