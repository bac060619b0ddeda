"""LlamaIndex offline, for the tests that use it: two short knowledge-base
texts and a deterministic bag-of-words embedding. Importing this module skips
the importing test module when llama-index-core is not installed.
"""

from __future__ import annotations

import hashlib
import math

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.embeddings import BaseEmbedding  # noqa: E402

GIFT = "Gift cards can be used for every order and never expire."
RETURNS = "Returns are accepted within thirty days when the item is unused."


class BagOfWords(BaseEmbedding):
    @staticmethod
    def _vector(text: str) -> list[float]:
        v = [0.0] * 64
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)
