"""A policy is a tier that wraps a tier: everything it does not change goes through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import Empty, Key, Miss, Value, WriteOp
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.base import Neighbour, Scored, Tier


class PolicyTier:
    """Forwards every call to ``inner``; subclasses override what their policy changes.

    Optional methods (windows, search, queries) are called only when ``capabilities``
    says the inner tier has them, exactly as for an unwrapped tier. Attributes a policy
    does not define (a tier's ``schema``, ``address``...) are the inner tier's.
    """

    def __init__(self, inner: Tier) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.capabilities: frozenset[Capability] = inner.capabilities

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet: never recurse
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _settings(self) -> str:
        return ""

    def __repr__(self) -> str:
        settings = self._settings()
        return f"{type(self).__name__}({self.inner!r}{', ' + settings if settings else ''})"

    async def open(self) -> None:
        await self.inner.open()

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def flush(self) -> None:
        """Drain queued writes of this tier and of the policies inside it."""
        flush = getattr(self.inner, "flush", None)
        if flush is not None:
            await flush()

    def metrics(self) -> dict[str, Any]:
        inner = getattr(self.inner, "metrics", None)
        return dict(inner()) if callable(inner) else {}

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        return await self.inner.get(keys)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self.inner.write(ops)

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        result: Sequence[MessageRecord] | Miss = await self._inner_call("window")(
            conversation_id, limit
        )
        return result

    async def search_messages(
        self, query: str, user_id: str | None, limit: int, conversation_id: str | None = None
    ) -> list[Scored[MessageRecord]]:
        hits: list[Scored[MessageRecord]] = await self._inner_call("search_messages")(
            query, user_id, limit, conversation_id
        )
        return hits

    async def query_memories(self, query: MemoryQuery, now: float) -> list[Scored[MemoryEntry]]:
        hits: list[Scored[MemoryEntry]] = await self._inner_call("query_memories")(query, now)
        return hits

    async def latest_session(self, user_id: str) -> SessionContext | None:
        found: SessionContext | None = await self._inner_call("latest_session")(user_id)
        return found

    async def statistics(self, user_id: str) -> dict[str, Any]:
        stats: dict[str, Any] = await self._inner_call("statistics")(user_id)
        return stats

    async def neighbours(self, ids: Sequence[str], before: int, after: int) -> list[Neighbour]:
        found: list[Neighbour] = await self._inner_call("neighbours")(ids, before, after)
        return found

    async def search_vector(self, query: str, where: Any, limit: int) -> list[Scored[Key]]:
        hits: list[Scored[Key]] = await self._inner_call("search_vector")(query, where, limit)
        return hits

    def _inner_call(self, method: str) -> Any:
        found = getattr(self.inner, method, None)
        if found is None:
            from bruno_memory.core.errors import CapabilityMissing

            raise CapabilityMissing(f"tier {self.name!r} has no {method}")
        return found


def deadline(seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """``async with deadline(s)``: ``TimeoutError`` in the body after ``s`` seconds.

    ``None`` means no limit; so does Python 3.10, which has no ``asyncio.timeout``.
    """
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None or seconds is None:
        return contextlib.nullcontext()
    limit: contextlib.AbstractAsyncContextManager[Any] = timeout(seconds)
    return limit


async def stop_tasks(tasks: list[asyncio.Task[None]], timeout: float = 5.0) -> None:
    """Cancel background tasks and wait for them, but never forever.

    A task whose cancellation got lost inside a driver (it happens with nested timeouts)
    is left to finish on its own rather than hang the close.
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    tasks.clear()
