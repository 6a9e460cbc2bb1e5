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
    """Have a write-behind durable tier settle the caches after each flush."""
    if routes.caches and Capability.QUEUED in routes.durable.capabilities:
        settlers = [t for t in routes.caches if Capability.SETTLES in t.capabilities]
        cast(Queued, routes.durable).when_applied(lambda ops: settle(routes, settlers, ops))


async def settle(routes: Routes, settlers: list[Tier], ops: list[WriteOp]) -> None:
    """Writes reached a write-behind durable tier: what a cache filled from it before then
    (the read missed them: another process's, or a replayed dead writer's) must go.

    A shared cache that settles (Redis) says which of its fills raced; without one, every
    target is dropped. The local caches drop the same (an LRU with invalidation tells every
    process, so their fills from before the flush go too).
    """
    targets = drops_for(ops)
    if settlers:
        raced: dict[Hashable, None] = {}
        for tier in settlers:
            raced.update(dict.fromkeys(await cast(Settling, tier).settle(targets)))
        drops = [targets[t] for t in raced]
    else:
        drops = list(targets.values())
    if drops:
        for tier in routes.caches:
            if tier not in settlers:
                await tier.write(drops)
