"""Near-duplicate detection over 64-bit simhash fingerprints, near-linear.

Locality-sensitive banding: the fingerprint is cut into 4 bands of 16 bits.
Two fingerprints within Hamming distance 3 differ in at most 3 bands, so
they agree on at least one band (pigeonhole) and meet in that band's bucket.
Only pairs sharing a bucket are compared — never all pairs — and the recall
for distance ≤ 3 is exact, not probabilistic. Identical fingerprints are
collapsed first so a thousand copies of one text cost one bucket entry.

Most entities have no twin at all: :func:`twin_groups` finds the few
fingerprints that can have one, so the caller ranks (by newness) only
those entities, not all of them.

MinHash fingerprints (``memobs.entity.minhash``, see
:mod:`memobs_otel.fingerprint`) are what the signal uses now; the simhash
is the fallback for entities recorded before them. :func:`minhash_twin_groups`
is :func:`twin_groups` for MinHash: LSH banding over the 128 four-bit slots
(21 bands of ``BAND_SLOTS`` = 6 slots: two texts land in one bucket of a band
when they agree on its 6 slots, with probability ~J^6 per band), then each
candidate pair is verified by its estimated Jaccard similarity
(``>= TWIN_SIMILARITY``). Unlike the simhash pigeonhole this recall is
probabilistic: a pair at J = 0.6 is a candidate with probability ~0.72, at
0.7 ~0.96, at 0.8 ~0.999 (benchmarks/bench_duplicates.py measures it against
all pairs). Six slots a band keep the candidates near-linear on texts that
share a vocabulary (unrelated memory texts agree on ~6-10 % of shingles).
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from itertools import compress
from operator import itemgetter, ne
from typing import Hashable, Mapping, Sequence

from ..fingerprint import MINHASH_SLOTS, minhash_similarity

MAX_DISTANCE = 3
BANDS = 4
BAND_BITS = 64 // BANDS
_BAND_MASK = (1 << BAND_BITS) - 1


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _band_keys(distinct: list[int]) -> list[list[int]]:
    """The 16-bit band values of each fingerprint, one list per band.

    Cut in C: the fingerprints packed as unsigned 64-bit words, viewed as
    16-bit halves (which half is which band depends on the byte order; any
    split into 4 bands of 16 bits is exact). Values that do not fit 64
    unsigned bits are cut in Python.
    """
    try:
        halves = memoryview(array("Q", distinct)).cast("B").cast("H")
    except (OverflowError, TypeError):
        return [[(value >> (band * BAND_BITS)) & _BAND_MASK for value in distinct] for band in range(BANDS)]
    return [halves[band::BANDS].tolist() for band in range(BANDS)]


def near_neighbours(values: Sequence[int], max_distance: int = MAX_DISTANCE) -> dict[int, list[tuple[int, int]]]:
    """For each distinct value, the other distinct values within ``max_distance``.

    Returns ``{value: [(other_value, distance), ...]}`` (values without a
    neighbour are absent). Exact for ``max_distance < BANDS``.
    """
    if max_distance >= BANDS:
        raise ValueError(f"banding with {BANDS} bands finds distances up to {BANDS - 1} only")
    distinct = list(set(values))
    result: dict[int, dict[int, int]] = defaultdict(dict)
    bands = _band_keys(distinct)
    for keys in bands:
        # Most buckets hold one value. ``first`` keeps each bucket's first
        # value (setdefault, in C); the list gets only the later values of
        # shared buckets.
        first: dict[int, int] = {}
        setdefault = first.setdefault
        later = [(key, value) for key, value in zip(keys, distinct) if setdefault(key, value) != value]
        if not later:
            continue
        buckets: dict[int, list[int]] = {}
        for key, value in later:
            members = buckets.get(key)
            if members is None:
                buckets[key] = [first[key], value]
            else:
                members.append(value)
        for members in buckets.values():
            if len(members) == 2:  # the common case
                a, b = members
                distance = (a ^ b).bit_count()
                if distance <= max_distance:
                    result[a][b] = distance
                    result[b][a] = distance
                continue
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    distance = (a ^ b).bit_count()
                    if distance <= max_distance:
                        result[a][b] = distance
                        result[b][a] = distance
    return {value: list(others.items()) for value, others in result.items()}


def twin_groups(simhashes: Sequence[int]) -> tuple[dict[int, list[int]], dict[int, list[tuple[int, int]]]]:
    """The fingerprints that can have a twin, and their neighbours.

    Returns ``(groups, neighbours)``: ``groups`` maps each fingerprint held
    by several entities or with a neighbour within ``MAX_DISTANCE`` to its
    entities' indices (ascending), in order of first index; ``neighbours``
    is :func:`near_neighbours` of all the fingerprints. Every other entity
    has no twin.
    """
    counts = Counter(simhashes)
    neighbours = near_neighbours(counts)
    involved = {value for value, n in counts.items() if n > 1}
    involved.update(neighbours)
    groups: dict[int, list[int]] = {}
    if involved:
        groups = defaultdict(list)
        for index, value in enumerate(simhashes):
            if value in involved:
                groups[value].append(index)
    return groups, neighbours


def pick_twins(
    groups: Mapping[int, list[int]],
    neighbours: Mapping[int, list[tuple[int, int]]],
    content_hashes: Sequence[str | None],
    newness: Sequence[int] | Mapping[int, int],
) -> dict[int, tuple[int, int, bool]]:
    """:func:`newer_twins` from :func:`twin_groups`; ``newness`` needs to rank
    only the indices in ``groups``."""
    rank = newness.__getitem__
    newest = {value: max(members, key=rank) for value, members in groups.items()}
    found: dict[int, tuple[int, int, bool]] = {}
    for value, members in groups.items():
        options = [(0, newest[value])] + [
            (distance, newest[other]) for other, distance in neighbours.get(value, ())
        ]
        options.sort(key=lambda option: (option[0], -rank(option[1])))
        for index in members:
            for distance, twin in options:
                if rank(twin) > rank(index):
                    same = content_hashes[index] is not None and content_hashes[index] == content_hashes[twin]
                    found[index] = (twin, distance, same)
                    break
    return found


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
    groups, neighbours = twin_groups(simhashes)
    return pick_twins(groups, neighbours, content_hashes, newness)


# --- MinHash ------------------------------------------------------------------
TWIN_SIMILARITY = 0.6  # estimated Jaccard of the shingle sets; measured on tests/dup_pairs.py
BAND_SLOTS = 6
MINHASH_BANDS = MINHASH_SLOTS // BAND_SLOTS  # 21 bands (126 of the 128 slots)


def similarity_score(similarity: float) -> float:
    """The duplicate score for a MinHash similarity: 20 at ``TWIN_SIMILARITY``
    rising to 28 at 1 (29 is kept for identical content)."""
    return 20.0 + 8.0 * (similarity - TWIN_SIMILARITY) / (1.0 - TWIN_SIMILARITY)


def simhash_score(distance: int) -> float:
    """The duplicate score for a simhash distance (as before MinHash): 29 .. 20."""
    return 20.0 + 3.0 * (MAX_DISTANCE - distance)


def minhash_neighbours(values: Sequence[bytes]) -> dict[bytes, list[tuple[bytes, float]]]:
    """For each distinct MinHash, the other distinct ones estimated at least
    ``TWIN_SIMILARITY`` similar: ``{value: [(other, similarity), ...]}``.

    Candidates are the pairs that share a bucket in at least one band;
    each pair is verified once. Values without a neighbour are absent.
    """
    distinct = list(set(values))
    n = len(distinct)
    if n < 2:
        return {}
    seen: set[int] = set()  # verified pairs, as a * n + b (a < b): twins share many bands
    result: dict[bytes, list[tuple[bytes, float]]] = defaultdict(list)
    width = BAND_SLOTS // 2  # bytes: two 4-bit slots a byte
    positions = range(n)
    for band in range(MINHASH_BANDS):
        # Every step in C: the band's keys, the last position of each key,
        # and the positions that are not their key's last (keys shared by
        # several values). Most keys are unique; only the shared are visited.
        keys = list(map(itemgetter(slice(band * width, band * width + width)), distinct))
        last = dict(zip(keys, positions))
        if len(last) == n:
            continue
        buckets: dict[bytes, list[int]] = {}
        for i in compress(positions, map(ne, map(last.__getitem__, keys), positions)):
            key = keys[i]
            members = buckets.get(key)
            if members is None:
                buckets[key] = [i, last[key]]
            else:
                members.append(i)
        for members in buckets.values():
            for x, a in enumerate(members):
                for b in members[x + 1 :]:
                    pair = a * n + b if a < b else b * n + a
                    if pair in seen:
                        continue
                    seen.add(pair)
                    similarity = minhash_similarity(distinct[a], distinct[b])
                    if similarity >= TWIN_SIMILARITY:
                        result[distinct[a]].append((distinct[b], similarity))
                        result[distinct[b]].append((distinct[a], similarity))
    return dict(result)


def pick_nearest_newer(
    groups: Mapping[Hashable, list[int]],
    links: Mapping[Hashable, list[tuple[Hashable, float]]],
    rank,
) -> dict[int, tuple[int, float]]:
    """The nearest newer twin of each member of ``groups``.

    ``groups`` maps a fingerprint key to its entities (indices); ``links``
    maps a key to ``[(key, closeness), ...]`` (higher = more similar; a key
    linked to itself: its members are twins of each other). ``rank(index)``
    orders by newness. Returns ``{index: (twin, closeness)}``: the most
    similar newer twin, then the newest. Only the newest member of each
    group is ever a candidate (any newer member would be older than it).
    """
    newest = {key: max(members, key=rank) for key, members in groups.items()}
    found: dict[int, tuple[int, float]] = {}
    for key, members in groups.items():
        options = [(closeness, newest[other]) for other, closeness in links.get(key, ()) if other in newest]
        if not options:
            continue
        options.sort(key=lambda option: (-option[0], -rank(option[1])))
        for index in members:
            for closeness, twin in options:
                if twin != index and rank(twin) > rank(index):
                    best = found.get(index)
                    if best is None or (closeness, rank(twin)) > (best[1], rank(best[0])):
                        found[index] = (twin, closeness)
                    break
    return found
