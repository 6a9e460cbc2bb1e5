"""Write-behind: writes are queued, coalesced and flushed to the tier in batches.

A write is acknowledged once queued, or, with a journal, once journaled (it then
survives a crash: the next process replays it). The queue is bounded (``block`` or
``reject`` with ``Backpressure``); batches are bounded by size and by the time their
oldest op waited. Reads see pending writes (read-your-writes). An op failing for a
reason other than unavailability is retried alone and dead-lettered after
``max_attempts``, without holding back other keys.

In ``queue`` mode (``on_error: queue`` on a write-through tier) writes go straight to
the tier while it is up and queue only while it is down or while a backlog drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import structlog
from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.config.models import TierConfig, WriteBehindConfig
from bruno_memory.errors import Backpressure, BrunoMemoryError, TierUnavailable
from bruno_memory.opcodec import DecodeError, decode_op, encode_op
from bruno_memory.ops import (
    MISS,
    ClearHistory,
    Empty,
    FillWindow,
    Key,
    Miss,
    PurgeUser,
    Value,
    WriteOp,
    coalesce,
)
from bruno_memory.policies import overlay
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.flush_stats import FlushStats
from bruno_memory.policies.journal import DeadLetter, Item, Journal, create_journal
from bruno_memory.policies.pending import Entry, PendingLog
from bruno_memory.records import MessageRecord
from bruno_memory.tiers.base import Scored, Tier, TierContext
from bruno_memory.versions import CLOCK, VersionClock, stamp

log = structlog.get_logger(__name__)


class WriteBehind(PolicyTier):
    """Queues writes in front of ``inner`` and flushes them in batches.

    Args:
        inner: the tier written to.
        cfg: queue, batch and backpressure settings.
        journal: where ops are journaled before they are acknowledged (optional).
        mode: ``behind`` (always queue) or ``queue`` (queue only while the tier is down).
        on_error: ``fail`` refuses new writes while the tier is down (``behind`` mode).
        on_journal_down: ``reject`` a write, or ``write-through`` (acknowledge once applied).
        reclaim_every: seconds between looks for entries of dead writers in the journal.
        clock: monotonic seconds; versions: the version clock.
    """

    def __init__(
        self, inner: Tier, cfg: WriteBehindConfig, journal: Journal | None = None, *,
        mode: Literal["behind", "queue"] = "behind", on_error: str = "queue",
        on_journal_down: str = "reject", reclaim_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic, versions: VersionClock = CLOCK,
    ) -> None:
        super().__init__(inner)
        self.cfg, self.journal, self.mode = cfg, journal, mode
        self._on_error, self._on_journal_down = on_error, on_journal_down
        self._reclaim_every, self._clock, self._versions = reclaim_every, clock, versions
        self._log = PendingLog()
        self._reserved = 0
        self._urgent = 0
        self._kick = asyncio.Event()
        self._changed = asyncio.Condition()
        self._down: TierUnavailable | None = None
        self._gave_up = False
        self._backoff = cfg.backoff
        self._unacked: list[Any] = []
        self._dead: deque[DeadLetter] = deque(maxlen=1000)
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = FlushStats()

    def _settings(self) -> str:
        c = self.cfg
        journal = f", journal={self.journal!r}" if self.journal else ""
        return (f"mode={self.mode!r}, batch_size={c.batch_size}, interval={c.interval}, "
                f"max_pending={c.max_pending}, when_full={c.when_full!r}{journal}")

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        await self.inner.open()
        try:
            if self.journal is not None:
                await self._replay(await self.journal.open())
        except BaseException:
            await self.inner.aclose()
            raise
        self._tasks.append(asyncio.create_task(self._flusher()))
        if self.journal is not None:
            self._tasks.append(asyncio.create_task(self._reclaimer()))

    async def flush(self) -> None:
        """Wait until every write queued before this call is applied."""
        await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        await super().flush()

    async def aclose(self) -> None:
        """Drain the queue, then close; with a journal, what cannot be applied stays there."""
        lost = 0
        try:
            timeout = 0.0 if self._gave_up else self.cfg.drain_timeout
            await self._drain_through(self._log.last_seq, timeout)
        except TierUnavailable as exc:
            lost = 0 if self.journal else len(self._log)
            log.error("write-behind queue not drained at close", tier=self.name,
                      pending=len(self._log), journaled=self.journal is not None, error=str(exc))
        finally:
            await self._stop()
        if lost:
            raise TierUnavailable(f"{lost} queued writes could not be applied before close "
                                  "and no journal holds them", tier=self.name, op="close")

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            if self.journal is not None:
                with contextlib.suppress(BrunoMemoryError):
                    await self.journal.ack(self._unacked)
                await self.journal.aclose()
        finally:
            await self.inner.aclose()

    # -- writes ---------------------------------------------------------------------

    async def write(self, ops: Sequence[WriteOp]) -> None:
        ops = stamp(ops, self._versions)
        fills = [op for op in ops if isinstance(op, FillWindow)]
        queued: list[WriteOp] = [op for op in ops if not isinstance(op, FillWindow)]
        if fills:
            await self._fill(fills)
        if not queued:
            return
        if self.mode == "queue" and not self._log and self._down is None:
            try:
                await self.inner.write(queued)
                return
            except TierUnavailable as exc:
                self._mark_down(exc)
        elif self._down is not None and self._on_error == "fail":
            raise TierUnavailable(f"not accepting writes while it is down (on_error: fail): "
                                  f"{self._down}", tier=self.name, op="write")
        await self._room_for(len(queued))
        await asyncio.shield(self._accept(queued))

    async def _fill(self, fills: list[FillWindow]) -> None:
        """Cache fills pass straight through, unless a pending write makes them stale."""
        fresh = [f for f in fills if not self._log.for_conversation(f.conversation_id)]
        if fresh:
            await self.inner.write(fresh)

    async def _room_for(self, n: int) -> None:
        def fits() -> bool:
            used = len(self._log) + self._reserved
            return used == 0 or used + n <= self.cfg.max_pending

        if not fits():
            if self.cfg.when_full == "reject":
                self.stats.rejected += 1
                raise Backpressure(f"tier {self.name!r}: write-behind queue is full "
                                   f"({len(self._log)} of {self.cfg.max_pending} ops pending)")
            self._urgent += 1  # a full queue is a due batch, whatever the interval
            self._kick.set()
            try:
                async with self._changed:
                    await asyncio.wait_for(self._changed.wait_for(fits), self.cfg.block_timeout)
            except TimeoutError:
                self.stats.rejected += 1
                raise Backpressure(
                    f"tier {self.name!r}: write-behind queue stayed full for "
                    f"{self.cfg.block_timeout}s ({len(self._log)} ops pending)") from None
            finally:
                self._urgent -= 1
        self._reserved += n

    async def _accept(self, ops: list[WriteOp]) -> None:
        """Journal (when configured), then queue; raises if neither can be done."""
        try:
            ids = await self._journal_append(ops)
        except BrunoMemoryError as exc:
            self._reserved -= len(ops)
            if self._on_journal_down == "reject":
                raise TierUnavailable(f"journal unavailable, write rejected "
                                      f"(journal.on_down: reject): {exc}", tier=self.name,
                                      op="write", cause=exc) from exc
            entries = self._enqueue(ops, [None] * len(ops))
            await self._drain_through(max(e.seq for e in entries), self.cfg.drain_timeout)
            return
        self._reserved -= len(ops)
        self._enqueue(ops, ids)

    async def _journal_append(self, ops: list[WriteOp]) -> list[Any]:
        if self.journal is None:
            return [None] * len(ops)
        return await self.journal.append([encode_op(op) for op in ops])

    def _enqueue(self, ops: list[WriteOp], ids: Sequence[Any]) -> list[Entry]:
        now, was_empty = self._clock(), not self._log
        entries = [self._log.add(op, [] if i is None else [i], now)
                   for op, i in zip(ops, ids, strict=True)]
        if was_empty or len(self._log) >= self.cfg.batch_size or self.mode == "queue":
            self._kick.set()
        return entries

    async def _replay(self, items: list[Item]) -> None:
        """Queue journal entries left by a dead writer (or by this owner's last run)."""
        for id_, data in items:
            try:
                op = decode_op(data)
            except DecodeError as exc:
                await self._bury_raw(id_, data, f"undecodable journal entry: {exc}")
                continue
            self._versions.observe(getattr(op, "version", 0))
            self._log.add(op, [id_], self._clock())
        self.stats.replayed += len(items)
        if items:
            self._kick.set()

    # -- the flusher ----------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await self._due()
            entries = self._log.take(self.cfg.batch_size)
            if entries and not await self._apply(entries):
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, self.cfg.max_backoff)

    async def _due(self) -> None:
        """Return once a batch is due: full, old enough, or a flush is waiting."""
        while True:
            oldest = self._log.oldest()
            if oldest is not None and (
                self._urgent or self.mode == "queue" or len(self._log) >= self.cfg.batch_size
            ):
                return
            wait = None if oldest is None else oldest.since + self.cfg.interval - self._clock()
            if wait is not None and wait <= 0:
                return
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)

    async def _apply(self, entries: list[Entry]) -> bool:
        """Apply one batch; ``False`` if something is left to retry after a pause."""
        started = self._clock()
        try:
            await self.inner.write(coalesce([e.op for e in entries]))
        except TierUnavailable as exc:
            self._log.release(entries)
            self._mark_down(exc)
            await self._notify()
            return False
        except BaseException as exc:
            self._log.release(entries)
            if not isinstance(exc, Exception):
                raise
            return await self._isolate(entries)
        self._up()
        await self._done(entries, started)
        return True

    async def _isolate(self, entries: list[Entry]) -> bool:
        """A batch failed for a reason retrying will not fix: apply its ops one by one."""
        clean = True
        for at, e in enumerate(entries):
            started = self._clock()
            e.inflight = True
            try:
                await self.inner.write([e.op])
            except TierUnavailable as exc:
                self._log.release(entries[at:])
                self._mark_down(exc)
                clean = False
                break
            except Exception as exc:
                e.inflight = False
                e.attempts += 1
                self.stats.failures += 1
                if e.attempts >= self.cfg.max_attempts:
                    await self._bury(e, exc)
                else:
                    clean = False
                continue
            await self._done([e], started)
        await self._notify()
        return clean

    async def _done(self, entries: list[Entry], started: float) -> None:
        now = self._clock()
        self._log.remove(entries)
        self.stats.flushed(len(entries), now - started, [now - e.since for e in entries])
        ids = [i for e in entries for i in e.ids]
        if self.journal is not None and (ids or self._unacked):
            ids, self._unacked = self._unacked + ids, []
            try:
                await self.journal.ack(ids)
            except BrunoMemoryError as exc:  # applied anyway: a replay is idempotent
                self._unacked = ids
                log.warning("journal ack failed; will retry", tier=self.name, error=str(exc))
        await self._notify()

    async def _bury(self, e: Entry, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.error("write dead-lettered", tier=self.name, op=type(e.op).__name__, error=error,
                  attempts=e.attempts)
        self._log.remove([e])
        self.stats.dead_letters += 1
        data = encode_op(e.op)
        if not e.ids:
            self._dead.append(DeadLetter(None, data, error))
            return
        first, *rest = e.ids
        self._unacked += rest  # merged into the buried op: nothing more to apply
        await self._bury_raw(first, data, error)

    async def _bury_raw(self, id_: Any, data: bytes, error: str) -> None:
        try:
            assert self.journal is not None
            await self.journal.dead_letter(id_, data, error)
        except BrunoMemoryError as exc:
            log.error("dead letter not journaled", tier=self.name, error=str(exc))
            self._dead.append(DeadLetter(id_, data, error))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Ops that kept failing, with their errors (journaled ones first)."""
        held = await self.journal.dead_letters(limit) if self.journal else []
        return (held + list(self._dead))[:limit]

    def _mark_down(self, exc: TierUnavailable) -> None:
        if self._down is None:
            log.warning("tier unavailable; writes stay queued", tier=self.name, error=str(exc))
        self._down = exc
        self.stats.failures += 1

    def _up(self) -> None:
        if self._down is not None:
            log.info("tier back; queue draining", tier=self.name, pending=len(self._log))
        self._down, self._backoff, self._gave_up = None, self.cfg.backoff, False

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _drain_through(self, seq: int, timeout: float) -> None:
        """Wait until no entry numbered ``seq`` or lower is pending."""
        def drained() -> bool:
            oldest = self._log.oldest()
            return oldest is None or oldest.seq > seq

        if drained():
            return
        self._urgent += 1
        self._kick.set()
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(drained), timeout)
        except TimeoutError:
            self._gave_up = True
            raise TierUnavailable(
                f"{len(self._log)} writes still queued after {timeout}s: "
                f"{self._down or 'flush too slow'}", tier=self.name, op="flush") from None
        finally:
            self._urgent -= 1

    async def _reclaimer(self) -> None:
        assert self.journal is not None
        while True:
            await asyncio.sleep(self._reclaim_every)
            try:
                await self._replay(await self.journal.reclaim())
            except BrunoMemoryError as exc:
                log.warning("journal reclaim failed", tier=self.name, error=str(exc))

    # -- reads see pending writes ---------------------------------------------------

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        out: dict[Key, Any] = {}
        ask: list[Key] = []
        later: dict[Key, list[WriteOp]] = {}
        for key in keys:
            decided, ops = self._log.for_key(key)
            if decided:
                found = overlay.value_after(key, MISS, ops)
                if found is not MISS:
                    out[key] = found
                continue
            ask.append(key)
            if ops:
                later[key] = ops
        if ask:
            got = await self.inner.get(ask)
            for key in ask:
                found = overlay.value_after(key, got.get(key, MISS), later.get(key, ()))
                if found is not MISS:
                    out[key] = found
        return out

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        ops = self._log.for_conversation(conversation_id)
        if not ops:
            return await super().window(conversation_id, limit)
        wide = any(isinstance(op, (ClearHistory, PurgeUser)) for op in ops)
        fetch = None if limit is None or wide else limit + len(ops)
        held = await super().window(conversation_id, fetch)
        if held is MISS:
            return MISS
        return overlay.newest(overlay.window_after(conversation_id, held, ops), limit)

    async def search_messages(
        self, query: str, user_id: str | None, limit: int, conversation_id: str | None = None
    ) -> list[Scored[MessageRecord]]:
        if self._log.messages_in_scope(user_id):  # ranking is the engine's: flush first
            await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        return await super().search_messages(query, user_id, limit, conversation_id)

    async def query_memories(self, query: MemoryQuery, now: float) -> list[Scored[MemoryEntry]]:
        if self._log.touches("memory"):
            await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        return await super().query_memories(query, now)

    async def latest_session(self, user_id: str) -> SessionContext | None:
        if self._log.touches("session"):
            await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        return await super().latest_session(user_id)

    async def statistics(self, user_id: str) -> dict[str, Any]:
        if self._log:
            await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        return await super().statistics(user_id)

    # -- observability --------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        oldest = self._log.oldest()
        mine = {
            "mode": self.mode,
            "queue_depth": len(self._log),
            "oldest_pending_age_s": round(self._clock() - oldest.since, 3) if oldest else 0.0,
            "down": self._down is not None,
            "journal": type(self.journal).__name__ if self.journal else None,
            **self.stats.report(),
        }
        return {**super().metrics(), "write_behind": mine}


def wrap(tier: Tier, cfg: TierConfig, context: TierContext) -> WriteBehind:
    """The ``write-behind`` policy (and ``on_error: queue``) from a tier's config."""
    journal = None
    if cfg.journal is not None:
        journal = create_journal(cfg.journal, tier.name, context.namespace, context.base_dir)
    mode: Literal["behind", "queue"] = "behind" if cfg.write == "write-behind" else "queue"
    return WriteBehind(
        tier, cfg.write_behind or WriteBehindConfig(), journal, mode=mode,
        on_error="fail" if cfg.on_error == "fail" else "queue",
        on_journal_down=cfg.journal.on_down if cfg.journal else "reject",
        reclaim_every=cfg.journal.lease if cfg.journal else 10.0, clock=context.clock,
    )
