"""``hashing``: a dependency-free embedder. LEXICAL ONLY: it matches words, not meanings.

Words and character trigrams are hashed (signed) into a fixed number of dimensions and the
vector is L2-normalised, so cosine similarity measures shared vocabulary. Use it for tests,
for a stack that must not load a model, or as a stand-in until a real model is configured.

Only the first ``MAX_CHARS`` characters of a text are hashed (a lexical fingerprint needs no
more), and texts longer than ``THREAD_CHARS`` are hashed in a worker thread, so a huge
message never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from typing import Any

from bruno_llm.base.embedding_interface import BaseEmbeddingProvider

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_CHARS = 100_000
"""Characters of a text that are hashed; the rest does not change its vector."""
THREAD_CHARS = 10_000
"""Texts (or batches) longer than this are hashed off the event loop, in a thread."""


class HashingEmbedder(BaseEmbeddingProvider):
    """Signed feature hashing of words and trigrams; deterministic across processes.

    Args:
        dimension: length of the vectors.
    """

    lexical_only = True

    def __init__(self, dimension: int = 384, **kwargs: Any) -> None:
        if dimension < 8:
            raise ValueError(f"hashing dimension must be at least 8, got {dimension}")
        super().__init__(model=f"hashing-lexical-{dimension}", **kwargs)
        self.dimension = dimension

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimension={self.dimension}, lexical_only=True)"

    def embed(self, text: str) -> list[float]:
        """The vector of ``text`` (synchronous: it is pure arithmetic)."""
        vec = [0.0] * self.dimension
        for feature, weight in _features(text[:MAX_CHARS]):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dimension] += weight if (h >> 63) & 1 else -weight
        norm = math.sqrt(sum(v * v for v in vec))
        return [v / norm for v in vec] if norm else vec

    async def embed_text(self, text: str) -> list[float]:
        if len(text) > THREAD_CHARS:
            return await asyncio.to_thread(self.embed, text)
        return self.embed(text)

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if sum(min(len(t), MAX_CHARS) for t in texts) > THREAD_CHARS:
            return await asyncio.to_thread(lambda: [self.embed(t) for t in texts])
        return [self.embed(t) for t in texts]

    def get_dimension(self) -> int:
        return self.dimension

    async def check_connection(self) -> bool:
        return True


def _features(text: str) -> list[tuple[str, float]]:
    words = _WORD.findall(text.lower())
    out = [(f"w:{w}", 1.0) for w in words]
    for w in words:
        padded = f"<{w}>"
        out += [(f"c:{padded[i : i + 3]}", 0.25) for i in range(len(padded) - 2)]
    return out
