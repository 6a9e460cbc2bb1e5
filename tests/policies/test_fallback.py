"""Fallback over real tiers: retries for unavailability only, within a budget; a circuit
breaker on an injected clock; single flight; on_error fail / skip / queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType

from bruno_memory import build_memory
from bruno_memory.build import create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.config.models import BreakerConfig, JournalConfig, RetryConfig, WriteBehindConfig
from bruno_memory.core.errors import (
    BrunoMemoryConfigError,
    CircuitOpen,
    CorruptRecord,
    TierUnavailable,
)
from bruno_memory.core.ops import EMPTY, MISS, Key, Put, Value
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.fallback.breaker import State
from bruno_memory.policies.fallback.policy import BUDGET_OPS, Fallback
from bruno_memory.policies.write_behind.journals import create_journal
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.testing.clock import FakeClock
from bruno_memory.testing.faults import FlakyTier
from bruno_memory.tiers.base import TierContext
from bruno_memory.tiers.lru import LRUConfig, LRUTier
from bruno_memory.tiers.sql.sqlite import SQLiteConfig, SQLiteTier

FAST = RetryConfig(attempts=3, initial=0.001, max_wait=0.002, jitter=0.001, budget=1.0)


def memory(text: str = "likes jazz") -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.LONG_TERM, user_id="u1")


def key_of(e: MemoryEntry) -> Key:
    return Key("memory", str(e.id))


def mput(e: MemoryEntry) -> Put:
    return Put(key_of(e), e)


@pytest.fixture
async def sqlite(tmp_path: Path) -> Any:
    """An opened SQLite tier, closed after the test."""
    tier = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")))
    await tier.open()
    yield tier
    await tier.aclose()


@pytest.fixture
async def lru() -> Any:
    """An opened LRU cache tier."""
    tier = LRUTier(LRUConfig(kind="lru"))
    await tier.open()
    return tier


async def test_unavailability_is_retried_until_the_tier_answers(sqlite: Any) -> None:
    """Two TierUnavailable failures, then success: the call succeeds on the third attempt."""
    flaky = FlakyTier(sqlite)
    fb = Fallback(flaky, retry=FAST)
    e = memory()
    await sqlite.write([mput(e)])
    flaky.fail(times=2)
    assert (await fb.get([key_of(e)]))[key_of(e)] == e
    assert fb.retries == 2


async def test_other_errors_are_never_retried(sqlite: Any) -> None:
    """A CorruptRecord fails the call at once, after one attempt."""
    flaky = FlakyTier(sqlite)
    fb = Fallback(flaky, retry=FAST)
    flaky.fail(times=1, error=CorruptRecord)
    with pytest.raises(CorruptRecord):
        await fb.get([Key("memory", "x")])
    assert fb.retries == 0 and flaky.calls.get("get", 0) == 0


async def test_retries_stop_at_the_attempt_limit(sqlite: Any) -> None:
    """A tier that stays down fails the call after the configured attempts."""
    flaky = FlakyTier(sqlite)
    fb = Fallback(flaky, retry=FAST)
    flaky.fail()
    with pytest.raises(TierUnavailable, match="injected"):
        await fb.get([Key("memory", "x")])
    assert fb.retries == 2


class Slow(PolicyTier):
    """A tier whose reads take ``delay`` seconds; counts the reads that started."""

    def __init__(self, inner: Any, delay: float) -> None:
        super().__init__(inner)
        self.delay, self.started = delay, 0

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Any]:
        self.started += 1
        await asyncio.sleep(self.delay)
        return await self.inner.get(keys)


async def test_one_time_budget_bounds_the_whole_call(sqlite: Any) -> None:
    """A tier that hangs fails the call with TierUnavailable once the budget is spent."""
    budget = RetryConfig(attempts=5, initial=0.001, max_wait=0.002, jitter=0.0, budget=0.05)
    fb = Fallback(Slow(sqlite, 10), retry=budget)
    with pytest.raises(TierUnavailable, match="budget"):
        await fb.get([Key("memory", "x")])


async def test_cancellation_is_never_retried(sqlite: Any) -> None:
    """Cancelling a call cancels it: the tier is not asked again."""
    slow = Slow(sqlite, 10)
    fb = Fallback(slow, retry=FAST)
    call = asyncio.create_task(fb.get([Key("memory", "x")]))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert slow.started == 1


async def test_the_breaker_opens_probes_after_reset_and_closes(sqlite: Any) -> None:
    """After 3 failed calls calls are refused; after reset one probe runs and closes it."""
    clock = FakeClock()
    flaky = FlakyTier(sqlite)
    fb = Fallback(flaky, breaker=BreakerConfig(failures=3, reset=5), clock=clock)
    flaky.fail()
    for _ in range(3):
        with pytest.raises(TierUnavailable):
            await fb.write([mput(memory())])
    assert fb.breaker is not None and fb.breaker.state is State.OPEN
    calls = dict(flaky.calls)
    with pytest.raises(CircuitOpen):
        await fb.write([mput(memory())])
    assert flaky.calls == calls  # refused without trying
    clock.advance(5)
    with pytest.raises(CircuitOpen, match="probe failed"):
        await fb.write([mput(memory())])  # the probe fails: open again
    assert fb.breaker.state is State.OPEN
    flaky.heal()
    clock.advance(5)
    e = memory()
    await fb.write([mput(e)])  # probe (ping) succeeds, then the call itself
    assert fb.breaker.state is State.CLOSED and (await sqlite.get([key_of(e)]))[key_of(e)] == e


async def test_concurrent_identical_reads_share_one_load(sqlite: Any) -> None:
    """Twenty concurrent gets of one key reach the tier once."""
    slow = Slow(sqlite, 0.05)
    fb = Fallback(slow)
    e = memory()
    await sqlite.write([mput(e)])
    results = await asyncio.gather(*(fb.get([key_of(e)]) for _ in range(20)))
    assert slow.started == 1 and all(r[key_of(e)] == e for r in results)
    assert fb.metrics()["fallback"]["single_flight_shared"] == 19


async def test_a_cancelled_leader_does_not_cancel_the_followers(sqlite: Any) -> None:
    """When the caller running a shared load is cancelled, the others still get an answer."""
    slow = Slow(sqlite, 0.05)
    fb = Fallback(slow)
    leader = asyncio.create_task(fb.get([Key("memory", "x")]))
    await asyncio.sleep(0)
    follower = asyncio.create_task(fb.get([Key("memory", "x")]))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert (await follower)[Key("memory", "x")] is EMPTY


async def test_reads_of_a_failing_cache_are_misses_and_durable_reads_raise(
    sqlite: Any, lru: Any
) -> None:
    """A cache that fails answers a miss; an authoritative tier that fails raises."""
    cache, durable = FlakyTier(lru), FlakyTier(sqlite)
    cache.fail()
    durable.fail()
    assert await Fallback(cache).get([Key("memory", "x")]) == {}
    assert await Fallback(cache).window("c", 5) is MISS
    with pytest.raises(TierUnavailable):
        await Fallback(durable).get([Key("memory", "x")])


async def test_on_error_fail_raises_and_skip_is_refused_for_an_authoritative_tier(
    sqlite: Any, lru: Any
) -> None:
    """on_error: fail surfaces the error; on_error: skip on a durable tier is a config error."""
    flaky = FlakyTier(lru)
    flaky.fail()
    with pytest.raises(TierUnavailable):
        await Fallback(flaky, on_error="fail").write([mput(memory())])
    with pytest.raises(BrunoMemoryConfigError, match="skip"):
        Fallback(sqlite, on_error="skip")


async def test_a_cache_that_missed_writes_is_invalidated_before_it_serves_again(
    lru: Any,
) -> None:
    """A write skipped while the cache was down never lets the cache serve the old value."""
    clock = FakeClock()
    flaky = FlakyTier(lru)
    fb = Fallback(flaky, on_error="skip", breaker=BreakerConfig(failures=1, reset=1),
                  clock=clock)
    v1 = memory("v1")
    await fb.write([mput(v1)])
    flaky.fail(only=["write", "get", "ping"])
    await fb.write([mput(v1.model_copy(update={"content": "v2"}))])  # skipped: cache is down
    assert fb.metrics()["fallback"]["skipped_writes"] == 1
    assert await fb.get([key_of(v1)]) == {}  # open: a miss
    flaky.heal()
    clock.advance(1)
    assert await fb.get([key_of(v1)]) == {}  # recovered, and v1 was dropped (cleared)
    assert fb.breaker is not None and fb.breaker.state is State.CLOSED


async def test_a_blip_shorter_than_the_breaker_still_invalidates_what_was_missed(
    lru: Any,
) -> None:
    """With the circuit still closed, a skipped write drops the key before the next read."""
    flaky = FlakyTier(lru)
    fb = Fallback(flaky, on_error="skip", breaker=BreakerConfig(failures=5, reset=1))
    v1 = memory("v1")
    await fb.write([mput(v1)])
    flaky.fail(times=1, only=["write"])
    await fb.write([mput(v1.model_copy(update={"content": "v2"}))])
    assert await fb.get([key_of(v1)]) == {}


async def test_queue_on_error_journals_writes_and_replays_them_on_recovery(
    sqlite: Any, tmp_path: Path
) -> None:
    """With on_error: queue, writes to a down tier are acknowledged from the journal and land
    once it returns."""
    flaky = FlakyTier(sqlite)
    fb = Fallback(flaky, on_error="queue", retry=FAST)
    journal = create_journal(JournalConfig(kind="file"), "durable", "t", tmp_path)
    q = WriteBehind(fb, WriteBehindConfig(backoff=0.005, max_backoff=0.02), journal,
                    mode="queue")
    await q.open()
    try:
        direct = memory("while up")
        await q.write([mput(direct)])  # up: written through, nothing queued
        assert (await sqlite.get([key_of(direct)]))[key_of(direct)] == direct
        assert q.metrics()["write_behind"]["queue_depth"] == 0
        flaky.fail(only=["write"])
        queued = [memory(f"m{i}") for i in range(10)]
        for e in queued:
            await q.write([mput(e)])
        assert q.metrics()["write_behind"]["queue_depth"] == 10
        assert (await q.get([key_of(queued[0])]))[key_of(queued[0])] == queued[0]
        flaky.heal()
        await q.flush()
        found = await sqlite.get([key_of(e) for e in queued])
        assert list(found.values()) == queued
    finally:
        flaky.heal()
        await q._stop()


async def test_a_stack_config_builds_fallback_and_queue_around_the_tier(tmp_path: Path) -> None:
    """retry/breaker/on_error in YAML wrap the tier in Fallback, and queue adds the queue."""
    memory_ = await build_memory({"tiers": [
        {"kind": "lru", "on_error": "skip", "breaker": {"failures": 3, "reset": "2s"}},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db"),
         "on_error": "queue", "journal": {"kind": "file", "path": str(tmp_path / "j")},
         "retry": {"attempts": 2}}]})
    try:
        cache, durable = memory_.tiers
        assert type(cache).__name__ == "Fallback"
        assert type(durable).__name__ == "WriteBehind" and durable.mode == "queue"
        assert type(durable.inner).__name__ == "Fallback"
        health = await memory_.health()
        assert health["durable"]["metrics"]["fallback"]["circuit"] == "none"
    finally:
        await memory_.close()


async def test_an_open_that_fails_once_is_tried_again_before_the_cache_opens_degraded(
    lru: Any,
) -> None:
    """One transient failure at open (a slow connect on a loaded host) is tried again, so the
    cache opens up; a cache that keeps failing opens degraded, as before."""
    flaky = FlakyTier(lru)
    flaky.fail(1, only=["open"])
    fb = Fallback(flaky, on_error="skip", retry=FAST)
    await fb.open()
    await fb.ping()  # up: a degraded tier refuses pings until a probe opens it
    assert (flaky.calls["open"], fb.retries) == (1, 1)

    down = FlakyTier(lru)
    down.fail(only=["open"])
    degraded = Fallback(down, on_error="skip", retry=FAST)
    await degraded.open()
    with pytest.raises(TierUnavailable):
        await degraded.ping()
    assert "open" not in down.calls


@pytest.mark.redis
async def test_a_closing_cache_settles_what_its_writes_skipped(
    redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A shared cache whose write was skipped is invalidated when the stack closes, so a
    process reading it afterwards never gets the old value; a cache still failing then is
    closed anyway, with a warning naming what it owes."""
    config = load_config({"namespace": namespace, "tiers": [{"kind": "redis", "url": redis_url}]})

    async def redis() -> Any:
        tier = create_tier(config.tiers[0], TierContext(namespace=namespace))
        await tier.open()
        return tier

    other = await redis()  # another process's view of the same cache
    try:
        for still_failing in (False, True):
            flaky = FlakyTier(await redis())
            fb = Fallback(flaky, on_error="skip", retry=FAST)
            v1 = memory("v1")
            await fb.write([mput(v1)])
            flaky.fail(times=FAST.attempts, only=["write"])
            await fb.write([mput(v1.model_copy(update={"content": "v2"}))])  # skipped
            assert (await other.get([key_of(v1)]))[key_of(v1)].content == "v1"
            if still_failing:
                flaky.fail(only=["write"])
            with caplog.at_level(logging.WARNING):
                await fb.aclose()
            held = await other.get([key_of(v1)])
            if still_failing:
                assert held[key_of(v1)].content == "v1"  # nothing reached it
                assert "closed owing invalidations" in caplog.text
            else:
                assert held == {}  # dropped at close: its next reader loads v2
                assert "closed owing invalidations" not in caplog.text
    finally:
        await other.clear()
        await other.aclose()


