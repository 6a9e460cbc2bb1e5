"""Fill races on the shared Redis tier, between two stacks standing for two processes.

Stack A misses in Redis and reads PostgreSQL; it is held right after that read while
stack B writes; then A fills Redis. Each stack has its own in-process write generations,
so only the Redis fill lease (and the purge marker) can stop A's stale fill.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole
from redis.asyncio import Redis, RedisCluster

from bruno_memory.build import create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import InvalidInput, NotFound
from bruno_memory.core.ops import Empty, FillRecord, Key, Miss, Value
from bruno_memory.core.records import MessageRecord
from bruno_memory.policies.base import PolicyTier
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.tiers.base import Tier, TierContext
from bruno_memory.tiers.redis.tier import RedisTier
from tests.factories.postgres import drop_schema, postgres
from tests.redis_servers import cluster_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class Held(PolicyTier):
    """Answers a read, then waits (when armed) until the test lets the answer through."""

    def __init__(self, inner: Tier) -> None:
        super().__init__(inner)
        self.armed = False
        self.read_done = asyncio.Event()
        self.go = asyncio.Event()
        self.reads = 0

    async def _hold(self) -> None:
        if self.armed:
            self.armed = False
            self.read_done.set()
            await self.go.wait()

    async def get(self, keys: Sequence[Key]) -> Any:
        self.reads += 1
        found = await self.inner.get(keys)
        await self._hold()
        return found

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        got = await super().window(conversation_id, limit)
        await self._hold()
        return got


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_cfg(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        return {"kind": "redis", "url": request.getfixturevalue("redis_url"), "name": "hot"}
    return {"kind": "redis", "url": cluster_url(request), "cluster": True, "name": "hot"}


async def _stack(config: dict[str, Any], ns: str, tmp: Path, held: bool) -> MemoryStack:
    tiers: list[Any] = []
    for cfg in load_config(config).tiers:
        tier = create_tier(cfg, TierContext(namespace=ns, base_dir=tmp))
        await tier.open()
        tiers.append(tier)
    if held:
        tiers[-1] = Held(tiers[-1])
    return MemoryStack(tiers)


@pytest.fixture
async def pair(
    request: pytest.FixtureRequest, redis_cfg: dict[str, Any], namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[MemoryStack, MemoryStack]]:
    """Stack A (its durable reads can be held) and stack B, over one Redis and one schema."""
    pg = {"name": "durable", **postgres(request, namespace)}
    config = {"namespace": namespace, "tiers": [redis_cfg, pg]}
    a = await _stack(config, namespace, tmp_path, held=True)
    b = await _stack(config, namespace, tmp_path, held=False)
    try:
        yield a, b
    finally:
        hot = b.tiers[0]
        assert isinstance(hot, RedisTier)
        with contextlib.suppress(Exception):
            await hot.clear()
        await a.close()
        await b.close()
        await drop_schema(pg["dsn"], namespace)


def held(stack: MemoryStack) -> Held:
    tier = stack.tiers[-1]
    assert isinstance(tier, Held)
    return tier


def redis_tier(stack: MemoryStack) -> RedisTier:
    return next(t for t in stack.tiers if isinstance(t, RedisTier))


def client(stack: MemoryStack) -> Any:
    cfg = redis_tier(stack).config
    return RedisCluster.from_url(cfg.url) if cfg.is_cluster else Redis.from_url(cfg.url)


async def evict(stack: MemoryStack, *names: str) -> None:
    """What a TTL expiry or an eviction does: the keys leave Redis."""
    c = client(stack)
    try:
        for name in names:
            await c.delete(name)
    finally:
        await c.aclose()


async def cached(stack: MemoryStack, key: Key) -> Value | Empty | None:
    """What Redis itself holds for ``key`` (no read-through)."""
    return (await redis_tier(stack).get([key])).get(key)


async def race(a_reads: Any, held_tier: Held, b_writes: Any) -> Any:
    """A reads the durable tier and is held; B writes; A goes on and fills."""
    held_tier.armed = True
    reading = asyncio.create_task(a_reads)
    await asyncio.wait_for(held_tier.read_done.wait(), 10)
    await b_writes
    held_tier.go.set()
    return await asyncio.wait_for(reading, 10)


def fact(text: str, user: str = "u1", **extra: Any) -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user, **extra)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds (or ``seconds`` pass: the test's asserts tell)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def heard(stack: MemoryStack) -> int:
    """How many invalidation messages the stack's LRU received."""
    return int(stack.tiers[0].metrics()["invalidation"]["received"])  # type: ignore[attr-defined]


