"""Per-content measurements, bounded and cached: content hash, simhash, MinHash and token count.

**Bounded work.** Measuring a memory costs the caller the same whatever its
size past a few kilobytes (SPEC section 4: a 10 MB memory costs no more than
a small one):

- tokens: counted exactly up to ``MEMOBS_TOKEN_EXACT_CHARS`` characters,
  estimated past it (``tokens.Tokenizer.count_capped``); the event then
  carries ``memobs.entity.tokens_estimated=true`` and the span
  ``memobs.tokens.estimated=true``;
- content hash (``content_hash``): SHA-256 of the whole text up to
  ``HASH_EXACT_CHARS`` (65,536) characters; past it, SHA-256 of the length
  and a ``sample`` of ``HASH_EXACT_CHARS`` characters taken from 16 evenly
  spaced windows (start and end included). Two long texts that differ only
  between the windows get the same hash: accepted, as the price of a bound;
- the near-duplicate fingerprints, simhash and MinHash
  (``near_duplicate_text``): over the whole text up to
  ``SIMHASH_EXACT_CHARS`` (8,192) characters; past it, over a ``sample`` of
  ``SIMHASH_SAMPLE_CHARS`` (1,024) characters from 8 windows, so a long
  memory's fingerprints look at its whole length, thinly. (MinHash's own
  cap, ``fingerprint.MINHASH_MAX_CHARS`` normalised characters of the
  beginning, still cost tens of milliseconds per new long memory on the
  caller's thread.)

Texts under the caps (nearly every memory) are measured exactly as before.

**The cache.** One cache per ``Measurer`` maps a content to its
``Measurement`` so that a memory injected again costs no second encode. It
does not keep the content: the key is Python's own string hash,
``hash(content)`` (64-bit SipHash, keyed per process, computed once per
string object and kept in it, so a repeated string costs a dict lookup), for
texts up to ``HASH_EXACT_CHARS``; for longer ones the (bounded) content hash.
A false hit needs two different memories with the same 64-bit hash, about
one lookup in 10^15 with the cache full; its cost would be one wrong token
count, never an error.

The cache is bounded **in bytes**: each entry is accounted with the sizes
of its objects (``entry_bytes``: key, measurement tuple and its strings,
plus the dict slot), and when an insert would take the total past
``budget_bytes`` the oldest entries (insertion order) are evicted until an
eighth of the budget is free. The budget is half of
``MEMOBS_MEMORY_BUDGET_MB`` (``config``; default 64 MB, so 32 MB here,
~85,000 measurements); the other half bounds the citation buffer
(``trace_buffer``). An optional ``max_cached`` bounds the entry count too.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from typing import NamedTuple

from .fingerprint import content_hash as exact_content_hash
from .fingerprint import minhash, simhash, simhash_hex
from .tokens import DEFAULT_EXACT_CHARS, Tokenizer

HASH_EXACT_CHARS = 65_536
HASH_SAMPLE_WINDOWS = 16
SIMHASH_EXACT_CHARS = 8_192
SIMHASH_SAMPLE_CHARS = 1_024
SIMHASH_SAMPLE_WINDOWS = 8
DEFAULT_BUDGET_BYTES = 32 * 1024 * 1024
# a dict slot (hash, key, value) and its share of the index, with the table
# up to half empty right after it grows
_SLOT_BYTES = 104

MAX_CACHED = None  # no entry-count bound by default: the byte budget bounds the cache


class Measurement(NamedTuple):
    content_hash: str
    simhash: str  # 16 hex chars
    tokens: int
    estimated: bool = False  # tokens estimated past the exact-count cap
    minhash: str | None = None  # fingerprint.minhash as 128 hex chars (None: no words)


def sample(text: str, chars: int, windows: int) -> str:
    """``text`` itself up to ``chars`` characters, else ``windows`` evenly spaced slices of
    ``chars // windows`` characters (the first at the start, the last at the end), joined by
    newlines."""
    n = len(text)
    if n <= chars:
        return text
    width = chars // windows
    starts = [(n - width) * i // (windows - 1) for i in range(windows)]
    return "\n".join([text[start : start + width] for start in starts])


def content_hash(text: str) -> str:
    """``fingerprint.content_hash`` up to ``HASH_EXACT_CHARS`` characters; past it, the
    SHA-256 (first 32 hex chars) of ``"memobs-sample:<length>:"`` and the ``sample``."""
    n = len(text)
    if n <= HASH_EXACT_CHARS:
        return exact_content_hash(text)
    head = f"memobs-sample:{n}:".encode("ascii")
    body = sample(text, HASH_EXACT_CHARS, HASH_SAMPLE_WINDOWS).encode("utf-8", "surrogatepass")
    return hashlib.sha256(head + body).hexdigest()[:32]


def near_duplicate_text(text: str) -> str:
    """What the near-duplicate fingerprints read: ``text`` itself up to ``SIMHASH_EXACT_CHARS``
    characters, else its ``sample`` of ``SIMHASH_SAMPLE_CHARS`` from ``SIMHASH_SAMPLE_WINDOWS``."""
    if len(text) > SIMHASH_EXACT_CHARS:
        return sample(text, SIMHASH_SAMPLE_CHARS, SIMHASH_SAMPLE_WINDOWS)
    return text


def simhash_of(text: str) -> int:
    """``fingerprint.simhash`` of ``near_duplicate_text(text)``."""
    return simhash(near_duplicate_text(text))


def entry_bytes(key: object, measurement: Measurement) -> int:
    """The bytes one cache entry is accounted for."""
    getsize = sys.getsizeof
    return (_SLOT_BYTES + getsize(key) + getsize(measurement) + getsize(measurement.content_hash)
            + getsize(measurement.simhash) + getsize(measurement.tokens) + getsize(measurement.minhash))


class Measurer:
    # texts up to this many characters are cached under hash(text); longer ones under
    # their bounded content hash (hashing a new 10 MB string would cost ~3 ms)
    KEY_CHARS = HASH_EXACT_CHARS

    def __init__(self, tokenizer: Tokenizer, max_cached: int | None = MAX_CACHED,
                 exact_chars: int = DEFAULT_EXACT_CHARS, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.tokenizer = tokenizer
        self.exact_chars = exact_chars
        self.budget_bytes = budget_bytes
        self.bytes = 0  # accounted bytes of the entries held
        self._cache: dict[object, Measurement] = {}
        self._max = max_cached
        self._lock = threading.Lock()  # inserts and evictions (the cold path); hits take no lock
        # the cached measurement under a key (``hash(content)`` for a content of at most
        # KEY_CHARS characters), or None (then call measure): the dict's own get, so a hit
        # costs no Python call
        self.cached = self._cache.get
        # called with (content, measurement) for each new measurement: local content capture
        self.on_new = None

    def key(self, content: str) -> object:
        return hash(content) if len(content) <= self.KEY_CHARS else content_hash(content)

    def measure(self, content: str) -> Measurement:
        if len(content) <= self.KEY_CHARS:
            key: object = hash(content)
            found = self._cache.get(key)
            if found is not None:
                return found
            digest = exact_content_hash(content)
        else:
            key = digest = content_hash(content)
            found = self._cache.get(key)
            if found is not None:
                return found
        tokens, estimated = self.tokenizer.count_capped(content, self.exact_chars)
        # both near-duplicate fingerprints read the same bounded text (see the docstring)
        text = near_duplicate_text(content)
        mh = minhash(text)
        found = Measurement(digest, simhash_hex(simhash(text)), tokens, estimated,
                            None if mh is None else mh.hex())
        self._store(key, found)
        if self.on_new is not None:
            self.on_new(content, found)
        return found

    def _store(self, key: object, measurement: Measurement) -> None:
        size = entry_bytes(key, measurement)
        budget = self.budget_bytes
        if size > budget:
            return  # a budget smaller than one entry: nothing is cached
        cache = self._cache
        with self._lock:
            if key in cache:  # another thread measured it meanwhile
                return
            if self.bytes + size > budget or (self._max is not None and len(cache) >= self._max):
                self._evict(budget - budget // 8 - size)
            cache[key] = measurement
            self.bytes += size

    def _evict(self, target: int) -> None:
        """Drop the oldest entries until at most ``target`` bytes are held (and, with
        ``max_cached``, an eighth of that count is free)."""
        cache = self._cache
        keep_count = None if self._max is None else self._max - (self._max // 8 or 1)
        dropped = []
        held = self.bytes
        count = len(cache)
        for key, measurement in cache.items():  # insertion order: oldest first
            if held <= target and (keep_count is None or count <= keep_count):
                break
            dropped.append(key)
            held -= entry_bytes(key, measurement)
            count -= 1
        for key in dropped:
            del cache[key]
        self.bytes = held

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self.bytes = 0
