"""Caches cleared when a shared cache's server restarted.

A Redis that comes back from a restart holds either nothing or its old data (AOF, RDB):
in the second case, values older than the writes other processes committed while it was
away, and nobody may remember them (the writer closed, or was killed). Every process
watches the server's epoch (``ServerEpoch``: Redis's ``run_id``); when it changes, or
when the server answers again after a look found it unreachable (a network cut: other
processes' writes may have skipped it), the process clears that cache and the caches
above it (they may have read from it since), and fills racing the clear are dropped (a
generation bump). Staleness after an outage is bounded by ``every`` (1 s) plus one clear.
"""

from __future__ import annotations

import asyncio
from typing import cast

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import TierError
from bruno_memory.core.generations import Generations
from bruno_memory.core.logs import get_logger
from bruno_memory.core.queries import ServerEpoch
from bruno_memory.stack.routing import Routes
from bruno_memory.tiers.base import Clearable

log = get_logger(__name__)


STOP_TIMEOUT = 5.0
"""Seconds ``stop`` waits for the watch task to end."""


class EpochWatch:
    """Watches the epoch of every cache that tells one (``Capability.EPOCH``).

    Args:
        routes: the stack's tiers by role.
        generations: the engine's write generations (bumped so racing fills are dropped).
        every: seconds between looks.
    """

    def __init__(self, routes: Routes, generations: Generations, every: float = 1.0) -> None:
        self.routes, self.generations, self.every = routes, generations, every
        self.watched = [t for t in routes.caches if Capability.EPOCH in t.capabilities]
        self.seen: dict[str, str] = {}
        self.lost: set[str] = set()  # unreachable at the last look
        self.cleared = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Look every ``every`` seconds, from now on (needs a running event loop)."""
        if self.watched and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:  # never forever: a cancellation lost inside a driver
            task.cancel()    # (nested timeouts) leaves the task to end on its own
            await asyncio.wait([task], timeout=STOP_TIMEOUT)

    async def check(self) -> list[str]:
        """Look once: the names of the watched tiers found restarted (caches cleared)."""
        restarted = []
        for tier in self.watched:
            try:
                epoch = await tier.query(ServerEpoch())
            except TierError as exc:  # down, without a fallback: the next look sees it
                log.debug("epoch not read", tier=tier.name, error=str(exc))
                epoch = None
            if epoch is None:  # unreachable (or a fallback's degraded answer)
                self.lost.add(tier.name)
                continue
            before, self.seen[tier.name] = self.seen.get(tier.name), epoch
            if (before is not None and before != epoch) or tier.name in self.lost:
                restarted.append(tier.name)  # restarted, or cut off: writes may have missed it
            self.lost.discard(tier.name)
        if restarted:
            await self._clear(restarted)
        return restarted

    async def _clear(self, restarted: list[str]) -> None:
        self.generations.bump(Generations.ALL)  # a fill that read before the clear is dropped
        for tier in self.routes.caches:
            if Capability.CLEAR not in tier.capabilities:
                continue
            try:
                await cast(Clearable, tier).clear()
            except TierError as exc:
                log.warning("cache not cleared after a restart below it", tier=tier.name,
                            error=str(exc))
        self.cleared += 1
        log.warning("a shared cache's server restarted: caches cleared", restarted=restarted)

    async def _run(self) -> None:
        while True:  # the first look at once: the epoch the caches were filled under
            try:
                await self.check()
            except Exception as exc:  # never let the watch die: it is what bounds staleness
                log.warning("epoch watch failed", error=str(exc))
            await asyncio.sleep(self.every)
