"""A policy is a tier that wraps a tier: everything it does not change goes through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import CapabilityMissing
from bruno_memory.core.ops import Empty, Key, Miss, Value, WriteOp
from bruno_memory.core.queries import Query
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Ride
from bruno_memory.tiers.base import (
    ChangeFeed,
    Clearable,
    Droppable,
    Leased,
    Queued,
    Rides,
    Settling,
    Tier,
    Users,
    Windowed,
)

R = TypeVar("R")
BYPASSES = frozenset({Capability.RIDES, Capability.CARRIES})
"""Abilities writing by another path than ``write``: a policy changing writes (sealing
them, injecting faults) would be bypassed, so they are not forwarded unless added."""


class PolicyTier:
    """Forwards every call to ``inner``; subclasses override what their policy changes.

    Reads beyond ``get``/``window`` are queries (``query``), so a policy that guards or
    delays reads overrides that one method. Optional abilities are forwarded when the
    inner tier declares them in ``capabilities``; ``added`` lists those a policy brings.
    Abilities writing by another path than ``write`` (``BYPASSES``) pass only where a
    policy says so.
    """

    added: frozenset[Capability] = frozenset()

    def __init__(self, inner: Tier) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.config = inner.config
        self.capabilities: frozenset[Capability] = (inner.capabilities - BYPASSES) | self.added

    @property
    def innermost(self) -> Tier:
        """The tier under every policy."""
        inner = self.inner
        return inner.innermost if isinstance(inner, PolicyTier) else inner

    def _settings(self) -> str:
        return ""

    def __repr__(self) -> str:
        settings = self._settings()
        return f"{type(self).__name__}({self.inner!r}{', ' + settings if settings else ''})"

    def _able(self, cap: Capability) -> Any:
        """The inner tier, if it declares ``cap``."""
        if cap not in self.inner.capabilities:
            raise CapabilityMissing(f"tier {self.name!r} has no {cap.value} ability")
        return self.inner

    async def open(self) -> None:
        await self.inner.open()

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def flush(self) -> None:
        """Drain queued writes of this tier and of the policies inside it."""
        await self.inner.flush()

    def metrics(self) -> dict[str, Any]:
        return dict(self.inner.metrics())

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        return await self.inner.get(keys)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self.inner.write(ops)

    async def query(self, q: Query[R]) -> R:
        return await self.inner.query(q)

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        inner = cast(Windowed, self._able(Capability.WINDOWS))
        return await inner.window(conversation_id, limit)

    async def clear(self) -> Any:
        return await cast(Clearable, self._able(Capability.CLEAR)).clear()

    async def drop(self) -> None:
        await cast(Droppable, self._able(Capability.DROP)).drop()

    async def lease(self, target: Key | str) -> str | None:
        return await cast(Leased, self._able(Capability.LEASES)).lease(target)

    async def settle(self, targets: Iterable[Hashable]) -> list[Hashable]:
        return await cast(Settling, self._able(Capability.SETTLES)).settle(targets)

    def ride(self, ops: Sequence[WriteOp]) -> Ride | None:
        return cast(Rides, self._able(Capability.RIDES)).ride(ops)

    async def rode(self, ops: Sequence[WriteOp], ride: Ride) -> None:
        await cast(Rides, self._able(Capability.RIDES)).rode(ops, ride)

    def when_applied(self, callback: Callable[[list[WriteOp]], Awaitable[None]]) -> None:
        cast(Queued, self._able(Capability.QUEUED)).when_applied(callback)

    def follow(self, listener: Callable[[Users], None]) -> None:
        cast(ChangeFeed, self._able(Capability.CHANGES)).follow(listener)

    def in_sync(self) -> bool:
        return cast(ChangeFeed, self._able(Capability.CHANGES)).in_sync()


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
