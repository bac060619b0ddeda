"""The simhash as it was before the hot-path work (commit 0b1b8ad), kept
verbatim as the reference: ``fingerprint.simhash`` must return exactly
the same value for every text, and section 4 prints both timings."""

from __future__ import annotations

import hashlib

from memobs_otel.fingerprint import shingles


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def simhash(text: str) -> int:
    features = shingles(text)
    if not features:
        return 0
    bits = "".join(format(_feature_hash(f), "064b") for f in features)
    half = len(features) / 2
    value = 0
    for position in range(64):
        if bits[position::64].count("1") > half:
            value |= 1 << (63 - position)
    return value
