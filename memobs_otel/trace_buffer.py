"""What was injected in each recent trace and turn, kept in memory for citations.

``memobs.record_answer(text)`` needs the content of the entities injected
earlier in the same *turn* to detect overlap, even when content capture is
off (content never leaves the process this way). A turn (SPEC §2) is the
current trace, and also the innermost ``memobs.context`` block
(``context.current_turns()``): so each retrieval is kept in *buckets* under
several keys —

- its trace id, when it ran outside any ``memobs.context``;
- ``(trace id, turn chain)`` when it ran inside blocks (the chain of their
  turn ids, outermost first), so an answer in one block of a trace can
  leave out what a sibling block retrieved in the same trace;
- ``-turn id`` for each block it ran in (innermost ``MAX_TURN_LEVELS``),
  whatever its trace: a framework whose spans start traces of their own
  (an LCEL chain, a LlamaIndex engine) still lands in the block's turn.

``turn_entities(trace_id, turns)`` reads a turn back (see its docstring).
The buckets share their entries' tuples, but each bucket is accounted its
full size, so the figures below are an upper bound.

The buffer is bounded: the most recent ``MAX_TRACES`` buckets (of every
kind), ``MAX_ENTITIES_PER_TRACE`` entities each; older ones are forgotten.

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
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import NamedTuple

from .context import current_turns

MAX_TRACES = 1024
MAX_ENTITIES_PER_TRACE = 512
MAX_TURN_LEVELS = 4  # a retrieval is kept under its innermost blocks' turns, at most this many
MAX_CONTENT_CHARS = 8_192
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
ENTITY_SLOTS_BYTES = 4 * 8 + 32  # an entity's four references in its chunk, and its rank (an int)
STR_BYTES = 80  # a str's header (CPython: 49 ASCII, up to 80 otherwise)
CHUNK_BYTES = 48 + 8  # an empty tuple and its slot in the bucket
TRACE_BYTES = 256  # a bucket list, its OrderedDict entry and trace id



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
    and ASCII-ness are two O(1) reads instead of a ``sys.getsizeof`` call per field."""
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


def remember(trace_id: int, entities, turns: tuple[int, ...] | None = None) -> None:
    """Keep ``entities`` (objects with entity_type/entity_id/content/rank) for ``trace_id`` and
    ``turns`` (the ``memobs.context`` turn chain; ``None``: the current one)."""
    if turns is None:
        turns = current_turns()
    if not turns:
        if trace_id:
            _remember((trace_id,), entities)
        return
    keys = [-turn for turn in turns[-MAX_TURN_LEVELS:]]
    if trace_id:
        keys.append((trace_id, turns))
    _remember(keys, entities)


def _cited_text(entity, limit: int):
    """What an answer is compared with: ``cite_text`` if the extractor set one, else the content; bounded."""
    text = getattr(entity, "cite_text", None)
    if text is None:
        text = entity.content
    return text if type(text) is not str or len(text) <= limit else text[:limit]


def _remember(keys, entities) -> None:
    global _held
    limit = MAX_CONTENT_CHARS
    chunk = tuple([field for e in entities for field in (
        e.entity_type, e.entity_id, _cited_text(e, limit), e.rank)])
    size = _chunk_bytes(chunk)
    with _lock:
        for key in keys:
            _add(key, chunk, size)
        _forget_oldest()


def _add(key, chunk: tuple, size: int) -> None:
    """Add ``chunk`` to the bucket of ``key`` (under the lock)."""
    global _held
    bucket = _traces.get(key)
    if bucket is None:
        bucket = _traces[key] = [len(chunk) // 4, TRACE_BYTES + size, chunk]
        _held += TRACE_BYTES + size
    else:
        _traces.move_to_end(key)
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


def _entities(flat: tuple) -> list[InjectedEntity]:
    return [InjectedEntity._make(flat[i : i + 4]) for i in range(0, len(flat), 4)]


def injected_in(trace_id: int) -> list[InjectedEntity]:
    """What was injected in ``trace_id`` outside any ``memobs.context`` block."""
    with _lock:
        bucket = _traces.get(trace_id)
        if not bucket:
            return []
        flat = _distinct(bucket)
    return _entities(flat)


def _same_branch(chain: tuple, turns: tuple) -> bool:
    """One chain encloses the other (a block and its enclosing or nested blocks), or they are equal."""
    shorter = min(len(chain), len(turns))
    return chain[:shorter] == turns[:shorter]


def turn_entities(trace_id: int, turns: tuple[int, ...]) -> list[InjectedEntity]:
    """What the turn of ``trace_id`` (0: none) and ``turns`` (a ``memobs.context`` chain) injected.

    With a block: everything retrieved inside the innermost block, in any
    trace (nested blocks included), plus what the current trace retrieved
    outside any block or in a block on the same branch (an enclosing or a
    nested one) — not in a sibling block. Without a block: everything the
    trace retrieved, inside blocks or not. The first occurrence of each
    ``(entity_type, entity_id)`` is kept, the turn's own first.
    """
    flats = []
    with _lock:
        if turns:
            bucket = _traces.get(-turns[-1])
            if bucket:
                flats.append(_distinct(bucket))
        if trace_id:
            # a scan of at most MAX_TRACES keys, once per answer (not per retrieval)
            for key, bucket in _traces.items():
                if key == trace_id or (type(key) is tuple and key[0] == trace_id
                                       and (not turns or _same_branch(key[1], turns))):
                    flats.append(_distinct(bucket))
    if len(flats) == 1:
        return _entities(flats[0])
    seen = set()
    found = []
    for flat in flats:
        for entity in _entities(flat):
            key = (entity.entity_type, entity.entity_id)
            if key not in seen:
                seen.add(key)
                found.append(entity)
    return found


def clear() -> None:
    global _held
    with _lock:
        _traces.clear()
        _held = 0
