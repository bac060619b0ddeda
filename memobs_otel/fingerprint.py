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
from functools import partial
from operator import methodcaller

_WORD = re.compile(r"\w+")
_WORD_ASCII = re.compile(rb"\w+")
_BLAKE2B_64 = partial(hashlib.blake2b, digest_size=8)
_DIGEST = methodcaller("digest")
_BIT_TO_LANE = bytes.maketrans(b"01", b"\x00\x01")
_TOP_BIT_TO_DIGIT = bytes.maketrans(bytes(range(256)), b"0" * 128 + b"1" * 128)
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


def _shingle_bytes(text: str) -> set[bytes]:
    """``shingles(text)``, each UTF-8 encoded (surrogatepass): the bytes that get hashed.

    ASCII text is lower-cased and split as bytes (``\\w`` means the same
    there), so no shingle needs encoding on its own.
    """
    if text.isascii():
        words = _WORD_ASCII.findall(text.encode("ascii").lower())
    else:
        words = [w.encode("utf-8", "surrogatepass") for w in _WORD.findall(text.lower())]
    if len(words) <= SHINGLE_SIZE:
        return {b" ".join(words)} if words else set()
    return set(map(b" ".join, zip(*(words[i:] for i in range(SHINGLE_SIZE)))))


def simhash(text: str) -> int:
    """64-bit simhash of ``text``'s word shingles (0 for a text with no words).

    Bit ``63 - p`` is set when more than half of the shingles' blake2b-64
    hashes have bit ``63 - p`` set.
    """
    features = _shingle_bytes(text)
    n = len(features)
    if not n:
        return 0
    # The majority vote runs in C-level int and bytes operations, not in a
    # Python loop per feature or per bit: each hash bit becomes a byte lane
    # ("lanes" wide enough to count to n), the n rows of 64 lanes are summed
    # by folding the big integer in halves, and a bias added to every lane
    # carries into its top bit exactly when its count is > n / 2.
    digests = b"".join(map(_DIGEST, map(_BLAKE2B_64, features)))
    bits = format(int.from_bytes(digests, "big"), f"0{64 * n}b").encode("ascii")
    width = 1
    while n >= 1 << (8 * width - 1):
        width += 1
    if width == 1:
        lanes = bits.translate(_BIT_TO_LANE)
    else:
        lanes = bits.replace(b"0", b"\x00" * width).replace(b"1", b"\x00" * (width - 1) + b"\x01")
    row_bits = 64 * 8 * width
    total, rows = int.from_bytes(lanes, "big"), n
    while rows > 1:
        low = rows - rows // 2
        shift = row_bits * low
        total = (total >> shift) + (total & ((1 << shift) - 1))
        rows = low
    ones = int.from_bytes((b"\x00" * (width - 1) + b"\x01") * 64, "big")
    total += ((1 << (8 * width - 1)) - (n // 2 + 1)) * ones
    return int(total.to_bytes(8 * 8 * width, "big")[::width].translate(_TOP_BIT_TO_DIGIT), 2)


def simhash_hex(value: int) -> str:
    return format(value, "016x")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
