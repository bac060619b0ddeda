"""Content fingerprints: an exact hash, a 64-bit simhash and a MinHash.

``content_hash`` identifies identical content (the first 128 bits of
SHA-256, as 32 hex chars). ``simhash`` is Charikar's similarity hash over
the set of lower-cased 3-word shingles: near-identical texts differ in few of
its 64 bits, which is what the review queue's ``duplicate`` signal looks for
(Hamming distance <= 3). Both are computed in-process, so they are exported
even when content capture is off: they reveal nothing of the text.

``minhash`` is what the ``duplicate`` signal uses now: simhash over word
shingles misses short texts (one changed word in an 18-word note moves ~10
of its 64 bits; "prefers a window seat" / "prefers window seats" are 31
apart). The MinHash works at every length:

- the text is normalised (:func:`normalise`: NFKC, case-folded, every run
  of non-word characters one space, the articles a/an/the dropped, a plural
  ``s``/``es`` cut), so "Prefers a window seat." and "prefers window
  seats" are the same text;
- its features are the character ``MINHASH_SHINGLE``-grams of the
  normalised text padded with a space at each end;
- one-permutation hashing: each feature's 32-bit hash (crc32, scrambled)
  picks one of ``MINHASH_SLOTS`` slots (top 7 bits) and each slot keeps its
  smallest hash; an empty slot (short texts) copies the slot first found non-empty
  along a fixed pseudo-random probe sequence of its own ("optimal
  densification", Shrivastava 2017), so for every slot two texts agree with
  probability equal to the Jaccard similarity of their feature sets;
- each slot keeps only ``MINHASH_BITS`` bits of its minimum (b-bit MinHash):
  64 bytes in all, exported as 128 hex chars. Four bits cannot be looked up
  in a table of n-grams, so no feature of the text can be read off the
  fingerprint (like the content hash, a guessed text can only be confirmed).

:func:`minhash_similarity` estimates the Jaccard similarity from the share
of equal slots (corrected for the 1/16 chance that 4 bits agree anyway).
Cost: one crc32 per feature plus a sort, O(n log n), ~2x a simhash of the
same text (measured: benchmarks/bench_duplicates.py), paid once per distinct
content (the measurement cache). At most ``MINHASH_MAX_CHARS`` normalised
characters are read (of the first 4x as many raw ones): a longer text is
fingerprinted by its beginning, so two texts that share their first 32k
characters count as near-identical.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
import zlib
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


# --- MinHash over character shingles -----------------------------------------
MINHASH_SLOTS = 128
MINHASH_BITS = 4
MINHASH_SHINGLE = 6
MINHASH_MAX_CHARS = 32_768
_SLOT_SHIFT = 32 - (MINHASH_SLOTS.bit_length() - 1)  # the top 7 of 32 bits pick the slot
_SCRAMBLE = 0x9E3779B1
_LOW_BITS = (1 << MINHASH_BITS) - 1
_ARTICLES = frozenset({"a", "an", "the"})
_ES_PLURALS = ("ches", "shes", "sses", "xes", "zes")
_NON_WORD = re.compile(r"[\W_]+")
# per slot, the fixed pseudo-random order in which an empty slot looks for a
# filled one (the same for every text, so two texts' copies line up)
_PROBES = tuple(
    tuple(rng.randrange(MINHASH_SLOTS) for _ in range(4 * MINHASH_SLOTS))
    for rng in [random.Random(0x6D656D6F6273)]
    for _slot in range(MINHASH_SLOTS)
)
MINHASH_HEX_CHARS = MINHASH_SLOTS * MINHASH_BITS // 4


def normalise(text: str) -> str:
    """The text the MinHash reads: NFKC, case-folded, words joined by one
    space, articles dropped, a trailing plural cut: ``es`` after ch, sh, ss,
    x, z (``beaches`` -> ``beach``), else ``s`` (``seats`` -> ``seat``; not from
    ``ss`` words or words of three letters or fewer)."""
    words = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()
    out = []
    for word in words:
        if word in _ARTICLES:
            continue
        if len(word) > 4 and word.endswith(_ES_PLURALS):
            word = word[:-2]  # beaches -> beach, boxes -> box, classes -> class
        elif len(word) > 3 and word[-1] == "s" and word[-2] != "s":
            word = word[:-1]
        out.append(word)
    return " ".join(out)


def _features(text: str) -> set[bytes]:
    """The shingles :func:`minhash` hashes (UTF-8 encoded)."""
    normalised = normalise(text[: 4 * MINHASH_MAX_CHARS])[:MINHASH_MAX_CHARS]
    if not normalised:
        return set()
    encoded = f" {normalised} ".encode("utf-8", "surrogatepass")
    size = MINHASH_SHINGLE
    if len(encoded) <= size:
        return {encoded}
    # bytes, not characters: the same shingles for ASCII text, and a
    # multi-byte character only makes its shingles a little shorter
    return {encoded[i : i + size] for i in range(len(encoded) - size + 1)}


def minhash(text: str) -> bytes | None:
    """The ``MINHASH_SLOTS``-slot b-bit MinHash of ``text`` (two slots a byte,
    the first in the high nibble); ``None`` for a text with no words."""
    features = _features(text)
    if not features:
        return None
    # crc32 (in C) scrambled by an odd multiplier: a 32-bit hash per feature;
    # measured on the labelled pairs, as exact as blake2b-64 at half the cost
    hashes = [(h * _SCRAMBLE) & 0xFFFFFFFF for h in map(zlib.crc32, features)]
    shift = _SLOT_SHIFT
    # the last value written per slot wins: descending order leaves the minimum
    smallest = {value >> shift: value for value in sorted(hashes, reverse=True)}
    filled = smallest.__contains__
    slots = []
    for slot in range(MINHASH_SLOTS):
        value = smallest.get(slot)
        if value is None:
            probe = next(filter(filled, _PROBES[slot]), None)
            if probe is None:  # the probes missed (a text of a few characters): the next filled slot
                probe = next(s % MINHASH_SLOTS for s in range(slot + 1, slot + MINHASH_SLOTS + 1)
                             if filled(s % MINHASH_SLOTS))
            value = smallest[probe]
        slots.append(value & _LOW_BITS)
    return bytes((slots[i] << 4) | slots[i + 1] for i in range(0, MINHASH_SLOTS, 2))


def minhash_hex(value: bytes) -> str:
    return value.hex()


def minhash_from_hex(value) -> bytes | None:
    """The fingerprint from its exported form (hex text, or bytes as stored); None if malformed."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        return value if len(value) == MINHASH_SLOTS * MINHASH_BITS // 8 else None
    if not isinstance(value, str) or len(value) != MINHASH_HEX_CHARS:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


_CHANCE = 1.0 / (1 << MINHASH_BITS)


def minhash_matches(a: bytes, b: bytes) -> int:
    """How many of the slots of ``a`` and ``b`` are equal."""
    diff = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    # a zero nibble is an equal slot: count zero nibbles through the hex text
    return format(diff, f"0{MINHASH_HEX_CHARS}x").count("0")


def minhash_similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets, in [0, 1]."""
    share = minhash_matches(a, b) / MINHASH_SLOTS
    return max(0.0, (share - _CHANCE) / (1.0 - _CHANCE))
