"""Holding a cross-process lease for a maintenance run (the leases: ``drivers.lease``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from bruno_memory.core.errors import BrunoMemoryError

__all__ = ["Lease", "LeaseHeld", "held"]


class LeaseHeld(BrunoMemoryError):
    """Another process holds the lease (a maintenance run is already going)."""


class Lease(Protocol):
    """A lease one process holds at a time, freed if its holder dies."""

    name: str
    ttl: float

    async def acquire(self) -> bool: ...
    async def renew(self) -> bool: ...
    async def release(self) -> None: ...


@contextlib.asynccontextmanager
async def held(lease: Lease) -> AsyncIterator[None]:
    """Hold ``lease`` for the block (renewed every ``ttl / 3``); ``LeaseHeld`` if taken."""
    if not await lease.acquire():
        raise LeaseHeld(
            f"lease {lease.name!r} is held by another maintenance run: wait for it to finish "
            f"(a holder that died frees it within {lease.ttl:g}s)"
        )

    async def keep() -> None:
        while True:
            await asyncio.sleep(lease.ttl / 3)
            if not await lease.renew():
                return

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await lease.release()
