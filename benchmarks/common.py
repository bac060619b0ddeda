"""Timing helpers shared by the benchmarks.

Variants compared with each other are timed in *interleaved rounds*: every
round times one batch of each variant, in an order that changes from round
to round (``round_order``), so that drift on a shared machine (other
processes, CPU frequency) hits all of them alike. Figures are medians over the rounds and
ratios are medians of the per-round (paired) ratios.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from dataclasses import dataclass
from itertools import repeat
from typing import Callable, Sequence

US = 1e6


@dataclass
class Row:
    """One line of the table."""

    section: str  # "1", "2", "3", … as in the README's Performance section
    name: str
    figure: str  # the headline: a ratio, µs per call, events/s …
    detail: str = ""  # the side-by-side figures the headline comes from
    target: str = ""
    ok: bool | None = None  # None: no target

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("ok" if self.ok else "MISSED")


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call of ``fn`` over one batch of ``calls`` calls."""
    start = time.perf_counter()
    for _ in repeat(None, calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved(variants: dict[str, Callable[[], float]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run each variant's batch once per round, in the order ``round_order`` gives.

    Each value of ``variants`` runs one batch and returns its figure (e.g.
    seconds per call). Returns every round's figure per variant.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in round_order(names, r):
            gc.collect()
            results[name].append(variants[name]())
    return results


def round_order(names: Sequence[str], r: int) -> list[str]:
    """The order of round ``r``: two variants alternate; three or more are shuffled.

    A variant's time depends a little on which variant ran just before it
    (what that one left in the caches and the allocator): in one process,
    LangChain under memobs measured up to ~18 µs apart from the very same
    code in another place of a fixed order that only alternated. A shuffle
    per round (seeded by ``r``: the same orders in every run) puts each
    variant in every place and after every other one, so that effect
    averages out instead of favouring whoever has the luckier neighbour.
    """
    order = list(names)
    if len(order) <= 2:
        return order if r % 2 == 0 else order[::-1]
    random.Random(r).shuffle(order)
    return order


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] / b[i]."""
    return statistics.median(x / y for x, y in zip(a, b))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] - b[i]."""
    return statistics.median(x - y for x, y in zip(a, b))


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles (the spread around a median); one value: itself twice."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values`` (the sign test's).

    With the values sorted, it runs from the k-th to the k-th from the end,
    k the largest with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2: the
    true median lies outside it with at most that chance on each side,
    whatever the distribution (rounds are assumed independent). Too few
    values for that (n < 6 at 95 %): the whole range.
    """
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        raise ValueError("no values")
    tail, k, below = (1 - confidence) / 2, 0, 0.0
    while k < n // 2:
        below += math.comb(n, k) / 2**n  # P(X = k), added: P(X <= k) = P(X < k + 1)
        if below > tail:
            break
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def compare(differences: Sequence[float], label: str, confidence: float = 0.95) -> tuple[float, str]:
    """The median of paired ``differences`` (seconds, a - b per round) and what its interval shows."""
    low, high = median_interval(differences, confidence)
    if high < 0:
        verdict = f"{label} lower: the whole interval is below 0"
    elif low > 0:
        verdict = f"{label} higher: the whole interval is above 0"
    else:
        verdict = "no difference shown: the interval holds 0"
    share = sum(d < 0 for d in differences)
    return median(differences), (f"{confidence:.0%} interval {us(low)} to {us(high)} (sign test over "
                                 f"{len(differences)} rounds; lower in {share}); {verdict}")


def us(seconds: float) -> str:
    value = seconds * US
    return f"{value:.2f} µs" if abs(value) < 10 else f"{value:,.1f} µs"


def format_table(rows: Sequence[Row]) -> str:
    header = ("#", "benchmark", "figure", "target", "verdict", "side by side")
    cells = [header] + [(r.section, r.name, r.figure, r.target, r.verdict, r.detail) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = []
    for n, cell in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths)) + "  " + cell[-1])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 12)
    return "\n".join(line.rstrip() for line in lines)
