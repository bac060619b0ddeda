"""Local-only content capture: what a memory says, in the SQLite file, never in OTLP.

    memobs.configure(db_path="memobs.db", capture_content="local")
    # or MEMOBS_CAPTURE_CONTENT=local

Without content capture the review queue shows ids only — for mem0 that is
a UUID per memory, and nobody can act on "archive 3f1c…". Full capture
(``capture_content=True``) puts the content on the spans, so it reaches
every exporter, OTLP backends included. Local capture is in between:

- the content never goes on a span. When memobs measures a memory it has
  not seen before (its content hash, tokens and fingerprints, on the
  caller's thread, as always), it also keeps the first ``LOCAL_CHARS``
  characters here, in this process, keyed by the content hash;
- the SQLite exporter running in this process (``configure(db_path=...)``
  or your own ``SQLiteSpanExporter``) adds that text to the injection and
  write events it stores (``memobs.entity.content``), so the file's catalog,
  ``title`` fallback, review queue and report show what a memory says;
- OTLP exporters, your own exporters and ``memobs ingest`` never see it:
  the spans themselves carry only hashes.

Only the first ``LOCAL_CHARS`` (280) characters are kept and stored. The
map is bounded (``MAX_BYTES``, oldest first out); a text evicted before its
span was exported is simply not stored (the catalog keeps the content of
any earlier event of the same entity). ``memobs purge --user`` removes the
stored text with the user's events, as it removes everything else of theirs.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Iterable

from . import semconv as sc

LOCAL_CHARS = 280
MAX_BYTES = 4 * 1024 * 1024
_EVENTS = frozenset((sc.EVENT_INJECTION, sc.EVENT_WRITE))

_texts: "OrderedDict[str, str]" = OrderedDict()
_held = 0
_lock = threading.Lock()


def _size(key: str, text: str) -> int:
    return sys.getsizeof(key) + sys.getsizeof(text) + 64  # + the ordered dict's slot


def remember(content_hash: str, content: str) -> None:
    """Keep the head of ``content`` for the exporter (called when memobs measures a new memory)."""
    global _held
    if type(content) is not str or type(content_hash) is not str:
        return
    text = content[:LOCAL_CHARS]
    size = _size(content_hash, text)
    with _lock:
        if content_hash in _texts:
            _texts.move_to_end(content_hash)
            return
        _texts[content_hash] = text
        _held += size
        while _held > MAX_BYTES and _texts:
            old_key, old_text = _texts.popitem(last=False)
            _held -= _size(old_key, old_text)


def lookup(content_hash: Any) -> str | None:
    return _texts.get(content_hash) if type(content_hash) is str else None


def held_bytes() -> int:
    return _held


def clear() -> None:
    global _held
    with _lock:
        _texts.clear()
        _held = 0


def _with_content(events: Iterable[tuple]) -> Iterable[tuple]:
    for name, time_ns, attributes in events:
        if name in _EVENTS and attributes and sc.ENTITY_CONTENT not in attributes:
            text = lookup(attributes.get(sc.ENTITY_CONTENT_HASH))
            if text is not None:
                attributes = dict(attributes)
                attributes[sc.ENTITY_CONTENT] = text
        yield name, time_ns, attributes


def source(base):
    """``base`` (a store ``SpanSource``), or while texts are held a copy whose events carry them."""
    if not _texts:
        return base
    events = base.events
    return type(base)(base.span, lambda span: _with_content(events(span)))
