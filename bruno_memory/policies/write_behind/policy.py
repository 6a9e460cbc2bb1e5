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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from bruno_memory.config.models import TierConfig, WriteBehindConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import Backpressure, BrunoMemoryError, TierUnavailable
from bruno_memory.core.logs import get_logger
from bruno_memory.core.opcodec import DecodeError, decode_op, encode_op
from bruno_memory.core.ops import (
    MISS,
    ClearHistory,
    Delete,
    Empty,
    Fill,
    FillWindow,
    Key,
    Miss,
    PurgeUser,
    Value,
    WriteOp,
    is_fill,
)
from bruno_memory.core.queries import Query
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Ride
from bruno_memory.core.versions import CLOCK, VersionClock
from bruno_memory.policies.base import PolicyTier, stop_tasks
from bruno_memory.policies.write_behind import overlay
from bruno_memory.policies.write_behind.flusher import Flusher
from bruno_memory.policies.write_behind.journal import DeadLetter, Item, Journal
from bruno_memory.policies.write_behind.journals import create_journal
from bruno_memory.policies.write_behind.pending import Entry, PendingLog
from bruno_memory.tiers.base import Tier, TierContext

R = TypeVar("R")
log = get_logger(__name__)


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
        clock: monotonic seconds; versions: the version clock replayed versions advance.
    """

    added = frozenset({Capability.QUEUED, Capability.CARRIES})

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
        self._flusher = Flusher(inner, self._log, journal, cfg, always_due=mode == "queue",
                                clock=clock)
        self.stats = self._flusher.stats
        self._reserved = 0
        self._writing = 0  # writes between their start and their acknowledgement
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

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
        self._tasks += [asyncio.create_task(self._flusher.run()) for _ in range(self.cfg.flushers)]
        if self.journal is not None:
            self._tasks.append(asyncio.create_task(self._reclaimer()))

    def when_applied(self, callback: Callable[[list[WriteOp]], Awaitable[None]]) -> None:
        """Call ``callback(ops)`` after each batch reached the tier (the stack settles
        shared caches that other processes may have filled from the tier meanwhile)."""
        self._flusher.on_applied = callback
        early, self._flusher.unsettled = self._flusher.unsettled, []
        if early:  # replayed entries that landed before the stack was built settle now
            self._tasks.append(asyncio.create_task(self._settle_early(callback, early)))

    async def _settle_early(
        self, callback: Callable[[list[WriteOp]], Awaitable[None]], ops: list[WriteOp]
    ) -> None:
        try:
            await callback(ops)
        except BrunoMemoryError as exc:
            log.warning("caches not settled after the replay", tier=self.name, error=str(exc))

    async def flush(self) -> None:
        """Wait until every write queued before this call is applied."""
        await self._flusher.drain_through(self._log.last_seq, self.cfg.drain_timeout)
        await super().flush()

    async def aclose(self) -> None:
        """Refuse new writes, drain the queue, then close; with a journal, what cannot be
        applied stays there for the next process."""
        self._closing = True
        lost = 0
        timeout = 0.0 if self._flusher.gave_up else self.cfg.drain_timeout
        try:
            with contextlib.suppress(TimeoutError):
                await self._flusher.wait_for(lambda: self._writing == 0, timeout)
            await self._flusher.drain_through(self._log.last_seq, timeout)
        except TierUnavailable as exc:
            lost = 0 if self.journal else len(self._log)
            log.error("write-behind queue not drained at close", tier=self.name,
                      pending=len(self._log), journaled=self.journal is not None, error=str(exc))
        finally:
            await self._stop()
        if lost:
            raise TierUnavailable(f"{lost} queued writes could not be applied before close "
                                  "and no journal holds them", tier=self.name, op="close")

    async def drop(self) -> None:
        """Erase for good (``Droppable``): refuse new writes, discard the queue (it would
        land in what is dropped), delete the journal (entries, dead letters, liveness
        marks of every writer), then drop the tier. ``aclose`` still closes after."""
        self._closing = True
        await stop_tasks(self._tasks)
        self._log.remove(list(self._log))
        if self.journal is not None:
            await self.journal.drop()
        await super().drop()

    async def _stop(self) -> None:
        await stop_tasks(self._tasks)
        try:
            if self.journal is not None:
                await self._flusher.ack([])
                await self.journal.aclose()
        finally:
            await self.inner.aclose()

    # -- writes ---------------------------------------------------------------------

    def carrier(self) -> str | None:
        """The journal's Redis server: writes acknowledged once journaled there carry
        the rides of tiers on it (``tiers.base.Carries``)."""
        if self.journal is None or self.mode != "behind":
            return None
        return self.journal.carrier()

    async def carry(self, ops: Sequence[WriteOp], rides: Sequence[Ride]) -> None:
        await self._written(ops, rides)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self._written(ops, ())

    async def _written(self, ops: Sequence[WriteOp], rides: Sequence[Ride]) -> None:
        if self._closing:
            raise TierUnavailable("closing: no new writes", tier=self.name, op="write")
        queued = list(ops)  # versioned by the stack's engine, the one layer that stamps
        if any(is_fill(op) for op in queued):
            await self._fill([op for op in queued if is_fill(op)])
            queued = [op for op in queued if not is_fill(op)]
            if not queued:
                return
        self._writing += 1
        try:
            await self._write(queued, rides)
        finally:
            self._writing -= 1
            if self._closing:
                await self._flusher.notify()  # close() waits for in-flight writes
        erasing = [op for op in queued if isinstance(op, (Delete, ClearHistory, PurgeUser))]
        if erasing:
            await self._erase(erasing)

    async def _erase(self, erasing: Sequence[WriteOp]) -> None:
        """An erasure is acknowledged once applied: what it removes is then in no queue
        and no journal (applied entries are deleted), and in no dead letter either."""
        if self._log:
            down = self._flusher.down
            if down is not None:
                raise TierUnavailable(
                    f"erasure queued{' and journaled' if self.journal else ''}, not applied: "
                    f"the tier is down ({down}); it lands when the tier is back",
                    tier=self.name, op="erase")
            await self._flusher.drain_through(self._log.last_seq, self.cfg.drain_timeout)

        def covered(data: bytes) -> bool:
            try:
                held = decode_op(data)
            except DecodeError:
                return False
            return any(overlay.erases(op, held) for op in erasing)

        self._flusher.dead = type(self._flusher.dead)(
            (d for d in self._flusher.dead if not covered(d.data)),
            maxlen=self._flusher.dead.maxlen)
        if self.journal is not None:
            await self.journal.erase_dead_letters(covered)

    async def _write(self, ops: list[WriteOp], rides: Sequence[Ride] = ()) -> None:
        down = self._flusher.down
        if self.mode == "queue" and not self._log and down is None:
            try:
                await self.inner.write(ops)
                return
            except TierUnavailable as exc:
                self._flusher.mark_down(exc)
        elif down is not None and self._on_error == "fail":
            raise TierUnavailable(f"not accepting writes while it is down (on_error: fail): "
                                  f"{down}", tier=self.name, op="write")
        items = [encode_op(op) for op in ops] if self.journal is not None else []
        await self._room_for(len(ops))
        await self._accept(ops, items, rides)

    async def _fill(self, fills: list[Fill]) -> None:
        """Cache fills pass straight through, unless a pending write makes them stale."""
        fresh = [f for f in fills if not self._pending_for(f)]
        if fresh:
            await self.inner.write(fresh)

    def _pending_for(self, fill: Fill) -> bool:
        if isinstance(fill, FillWindow):
            return bool(self._log.for_conversation(fill.conversation_id))
        decided, ops = self._log.for_key(fill.key)
        return decided or bool(ops)

    async def _room_for(self, n: int) -> None:
        used = len(self._log) + self._reserved
        if used and used + n > self.cfg.max_pending:
            await self._wait_for_room(n)
        self._reserved += n

    async def _wait_for_room(self, n: int) -> None:
        """The queue is full: reject, or block until ``n`` more ops fit (or it is empty)."""
        def fits() -> bool:
            used = len(self._log) + self._reserved
            return used == 0 or used + n <= self.cfg.max_pending

        if self.cfg.when_full == "reject":
            self.stats.rejected += 1
            raise Backpressure(f"tier {self.name!r}: write-behind queue is full "
                               f"({len(self._log)} of {self.cfg.max_pending} ops pending)")
        try:
            await self._flusher.wait_for(fits, self.cfg.block_timeout)
        except TimeoutError:
            self.stats.rejected += 1
            raise Backpressure(
                f"tier {self.name!r}: write-behind queue stayed full for "
                f"{self.cfg.block_timeout}s ({len(self._log)} ops pending)") from None

    async def _accept(
        self, ops: list[WriteOp], items: list[bytes], rides: Sequence[Ride] = ()
    ) -> None:
        """Journal (when configured), then queue; raises if neither can be done.

        The queueing runs in the journal's committing task, so a caller cancelled while
        its write is being journaled still leaves it queued (it is acknowledged there).
        """
        n = len(ops)
        if self.journal is None:
            self._reserved -= n
            self._enqueue(ops, [None] * n)
            return

        def landed(ids: list[Any] | None) -> None:
            self._reserved -= n
            if ids is not None:
                self._enqueue(ops, ids)

        try:
            await self.journal.append(items, landed, rides)
        except BrunoMemoryError as exc:
            if self._on_journal_down == "reject":
                raise TierUnavailable(f"journal unavailable, write rejected "
                                      f"(journal.on_down: reject): {exc}", tier=self.name,
                                      op="write", cause=exc) from exc
            entries = self._enqueue(ops, [None] * n)
            await self._flusher.drain_through(max(e.seq for e in entries), self.cfg.drain_timeout)

    def _enqueue(self, ops: list[WriteOp], ids: Sequence[Any]) -> list[Entry]:
        now, was_empty = self._clock(), not self._log
        entries = [self._log.add(op, [] if i is None else [i], now)
                   for op, i in zip(ops, ids, strict=True)]
        if was_empty or len(self._log) >= self.cfg.batch_size or self.mode == "queue":
            self._flusher.kick()
        return entries

    async def _replay(self, items: list[Item]) -> None:
        """Queue journal entries left by a dead writer (or by this owner's last run)."""
        for id_, data in items:
            try:
                op = decode_op(data)
            except DecodeError as exc:
                await self._flusher.bury_raw(id_, data, f"undecodable journal entry: {exc}")
                continue
            self._versions.observe(0 if is_fill(op) else op.version)
            self._log.add(op, [id_], self._clock())
        self.stats.replayed += len(items)
        if items:
            self._flusher.kick()

    async def _reclaimer(self) -> None:
        assert self.journal is not None
        while True:
            await asyncio.sleep(self._reclaim_every)
            try:
                await self._replay(await self.journal.reclaim())
            except BrunoMemoryError as exc:
                log.warning("journal reclaim failed", tier=self.name, error=str(exc))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Ops that kept failing, with their errors (journaled ones first)."""
        held = await self.journal.dead_letters(limit) if self.journal else []
        return (held + list(self._flusher.dead))[:limit]

    async def _drain_through(self, seq: int, timeout: float) -> None:
        await self._flusher.drain_through(seq, timeout)

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

    async def query(self, q: Query[R]) -> R:
        """Reads the tier answers from what it holds: queued writes it must see land first."""
        if self._log and q.waits_for(self._log):
            down = self._flusher.down
            if down is not None:  # fail fast: the queue cannot drain while the tier is down
                raise TierUnavailable(
                    f"{len(self._log)} queued writes this read must see cannot land while the "
                    f"tier is down: {down}", tier=self.name, op=type(q).__name__)
            await self._drain_through(self._log.last_seq, self.cfg.drain_timeout)
        return await self.inner.query(q)

    # -- observability --------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        oldest = self._log.oldest()
        mine = {
            "mode": self.mode,
            "queue_depth": len(self._log),
            "oldest_pending_age_s": round(self._clock() - oldest.since, 3) if oldest else 0.0,
            "down": self._flusher.down is not None,
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
