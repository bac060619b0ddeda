"""``memobs.instrument`` / ``memobs.uninstrument``: patch code you don't own.

    memobs.instrument()                      # every installed framework plugin
    memobs.instrument("langchain")           # one framework
    memobs.instrument("my_pkg.search:Index.query", entity_type="fact", store="facts")
    memobs.uninstrument("my_pkg.search:Index.query")

A dotted-path target ``"package.module:Attr.method"`` gets the same recording
as ``@observe_retrieval`` (options: ``entity_type``, ``store``,
``operation``). Instrumenting twice is a no-op; ``uninstrument`` puts the
original attribute back exactly (the raw class ``__dict__`` entry, so
staticmethods and classmethods survive). Naming a framework that is not
installed is a logged no-op that returns ``False``. With no target, a
framework integration whose instrumentation raises (``SystemExit``
included) is logged once and skipped; the others are instrumented.

Framework plugins subclass ``Instrumentor``: set ``name`` and ``modules``
(import names that must be installed), implement ``_instrument`` with
``self.wrap(owner, "method", wrapper)`` calls; unwrapping is automatic.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
import threading
from typing import Any, Callable, ContextManager, NamedTuple

import wrapt

from . import config, guard, plugins
from .recording import RetrievalSpec, observe_call, observe_call_async

logger = logging.getLogger("memobs_otel")
_MISSING = object()


class Patch:
    """One attribute replaced by a wrapt wrapper, restorable."""

    def __init__(self, owner: Any, attribute: str, wrapper: Callable) -> None:
        self.owner, self.attribute = owner, attribute
        self.original = vars(owner).get(attribute, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        wrapt.wrap_function_wrapper(owner, attribute, wrapper)

    def restore(self) -> None:
        if self.original is _MISSING:
            try:
                delattr(self.owner, self.attribute)  # it was inherited: drop our override
            except AttributeError:
                pass
        else:
            setattr(self.owner, self.attribute, self.original)


def is_async_callable(owner: Any, attribute: str) -> bool:
    raw = inspect.getattr_static(owner, attribute)
    target = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
    return inspect.iscoroutinefunction(target)


def retrieval_wrapper(spec: RetrievalSpec, is_async: bool) -> Callable:
    """A wrapt wrapper recording calls like ``@observe_retrieval`` does."""
    if is_async:
        def wrapper(wrapped, instance, args, kwargs):
            return observe_call_async(wrapped, args, kwargs, spec)
    else:
        def wrapper(wrapped, instance, args, kwargs):
            return observe_call(wrapped, args, kwargs, spec)
    return wrapper


class PreparedCall(NamedTuple):
    """What a framework plugin's ``prepare`` says about one retrieval call.

    ``spec``: entity type, store and operation of the span. ``query`` and
    ``top_k``: the call's query text and result limit, when known (``None``
    otherwise). ``entities_of``: turns the call's result into entities
    (``None``: the plugins' and built-in extractors do). ``scope``: a context
    manager held around the call (e.g. ``memobs.context(user_id=...)``), or
    ``None``.
    """

    spec: RetrievalSpec
    query: str | None = None
    top_k: int | None = None
    entities_of: Callable[[Any], Any] | None = None
    scope: ContextManager | None = None


def prepared_retrieval_wrappers(kind: str, prepare: Callable[[Any, tuple, dict], PreparedCall | None],
                                scoped: bool = False) -> tuple[Callable, Callable]:
    """Sync and async wrapt wrappers for a framework's retrieval method.

    ``prepare(instance, args, kwargs)`` returns a :class:`PreparedCall`, or
    ``None`` to leave the call unrecorded. With the kill switch on, or when
    ``prepare`` fails (logged once under ``kind``), the call goes through
    unrecorded.

    ``scope`` is ``None`` unless ``scoped``: then it may be a context manager
    held around the call, and the async wrapper is a coroutine function, so
    ``prepare`` and the scope run when the call is awaited, in the awaiting
    context. Unscoped, the async wrapper returns ``observe_call_async``'s
    coroutine itself: one layer less. The prologue is repeated inline in each
    wrapper rather than factored out because it runs on every call.
    """
    def wrapper(wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return wrapped(*args, **kwargs)
        prepared = guard.safe_invoke(kind, prepare, instance, args, kwargs)
        if prepared is None:
            return wrapped(*args, **kwargs)
        spec, query, top_k, entities_of, scope = prepared  # a PreparedCall
        if scope is None:
            return observe_call(wrapped, args, kwargs, spec, query, top_k, entities_of)
        with scope:
            return observe_call(wrapped, args, kwargs, spec, query, top_k, entities_of)

    if not scoped:
        def async_wrapper(wrapped, instance, args, kwargs):
            if not config.settings.enabled:
                return wrapped(*args, **kwargs)
            prepared = guard.safe_invoke(kind, prepare, instance, args, kwargs)
            if prepared is None:
                return wrapped(*args, **kwargs)
            spec, query, top_k, entities_of, _ = prepared
            return observe_call_async(wrapped, args, kwargs, spec, query, top_k, entities_of)
        return wrapper, async_wrapper

    async def scoped_async_wrapper(wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return await wrapped(*args, **kwargs)
        prepared = guard.safe_invoke(kind, prepare, instance, args, kwargs)
        if prepared is None:
            return await wrapped(*args, **kwargs)
        spec, query, top_k, entities_of, scope = prepared  # a PreparedCall
        if scope is None:
            return await observe_call_async(wrapped, args, kwargs, spec, query, top_k, entities_of)
        with scope:
            return await observe_call_async(wrapped, args, kwargs, spec, query, top_k, entities_of)

    return wrapper, scoped_async_wrapper


class Instrumentor:
    """Base class of framework instrumentations (see the module docstring)."""

    name: str = ""
    modules: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()  # requirement strings, for people and `memobs doctor`

    def __init__(self) -> None:
        self._patches: list[Patch] = []
        self._instrumented = False
        self._lock = threading.RLock()

    @property
    def is_instrumented(self) -> bool:
        return self._instrumented

    def is_available(self) -> bool:
        def present(module: str) -> bool:
            if module in sys.modules:
                return True
            try:
                return importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                return False

        return all(present(m) for m in self.modules)

    def instrument(self, **options: Any) -> bool:
        with self._lock:
            if self._instrumented:
                return True
            if not self.is_available():
                logger.info("memobs: %s is not installed; nothing to instrument", self.name)
                return False
            try:
                self._instrument(**options)
            except Exception:
                self._unwrap_all()
                raise
            self._instrumented = True
            return True

    def uninstrument(self) -> None:
        with self._lock:
            if not self._instrumented:
                return
            try:
                self._uninstrument()
            finally:
                self._unwrap_all()
                self._instrumented = False

    def wrap(self, owner: Any, attribute: str, wrapper: Callable) -> None:
        self._patches.append(Patch(owner, attribute, wrapper))

    def _unwrap_all(self) -> None:
        while self._patches:
            self._patches.pop().restore()

    def _instrument(self, **options: Any) -> None:
        raise NotImplementedError

    def _uninstrument(self) -> None:
        """Extra clean-up beyond the automatic unwrapping (optional)."""


class DottedPathInstrumentor(Instrumentor):
    """Patches one ``"module:Attr.method"`` target."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.name = target
        module_name, _, path = target.partition(":")
        if not module_name or not path:
            raise ValueError(f"memobs.instrument target must look like 'package.module:Class.method', got {target!r}")
        self.module_name, self.path = module_name, path

    def is_available(self) -> bool:
        return True  # importing the target in _instrument gives the clear error

    def _instrument(self, entity_type: Any = "memory", store: str | None = None,
                    operation: str = "search_memory", **options: Any) -> None:
        if options:
            raise TypeError(f"unknown instrument options {sorted(options)}")
        owner: Any = importlib.import_module(self.module_name)
        *parents, attribute = self.path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        spec = RetrievalSpec(entity_type, store, operation)
        self.wrap(owner, attribute, retrieval_wrapper(spec, is_async_callable(owner, attribute)))


_registry: dict[str, Instrumentor] = {}
_registry_lock = threading.RLock()
_frameworks_collected = False


def _collect_frameworks() -> None:
    global _frameworks_collected
    if _frameworks_collected:
        return
    plugins.load_plugins()

    def register(instrumentor: Instrumentor) -> None:
        _registry[instrumentor.name] = instrumentor

    plugins.call_hook("memobs_register_instrumentations", register=register)
    _frameworks_collected = True


def frameworks() -> dict[str, Instrumentor]:
    """The framework instrumentations registered by plugins, by name."""
    with _registry_lock:
        _collect_frameworks()
        return {k: v for k, v in _registry.items() if not isinstance(v, DottedPathInstrumentor)}


def all_subclasses(base: type) -> list[type]:
    """Every subclass of ``base`` defined now (not ``base`` itself), breadth first, each once.

    For plugins that patch each class defining a method itself: a class defined
    after ``instrument()`` is not in the list.
    """
    found: list[type] = []
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def called_by_instrumented_framework(owners: dict[str, str], own_packages: frozenset[str]) -> bool:
    """Is the current call made by a framework that memobs instruments and records itself?

    For client-level plugins (Chroma, Qdrant) whose client is also driven by a framework
    plugin (mem0, LangChain, LlamaIndex): the framework records the call, so the client
    plugin stands aside rather than record it twice. Walks up the stack past the frames of
    ``own_packages`` (top-level package names: memobs's own and wrapt's) to the first
    caller; ``owners`` maps that caller's top-level package to the memobs framework name.
    True only when that framework is registered and instrumented right now.

    Why: mem0's ``Memory.add`` writes through the client and the mem0 plugin records the
    memory (type "memory"); the client plugin recording the record as well would list
    every mem0 memory twice in the inventory, once per type. LangChain's vector store and
    LlamaIndex's index record their own writes (``memobs_langchain.writes``,
    ``memobs_llamaindex.writes``) under the ids their retrievers use, so they own the
    client's writes only; their reads need nothing (the retriever's span makes the
    client's span nested).
    """
    frame = sys._getframe(1)
    top = ""
    while frame is not None:
        top = frame.f_globals.get("__name__", "").partition(".")[0]
        if top not in own_packages:
            break
        frame = frame.f_back
    if frame is None or top not in owners:
        return False
    owner = frameworks().get(owners[top])
    return owner is not None and owner.is_instrumented


def instrument(target: str | None = None, **options: Any) -> list[str]:
    """Instrument a dotted-path target, one framework, or (no target) every installed one.

    Returns the names now instrumented. A dotted path that cannot be
    resolved raises a clear exception (it is a programming error, raised at
    set-up, never on the agent's hot path).
    """
    with _registry_lock:
        _collect_frameworks()
        if target is None:
            return [name for name, inst in frameworks().items() if _instrument_one(name, inst, options)]
        inst = _registry.get(target)
        if inst is None:
            if ":" not in target:
                known = ", ".join(sorted(frameworks())) or "none"
                logger.warning("memobs: no framework integration named %r (installed plugins: %s)", target, known)
                return []
            inst = _registry[target] = DottedPathInstrumentor(target)
        try:
            done = inst.instrument(**options)
        except Exception:
            if isinstance(inst, DottedPathInstrumentor):
                _registry.pop(target, None)
            raise
        return [target] if done else []


def _instrument_one(name: str, inst: Instrumentor, options: dict) -> bool:
    """``inst.instrument(**options)`` for ``instrument()`` with no target: a framework plugin
    that raises (anything but KeyboardInterrupt, ``SystemExit`` included) is logged once and
    skipped, and the other frameworks are instrumented."""
    try:
        return inst.instrument(**options)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a plugin's code: see guard
        guard.log_once(f"instrument:{name}", exc, f"memobs: the {name!r} integration failed to instrument "
                                                  f"and is skipped")
        return False


def uninstrument(target: str | None = None) -> None:
    """Undo ``instrument``: restore the originals (no target: everything)."""
    with _registry_lock:
        if target is None:
            for name, inst in list(_registry.items()):
                inst.uninstrument()
                if isinstance(inst, DottedPathInstrumentor):
                    del _registry[name]
            return
        inst = _registry.get(target)
        if inst is not None:
            inst.uninstrument()
            if isinstance(inst, DottedPathInstrumentor):
                del _registry[target]
