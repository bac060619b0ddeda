"""The real LangGraph store offline, for the tests that use it: a deterministic
local embedding and an ``InMemoryStore`` indexed with it. Importing this
module skips the importing test module when langgraph is not installed.
"""

from __future__ import annotations

import hashlib
import math

import pytest

pytest.importorskip("langgraph.store.base")

from langgraph.store.memory import InMemoryStore  # noqa: E402

DIMS = 32


def embed(texts):
    """A deterministic local embedding: hashed word counts, L2-normalised."""
    vectors = []
    for text in texts:
        v = [0.0] * DIMS
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        vectors.append([x / norm for x in v])
    return vectors


def indexed_store():
    return InMemoryStore(index={"dims": DIMS, "embed": embed, "fields": ["text"]})
