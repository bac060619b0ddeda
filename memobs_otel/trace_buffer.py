"""What was injected in each recent trace, kept in memory for citations.

``memobs.record_answer(text)`` needs the content of the entities injected
earlier in the same trace to detect overlap, even when content capture is
off (content never leaves the process this way). The buffer is bounded: the
most recent ``MAX_TRACES`` traces, ``MAX_ENTITIES_PER_TRACE`` entities each;
older traces are forgotten.

It is bounded **in bytes** too, whatever the size of the memories: an
entity's content is kept up to ``MAX_CONTENT_CHARS`` characters (its
beginning: overlap citations of a longer memory look at that part), and
every entry is accounted (its type, id and kept content as CPython str
objects of their length, one byte a character or four when not ASCII, plus
its tuple slots; ``TRACE_BYTES`` per trace). When the total
passes the budget — half of ``MEMOBS_MEMORY_BUDGET_MB`` (``config``,
default 64 MB, so 32 MB here; ``set_budget``) — the oldest traces are
forgotten until it fits (the newest too, if it alone is larger than the
budget). ``held_bytes()`` is the accounted total.

Agents that open no span of their own around a turn still get citations:
each retrieval also notes its trace in a context variable of the calling
context (``pending_traces``), and ``record_answer`` called outside any span
looks at the traces noted since the previous ``record_answer`` in that
context (then clears them).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import NamedTuple

MAX_TRACES = 1024
MAX_ENTITIES_PER_TRACE = 512
MAX_PENDING_TRACES = 16
MAX_CONTENT_CHARS = 8_192
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
ENTITY_SLOTS_BYTES = 4 * 8 + 32  # an entity's four references in its chunk, and its rank (an int)
STR_BYTES = 80  # a str's header (CPython: 49 ASCII, up to 80 otherwise)
CHUNK_BYTES = 48 + 8  # an empty tuple and its slot in the bucket
TRACE_BYTES = 256  # a bucket list, its OrderedDict entry and trace id

_pending: ContextVar[tuple[int, ...]] = ContextVar("memobs_pending_traces", default=())


class InjectedEntity(NamedTuple):
    entity_type: str
    entity_id: str
    content: str
    rank: int


# Per trace: a list ``[raw_count, bytes, chunk, chunk, ...]`` where each chunk is one
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
_budget = DEFAULT_BUDGET_BYTES
_held = 0  # accounted bytes of every bucket


def _chunk_bytes(chunk: tuple) -> int:
    """The accounted bytes of a chunk: its slots and, per string, a header of STR_BYTES plus
    one byte per character (four for every string of a column — types, ids, contents — that
    holds a non-ASCII one: CPython's widest form). Each column is joined once, so its length
    and ASCII-ness are two O(1) reads (``sys.getsizeof`` per field costs ~0.3 µs each)."""
    n = len(chunk) // 4
    total = CHUNK_BYTES + (ENTITY_SLOTS_BYTES + 3 * STR_BYTES) * n
    try:
        for start in (0, 1, 2):
            column = "".join(chunk[start::4])
            total += len(column) if column.isascii() else 4 * len(column)
    except TypeError:  # a plugin's entity with a field that is not a str: measure each
        return CHUNK_BYTES + ENTITY_SLOTS_BYTES * n + sum(sys.getsizeof(chunk[i]) for i in range(len(chunk))
                                                          if i % 4 != 3)
    return total


def _kept(content):
    return content[:MAX_CONTENT_CHARS] if type(content) is str and len(content) > MAX_CONTENT_CHARS else content


def _forget_oldest() -> None:
    """Drop the oldest traces while more than MAX_TRACES are kept or the bytes pass the budget."""
    global _held
    while _traces and (len(_traces) > MAX_TRACES or _held > _budget):
        _, bucket = _traces.popitem(last=False)
        _held -= bucket[1]


def set_budget(budget_bytes: int) -> None:
    """The byte budget of the buffer (``config`` sets half of ``MEMOBS_MEMORY_BUDGET_MB``)."""
    global _budget
    with _lock:
        _budget = max(0, int(budget_bytes))
        _forget_oldest()


def held_bytes() -> int:
    """The bytes the buffer is accounted to hold now."""
    return _held


def _distinct(bucket: list) -> tuple:
    """The bucket's entries as one flat chunk: first occurrences, at most MAX_ENTITIES_PER_TRACE."""
    seen = set()
    flat: list = []
    for chunk in bucket[2:]:
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
    global _held
    limit = MAX_CONTENT_CHARS
    chunk = tuple([field for e in entities for field in (
        e.entity_type, e.entity_id,
        e.content if type(e.content) is not str or len(e.content) <= limit else e.content[:limit], e.rank)])
    size = _chunk_bytes(chunk)
    with _lock:
        bucket = _traces.get(trace_id)
        if bucket is None:
            bucket = _traces[trace_id] = [len(chunk) // 4, TRACE_BYTES + size, chunk]
            _held += TRACE_BYTES + size
        else:
            _traces.move_to_end(trace_id)
            if bucket[0] == _FULL or not chunk:
                return
            bucket.append(chunk)
            bucket[0] += len(chunk) // 4
            bucket[1] += size
            _held += size
        if bucket[0] > MAX_ENTITIES_PER_TRACE:  # compact: bounded memory
            flat = _distinct(bucket)
            count = len(flat) // 4
            size = TRACE_BYTES + _chunk_bytes(flat)
            _held += size - bucket[1]
            bucket[:] = [_FULL if count >= MAX_ENTITIES_PER_TRACE else count, size, flat]
        _forget_oldest()


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
    global _held
    with _lock:
        _traces.clear()
        _held = 0
