"""An embedding cache keyed by (model, text), and a batcher that coalesces concurrent calls.

Embedding costs ~100x any storage operation, so nothing is embedded twice and concurrent
writers share one forward pass: requests arriving while a batch runs form the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bruno_core.interfaces import EmbeddingInterface
from bruno_llm.base.embedding_interface import BaseEmbeddingProvider
from cachetools import LRUCache

EmbedFn = Callable[[list[str]], Awaitable[list[list[float]]]]


class Batcher:
    """Coalesces concurrent ``embed`` calls into batches of at most ``max_batch`` texts.

    Args:
        embed: embeds a list of texts (one call per batch).
        max_batch: most texts sent in one call.
    """

    def __init__(self, embed: EmbedFn, max_batch: int = 64) -> None:
        self._embed = embed
        self._max = max_batch
        self._pending: list[tuple[list[str], asyncio.Future[list[list[float]]]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # calls made, for tests and stats

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts``, computed together with whatever else is waiting."""
        if not texts:
            return []
        future: asyncio.Future[list[list[float]]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(texts), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let callers scheduled in this tick join the batch
            waiting, self._pending = self._take()
            unique = list(dict.fromkeys(t for texts, _ in waiting for t in texts))
            try:
                vectors = await self._run(unique)
            except BaseException as exc:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            by_text = dict(zip(unique, vectors, strict=True))
            for texts, future in waiting:
                if not future.done():
                    future.set_result([by_text[t] for t in texts])

    def _take(self) -> tuple[list[Any], list[Any]]:
        """Whole requests up to ``max_batch`` texts (at least one request)."""
        taken, size = 0, 0
        for texts, _ in self._pending:
            if taken and size + len(texts) > self._max:
                break
            taken, size = taken + 1, size + len(texts)
        return self._pending[:taken], self._pending[taken:]

    async def _run(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self._max):
            self.batches += 1
            out += await self._embed(texts[i : i + self._max])
        return out


class CachedEmbedder(BaseEmbeddingProvider):
    """Wraps a provider: answers repeated texts from an LRU cache, batches the rest.

    Args:
        inner: any ``EmbeddingInterface``.
        maxsize: cached vectors (0 disables the cache).
        max_batch: most texts per call to ``inner``.
        dimension: the vector length, when the provider cannot tell before a first call.
    """

    def __init__(
        self,
        inner: EmbeddingInterface,
        *,
        maxsize: int = 10_000,
        max_batch: int = 64,
        dimension: int | None = None,
    ) -> None:
        super().__init__(model=inner.get_model_name())
        self.inner = inner
        self.lexical_only = bool(getattr(inner, "lexical_only", False))
        self._cache: LRUCache[tuple[str, str], list[float]] = LRUCache(max(maxsize, 1))
        self._caching = maxsize > 0
        self._batcher = Batcher(inner.embed_texts, max_batch)
        self._dimension = dimension

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, maxsize={self._cache.maxsize})"

    @property
    def batches(self) -> int:
        """How many calls reached the provider."""
        return self._batcher.batches

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        model = self.model
        found = {t: v for t in texts if (v := self._cache.get((model, t))) is not None}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = await self._batcher.embed(missing)
            for text, vector in zip(missing, vectors, strict=True):
                found[text] = vector
                if self._caching:
                    self._cache[(model, text)] = vector
        return [list(found[t]) for t in texts]

    async def embed_text(self, text: str) -> list[float]:
        return (await self.embed_texts([text]))[0]

    def clear(self) -> None:
        """Forget every cached vector."""
        self._cache.clear()

    async def dimension(self) -> int:
        """The vector length, loading the model or asking the provider once if needed."""
        if self._dimension is None:
            load = getattr(self.inner, "load", None)
            if load is not None:
                await load()
                self._dimension = self.inner.get_dimension()
            else:
                self._dimension = len(await self.embed_text("dimension probe"))
        return self._dimension

    def get_dimension(self) -> int:
        return self._dimension if self._dimension is not None else self.inner.get_dimension()

    async def check_connection(self) -> bool:
        return bool(await self.inner.check_connection())

    def close(self) -> None:
        """Release the provider's worker, if it has one."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
