"""Near-duplicate detection over 64-bit simhash fingerprints, near-linear.

Locality-sensitive banding: the fingerprint is cut into 4 bands of 16 bits.
Two fingerprints within Hamming distance 3 differ in at most 3 bands, so
they agree on at least one band (pigeonhole) and meet in that band's bucket.
Only pairs sharing a bucket are compared — never all pairs — and the recall
for distance ≤ 3 is exact, not probabilistic. Identical fingerprints are
collapsed first so a thousand copies of one text cost one bucket entry.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

MAX_DISTANCE = 3
BANDS = 4
BAND_BITS = 64 // BANDS
_BAND_MASK = (1 << BAND_BITS) - 1


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_neighbours(values: Sequence[int], max_distance: int = MAX_DISTANCE) -> dict[int, list[tuple[int, int]]]:
    """For each distinct value, the other distinct values within ``max_distance``.

    Returns ``{value: [(other_value, distance), ...]}`` (values without a
    neighbour are absent). Exact for ``max_distance < BANDS``.
    """
    if max_distance >= BANDS:
        raise ValueError(f"banding with {BANDS} bands finds distances up to {BANDS - 1} only")
    distinct = list(set(values))
    result: dict[int, dict[int, int]] = defaultdict(dict)
    for band in range(BANDS):
        shift = band * BAND_BITS
        keys = [(value >> shift) & _BAND_MASK for value in distinct]
        # most buckets hold one value: find the shared ones in C (Counter)
        shared = {key for key, n in Counter(keys).items() if n > 1}
        if not shared:
            continue
        buckets: dict[int, list[int]] = defaultdict(list)
        for key, value in zip(keys, distinct):
            if key in shared:
                buckets[key].append(value)
        for members in buckets.values():
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    distance = (a ^ b).bit_count()
                    if distance <= max_distance:
                        result[a][b] = distance
                        result[b][a] = distance
    return {value: list(others.items()) for value, others in result.items()}


def newer_twins(
    simhashes: Sequence[int],
    content_hashes: Sequence[str | None],
    newness: Sequence[int],
) -> dict[int, tuple[int, int, bool]]:
    """Entities (by index) that have a newer near-identical twin.

    ``newness`` ranks the entities (all distinct; higher = newer). Returns
    ``{index: (twin_index, distance, same_content_hash)}`` where the twin is
    the nearest newer one (smallest distance, then newest).
    """
    groups: dict[int, list[int]] = defaultdict(list)
    for index, value in enumerate(simhashes):
        groups[value].append(index)
    neighbours = near_neighbours(list(groups))
    newest = {
        value: members[0] if len(members) == 1 else max(members, key=newness.__getitem__)
        for value, members in groups.items()
    }
    found: dict[int, tuple[int, int, bool]] = {}
    for value, members in groups.items():
        if len(members) == 1 and value not in neighbours:
            continue  # alone: no twin at all (the common case)
        options = [(0, newest[value])] + [
            (distance, newest[other]) for other, distance in neighbours.get(value, ())
        ]
        options.sort(key=lambda option: (option[0], -newness[option[1]]))
        for index in members:
            for distance, twin in options:
                if newness[twin] > newness[index]:
                    same = content_hashes[index] is not None and content_hashes[index] == content_hashes[twin]
                    found[index] = (twin, distance, same)
                    break
    return found
