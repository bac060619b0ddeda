"""The plugin manager: built-in plugins, entry-point plugins, safe hook calls.

``load_plugins()`` runs once (``memobs.configure()`` and
``memobs.instrument()`` call it): it registers ``DEFAULT_PLUGINS`` exactly like
third-party ones, then every module of the ``memobs_otel`` entry-point group.
``MEMOBS_PLUGINS`` (comma-separated entry-point names) limits which
entry-point plugins load; ``MEMOBS_PLUGINS=""`` loads none. A plugin that
fails to import or register is logged and listed in ``plugin_errors``; the
rest load. "Fails" includes raising ``SystemExit`` (a plugin calling
``sys.exit`` at import): every ``BaseException`` but ``KeyboardInterrupt`` is
caught, as ``guard`` explains.

``call_hook`` calls each implementation on its own under the never-raise
guard, so one broken plugin cannot stop the others or reach the agent (a
plain ``pm.hook.name(...)`` would stop at the first that raises). It takes
``firstresult`` from the hookspec, as pluggy does: a ``firstresult=True``
hook returns the first non-None result, any other the list of them.
What a hook returns is the caller's to check: ``recording`` falls back to the
built-in extractor when ``memobs_extract_entities`` returns something that is
not an iterable of ``Entity``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import guard, hookspecs

ENTRY_POINT_GROUP = "memobs_otel"
DEFAULT_PLUGINS: tuple[str, ...] = ("memobs_otel.citations",)

pm = pluggy.PluginManager("memobs_otel")
pm.add_hookspecs(hookspecs)

logger = logging.getLogger("memobs_otel")
plugin_errors: dict[str, str] = {}
_loaded = False
_load_lock = threading.Lock()


def _allowed() -> set[str] | None:
    raw = os.environ.get("MEMOBS_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _register(name: str, loader) -> None:
    if pm.has_plugin(name):
        return
    try:
        pm.register(loader(), name=name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a bad plugin (even one calling sys.exit) is reported, not fatal
        # the error text is logged here, unlike guard.log_once's class name
        # only: a plugin fails at import, before it has seen any memory, and
        # the text ("No module named ...") is what the user needs to fix it
        plugin_errors[name] = f"{type(exc).__name__}: {exc}"
        logger.warning("memobs: plugin %r failed to load and is skipped (%s: %s)", name, type(exc).__name__, exc)


def load_plugins() -> None:
    """Register built-in and entry-point plugins, once."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for module in DEFAULT_PLUGINS:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                continue
            _register(module, lambda m=module: importlib.import_module(m))
        allowed = _allowed()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            _register(ep.name, ep.load)
        _loaded = True


def call_hook(name: str, **kwargs: Any) -> Any:
    """Call hook ``name``'s implementations one by one, each guarded.

    For a hookspec marked ``firstresult=True`` the first non-None result is
    returned (None if none); otherwise the list of non-None results.
    """
    caller = getattr(pm.hook, name)
    firstresult = bool(caller.spec.opts.get("firstresult"))
    impls = caller.get_hookimpls()
    if not impls:
        return None if firstresult else []
    results = []
    for impl in reversed(impls):  # pluggy's order: last registered first
        try:
            args = [kwargs[arg] for arg in impl.argnames]
            result = impl.function(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: see guard
            guard.log_once(f"hook:{name}:{impl.plugin_name}", exc,
                           f"memobs: plugin {impl.plugin_name!r} raised in {name}")
            continue
        if result is not None:
            if firstresult:
                return result
            results.append(result)
    return None if firstresult else results


def has_impls(name: str) -> bool:
    return bool(getattr(pm.hook, name).get_hookimpls())
