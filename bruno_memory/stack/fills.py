"""Cache fills that never bring back data older than another process's write (leases),
and the settling of shared caches after a write-behind flush."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import cast

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.drops import drops_for
from bruno_memory.core.ops import Fill, Key, WriteOp
from bruno_memory.stack.routing import Routes
from bruno_memory.tiers.base import Leased, Queued, Settling, Tier


async def lease(tier: Tier, target: Key | str) -> str | None:
    """The tier's fill lease on a record or a conversation's window (``Leased``)."""
    return await cast(Leased, tier).lease(target)


def leased(op: Fill, token: str | None) -> Fill:
    """The fill carrying its lease (``None``: the tier takes no leases)."""
    return op if token is None else replace(op, lease=token)


def settle_on_flush(routes: Routes) -> None:
    """Have a write-behind durable tier settle the shared caches after each flush."""
    settlers = [t for t in routes.caches if Capability.SETTLES in t.capabilities]
    if settlers and Capability.QUEUED in routes.durable.capabilities:
        cast(Queued, routes.durable).when_applied(lambda ops: settle(routes, settlers, ops))


async def settle(routes: Routes, settlers: list[Tier], ops: list[WriteOp]) -> None:
    """Writes reached a write-behind durable tier: what another process filled from it
    before then (its read missed them) leaves the shared caches, and the local ones drop
    it too (an LRU with invalidation tells every process)."""
    targets = drops_for(ops)
    raced: dict[Hashable, None] = {}
    for tier in settlers:
        raced.update(dict.fromkeys(await cast(Settling, tier).settle(targets)))
    if raced:
        drops = [targets[t] for t in raced]
        for tier in routes.caches:
            if tier not in settlers:
                await tier.write(drops)
