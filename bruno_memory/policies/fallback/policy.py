"""Fallback: retries, a circuit breaker and single flight around one tier.

Only ``TierUnavailable`` is retried (exponential backoff with jitter, one time budget per
call, and per ``BUDGET_OPS`` ops of a bigger write); cancellation and every other error
pass straight through. While the circuit is open, reads of a cache skip it (a miss), and
writes follow ``on_error``: ``fail`` raises, ``skip`` (caches) drops the write and owes
the cache an invalidation, ``queue`` raises so the queue around this policy journals the
write and replays it on recovery.

A cache that missed writes is never trusted blindly: before it serves again, what it
missed is invalidated (``clear()`` when the tier has one and a lot was missed), and so
it is when the stack closes, for the other processes sharing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from bruno_memory.config.models import BreakerConfig, RetryConfig, TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.deadline import deadline
from bruno_memory.core.drops import Owed
from bruno_memory.core.errors import (
    BrunoMemoryConfigError,
    CircuitOpen,
    TierError,
    TierUnavailable,
)
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import MISS, Empty, Key, Miss, Value, WriteOp
from bruno_memory.core.queries import Query
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Ride
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.fallback.breaker import Breaker, State
from bruno_memory.policies.fallback.single_flight import SingleFlight
from bruno_memory.tiers.base import Tier, TierContext

T = TypeVar("T")
R = TypeVar("R")
log = get_logger(__name__)
_RAISE: Any = object()  # ``_read``'s miss: re-raise for the caller to degrade
REOPEN_EVERY = 1.0  # seconds between tries to open a tier that was down at open (no breaker)
BUDGET_OPS = 500
"""Ops of a write that ``retry.budget`` is for: a bigger write (a bulk import, a big
coalesced batch, a recall flush) gets one budget per this many ops, so its size alone
never makes it miss the budget and fail, or leave a cache owing all of it."""


def _budgets(ops: int) -> int:
    """Time budgets for a write of ``ops`` ops (``BUDGET_OPS``)."""
    return max(1, -(-ops // BUDGET_OPS))


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TierUnavailable) and not isinstance(exc, CircuitOpen)


class Fallback(PolicyTier):
    """Retries, circuit breaker and single flight for ``inner``.

    Args:
        on_error: what a failed write does: ``fail``, ``skip`` (caches) or ``queue``.
        retry: backoff settings (``None``: one attempt).
        breaker: circuit settings (``None``: no circuit).
        clock: monotonic seconds; sleep: the pause between attempts (both injectable).
    """

    def __init__(
        self, inner: Tier, *, on_error: str = "fail", retry: RetryConfig | None = None,
        breaker: BreakerConfig | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self.on_error, self.retry = on_error, retry
        self.is_cache = Capability.DURABLE not in inner.capabilities
        self.capabilities |= inner.capabilities & {Capability.RIDES}  # guarded: ``rode``
        if on_error == "skip" and not self.is_cache:
            raise BrunoMemoryConfigError(
                f"tier {inner.name!r} is authoritative: on_error: skip would drop writes; "
                "use fail, or queue with a journal", path="on_error")
        self.breaker = Breaker(breaker.failures, breaker.reset, clock) if breaker else None
        self._clock = clock
        self._unopened = False  # down when the stack opened: opened by the first good probe
        self._sleep = sleep
        self._flights = SingleFlight()
        self._owed = Owed()
        self._probing = asyncio.Lock()
        self.retries = 0
        self.skipped = 0

    def _settings(self) -> str:
        return f"on_error={self.on_error!r}, retry={self.retry!r}, breaker={self.breaker!r}"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        """Open the tier; a skippable cache or semantic tier that is down opens degraded
        (reads skip it, writes owe it) and is opened when a probe finds it up."""
        try:
            await self._open_inner()
        except TierUnavailable as exc:
            if not (self.is_cache and self.on_error == "skip"):
                raise
            self._unopened = True
            if self.breaker is None:  # pace the re-open attempts all the same
                self.breaker = Breaker(1, REOPEN_EVERY, self._clock)
            self.breaker.trip()
            self._owed.owe_clear()  # when it answers, it may hold anything from before
            log.warning("tier down at open: the stack runs without it until it answers",
                        tier=self.name, error=str(exc))

    async def _open_inner(self) -> None:
        """Open the tier, trying up to ``retry.attempts`` times: an open is off the request
        path, so one slow connect (a loaded host) does not leave the stack degraded."""
        r = self.retry
        attempts = r.attempts if r is not None else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self.inner.open()
            except TierUnavailable as exc:
                if r is None or attempt == attempts or not _transient(exc):
                    raise
                self.retries += 1
                await self._sleep(r.initial)

    async def _opened(self) -> None:
        """Open a tier that was down at open, before an operation that must reach it."""
        if self._unopened:
            await self.inner.open()
            self._unopened = False

    async def clear(self) -> Any:
        await self._opened()
        return await super().clear()

    async def drop(self) -> None:
        await self._opened()
        await super().drop()

    async def ping(self) -> None:
        if self._unopened:
            raise TierUnavailable("down since the stack opened: a probe opens it when it "
                                  "answers", tier=self.name, op="ping")
        await self.inner.ping()

    async def aclose(self) -> None:
        """Close the tier, first settling what it is owed: a shared cache left holding
        what its writes skipped would serve it stale to other processes until it expires."""
        if self._unopened:
            return
        if self._owed:
            await self._settle_at_close()
        await self.inner.aclose()

    async def _settle_at_close(self) -> None:
        """Settle what is owed within the retry budget; warn when it cannot be (a cache
        known down, its circuit open, is not tried)."""
        b = self.breaker
        error = "circuit open: not tried"
        if b is None or b.state is not State.OPEN:
            try:
                await self._attempts("close", lambda: self._settle_owed("close"),
                                     _budgets(len(self._owed)))
                return
            except TierError as exc:
                error = str(exc)
        log.warning("closed owing invalidations: other processes may read what this "
                    "cache missed until it expires", tier=self.name, owed=len(self._owed),
                    error=error)

    # -- the guarded call -----------------------------------------------------------

    async def _call(
        self, op: str, fn: Callable[[], Awaitable[T]], once: bool = False, budgets: int = 1
    ) -> T:
        """``fn()`` behind the breaker, with retries in ``budgets`` time budgets (``once``:
        no retries and no time bound, for a call doing no I/O); failures count towards
        opening."""
        await self._admit(op)
        try:
            result = await (fn() if once else self._attempts(op, fn, budgets))
        except TierUnavailable as exc:
            if _transient(exc) and self.breaker is not None:
                self._failed(self.breaker)
            raise
        if self.breaker is not None:
            self.breaker.success()
        return result

    async def _attempts(self, op: str, fn: Callable[[], Awaitable[T]], budgets: int = 1) -> T:
        r = self.retry
        if r is None or r.attempts == 1:
            return await fn()
        budget = r.budget * budgets
        start = time.monotonic()
        try:
            async with deadline(budget):
                try:  # the usual case, an answer at once: no retry machinery is built
                    return await fn()
                except TierUnavailable as exc:
                    if not _transient(exc):
                        raise
                    failed = exc
                return await self._retried(r, fn, failed, budget - (time.monotonic() - start))
        except TimeoutError as exc:
            raise TierUnavailable(f"no answer within the {budget:g}s budget", tier=self.name,
                                  op=op, cause=exc) from exc

    async def _retried(
        self, r: RetryConfig, fn: Callable[[], Awaitable[T]], failed: TierUnavailable,
        left: float,
    ) -> T:
        """The retries after a first attempt that raised ``failed``, with ``left`` seconds
        of the budget: tenacity sees that attempt as its first (backoff and attempts count
        from it)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(r.attempts) | stop_before_delay(max(left, 0)),
            wait=wait_exponential_jitter(multiplier=r.initial, max=r.max_wait, jitter=r.jitter),
            sleep=self._sleep, reraise=True, before_sleep=self._count_retry,
        )
        first = [failed]

        async def attempt() -> T:  # a coroutine function: tenacity awaits it
            if first:
                raise first.pop()
            return await fn()

        return await retrying(attempt)

    def _failed(self, b: Breaker) -> None:
        b.failure()
        if b.state is State.OPEN and self.is_cache:
            self._owed.owe_clear()  # an outage: anything may have changed meanwhile

    def _count_retry(self, state: Any) -> None:
        self.retries += 1

    async def _admit(self, op: str) -> None:
        """Refuse while open; run the probe (and owed invalidations) when one is due."""
        b = self.breaker
        if b is not None and b.state is not State.CLOSED:
            if not b.probe_due() or self._probing.locked():
                raise CircuitOpen(f"circuit open, next probe in {b.retry_in():.1f}s",
                                  tier=self.name, op=op)
            await self._probe(op)
        elif self._owed:
            await self._settle_owed(op)

    async def _probe(self, op: str) -> None:
        b = self.breaker
        assert b is not None
        async with self._probing:
            b.start_probe()
            try:
                if self._unopened:
                    await self._opened()
                else:
                    await self.inner.ping()
                await self._settle_owed(op)
            except TierUnavailable as exc:
                self._failed(b)
                raise CircuitOpen(f"probe failed: {exc}", tier=self.name, op=op) from exc
            except BaseException:
                self._failed(b)
                raise
            b.success()
            log.info("circuit closed", tier=self.name)

    async def _settle_owed(self, op: str) -> None:
        """Invalidate what this cache missed while writes skipped it."""
        ops, clear = self._owed.take(has_clear=Capability.CLEAR in self.inner.capabilities)
        try:
            if clear:
                await PolicyTier.clear(self)
            elif ops:
                await self.inner.write(ops)
        except BaseException:
            self._owed.restore(ops, clear)
            raise

    # -- reads ----------------------------------------------------------------------

    async def _read(self, op: str, key: Hashable, fn: Callable[[], Awaitable[T]], miss: Any) -> T:
        """``fn()`` guarded, one flight per ``key``; a cache that is down answers ``miss``
        (``_RAISE``: re-raise, the caller degrades)."""
        try:
            return await self._flights.run(key, lambda: self._call(op, fn))
        except TierUnavailable:
            if not self.is_cache or miss is _RAISE:
                raise
            return miss  # type: ignore[no-any-return]

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        found = await self._read("get", ("get", *keys), lambda: self.inner.get(keys), {})
        return dict(found)

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        key = ("window", conversation_id, limit)
        load = lambda: PolicyTier.window(self, conversation_id, limit)  # noqa: E731
        return await self._read("window", key, load, MISS)

    async def query(self, q: Query[R]) -> R:
        """Every read beyond ``get``/``window``: guarded, retried, shared by identical
        concurrent calls; a cache or semantic tier that is down answers ``q.degraded()``."""
        op = type(q).__name__
        try:
            return await self._read(op, ("query", q), lambda: self.inner.query(q), _RAISE)
        except TierUnavailable as exc:
            if not self.is_cache:
                raise
            log.warning("read answered degraded: tier unavailable", tier=self.name, query=op,
                        error=str(exc))
            return q.degraded()

    async def lease(self, target: Key | str) -> str | None:
        """The inner tier's fill lease; none (so no fill) while a cache is unavailable."""
        try:
            token: str | None = await self._call("lease", lambda: PolicyTier.lease(self, target))
        except TierUnavailable:
            if not self.is_cache:
                raise
            return None
        return token

    # -- writes ---------------------------------------------------------------------

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self._write(ops, lambda: self.inner.write(ops), budgets=_budgets(len(ops)))

    def ride(self, ops: Sequence[WriteOp]) -> Ride | None:
        """The inner tier's ride, while its circuit is closed and it owes nothing (else
        the write goes alone, through the breaker)."""
        b = self.breaker
        if self._unopened or self._owed or (b is not None and b.state is not State.CLOSED):
            return None
        return super().ride(ops)

    async def rode(self, ops: Sequence[WriteOp], ride: Ride) -> None:
        """Finish a ride: its commands went out with the durable tier's call, so this
        reads their reply only (no I/O: nothing to retry or bound in time)."""
        await self._write(ops, lambda: PolicyTier.rode(self, ops, ride), once=True)

    async def _write(
        self, ops: Sequence[WriteOp], fn: Callable[[], Awaitable[None]], once: bool = False,
        budgets: int = 1,
    ) -> None:
        try:
            await self._call("write", fn, once, budgets)
        except TierUnavailable as exc:
            if self.on_error != "skip":
                raise
            self.skipped += len(ops)
            self._owed.add(ops)
            log.warning("cache write skipped; invalidation owed", tier=self.name,
                        error=str(exc), owed=len(self._owed))

    def metrics(self) -> dict[str, Any]:
        b = self.breaker
        mine = {
            "circuit": b.state.value if b else "none",
            "opened": b.opened if b else 0,
            "retries": self.retries,
            "skipped_writes": self.skipped,
            "owed_invalidations": len(self._owed),
            "single_flight_shared": self._flights.shared,
        }
        return {**super().metrics(), "fallback": mine}


def wrap(tier: Tier, cfg: TierConfig, context: TierContext) -> Fallback:
    """The ``fallback`` policy from a tier's ``on_error``, ``retry`` and ``breaker``."""
    return Fallback(tier, on_error=cfg.on_error, retry=cfg.retry, breaker=cfg.breaker,
                    clock=context.clock)
