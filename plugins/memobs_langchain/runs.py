"""Where memobs records a LangChain retriever call: the retriever's *run*.

Every retriever call is a run of LangChain's callback system:
``callback_manager.on_retriever_start(...)`` opens it (and returns the run's
manager), ``run_manager.on_retriever_end(documents)`` or
``on_retriever_error(error)`` closes it. ``BaseRetriever.invoke``/``ainvoke``
do this, and so do retrievers that define their own ``invoke`` (langchain-classic's
``EnsembleRetriever``). memobs wraps those four callback-manager methods:

- after ``on_retriever_start`` has run the handlers (so another
  instrumentation's span for the run exists), memobs begins its recording:
  onto that span (``peers``), else on a span of its own, made current;
- before ``on_retriever_end``/``on_retriever_error`` run the handlers (so the
  other instrumentation's span is still open), memobs records the documents
  (or the error) and closes what it opened.

So memobs's span covers the retriever's own work, never the callback work
around it, and with OpenInference or OpenLLMetry active there is one span per
retriever call, in the chain's trace.

``BaseRetriever.invoke``/``ainvoke`` are wrapped too, lightly: they tell the
run which retriever it belongs to (for the store name, ``k`` and the vector
store's scores) and, should the call end in a ``BaseException`` that LangChain
does not report to the callbacks (``asyncio.CancelledError``), close the
recording. A retriever with its own ``invoke`` gets neither: its store name
is the run's name (``EnsembleRetriever``, or the ``run_name`` given), and a
cancelled call leaves memobs's span unended (it is never exported) — in a
task that is then gone.

The open run is kept in a context variable; begin and end run in the same
context (LangChain calls ``on_retriever_end`` in the thread or task that
called ``on_retriever_start``), and only a run whose id matches is closed.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from memobs_otel import config, guard
from memobs_otel.recording import begin_retrieval, end_retrieval

from . import peers, scores

KIND = "langchain retriever"

# the retriever whose invoke is under way, for the run it is about to start:
# [retriever, invoke kwargs, the Run begun for it]
_call: ContextVar["list | None"] = ContextVar("memobs_langchain_call", default=None)
_current: ContextVar["Run | None"] = ContextVar("memobs_langchain_run", default=None)


class Run:
    """memobs's recording of one retriever run."""

    __slots__ = ("run_id", "spec", "retrieval", "collecting", "token", "closed")

    def __init__(self, run_id: Any, spec: Any, retrieval: Any, collecting: scores.Collecting) -> None:
        self.run_id, self.spec, self.retrieval, self.collecting = run_id, spec, retrieval, collecting
        self.token = _current.set(self)
        self.closed = False

    def close(self, documents: Any = None, error: BaseException | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            _current.reset(self.token)
        finally:
            try:
                self.collecting.__exit__(None, None, None)
            finally:
                end_retrieval(self.retrieval, self.spec, documents, error, self.collecting)


def begin(describe: Any, run_manager: Any, args: tuple, kwargs: dict) -> None:
    """After ``on_retriever_start``: begin recording ``run_manager``'s run."""
    call = _call.get()
    retriever = call_kwargs = None
    if call is not None and call[0] is not None:
        retriever, call_kwargs = call[0], call[1]
        call[0] = None  # this run is the retriever's; a nested one is not
    query = args[1] if len(args) > 1 else kwargs.get("query")
    spec, top_k = describe(retriever, kwargs.get("name"), call_kwargs or {})
    span = peers.span_for(getattr(run_manager, "handlers", None), getattr(run_manager, "run_id", None))
    collecting = scores.Collecting().__enter__()
    try:
        retrieval = begin_retrieval(spec, query if isinstance(query, str) else None, top_k, span=span)
    except BaseException:
        collecting.__exit__(None, None, None)
        raise
    run = Run(run_manager.run_id, spec, retrieval, collecting)
    if call is not None and retriever is not None:
        call[2] = run


def end(run_manager: Any, documents: Any = None, error: BaseException | None = None) -> None:
    """Before ``on_retriever_end``/``on_retriever_error``: record and close ``run_manager``'s run."""
    run = _current.get()
    if run is not None and run.run_id == getattr(run_manager, "run_id", None):
        run.close(documents, error)


def _documents(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs.get("documents")


def _error(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs.get("error")


def wrappers(describe: Any) -> dict[str, Any]:
    """The wrapt wrappers, by the method they wrap.

    ``describe(retriever or None, run name, invoke kwargs)`` returns the
    run's ``(RetrievalSpec, top_k)``.
    """

    def start(wrapped, instance, args, kwargs):
        run_manager = wrapped(*args, **kwargs)
        if config.settings.enabled:
            guard.safe_invoke(KIND, begin, describe, run_manager, args, kwargs)
        return run_manager

    async def astart(wrapped, instance, args, kwargs):
        run_manager = await wrapped(*args, **kwargs)
        if config.settings.enabled:
            guard.safe_invoke(KIND, begin, describe, run_manager, args, kwargs)
        return run_manager

    # the end wrappers run even with the kill switch turned on since the start:
    # what was opened is closed
    def finish(wrapped, instance, args, kwargs):
        if _current.get() is not None:
            guard.safe_invoke(KIND, end, instance, _documents(args, kwargs))
        return wrapped(*args, **kwargs)

    async def afinish(wrapped, instance, args, kwargs):
        if _current.get() is not None:
            guard.safe_invoke(KIND, end, instance, _documents(args, kwargs))
        return await wrapped(*args, **kwargs)

    def fail(wrapped, instance, args, kwargs):
        if _current.get() is not None:
            guard.safe_invoke(KIND, end, instance, None, _error(args, kwargs))
        return wrapped(*args, **kwargs)

    async def afail(wrapped, instance, args, kwargs):
        if _current.get() is not None:
            guard.safe_invoke(KIND, end, instance, None, _error(args, kwargs))
        return await wrapped(*args, **kwargs)

    def invoke(wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return wrapped(*args, **kwargs)
        call = [instance, kwargs, None]
        token = _call.set(call)
        try:
            return wrapped(*args, **kwargs)
        except BaseException as exc:
            _abandon(call, exc)
            raise
        finally:
            _call.reset(token)

    async def ainvoke(wrapped, instance, args, kwargs):
        if not config.settings.enabled:
            return await wrapped(*args, **kwargs)
        call = [instance, kwargs, None]
        token = _call.set(call)
        try:
            return await wrapped(*args, **kwargs)
        except BaseException as exc:
            _abandon(call, exc)
            raise
        finally:
            _call.reset(token)

    return {"on_retriever_start": (start, astart), "on_retriever_end": (finish, afinish),
            "on_retriever_error": (fail, afail), "invoke": (invoke, ainvoke)}


def _abandon(call: list, exc: BaseException) -> None:
    """The call ended without LangChain closing its run (a ``BaseException``): close it."""
    run = call[2]
    if run is not None and not run.closed:
        guard.safe_invoke(KIND, run.close, None, exc)