def subscribed(*stacks: MemoryStack) -> Callable[[], bool]:
    return lambda: all(s.tiers[0].in_sync() for s in stacks)  # type: ignore[attr-defined]


async def stored_not_cached(stack: MemoryStack, entry: MemoryEntry) -> Key:
    """Store ``entry`` through ``stack``, then let it leave Redis; returns its key."""
    await stack.store_memory(entry)
    key = Key("memory", str(entry.id))
    await evict(stack, redis_tier(stack).names.record(key))
    return key


async def test_a_fill_read_before_another_process_updates_is_dropped(
    pair: tuple[MemoryStack, MemoryStack],
) -> None:
    a, b = pair
    old = fact("likes tea")
    key = await stored_not_cached(b, old)
    new = old.model_copy(update={"content": "likes coffee"})

    seen = await race(a.get_memory(str(old.id)), held(a), b.store_memory(new))

    assert seen is not None and seen.content == "likes tea"  # A's read came first
    in_redis = await cached(b, key)
    assert isinstance(in_redis, MemoryEntry) and in_redis.content == "likes coffee"
    assert (await b.get_memory(str(old.id))).content == "likes coffee"  # type: ignore[union-attr]
    assert redis_tier(a).fills_dropped == 1


async def test_a_fill_read_before_another_process_deletes_is_dropped(
    pair: tuple[MemoryStack, MemoryStack],
) -> None:
    a, b = pair
    entry = fact("likes tea")
    key = await stored_not_cached(b, entry)

    await race(a.get_memory(str(entry.id)), held(a), b.delete_memory(str(entry.id)))

    assert await cached(b, key) is None
    assert await b.get_memory(str(entry.id)) is None


async def test_a_window_fill_read_before_another_process_appends_is_dropped(
    pair: tuple[MemoryStack, MemoryStack],
) -> None:
    a, b = pair
    session = await b.create_session("u1")
    conv = session.conversation_id
    first = Message(role=MessageRole.USER, content="first")
    await b.store_message(first, conv)
    await evict(b, redis_tier(b).names.window(conv))
    second = Message(role=MessageRole.ASSISTANT, content="second")

    seen = await race(a.retrieve_messages(conv, 10), held(a), b.store_message(second, conv))

    assert [m.content for m in seen] == ["first"]
    assert [m.content for m in await b.retrieve_messages(conv, 10)] == ["second", "first"]
    assert [m.content for m in await a.retrieve_messages(conv, 10)] == ["second", "first"]


async def test_a_fill_read_before_another_process_forgets_the_user_is_undone(
    pair: tuple[MemoryStack, MemoryStack],
) -> None:
    a, b = pair
    entry = fact("lives in Lyon", user="gone")
    key = await stored_not_cached(b, entry)

    seen = await race(a.get_memory(str(entry.id)), held(a), b.forget_user("gone"))

    assert seen is not None  # read before the purge
    assert await cached(b, key) is None  # but not left in Redis after it
    assert await b.get_memory(str(entry.id)) is None


