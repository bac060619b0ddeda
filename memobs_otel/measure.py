"""Per-content measurements, cached: content hash, simhash and token count.

One bounded cache maps a content string to ``(content_hash, simhash_hex,
tokens)``. Looking up the string itself is cheaper than hashing it first and
gives the same guarantee the spec asks for: a memory injected again costs no
second encode and no second fingerprint. The cache is per tokenizer, so
changing the encoding starts a fresh one.
"""

from __future__ import annotations

from typing import NamedTuple

from .fingerprint import content_hash, simhash, simhash_hex
from .tokens import Tokenizer

MAX_CACHED = 50_000


class Measurement(NamedTuple):
    content_hash: str
    simhash: str  # 16 hex chars
    tokens: int


class Measurer:
    def __init__(self, tokenizer: Tokenizer, max_cached: int = MAX_CACHED) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, Measurement] = {}
        self._max = max_cached
        # the cached measurement of a content, or None (then call measure):
        # the cache dict's own get, so a hit costs no Python call
        self.cached = self._cache.get

    def measure(self, content: str) -> Measurement:
        found = self._cache.get(content)
        if found is not None:
            return found
        found = Measurement(content_hash(content), simhash_hex(simhash(content)), self.tokenizer.count(content))
        cache = self._cache
        if len(cache) >= self._max:
            # FIFO eviction of the oldest eighth: cheap, keeps memory bounded
            for key in list(cache)[: self._max // 8 or 1]:
                cache.pop(key, None)
        cache[content] = found
        return found
