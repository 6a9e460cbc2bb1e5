"""Group commit: concurrent writes to one tier applied as one batch (the SQL tiers' transactions,
the Redis tier's pipelines).

A write to an idle tier is applied at once by its caller (the leader), unless the last
batch had many callers: then it waits one loop turn, in the queue, so the callers woken
with it (by another tier's batch, as a stack's writes go down its tiers together) join
it instead of leaving it to lead alone and forming a batch behind it. Writes arriving
while a batch is applied queue up; when it commits, one committer task takes everything
queued, applies it as one batch (one transaction, in the tier's ``apply``) and
acknowledges every caller of the batch; what arrived meanwhile is the next batch, until
the queue is empty and the tier idle again. Before it looks at an empty queue the
committer lets the event loop run once, so callers it just acknowledged, writing again
right away, join its next batch instead of one of them leading alone and the rest waiting
behind it. Nothing waits on a timer, and one batch is applied at a time.

``pipelined`` (a tier whose round trip leaves the event loop free: a server's): once a
batch has committed, the next one is sent before its callers are answered, so their work
until their next write overlaps with its round trip instead of alternating with it; the
callers are then taken half at a time, so two batches take turns (one on the wire while
the other's callers run).

- A failed batch is applied again one caller at a time, so a bad write fails only its
  own caller (with its own error); an unavailable tier (``TierUnavailable``) fails the
  whole batch at once instead of trying each caller against it.
- Items are applied in arrival order, one batch after the other: writes to one key land
  in the order they were submitted.
- A caller cancelled while it waits leaves everyone else's writes alone: its item is
  dropped if its batch has not started, and may still land if it has. When every caller
  of the batch in flight is cancelled, the batch is cancelled too (the driver stops the
  statement and the transaction rolls back), and the last of them returns once it has
  stopped, as a lone write cancelled without group commit would.
- ``aclose`` stops taking writes, then waits for the queue to drain.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.logs import get_logger

T = TypeVar("T")
log = get_logger(__name__)

MAX_BATCH = 512
"""Callers per batch at most: bounds one transaction when thousands wait."""


@dataclass(slots=True)
class _Waiting(Generic[T]):
    item: T
    done: asyncio.Future[None]


@dataclass(slots=True)
class GroupCommitStats:
    """Counters, for ``metrics()``: ``batches < writes`` means writes were gathered."""

    writes: int = 0  # items submitted
    batches: int = 0  # batches applied (or tried), isolated retries not counted
    isolated: int = 0  # batches that failed and were applied again one caller at a time
    failed: int = 0  # callers that got an error
    dropped: int = 0  # callers cancelled before their batch started
    largest: int = 0  # callers in the largest batch

    def as_dict(self) -> dict[str, int]:
        return {
            "writes": self.writes,
            "batches": self.batches,
            "isolated": self.isolated,
            "failed": self.failed,
            "dropped": self.dropped,
            "largest": self.largest,
        }


class GroupCommit(Generic[T]):
    """Gathers concurrent ``submit`` calls into batches for ``apply``.

    Args:
        apply: applies a batch of items atomically (all or none), in order; raises on
            failure. Called by one task at a time.
        tier: the tier's name, for errors and logs.
        max_batch: callers per batch at most.
        pipelined: send the next batch before answering the last one's callers (see the
            module notes).
    """

    def __init__(
        self,
        apply: Callable[[Sequence[T]], Awaitable[None]],
        *,
        tier: str,
        max_batch: int = MAX_BATCH,
        pipelined: bool = False,
    ) -> None:
        self._apply = apply
        self.tier = tier
        self.max_batch = max_batch
        self.stats = GroupCommitStats()
        self._queue: deque[_Waiting[T]] = deque()
        self._committer: asyncio.Task[None] | None = None
        self._inflight: tuple[asyncio.Future[None], list[_Waiting[T]]] | None = None
        self._leading = False  # a caller is applying its own item (the tier was idle)
        self._crowded = False  # the last batch had many callers: the next likely has too
        self.pipelined = pipelined
        self._idle = asyncio.Event()  # neither a leader nor a committer is running
        self._idle.set()
        self._closed = False

    def metrics(self) -> dict[str, int]:
        return self.stats.as_dict()

    async def submit(self, item: T) -> None:
        """Queue ``item`` and return once a batch holding it has been applied.

        Raises the error its own application raised (see the module notes), or
        ``TierUnavailable`` once ``aclose`` has begun.
        """
        if self._closed:
            raise TierUnavailable("the tier is closed", tier=self.tier, op="write")
        self.stats.writes += 1
        idle = not self._leading and self._committer is None
        if idle and not self._crowded:
            await self._lead(item)
            return
        waiting = _Waiting(item, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)  # the leader or the committer takes it next
        if idle:  # the callers woken with this one queue behind it before the committer runs
            self._idle.clear()
            self._start_committer()
        try:
            await waiting.done  # a cancelled caller cancels only its own future...
        except asyncio.CancelledError:
            abandoned = self._abandoned()  # ...and its batch, if nobody else waits for it
            if abandoned is not None:
                await asyncio.wait((abandoned,))
            raise

    async def _lead(self, item: T) -> None:
        """The tier is idle: apply ``item`` alone, in the caller's task (no hand-off, and
        cancelling the caller cancels only its own write), then hand what queued up
        meanwhile to a committer."""
        self._leading = True
        self._idle.clear()
        self.stats.batches += 1
        self.stats.largest = max(self.stats.largest, 1)
        try:
            await self._apply([item])
        except Exception:
            self.stats.failed += 1
            raise
        finally:
            self._leading = False
            self._start_committer()

    def _start_committer(self) -> None:
        if self._queue:
            self._committer = asyncio.get_running_loop().create_task(self._commit_all())
        else:
            self._idle.set()

    def _abandoned(self) -> asyncio.Future[None] | None:
        """The batch in flight, cancelled, if all of its callers were cancelled."""
        inflight = self._inflight
        if inflight is None or not all(w.done.cancelled() for w in inflight[1]):
            return None
        inflight[0].cancel()
        return inflight[0]

    async def aclose(self) -> None:
        """Refuse new writes, then return once every queued one has been applied."""
        self._closed = True
        await self._idle.wait()  # a cancelled aclose leaves the drain running

    # -- the committer --------------------------------------------------------------

    async def _commit_all(self) -> None:
        """Apply batches until the queue is empty, then end (a new write starts another)."""
        batch: list[_Waiting[T]] = []
        try:
            sent: tuple[list[_Waiting[T]], asyncio.Future[None]] | None = None
            while True:
                if sent is None:
                    batch = await self._take()
                    if not batch:
                        return
                    sent = batch, self._send(batch)
                batch = sent[0]
                sent = await self._commit(*sent)
        except BaseException as exc:  # cancelled (loop shutdown) or a bug: nobody hangs
            interrupted = TierUnavailable(
                f"write interrupted before it was acknowledged ({type(exc).__name__}); "
                "it may or may not have been applied",
                tier=self.tier,
                op="write",
            )
            for waiting in [*batch, *self._queue]:
                _fail(waiting, interrupted)
            self._queue.clear()
            raise
        finally:
            self._committer = None
            self._idle.set()

    async def _take(self) -> list[_Waiting[T]]:
        """The next batch: what is queued, without callers already cancelled; when
        nothing is, what the callers woken by the last batch queue in one loop turn (none
        after a lone caller's: its next write leads, with no hand-off to this task)."""
        if not self._queue:
            if not self._crowded:
                return []
            await asyncio.sleep(0)  # the woken callers run first (they were scheduled first)
        return self._take_now(0)

    def _take_now(self, landed: int) -> list[_Waiting[T]]:
        """What is queued, without callers already cancelled; with ``pipelined``, half of
        the callers around (queued, and the ``landed`` batch's, about to write again)."""
        batch: list[_Waiting[T]] = []
        queue = self._queue
        most = self.max_batch
        if self.pipelined:
            most = min(most, max(1, -(-(len(queue) + landed) // 2)))
        while queue and len(batch) < most:
            waiting = queue.popleft()
            if waiting.done.done():  # its caller was cancelled: it never reaches the tier
                self.stats.dropped += 1
            else:
                batch.append(waiting)
        return batch

    def _send(self, batch: list[_Waiting[T]]) -> asyncio.Future[None]:
        """Start applying ``batch`` in a task of its own (so its callers can cancel it
        together)."""
        stats = self.stats
        stats.batches += 1
        stats.largest = max(stats.largest, len(batch))
        self._crowded = len(batch) > 1
        task = asyncio.ensure_future(self._apply([w.item for w in batch]))
        self._inflight = (task, batch)
        return task

    async def _run(
        self, batch: list[_Waiting[T]], task: asyncio.Future[None] | None = None
    ) -> BaseException | None:
        """Wait for ``batch`` (started by ``_send`` unless ``task``); what it raised,
        ``CancelledError`` if its callers cancelled it, ``None`` once applied."""
        if task is None:
            task = asyncio.ensure_future(self._apply([w.item for w in batch]))
            self._inflight = (task, batch)
        try:
            await asyncio.wait((task,))
        except BaseException:  # the committer itself was cancelled: so is the batch
            task.cancel()
            raise
        finally:
            self._inflight = None
        return asyncio.CancelledError() if task.cancelled() else task.exception()

    async def _commit(
        self, batch: list[_Waiting[T]], task: asyncio.Future[None]
    ) -> tuple[list[_Waiting[T]], asyncio.Future[None]] | None:
        """Wait for ``batch`` and answer its callers; with ``pipelined``, the next batch
        is sent first (the callers' next writes then overlap with its round trip), and
        returned with its task."""
        stats = self.stats
        exc = await self._run(batch, task)
        if exc is None:
            after = self._take_now(len(batch)) if self.pipelined else []
            sent = (after, self._send(after)) if after else None
            for waiting in batch:
                _succeed(waiting)
            return sent
        if isinstance(exc, asyncio.CancelledError):  # every caller gave up on it
            stats.dropped += len(batch)
        elif len(batch) == 1 or isinstance(exc, TierUnavailable):
            for waiting in batch:
                self._failed(waiting, exc)
        else:
            await self._isolate(batch, exc)
        return None

    async def _isolate(self, batch: list[_Waiting[T]], exc: BaseException) -> None:
        """The batch failed: apply each caller's item alone, so only a bad one fails."""
        self.stats.isolated += 1
        log.info(
            "group commit failed; applying its writes one by one",
            tier=self.tier,
            writes=len(batch),
            error=type(exc).__name__,
        )
        for at, waiting in enumerate(batch):
            if waiting.done.done():  # cancelled meanwhile: never applied
                self.stats.dropped += 1
                continue
            own = await self._run([waiting])
            if own is None:
                _succeed(waiting)
            elif isinstance(own, TierUnavailable):  # no point trying the rest against it
                for rest in batch[at:]:
                    self._failed(rest, own)
                return
            elif not isinstance(own, asyncio.CancelledError):
                self._failed(waiting, own)

    def _failed(self, waiting: _Waiting[T], exc: BaseException) -> None:
        self.stats.failed += 1
        _fail(waiting, exc)


def _succeed(waiting: _Waiting[Any]) -> None:
    if not waiting.done.done():  # a cancelled caller: its write landed anyway
        waiting.done.set_result(None)


def _fail(waiting: _Waiting[Any], exc: BaseException) -> None:
    if not waiting.done.done():
        waiting.done.set_exception(exc)