async def test_fills_without_a_race_still_promote(pair: tuple[MemoryStack, MemoryStack]) -> None:
    a, b = pair
    entry = fact("likes tea")
    key = await stored_not_cached(b, entry)
    session = await b.create_session("u1")
    await b.store_message(Message(role=MessageRole.USER, content="hi"), session.conversation_id)
    await evict(b, redis_tier(b).names.window(session.conversation_id))

    assert await a.get_memory(str(entry.id)) is not None
    assert await a.retrieve_messages(session.conversation_id, 5)

    assert isinstance(await cached(b, key), MemoryEntry)
    hot = await redis_tier(b).window(session.conversation_id, 5)
    assert [r.message.content for r in hot] == ["hi"]  # type: ignore[union-attr]
    assert redis_tier(a).fills_dropped == 0


async def test_a_fill_whose_lease_expired_fills_nothing(
    redis_cfg: dict[str, Any], namespace: str
) -> None:
    """A lower-tier read slower than ``lease_ttl`` fills nothing; a timely one fills."""
    cfg = load_config({"namespace": namespace, "tiers": [{**redis_cfg, "lease_ttl": 0.05}]})
    tier = create_tier(cfg.tiers[0], TierContext(namespace=namespace))
    assert isinstance(tier, RedisTier)
    await tier.open()
    try:
        slow, quick = fact("slow"), fact("quick")
        slow_key, quick_key = Key("memory", str(slow.id)), Key("memory", str(quick.id))
        late = await tier.lease(slow_key)
        await asyncio.sleep(0.2)
        await tier.write([FillRecord(slow_key, slow, late)])
        await tier.write([FillRecord(quick_key, quick, await tier.lease(quick_key))])
        assert await tier.get([slow_key, quick_key]) == {quick_key: quick}
        assert tier.fills_dropped == 1
    finally:
        await tier.clear()
        await tier.aclose()


@contextlib.asynccontextmanager
async def lru_pair(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path, max_lag: str | None = "1s"
) -> AsyncIterator[tuple[MemoryStack, MemoryStack]]:
    """Stacks A (its durable reads can be held) and B, each an LRU over one PostgreSQL
    schema, kept coherent over pub/sub within ``max_lag`` (``None``: each hears nothing of
    the other's writes, the worst lag an invalidation can have)."""
    pg = {"name": "durable", **postgres(request, namespace)}
    lru: dict[str, Any] = {"kind": "lru", "name": "local"}
    if max_lag is not None:
        lru["invalidation"] = {"url": request.getfixturevalue("redis_url"), "max_lag": max_lag}
    config = {"namespace": namespace, "tiers": [lru, pg]}
    a = await _stack(config, namespace, tmp_path, held=True)
    b = await _stack(config, namespace, tmp_path, held=False)
    try:
        if max_lag is not None:
            await until(subscribed(a, b))
        yield a, b
    finally:
        await a.close()
        await b.close()
        await drop_schema(pg["dsn"], namespace)


