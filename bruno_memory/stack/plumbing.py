"""The façade's plumbing: opening on first use, closing for good, writes through the
engine (the query cache told), reads through it, and the query cache's read-through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message
from cachetools import LRUCache

from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.core import errors
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.drops import users_of
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import Key, Put, WriteOp
from bruno_memory.stack.engine import Engine
from bruno_memory.stack.minted import Minted
from bruno_memory.stack.recalls import Recalls
from bruno_memory.stack.results import QueryCache
from bruno_memory.tiers.base import ChangeFeed, Tier

log = get_logger(__name__)
V = TypeVar("V")
S = TypeVar("S", bound="Plumbing")
Composer = Callable[[Any, str, str], Awaitable[list[Message]]]
"""Builds ``get_context``'s messages: (memory, user id, conversation id) -> messages."""


@dataclass(frozen=True)
class Conversing:
    """How ``get_context`` answers: the last ``context_messages``, or what ``composer``
    builds (a token-budgeted context); ``session_gap``: seconds of inactivity after which
    ``get_context`` without an id starts a new session (``None``: never); ``lifecycle``:
    how memories are ranked and their recalls counted (the YAML ``lifecycle:``)."""

    context_messages: int = 20
    composer: Composer | None = None
    session_gap: float | None = None
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)


Opener = Callable[[], Awaitable[tuple[Engine, Conversing]]]


