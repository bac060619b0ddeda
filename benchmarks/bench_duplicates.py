"""Section 7, MinHash: the duplicate signal on real texts (issue 19).

Rows (called from ``store_rows``, section 7):

- precision and recall on the labelled pairs of ``tests/dup_pairs.py``
  (short and long twins and non-twins), counted exactly through the code
  the review queue runs: fingerprint, LSH candidates, similarity check;
- duplicate detection over N entities: memory texts (``texts.memory_texts``,
  15-120 words on one small vocabulary, so unrelated texts share ~6-10 % of
  their shingles: a hard case for LSH) in clusters of near copies (1-3 words
  replaced, inserted or deleted), plus one-sentence memories with their
  article/plural variants. Timed: ``signals.review`` on one ``EntityFacts``
  per entity (the duplicate signal's share of ``memory_review``, without the
  SQL). Target: 100k entities in <= 10 s, judged on the process's CPU time
  (one thread: equal to the wall time on an idle machine; on a shared one
  the wall time, also shown, counts other processes' turns);
- its recall against all pairs on a sample (every pair the estimator calls
  twins, found without LSH), and the cost of one fingerprint beside a simhash.
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path

from memobs_otel.fingerprint import minhash, minhash_similarity, simhash
from memobs_otel.store.duplicates import TWIN_SIMILARITY, minhash_neighbours
from memobs_otel.store.query import EntityFacts
from memobs_otel.store.signals import review

from .common import Row
from .texts import _WORDS, memory_texts

SIZES = {"quick": (1_000, 200), "default": (20_000, 1_000), "full": (100_000, 2_000)}
NS = 1_000_000_000
_SUBJECTS = ("prefers", "likes", "wants", "owns", "avoids", "uses", "books", "needs")


def labelled_pairs() -> list[tuple[str, str, bool]]:
    """``tests/dup_pairs.py``'s PAIRS (loaded by path: tests/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "dup_pairs.py"
    spec = importlib.util.spec_from_file_location("dup_pairs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PAIRS


def predicted(a: str, b: str) -> bool:
    fa, fb = minhash(a), minhash(b)
    return fa == fb or any(o == fb for o, _ in minhash_neighbours([fa, fb]).get(fa, ()))


def labelled_figures() -> tuple[float, float, int, int, int, int]:
    """(precision, recall, tp, fp, fn, tn) on the labelled pairs."""
    tp = fp = fn = tn = 0
    for a, b, twin in labelled_pairs():
        got = predicted(a, b)
        tp += got and twin
        fp += got and not twin
        fn += twin and not got
        tn += not twin and not got
    return tp / (tp + fp), tp / (tp + fn), tp, fp, fn, tn


def entity_texts(n: int, seed: int = 23) -> list[str]:
    """``n`` texts: 80 % long memory texts in clusters of near copies, 20 % short facts with variants."""
    rng = random.Random(seed)
    words = sorted(set(_WORDS))
    texts: list[str] = []
    n_long = n * 4 // 5
    bases = memory_texts(n_long, seed=seed)
    i = 0
    while len(texts) < n_long:
        base = bases[i]
        i += 1
        texts.append(base)
        for _ in range(rng.randrange(0, 3)):
            edited = base.split()
            for _ in range(rng.randint(1, 3)):
                op, at = rng.randrange(3), rng.randrange(len(edited))
                if op == 0:
                    edited[at] = rng.choice(words)
                elif op == 1:
                    edited.insert(at, rng.choice(words))
                elif len(edited) > 1:
                    del edited[at]
            texts.append(" ".join(edited))
    while len(texts) < n:
        fact = f"{rng.choice(_SUBJECTS)} {rng.choice(words)} {rng.choice(words)} {len(texts)}"
        texts.append(fact)
        if rng.random() < 0.3:
            texts.append(f"{fact.capitalize()}s.")
    return texts[:n]


def facts_for(fingerprints: list[bytes | None]) -> list[EntityFacts]:
    return [
        EntityFacts("memory", f"m{i:06d}", None, None, f"{i:032x}", None, None, None, None,
                    True, i * NS, None, i * NS, 1, 10, 50 * NS, 1, fp)
        for i, fp in enumerate(fingerprints)
    ]


def detection_figures(n: int, sample: int) -> dict:
    texts = entity_texts(n)
    start = time.perf_counter()
    fingerprints = [minhash(t) for t in texts]
    per_minhash = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for t in texts[:sample]:
        simhash(t)
    per_simhash = (time.perf_counter() - start) / sample
    facts = facts_for(fingerprints)
    cpu = time.process_time()
    start = time.perf_counter()
    # a window ending after every fact: only the duplicate signal fires (one injection, one citation)
    candidates = review(facts, 0, 10**6 * NS, min_injections=10**9, max_cite_rate=0.5,
                        min_wasted_tokens=10**9)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    flagged = {c.entity_id for c in candidates if "duplicate" in c.signals}
    # recall against all pairs of a sample: the entities that have a newer twin by the estimator
    rng = random.Random(5)
    # take whole clusters (consecutive texts) so the sample holds twins
    first = rng.randrange(0, max(1, n - sample))
    idx = list(range(first, min(n, first + sample)))
    exact = set()
    for a in idx:
        for b in idx:
            if b > a and fingerprints[a] is not None and fingerprints[b] is not None and (
                    fingerprints[a] == fingerprints[b]
                    or minhash_similarity(fingerprints[a], fingerprints[b]) >= TWIN_SIMILARITY):
                exact.add(f"m{a:06d}")
                break
    sub = review(facts_for([fingerprints[i] for i in idx]), 0, 10**6 * NS, min_injections=10**9,
                 max_cite_rate=0.5, min_wasted_tokens=10**9)
    found = {f"m{idx[int(c.entity_id[1:])]:06d}" for c in sub if "duplicate" in c.signals}
    recall = len(exact & found) / len(exact) if exact else 1.0
    return {"seconds": seconds, "cpu": cpu, "flagged": len(flagged), "recall": recall, "exact": len(exact),
            "per_minhash_us": per_minhash * 1e6, "per_simhash_us": per_simhash * 1e6}


def run(size: str = "default") -> list[Row]:
    n, sample = SIZES[size]
    precision, recall, tp, fp, fn, tn = labelled_figures()
    rows = [
        Row("7", f"MinHash duplicates, labelled pairs ({tp + fp + fn + tn})", f"P {precision:.3f} / R {recall:.3f}",
            f"tp {tp}, fp {fp}, fn {fn}, tn {tn} (tests/dup_pairs.py)", "P >= 0.95, R >= 0.9",
            precision >= 0.95 and recall >= 0.9),
    ]
    d = detection_figures(n, sample)
    full = n >= 100_000
    rows.append(Row("7", f"MinHash duplicate detection, {n:,} entities", f"{d['cpu']:.2f} s CPU",
                    f"wall {d['seconds']:.2f} s; {d['flagged']:,} flagged; signals.review on one EntityFacts"
                    " each (no SQL)", "<= 10 s" if full else "(<= 10 s at 100k)", d["cpu"] <= 10 if full else None))
    rows.append(Row("7", f"  recall vs all pairs, {sample:,}-entity sample", f"{d['recall']:.3f}",
                    f"{d['exact']} entities with a newer twin (estimated J >= {TWIN_SIMILARITY})"))
    rows.append(Row("7", "  one MinHash fingerprint (memory texts)", f"{d['per_minhash_us']:,.0f} µs",
                    f"simhash of the same texts {d['per_simhash_us']:,.0f} µs; once per distinct content"))
    return rows


if __name__ == "__main__":
    from .common import format_table

    print(format_table(run("default")))
