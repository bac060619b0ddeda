"""What was injected in each recent trace, kept in memory for citations.

``memobs.record_answer(text)`` needs the content of the entities injected
earlier in the same trace to detect overlap, even when content capture is
off (content never leaves the process this way). The buffer is bounded: the
most recent ``MAX_TRACES`` traces, ``MAX_ENTITIES_PER_TRACE`` entities each;
older traces are forgotten.

Agents that open no span of their own around a turn still get citations:
each retrieval also notes its trace in a context variable of the calling
context (``pending_traces``), and ``record_answer`` called outside any span
looks at the traces noted since the previous ``record_answer`` in that
context (then clears them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import NamedTuple

MAX_TRACES = 1024
MAX_ENTITIES_PER_TRACE = 512
MAX_PENDING_TRACES = 16

_pending: ContextVar[tuple[int, ...]] = ContextVar("memobs_pending_traces", default=())


class InjectedEntity(NamedTuple):
    entity_type: str
    entity_id: str
    content: str
    rank: int


# Per trace: a list ``[raw_count, chunk, chunk, ...]`` where each chunk is one
# flat tuple ``(entity_type, entity_id, content, rank, entity_type, ...)`` per
# remember() call. The first occurrence of each (entity_type, entity_id) wins
# and at most MAX_ENTITIES_PER_TRACE distinct entities are kept — resolved on
# reading, and whenever the raw entries outgrow that bound (so memory stays
# bounded). Flat chunks, not a dict of tuples per entity: one retrieval adds
# two garbage-collected objects to the buffer instead of ~20, so filling it
# (the first MAX_TRACES retrievals) no longer triggers full collections.
_traces: "OrderedDict[int, list]" = OrderedDict()
_lock = threading.Lock()
_FULL = -1  # raw_count of a bucket holding MAX_ENTITIES_PER_TRACE distinct entities: ignores the rest


def _distinct(bucket: list) -> tuple:
    """The bucket's entries as one flat chunk: first occurrences, at most MAX_ENTITIES_PER_TRACE."""
    seen = set()
    flat: list = []
    for chunk in bucket[1:]:
        for i in range(0, len(chunk), 4):
            key = (chunk[i], chunk[i + 1])
            if key not in seen:
                if len(seen) >= MAX_ENTITIES_PER_TRACE:
                    return tuple(flat)
                seen.add(key)
                flat += chunk[i : i + 4]
    return tuple(flat)


def remember(trace_id: int, entities) -> None:
    """Keep ``entities`` (objects with entity_type/entity_id/content/rank) for ``trace_id``."""
    if not trace_id:
        return
    pending = _pending.get()
    if not pending or pending[-1] != trace_id:
        _pending.set((pending + (trace_id,))[-MAX_PENDING_TRACES:])
    chunk = tuple([field for e in entities for field in (e.entity_type, e.entity_id, e.content, e.rank)])
    with _lock:
        bucket = _traces.get(trace_id)
        if bucket is None:
            bucket = _traces[trace_id] = [len(chunk) // 4, chunk]
            while len(_traces) > MAX_TRACES:
                _traces.popitem(last=False)
        else:
            _traces.move_to_end(trace_id)
            if bucket[0] == _FULL or not chunk:
                return
            bucket.append(chunk)
            bucket[0] += len(chunk) // 4
        if bucket[0] > MAX_ENTITIES_PER_TRACE:  # compact: bounded memory
            flat = _distinct(bucket)
            count = len(flat) // 4
            bucket[:] = [_FULL if count >= MAX_ENTITIES_PER_TRACE else count, flat]


def injected_in(trace_id: int) -> list[InjectedEntity]:
    with _lock:
        bucket = _traces.get(trace_id)
        if not bucket:
            return []
        flat = _distinct(bucket)
    return [InjectedEntity._make(flat[i : i + 4]) for i in range(0, len(flat), 4)]


def take_pending() -> tuple[int, ...]:
    """The traces with injections noted in this context since the last call; clears them."""
    pending = _pending.get()
    if pending:
        _pending.set(())
    return pending


def clear() -> None:
    with _lock:
        _traces.clear()
