"""The real mem0 fully offline, for the tests that use it: a local Qdrant in
``tmp_path``, a deterministic embedder, no LLM call (``add(..., infer=False)``).

Fixtures ``memory`` and ``instrumented``: import them into a test module
(``from mem0_helpers import instrumented, memory``). Importing this module
skips the importing test module when mem0 is not installed.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile

import pytest

# mem0 reads these when it is first imported (telemetry on by default, a config file under ~/.mem0):
# set them at collection time, before any test can import it.
os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="memobs-test-mem0-"))

pytest.importorskip("mem0")

from mem0 import Memory  # noqa: E402
from mem0.embeddings.base import EmbeddingBase  # noqa: E402

import memobs_otel as memobs  # noqa: E402

DIMS = 32


class HashedWords(EmbeddingBase):
    """A local deterministic embedder: hashed word counts, L2-normalised."""

    def embed(self, text, memory_action=None):
        v = [0.0] * DIMS
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]


def mem0_config(path) -> dict:
    return {
        "vector_store": {"provider": "qdrant", "config": {
            "path": str(path / "qdrant"), "collection_name": "prefs", "embedding_model_dims": DIMS, "on_disk": True}},
        # providers need credentials to construct; nothing calls them: the embedder is replaced
        # below and add(..., infer=False) never calls the LLM
        "embedder": {"provider": "openai", "config": {"api_key": "unused-offline", "embedding_dims": DIMS}},
        "llm": {"provider": "openai", "config": {"api_key": "unused-offline"}},
        "history_db_path": str(path / "history.db"),
    }


@pytest.fixture
def memory(tmp_path):
    m = Memory.from_config(mem0_config(tmp_path))
    m.embedding_model = HashedWords()
    yield m
    m.close()


@pytest.fixture
def instrumented():
    assert memobs.instrument("mem0") == ["mem0"]
    yield
    memobs.uninstrument("mem0")