async def test_a_local_cache_fill_read_before_a_remote_change_is_dropped_however_slow(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """LRUs kept coherent over pub/sub: A's read is held until well past ``max_lag``
    after B's change arrived; A's fill is still refused (its lease saw the drop)."""
    async with lru_pair(request, namespace, tmp_path, max_lag="200ms") as (a, b):
        old = fact("likes tea")
        await b.store_memory(old)
        new = old.model_copy(update={"content": "likes coffee"})

        async def b_changes_and_a_hears_it() -> None:
            before = heard(a)
            await b.store_memory(new)
            await until(lambda: heard(a) > before)
            await asyncio.sleep(0.5)  # past max_lag: no time-based guard would still hold

        seen = await race(a.get_memory(str(old.id)), held(a), b_changes_and_a_hears_it())

        assert seen is not None and seen.content == "likes tea"
        assert (await a.get_memory(str(old.id))).content == "likes coffee"  # type: ignore[union-attr]


async def test_a_fill_from_a_durable_tier_behind_a_write_behind_queue_is_undone_at_flush(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """B's write waits in its write-behind queue; A misses every cache and reads the
    durable tier without it, filling Redis and its LRU. B's flush settles both."""
    url = request.getfixturevalue("redis_url")
    pg = {"name": "durable", **postgres(request, namespace), "write": "write-behind",
          "write_behind": {"interval": "1h", "batch_size": 10_000}}
    lru = {"kind": "lru", "name": "local", "invalidation": {"url": url, "max_lag": "1s"}}
    config = {"namespace": namespace, "tiers": [lru, {"kind": "redis", "url": url}, pg]}
    a = await _stack(config, namespace, tmp_path, held=False)
    b = await _stack(config, namespace, tmp_path, held=False)
    hot = redis_tier(a)
    try:
        await until(subscribed(a, b))
        conv = (await b.create_session("u1")).conversation_id
        await b.store_message(Message(role=MessageRole.USER, content="first"), conv)
        await b.flush()
        await evict(b, hot.names.window(conv))
        await b.store_message(Message(role=MessageRole.ASSISTANT, content="second"), conv)

        seen = await a.retrieve_messages(conv, 10)  # the lag write-behind allows
        assert [m.content for m in seen] == ["first"]
        before = heard(a)
        await b.flush()
        await until(lambda: heard(a) > before)

        assert [m.content for m in await a.retrieve_messages(conv, 10)] == ["second", "first"]
        assert [r.message.content for r in await hot.window(conv, 10)] == [  # type: ignore[union-attr]
            "first", "second"]
    finally:
        with contextlib.suppress(Exception):
            await hot.clear()
        await a.close()
        await b.close()
        await drop_schema(pg["dsn"], namespace)


class Gate(PolicyTier):
    """Holds a write (when armed) until the test lets it through."""

    def __init__(self, inner: Tier) -> None:
        super().__init__(inner)
        self.armed = False
        self.writing = asyncio.Event()
        self.go = asyncio.Event()

    async def write(self, ops: Sequence[Any]) -> None:
        if self.armed:
            self.armed = False
            self.writing.set()
            await self.go.wait()
        await self.inner.write(ops)


async def test_the_invalidation_goes_out_only_once_the_shared_cache_holds_the_change(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """B's write to Redis is held: A hears nothing until it lands. Were the invalidation
    published first, A would refill its LRU from Redis's old value and keep it."""
    url = request.getfixturevalue("redis_url")
    pg = {"name": "durable", **postgres(request, namespace)}
    lru = {"kind": "lru", "name": "local", "invalidation": {"url": url, "max_lag": "1s"}}
    config = {"namespace": namespace, "tiers": [lru, {"kind": "redis", "url": url}, pg]}
    a = await _stack(config, namespace, tmp_path, held=False)
    tiers: list[Any] = []
    for cfg in load_config(config).tiers:
        tier = create_tier(cfg, TierContext(namespace=namespace, base_dir=tmp_path))
        await tier.open()
        tiers.append(tier)
    gate = tiers[1] = Gate(tiers[1])
    b = MemoryStack(tiers)
    try:
        await until(subscribed(a, b))
        old = fact("likes tea")
        start = heard(a)
        await b.store_memory(old)
        await until(lambda: heard(a) > start)  # its invalidation is in: none still on its way
        assert (await a.get_memory(str(old.id))).content == "likes tea"  # type: ignore[union-attr]
        before = heard(a)
        gate.armed = True
        new = old.model_copy(update={"content": "likes coffee"})
        writing = asyncio.create_task(b.store_memory(new))
        await asyncio.wait_for(gate.writing.wait(), 10)
        await asyncio.sleep(0.3)
        assert heard(a) == before  # nothing published while Redis holds the old value
        await a.get_memory(str(old.id))
        gate.go.set()
        await asyncio.wait_for(writing, 10)
        await until(lambda: heard(a) > before)

        assert (await a.get_memory(str(old.id))).content == "likes coffee"  # type: ignore[union-attr]
    finally:
        gate.go.set()  # a failed assert must not leave b's write held: closing drains it
        with contextlib.suppress(Exception):
            await redis_tier(a).clear()
        await a.close()
        await b.close()
        await drop_schema(pg["dsn"], namespace)


# -- remembered absence (``FillAbsent``) ------------------------------------------------


def said(text: str, user: str | None = None) -> Message:
    return Message(role=MessageRole.USER, content=text,
                   metadata={} if user is None else {"user_id": user})


async def test_an_absence_read_before_another_process_claims_is_not_remembered(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A reads that a conversation has no session and is held; B claims it and A hears
    B's drop; A's absence fill is refused (its lease saw the drop), so A finds the owner
    at once, without waiting for anything."""
    async with lru_pair(request, namespace, tmp_path) as (a, b):

        async def b_claims_and_a_hears_it() -> None:
            before = heard(a)
            await b.store_message(said("hello", user="u1"), "c1")
            await until(lambda: heard(a) > before)

        seen = await race(a.conversation_session("c1"), held(a), b_claims_and_a_hears_it())

        assert seen is None  # A's read came first
        owner = await a.conversation_session("c1")
        assert owner is not None and owner.user_id == "u1"


async def test_a_remembered_absence_ends_when_another_process_claims(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A stores messages in ``c1``, which has no session, and so remembers it has no
    owner; B's claim reaches A as a drop, and A's next messages are the owner's."""
    async with lru_pair(request, namespace, tmp_path) as (a, b):
        await a.store_message(said("first"), "c1")
        reads = held(a).reads
        await a.store_message(said("second"), "c1")
        assert held(a).reads == reads  # the absence is remembered
        before = heard(a)
        await b.store_message(said("mine", user="u1"), "c1")
        await until(lambda: heard(a) > before)

        owner = await a.conversation_session("c1")
        assert owner is not None and owner.user_id == "u1"
        await a.store_message(said("third"), "c1")
        stats = await b.get_statistics("u1")
        assert stats["total_messages"] == 4, stats


@pytest.fixture
async def deaf_pair(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[MemoryStack, MemoryStack]]:
    """``lru_pair`` whose LRUs hear nothing of each other's writes."""
    async with lru_pair(request, namespace, tmp_path, max_lag=None) as pair:
        yield pair


async def test_a_remembered_absence_spares_each_later_write_its_look_up(
    deaf_pair: tuple[MemoryStack, MemoryStack],
) -> None:
    """Messages of a conversation without a session: its owner is looked up in the
    authoritative tier once, not once per message."""
    a, _ = deaf_pair
    reads = held(a).reads
    for i in range(20):
        await a.store_message(said(f"message {i}"), "c1")
    assert held(a).reads - reads == 1
    assert len(await a.retrieve_messages("c1")) == 20


async def test_a_claim_reads_past_a_remembered_absence(
    deaf_pair: tuple[MemoryStack, MemoryStack],
) -> None:
    """A remembers that ``c1`` has no owner; B makes u1 its owner. A's first write
    naming u2 must not make u2 the owner: the claim asks the authoritative tier."""
    a, b = deaf_pair
    await a.store_message(said("before any owner"), "c1")
    await b.store_message(said("mine", user="u1"), "c1")

    with pytest.raises(InvalidInput, match="not the owner"):
        await a.store_message(said("mine too", user="u2"), "c1")

    owner = await b.conversation_session("c1")
    assert owner is not None and owner.user_id == "u1"
    assert await b.get_statistics("u2") == await b.get_statistics("nobody")


async def test_a_session_start_reads_past_a_remembered_absence(
    deaf_pair: tuple[MemoryStack, MemoryStack],
) -> None:
    """A remembers that ``s1`` is neither a session nor a conversation; B starts it for
    u1. A asked for it on behalf of u2 must not start it again for u2."""
    a, b = deaf_pair
    assert await a.get_session("s1") is None and await a.conversation_session("s1") is None
    await b.get_context("u1", "s1")

    with pytest.raises(NotFound):
        await a.get_context("u2", "s1")

    owner = await b.conversation_session("s1")
    assert owner is not None and owner.user_id == "u1"
