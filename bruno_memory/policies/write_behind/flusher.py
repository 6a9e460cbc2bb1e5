"""The flusher of a write-behind queue: takes due batches from the pending log, applies
them, acknowledges their journal entries, retries what failed and buries what keeps
failing. ``cfg.flushers`` tasks per queue, each applying one batch at a time (the pending
log keeps their batches apart); everything else waits on its notifications."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bruno_memory.config.models import WriteBehindConfig
from bruno_memory.core.errors import BrunoMemoryError, TierUnavailable
from bruno_memory.core.logs import get_logger
from bruno_memory.core.opcodec import encode_op
from bruno_memory.core.ops import WriteOp, coalesce
from bruno_memory.policies.write_behind.flush_stats import FlushStats
from bruno_memory.policies.write_behind.journal import DeadLetter, Journal
from bruno_memory.policies.write_behind.pending import Entry, PendingLog
from bruno_memory.tiers.base import Tier

log = get_logger(__name__)


class Flusher:
    """Applies the pending log to ``tier`` in batches bounded by size and age.

    Args:
        tier: where batches go. log: the pending log. journal: acknowledged on apply.
        cfg: batch, interval, backoff and dead-letter settings.
        always_due: flush as soon as anything is pending (the ``queue`` mode).
        clock: monotonic seconds.
    """

    def __init__(self, tier: Tier, log_: PendingLog, journal: Journal | None,
                 cfg: WriteBehindConfig, *, always_due: bool, clock: Callable[[], float]) -> None:
        self.tier, self.log, self.journal, self.cfg = tier, log_, journal, cfg
        self.always_due, self.clock = always_due, clock
        self.stats = FlushStats()
        self.down: TierUnavailable | None = None
        self.gave_up = False
        self._urgent = 0
        self._kick = asyncio.Event()
        self._changed = asyncio.Condition()
        self._backoff = cfg.backoff
        self._unacked: list[Any] = []
        self.dead: deque[DeadLetter] = deque(maxlen=1000)
        self.on_applied: Callable[[list[WriteOp]], Awaitable[None]] | None = None
        self.unsettled: list[WriteOp] = []  # applied before anyone listened (``on_applied``)

    def kick(self) -> None:
        """Something changed that may make a batch due."""
        self._kick.set()

    @contextlib.contextmanager
    def urgent(self) -> Iterator[None]:
        """While inside, every pending op is due at once (someone waits for the queue)."""
        self._urgent += 1
        self._kick.set()
        try:
            yield
        finally:
            self._urgent -= 1

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait (urgently) until ``predicate()`` holds; raises ``TimeoutError``."""
        with self.urgent():
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def drain_through(self, seq: int, timeout: float) -> None:
        """Wait until no entry numbered ``seq`` or lower is pending."""
        def drained() -> bool:
            oldest = self.log.oldest()
            return oldest is None or oldest.seq > seq

        if drained():
            return
        try:
            await self.wait_for(drained, timeout)
        except TimeoutError:
            self.gave_up = True
            raise TierUnavailable(
                f"{len(self.log)} writes still queued after {timeout}s: "
                f"{self.down or 'flush too slow'}", tier=self.tier.name, op="flush") from None

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """One flushing task (``cfg.flushers`` of them run)."""
        while True:
            await self._due()
            entries = self.log.take(self.cfg.batch_size)
            if not entries:  # what is due waits for a batch in flight: wait for it
                self._kick.clear()
                await self._kick.wait()
            elif not await self._apply(entries):
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, self.cfg.max_backoff)

    async def _due(self) -> None:
        """Return once a batch is due: full, old enough, or someone waits."""
        while True:
            oldest = self.log.oldest_waiting()
            if oldest is not None and (
                self._urgent or self.always_due or self.log.waiting() >= self.cfg.batch_size
            ):
                return
            wait = None if oldest is None else oldest.since + self.cfg.interval - self.clock()
            if wait is not None and wait <= 0:
                return
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)

    async def _apply(self, entries: list[Entry]) -> bool:
        """Apply one batch; ``False`` if something is left to retry after a pause."""
        started = self.clock()
        try:
            await self.tier.write(coalesce([e.op for e in entries]))
        except TierUnavailable as exc:
            self.log.release(entries)
            self.mark_down(exc)
            await self.notify()
            return False
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.log.release(entries)
                raise
            return await self._isolate(entries)
        self._up()
        await self._done(entries, started)
        return True

    async def _isolate(self, entries: list[Entry]) -> bool:
        """A batch failed for a reason retrying will not fix: apply its ops one by one
        (they stay in flight, so no other flusher takes them meanwhile)."""
        clean = True
        try:
            for at, e in enumerate(entries):
                started = self.clock()
                try:
                    await self.tier.write([e.op])
                except TierUnavailable as exc:
                    self.log.release(entries[at:])
                    self.mark_down(exc)
                    clean = False
                    break
                except Exception as exc:
                    e.attempts += 1
                    self.stats.failures += 1
                    if e.attempts >= self.cfg.max_attempts:
                        await self._bury(e, exc)
                    else:
                        self.log.release([e])
                        clean = False
                    continue
                await self._done([e], started)
        finally:
            self.log.release(entries)  # what is neither applied nor buried (a cancel)
        await self.notify()
        return clean

    async def _done(self, entries: list[Entry], started: float) -> None:
        now = self.clock()
        self.log.remove(entries)
        self.stats.flushed(len(entries), now - started, [now - e.since for e in entries])
        await self.ack([i for e in entries for i in e.ids])
        if self.on_applied is None:  # no stack listens yet (a replay at open): keep them
            self.unsettled += [e.op for e in entries]
        else:
            try:
                await self.on_applied([e.op for e in entries])
            except BrunoMemoryError as exc:  # caches settle by TTL then
                log.warning("caches not settled after a flush", tier=self.tier.name,
                            error=str(exc))
        await self.notify()

    async def ack(self, ids: list[Any]) -> None:
        """Acknowledge applied journal entries (and any whose ack failed before)."""
        if self.journal is None or not (ids or self._unacked):
            return
        ids, self._unacked = self._unacked + ids, []
        try:
            await self.journal.ack(ids)
        except BrunoMemoryError as exc:  # applied anyway: a replay is idempotent
            self._unacked = ids
            log.warning("journal ack failed; will retry", tier=self.tier.name, error=str(exc))

    # -- dead letters ---------------------------------------------------------------

    async def _bury(self, e: Entry, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.error("write dead-lettered", tier=self.tier.name, op=type(e.op).__name__,
                  error=error, attempts=e.attempts)
        self.log.remove([e])
        self.stats.dead_letters += 1
        data = encode_op(e.op)
        if not e.ids:
            self.dead.append(DeadLetter(None, data, error))
            return
        first, *rest = e.ids
        self._unacked += rest  # merged into the buried op: nothing more to apply
        await self.bury_raw(first, data, error)

    async def bury_raw(self, id_: Any, data: bytes, error: str) -> None:
        """Move one journal entry to the dead letters (kept in memory if that fails)."""
        try:
            assert self.journal is not None
            await self.journal.dead_letter(id_, data, error)
        except BrunoMemoryError as exc:
            log.error("dead letter not journaled", tier=self.tier.name, error=str(exc))
            self.dead.append(DeadLetter(id_, data, error))

    # -- state ----------------------------------------------------------------------

    def mark_down(self, exc: TierUnavailable) -> None:
        if self.down is None:
            log.warning("tier unavailable; writes stay queued", tier=self.tier.name,
                        error=str(exc))
        self.down = exc
        self.stats.failures += 1

    def _up(self) -> None:
        if self.down is not None:
            log.info("tier back; queue draining", tier=self.tier.name, pending=len(self.log))
        self.down, self._backoff, self.gave_up = None, self.cfg.backoff, False

    async def notify(self) -> None:
        """Wake everyone waiting on the queue, the other flushers too, to look again."""
        self._kick.set()
        async with self._changed:
            self._changed.notify_all()