async def test_a_cache_known_down_at_close_is_not_tried_again(
    lru: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With its circuit open, a closing cache is not written (it would only wait out the
    budget): it closes at once, warning what it owes."""
    flaky = FlakyTier(lru)
    fb = Fallback(flaky, on_error="skip", breaker=BreakerConfig(failures=1, reset=60))
    v1 = memory("v1")
    await fb.write([mput(v1)])
    flaky.fail(only=["write"])
    await fb.write([mput(v1.model_copy(update={"content": "v2"}))])  # skipped; circuit opens
    assert fb.breaker is not None and fb.breaker.state is State.OPEN
    flaky.heal()
    with caplog.at_level(logging.WARNING):
        await fb.aclose()
    assert flaky.calls["write"] == 1  # only the first write reached the cache
    assert "closed owing invalidations" in caplog.text


class SlowWrites(PolicyTier):
    """A tier whose writes take ``per_op`` seconds for each op."""

    def __init__(self, inner: Any, per_op: float) -> None:
        super().__init__(inner)
        self.per_op = per_op

    async def write(self, ops: Sequence[Any]) -> None:
        await asyncio.sleep(self.per_op * len(ops))
        await self.inner.write(ops)


async def test_a_big_write_gets_a_budget_per_budget_ops(lru: Any) -> None:
    """The budget is per ``BUDGET_OPS`` ops: 2,000 ops taking two budgets' time land (of
    four), where one budget for all would have failed them; a small write as slow still
    fails."""
    budget = RetryConfig(attempts=2, initial=0.001, max_wait=0.002, jitter=0.0, budget=0.1)
    slow = SlowWrites(lru, per_op=0.2 / (4 * BUDGET_OPS))
    fb = Fallback(slow, on_error="skip", retry=budget)
    entries = [memory(f"m{i}") for i in range(2000)]
    await fb.write([mput(e) for e in entries])
    assert fb.skipped == 0
    assert len(await lru.get([key_of(e) for e in entries])) == 2000
    slow.per_op = 0.3  # one op, three budgets' time
    await fb.write([mput(memory("late"))])
    assert fb.skipped == 1


async def test_a_close_settles_a_big_debt_in_a_budget_per_budget_ops(
    lru: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """2,000 skipped writes owe 2,000 drops; at close they are written in two budgets' time
    (of four), where one budget for all would have left them owed, with a warning."""
    budget = RetryConfig(attempts=2, initial=0.001, max_wait=0.002, jitter=0.0, budget=0.1)
    flaky = FlakyTier(lru)
    slow = SlowWrites(flaky, per_op=0.0)
    fb = Fallback(slow, on_error="skip", retry=budget)
    flaky.fail(times=2)  # both attempts
    await fb.write([mput(memory(f"m{i}")) for i in range(2000)])
    assert fb.skipped == 2000
    slow.per_op = 0.2 / (4 * BUDGET_OPS)
    with caplog.at_level(logging.WARNING):
        await fb.aclose()
    assert "closed owing" not in caplog.text
    assert fb.metrics()["fallback"]["owed_invalidations"] == 0
