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


# per trace: (entity_type, entity_id) -> (entity_type, entity_id, content, rank),
# a plain tuple (cheaper to build on the hot path); InjectedEntity on reading
_traces: "OrderedDict[int, dict[tuple[str, str], tuple[str, str, str, int]]]" = OrderedDict()
_lock = threading.Lock()


def remember(trace_id: int, entities) -> None:
    """Keep ``entities`` (objects with entity_type/entity_id/content/rank) for ``trace_id``."""
    if not trace_id:
        return
    pending = _pending.get()
    if not pending or pending[-1] != trace_id:
        _pending.set((pending + (trace_id,))[-MAX_PENDING_TRACES:])
    with _lock:
        bucket = _traces.get(trace_id)
        if bucket is None:
            bucket = _traces[trace_id] = {}
            while len(_traces) > MAX_TRACES:
                _traces.popitem(last=False)
        else:
            _traces.move_to_end(trace_id)
        room = MAX_ENTITIES_PER_TRACE - len(bucket)
        for e in entities:
            if room <= 0:
                break
            entity_type, entity_id = e.entity_type, e.entity_id
            key = (entity_type, entity_id)
            if key not in bucket:
                bucket[key] = (entity_type, entity_id, e.content, e.rank)
                room -= 1


def injected_in(trace_id: int) -> list[InjectedEntity]:
    with _lock:
        bucket = _traces.get(trace_id)
        return [InjectedEntity._make(found) for found in bucket.values()] if bucket else []


def take_pending() -> tuple[int, ...]:
    """The traces with injections noted in this context since the last call; clears them."""
    pending = _pending.get()
    if pending:
        _pending.set(())
    return pending


def clear() -> None:
    with _lock:
        _traces.clear()
