"""Content fingerprints: an exact hash and a 64-bit simhash.

``content_hash`` identifies identical content (the first 128 bits of
SHA-256, as 32 hex chars). ``simhash`` is Charikar's similarity hash over
the set of lower-cased 3-word shingles: near-identical texts differ in few of
its 64 bits, which is what the review queue's ``duplicate`` signal looks for
(Hamming distance <= 3). Both are computed in-process, so they are exported
even when content capture is off: they reveal nothing of the text.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"\w+")
SHINGLE_SIZE = 3


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def shingles(text: str, size: int = SHINGLE_SIZE) -> set[str]:
    """The set of lower-cased ``size``-word shingles of ``text``.

    A text shorter than ``size`` words is one shingle of all its words.
    """
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def simhash(text: str) -> int:
    """64-bit simhash of ``text``'s word shingles (0 for a text with no words)."""
    features = shingles(text)
    if not features:
        return 0
    # Bit-sliced majority vote: lay the feature hashes out as one string of
    # '0'/'1' and count each bit column with C-level slicing instead of a
    # Python loop over 64 bits per feature.
    bits = "".join(format(_feature_hash(f), "064b") for f in features)
    half = len(features) / 2
    value = 0
    for position in range(64):
        if bits[position::64].count("1") > half:
            value |= 1 << (63 - position)
    return value


def simhash_hex(value: int) -> str:
    return format(value, "016x")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
