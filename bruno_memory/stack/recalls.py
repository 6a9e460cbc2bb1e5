"""Access counts of recalled memories, without a write per read: each memory
``retrieve_memories`` returns is noted here, and the counts are written together every
``interval`` seconds, when ``max_pending`` memories wait, on ``flush()`` and on close
(``CHUNK`` memories per write).

A flush reads each memory from the authoritative tier, adds its recalls to
``metadata.access_count`` and moves ``last_accessed`` forward, and writes it back. A memory
written or deleted through this stack while its flush is under way keeps its counts for
the next flush instead, so a recall never undoes a write of this process; against another
process's write the window is one read of the authoritative tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import EMPTY, Key, Value

log = get_logger(__name__)

CHUNK = 500
"""Memories per write of a flush: a cache tier's write has a time budget (a Redis tier's,
0.2 s by default), which one write of 10,000 memories can exceed under load; a skipped
write leaves the cache owing their invalidation."""

Read = Callable[[list[Key]], Awaitable[dict[Key, Value]]]
Write = Callable[[list[MemoryEntry]], Awaitable[None]]


@dataclass
class _Count:
    user_id: str
    recalls: int
    last: float


class Recalls:
    """Batches recall counts (see the module doc)."""

    def __init__(self, read: Read, write: Write, *, interval: float = 30.0,
                 max_pending: int = 10_000) -> None:
        self._read, self._write = read, write
        self.interval, self.max_pending = interval, max_pending
        self._pending: dict[str, _Count] = {}
        self._inflight: set[str] = set()
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.flushed = 0  # memories written so far

    def __len__(self) -> int:
        return len(self._pending)

    def note(self, entries: Iterable[MemoryEntry], now: float) -> None:
        """Count one recall of each entry at ``now``."""
        for e in entries:
            key = str(e.id)
            held = self._pending.get(key)
            if held is None:
                self._pending[key] = _Count(e.user_id, 1, now)
            else:
                held.recalls += 1
                held.last = max(held.last, now)
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._later())

    def written(self, memory_ids: Iterable[str]) -> None:
        """These memories were written or deleted: a flush under way leaves them."""
        self._dirty.update(i for i in memory_ids if i in self._inflight)

    def forget(self, memory_ids: Iterable[str] = (), user_id: str | None = None) -> None:
        """Drop counts of deleted memories (or of a forgotten user's)."""
        ids = set(memory_ids)
        if user_id is not None:
            ids |= {k for k, c in self._pending.items() if c.user_id == user_id}
            ids |= self._inflight  # cannot tell whose: leave them all this round
        for key in ids:
            self._pending.pop(key, None)
        self.written(ids)

    async def _later(self) -> None:
        while self._pending:
            waited = 0.0
            while waited < self.interval and len(self._pending) < self.max_pending:
                await asyncio.sleep(min(0.5, self.interval))
                waited += min(0.5, self.interval)
            try:
                await self.flush()
            except Exception as exc:  # the counts wait for the next round
                log.warning("recall counts not written", error=repr(exc))
                await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        """Write the pending counts now, ``CHUNK`` memories per write."""
        async with self._lock:
            taken, self._pending = self._pending, {}
            if not taken:
                return
            self._inflight, self._dirty = set(taken), set()
            left = dict(taken)  # counts neither written nor handed back yet
            try:
                found = await self._read([Key("memory", k) for k in taken])
                out: list[MemoryEntry] = []
                for key, count in taken.items():
                    value = found.get(Key("memory", key), EMPTY)
                    if isinstance(value, MemoryEntry):
                        out.append(_recalled(value, count))
                    else:  # deleted meanwhile: nothing to count on
                        del left[key]
                for at in range(0, len(out), CHUNK):
                    part = []
                    for e in out[at : at + CHUNK]:
                        key = str(e.id)
                        if key in self._dirty:  # written since the read: counts wait
                            self._requeue(key, left.pop(key))
                        else:
                            part.append(e)
                    if part:
                        await self._write(part)
                        self.flushed += len(part)
                    for e in part:
                        del left[str(e.id)]
            except BaseException:
                for key, count in left.items():
                    self._requeue(key, count)
                raise
            finally:
                self._inflight, self._dirty = set(), set()

    def _requeue(self, key: str, count: _Count) -> None:
        held = self._pending.get(key)
        if held is None:
            self._pending[key] = count
        else:
            held.recalls += count.recalls
            held.last = max(held.last, count.last)

    async def aclose(self) -> None:
        """Stop the timer and write what is pending."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()


def _recalled(e: MemoryEntry, count: _Count) -> MemoryEntry:
    """``e`` with the recalls added (shallow copies: ``e`` itself is left as it was)."""
    md = e.metadata
    update: dict[str, object] = {
        "metadata": md.model_copy(update={"access_count": md.access_count + count.recalls})
    }
    last = datetime.fromtimestamp(count.last, timezone.utc)
    before = e.last_accessed
    aware = before if before.tzinfo is not None else before.replace(tzinfo=timezone.utc)
    if last > aware:
        update["last_accessed"] = last if before.tzinfo is not None else last.replace(tzinfo=None)
    return e.model_copy(update=update)