class Plumbing:
    """What every part of the façade stands on (``MemoryStack`` documents the arguments)."""

    def __init__(
        self,
        tiers: Sequence[Tier] | Engine | None = None,
        *,
        opener: Opener | None = None,
        context_messages: int = 20,
        composer: Composer | None = None,
        session_gap: float | None = None,
        clock: Callable[[], float] = time.time,
        query_cache: QueryCache | None = None,
        lifecycle: LifecycleConfig | None = None,
    ) -> None:
        if tiers is None and opener is None:
            raise TypeError("MemoryStack needs tiers or an opener; use build_memory()")
        self._engine: Engine | None = None
        self._opener = opener
        self._conversing = Conversing(
            context_messages, composer, session_gap, lifecycle or LifecycleConfig()
        )
        self._recalls: Recalls | None = None
        self._clock = clock
        self._claiming = asyncio.Lock()  # a conversation's first owner is fixed once
        self._owners: LRUCache[str, str] = LRUCache(100_000)  # owners never change but by
        # forget_user (then a claim): this process forgets its own; see _owner
        self._minted = Minted()  # minted ids stored here: no check against the tier
        self._opening = asyncio.Lock()
        self._closed = False
        self.query_cache = query_cache
        self._lineages: LRUCache[str, Any] = LRUCache(100_000)  # conversation -> its
        # branch lineage (``stack.branches``); a lineage never changes once written
        if tiers:
            self._opened(tiers if isinstance(tiers, Engine) else Engine(tiers))

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(map(repr, self.tiers))}])"

    def _live(self) -> Engine | None:
        """The engine of an open stack, at once (``None``: not opened yet, or closed;
        ``_ready`` then opens it or refuses)."""
        return None if self._closed else self._engine

    async def _ready(self) -> Engine:
        if self._closed:
            raise errors.Closed(
                "this memory stack is closed: every call is refused; build a new one "
                "(build_memory) to go on"
            )
        if self._engine is None:
            async with self._opening:
                if self._engine is None:
                    assert self._opener is not None
                    engine, self._conversing = await self._opener()
                    self._opened(engine)
        assert self._engine is not None
        return self._engine

    def _opened(self, engine: Engine) -> None:
        """Use ``engine``; the query cache hears other processes' writes through every tier
        that tells them (an LRU's invalidation)."""
        if self.query_cache is not None:
            for tier in engine.tiers:
                if Capability.CHANGES in tier.capabilities:
                    self.query_cache.follow(cast(ChangeFeed, tier))
        self._engine = engine

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, fastest first (empty until opened)."""
        return self._engine.tiers if self._engine else ()

    async def open(self: S) -> S:
        """Open the tiers now rather than on first use; raises ``Closed`` once closed."""
        await self._ready()
        return self

    async def flush(self) -> None:
        """Wait until every queued write has reached its tier."""
        if self._closed:
            await self._ready()  # raises Closed
        if self._recalls is not None:
            await self._recalls.flush()
        if self._engine is not None:
            await self._engine.flush()

    async def close(self) -> None:
        """Drain queued writes, then release every tier. Closing is final: every later
        call raises ``Closed`` (``async with`` on a closed stack too); closing again does
        nothing."""
        if self._closed:
            return
        if self._recalls is not None:
            try:
                await self._recalls.aclose()
            except errors.BrunoMemoryError as exc:  # counts only: never block a close
                log.warning("recall counts lost on close", error=repr(exc))
        self._closed = True
        if self._engine is not None:
            await self._engine.aclose()

    aclose = close

    async def drop(self) -> None:
        """Erase the namespace from every tier, for good: the SQLite file, the PostgreSQL
        schema, the Redis keys under the prefix, the write-behind queues and journals,
        the vector collections; then close (every later call raises ``Closed``).
        Stop the other processes using the namespace first: their caches are not told."""
        engine = await self._ready()
        self._closed = True
        await engine.drop()

    async def __aenter__(self: S) -> S:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def health(self) -> dict[str, dict[str, Any]]:
        """Per tier: up or down, ping latency, hits and misses, policy metrics."""
        return await (await self._ready()).health()

    def _write(self, ops: list[WriteOp], touched: Sequence[object]) -> Awaitable[None]:
        """Apply a write through the engine. Each layer of the chain (``Audited``,
        ``Redacting``, this) with nothing to do on an open stack hands back the next
        one's awaitable instead of awaiting it: the caller's await then reaches the
        engine's group commit without a coroutine per layer to create, suspend and resume
        (measured: a few microseconds a write, of some 35 under concurrency)."""
        engine = self._live()
        if engine is not None and self.query_cache is None:
            return engine.write(ops, touched)
        return self._write_through(ops, touched)

    async def _write_through(self, ops: list[WriteOp], touched: Sequence[object]) -> None:
        try:
            await (await self._ready()).write(ops, touched)
        finally:
            if self.query_cache is not None:  # after the write: a read racing it is dropped
                for user in users_of(ops, self._owners):
                    self.query_cache.bump(user)

    async def _cached(
        self,
        user_id: str | None,
        key: Hashable,
        read: Callable[[], Awaitable[V]],
        copy: Callable[[V], V],
    ) -> V:
        """``read()``, or its result kept for ``user_id`` in the query cache."""
        cache = self.query_cache
        if cache is None or user_id is None:
            return await read()
        found, held = cache.get(user_id, key)
        if found:
            return copy(held)
        stamp = cache.stamp(user_id)
        value = await read()
        cache.put(user_id, key, stamp, copy(value))
        return value

    def _recalled(self, entries: Sequence[MemoryEntry]) -> None:
        """Count a recall of each entry (batched: ``stack.recalls``)."""
        cfg = self._conversing.lifecycle.recalls
        if not cfg.enabled or not entries:
            return
        if self._recalls is None:
            engine = self._engine
            assert engine is not None

            async def read(keys: list[Key]) -> dict[Key, Any]:
                return dict(await engine.authoritative(keys))

            async def write(out: list[MemoryEntry]) -> None:
                keys = [Key("memory", str(e.id)) for e in out]
                await self._write([Put(k, e) for k, e in zip(keys, out, strict=True)], keys)

            self._recalls = Recalls(read, write, interval=cfg.interval,
                                    max_pending=cfg.max_pending)
        self._recalls.note(entries, self._clock())

    async def _get(self, key: Key, *, fresh: bool = False) -> Any:
        """``key``'s record through the caches (``fresh``: see ``Engine.get``)."""
        return await (await self._ready()).get(key, fresh=fresh)
