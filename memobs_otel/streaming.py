"""One-shot iterator results: handed back whole, recorded as the caller takes them.

A search may return a generator, a ``map``/``filter``/``zip``, a database
cursor, an endless stream, or (async) an async generator. Reading such a
result to record it would consume it: the caller would get an empty
iterator, and an endless stream would never return. So memobs never reads
it. The caller gets a transparent proxy of the very object returned
(``wrapt.ObjectProxy``: ``isinstance``, attributes and ``repr`` are the
original's) that hands over every item, lazily, exactly when and as the
caller asks for it, and tells memobs about each item after it was taken:

- each item is recorded when the caller takes it (its ``memobs.injection``
  event, rank counting on from the previous item), so an item the caller
  never takes is never recorded: what is recorded is what reached the
  caller;
- the retrieval span stays open while the caller consumes and ends when the
  iterator is exhausted, closed (``close()``/``aclose()``, a ``for`` loop's
  ``break`` followed by the proxy being dropped), raises (``error.type`` on
  the span, the exception passed on unchanged) or is garbage-collected. The
  span's totals (``memobs.injection.count``/``.tokens``,
  ``memobs.record.count``) are set then, over the items taken;
- while the wrapped iterator runs (inside each ``next()``), the retrieval
  span is the current span again and a decorated search called from the
  generator's body counts as nested, as it would inside an eager search.

Which results count as one-shot: an object whose class has ``__next__``
(sync) or ``__anext__`` (async). Lists, tuples, dicts, sets, strings and
other re-iterable containers are read at once, as before. Generators (and
async generators) keep ``send``/``throw``/``close`` (``asend``/``athrow``/
``aclose``) on the proxy; plain iterators do not gain them.

This module is the proxy only; what is recorded for each item is
``recording``'s (``_StreamRecorder``). The recorder never raises: a failure
while recording an item is logged once and the item is still handed over.
"""

from __future__ import annotations

from typing import Any, Protocol

import wrapt


class Recorder(Protocol):
    def enter(self) -> Any: ...  # before the wrapped iterator runs: returns a token for leave()
    def leave(self, token: Any) -> None: ...
    def take(self, item: Any) -> None: ...  # an item reached the caller
    def close(self, exc: BaseException | None = None) -> None: ...  # no more items (idempotent)


def kind(result: Any) -> str | None:
    """``"sync"`` or ``"async"`` for a one-shot iterator, else None (read the class, not the object)."""
    cls = type(result)
    if cls is list or cls is tuple or cls is dict or cls is str:
        return None
    if hasattr(cls, "__next__"):
        return "sync"
    if hasattr(cls, "__anext__"):
        return "async"
    return None


def wrap(result: Any, recorder: Recorder) -> Any:
    """The proxy of ``result`` (a one-shot iterator, see ``kind``) reporting to ``recorder``."""
    cls = type(result)
    if hasattr(cls, "__next__"):
        proxy = RecordingGenerator if hasattr(cls, "send") and hasattr(cls, "throw") else RecordingIterator
    else:
        proxy = RecordingAsyncGenerator if hasattr(cls, "asend") and hasattr(cls, "athrow") else RecordingAsyncIterator
    return proxy(result, recorder)


def _finalise(proxy) -> None:
    """A dropped proxy ends its recording. A finaliser must not raise (Python would print the
    error): at interpreter exit memobs's modules may already be torn down."""
    try:
        proxy._self_recorder.close()
    except BaseException:  # noqa: BLE001
        pass


def _step_failed(recorder: Recorder, token: Any, exc: BaseException, stop: type) -> None:
    """The wrapped iterator's step raised: the end of the items (``stop``) or a failure."""
    recorder.leave(token)
    recorder.close(None if isinstance(exc, stop) else exc)


class _RecordingProxy(wrapt.ObjectProxy):
    """The proxy of a one-shot iterator, sync or async, reporting to its recorder."""

    def __init__(self, wrapped: Any, recorder: Recorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder

    def __del__(self):
        # dropped before the end (a `break`, an abandoned endless stream): end the span
        _finalise(self)


class RecordingIterator(_RecordingProxy):
    """A sync one-shot iterator that reports each item taken."""

    def __iter__(self):
        return self

    def _self_step(self, step, *args):
        recorder = self._self_recorder
        token = recorder.enter()
        try:
            item = step(*args)
        except BaseException as exc:
            _step_failed(recorder, token, exc, StopIteration)
            raise
        recorder.leave(token)
        recorder.take(item)
        return item

    def __next__(self):
        return self._self_step(next, self.__wrapped__)


class RecordingGenerator(RecordingIterator):
    """A generator's proxy: ``send`` and ``throw`` yield items too; ``close`` ends the recording."""

    def send(self, value):
        return self._self_step(self.__wrapped__.send, value)

    def throw(self, *args):
        return self._self_step(self.__wrapped__.throw, *args)

    def close(self):
        try:
            return self.__wrapped__.close()
        finally:
            self._self_recorder.close()


class RecordingAsyncIterator(_RecordingProxy):
    """An async one-shot iterator that reports each item taken."""

    def __aiter__(self):
        return self

    async def _self_step(self, step, *args):
        recorder = self._self_recorder
        token = recorder.enter()
        try:
            item = await step(*args)
        except BaseException as exc:
            _step_failed(recorder, token, exc, StopAsyncIteration)
            raise
        recorder.leave(token)
        recorder.take(item)
        return item

    def __anext__(self):
        return self._self_step(self.__wrapped__.__anext__)


class RecordingAsyncGenerator(RecordingAsyncIterator):
    """An async generator's proxy: ``asend``/``athrow`` yield items too; ``aclose`` ends the recording."""

    def asend(self, value):
        return self._self_step(self.__wrapped__.asend, value)

    def athrow(self, *args):
        return self._self_step(self.__wrapped__.athrow, *args)

    async def aclose(self):
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_recorder.close()
