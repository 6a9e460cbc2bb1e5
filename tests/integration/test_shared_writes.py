"""Concurrent writes sharing round trips: one Redis pipeline, one invalidation message, one
authoritative lookup for many callers, each answered with its own result; and a cached
window whose weight is carried from store to store.

Real Redis and PostgreSQL servers; no timing is asserted. Sharing is seen through the
counters of ``core.group_commit`` (``batches < writes``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType

from bruno_memory.build import create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.core.ops import EMPTY, Key, Put
from bruno_memory.core.records import MessageRecord
from bruno_memory.stack.engine import Engine
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.testing.tier_contract import msg
from bruno_memory.tiers.base import TierContext
from bruno_memory.tiers.window import OVERHEAD, Window, merge_into
from tests.factories.postgres import drop_schema, postgres

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def fact(text: str, user: str = "u1") -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user)


async def _stack(config: dict[str, Any], ns: str, tmp: Path) -> MemoryStack:
    tiers: list[Any] = []
    for cfg in load_config(config).tiers:
        tier = create_tier(cfg, TierContext(namespace=ns, base_dir=tmp))
        await tier.open()
        tiers.append(tier)
    return MemoryStack(tiers)


@pytest.fixture
async def redis_tier(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Any]:
    cfg = load_config({"namespace": namespace, "tiers": [
        {"kind": "redis", "url": request.getfixturevalue("redis_url"), "name": "hot"},
        {"kind": "sqlite", "path": ":memory:"},
    ]}).tiers[0]
    tier: Any = create_tier(cfg, TierContext(namespace=namespace))
    await tier.open()
    try:
        yield tier
    finally:
        await tier.clear()
        await tier.aclose()


async def test_concurrent_redis_writes_share_pipelines_and_all_land(redis_tier: Any) -> None:
    """50 concurrent writes to the Redis tier: fewer pipelines than writes, every record
    readable afterwards with what its own write put."""
    entries = [fact(f"fact {i}", user=f"u{i % 5}") for i in range(50)]
    keys = [Key("memory", str(e.id)) for e in entries]
    before = redis_tier.metrics()["pipelines"]
    writes = [redis_tier.write([Put(k, e)]) for k, e in zip(keys, entries, strict=True)]
    await asyncio.gather(*writes)
    after = redis_tier.metrics()["pipelines"]
    found = await redis_tier.get(keys)
    assert [found[k].content for k in keys] == [e.content for e in entries]
    assert after["batches"] - before["batches"] < after["writes"] - before["writes"]
    assert after["failed"] == 0


@pytest.fixture
async def engine(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Engine]:
    pg = postgres(request, namespace)
    cfg = load_config({"namespace": namespace, "tiers": [pg]}).tiers[0]
    tier = create_tier(cfg, TierContext(namespace=namespace))
    await tier.open()
    engine = Engine([tier])
    try:
        yield engine
    finally:
        await engine.aclose()
        await drop_schema(pg["dsn"], namespace)


async def test_concurrent_authoritative_reads_each_get_their_own_answer(engine: Engine) -> None:
    """Concurrent lookups of messages, memories and unknown ids are answered together, each
    with exactly the keys it asked for, as a lookup alone would answer."""
    records = [msg(f"c{i % 3}", i) for i in range(30)]
    memories = [fact(f"f{i}") for i in range(30)]
    await engine.write([Put(Key("message", r.id), r) for r in records], [])
    await engine.write([Put(Key("memory", str(m.id)), m) for m in memories], [])
    known = [Key("message", r.id) for r in records] + [Key("memory", str(m.id)) for m in memories]
    rng = random.Random(7)
    asks = [[*rng.sample(known, 3), Key("message", f"none-{i}"), Key("memory", f"none-{i}")]
            for i in range(40)]
    alone = [await engine.authoritative(keys) for keys in asks[:5]]
    together = await asyncio.gather(*(engine.authoritative(keys) for keys in asks))
    assert together[:5] == alone
    for keys, got in zip(asks, together, strict=True):
        assert set(got) == set(keys)
        assert got[keys[3]] is EMPTY and got[keys[4]] is EMPTY
        for key in keys[:3]:
            value: Any = got[key]
            assert (value.id if isinstance(value, MessageRecord) else str(value.id)) == key.id


async def test_concurrent_writes_share_invalidation_messages_and_every_drop_arrives(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A changes 20 memories B holds in its LRU, from 20 tasks at once: fewer messages than
    writes go out, and B serves every new value."""
    url = request.getfixturevalue("redis_url")
    pg = {"name": "durable", **postgres(request, namespace)}
    lru = {"kind": "lru", "name": "local", "invalidation": {"url": url, "max_lag": "1s"}}
    config = {"namespace": namespace, "tiers": [lru, pg]}
    a, b = await _stack(config, namespace, tmp_path), await _stack(config, namespace, tmp_path)
    try:
        for _ in range(500):
            if all(s.tiers[0].in_sync() for s in (a, b)):  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        olds = [fact(f"old {i}") for i in range(20)]
        for entry in olds:
            await a.store_memory(entry)
            assert (await b.get_memory(str(entry.id))) == entry  # cached in B's LRU
        news = [e.model_copy(update={"content": f"new {i}"}) for i, e in enumerate(olds)]
        published = a.tiers[0].metrics()["invalidation"]["published"]
        await asyncio.gather(*(a.store_memory(e) for e in news))
        sent = a.tiers[0].metrics()["invalidation"]["published"] - published
        seen: list[str | None] = []
        for _ in range(500):
            seen = [getattr(await b.get_memory(str(e.id)), "content", None) for e in news]
            if seen == [e.content for e in news]:
                break
            await asyncio.sleep(0.01)
        assert seen == [e.content for e in news]
        assert 1 <= sent < len(news)
    finally:
        await a.close()
        await b.close()
        await drop_schema(pg["dsn"], namespace)


def test_a_window_carries_its_weight_and_ids_through_every_change() -> None:
    """Appends, edits in place, older inserts and trims: the weight a window carries is
    always its records' footprints, its ids always its messages'."""
    rng = random.Random(11)
    window = Window((), True)
    window.footprint()  # known from the start: carried from here on
    ids: list[str] = []
    for step in range(400):
        if ids and rng.random() < 0.2:  # an edit in place of a held message
            held = rng.choice(window.messages)
            rec = MessageRecord(held.message.model_copy(update={"content": f"edit {step}"}),
                                "c", "u")
        else:
            m = msg("c", step, text=f"message {step} " + "x" * rng.randrange(200)).message
            if rng.random() < 0.1 and window.messages:  # older than the newest
                m.timestamp = window.messages[0].message.timestamp
            rec = MessageRecord(m, "c", "u")
        merged = merge_into(window, rec, 50)
        assert merged is not None
        window = merged
        ids = [r.id for r in window.messages]
        assert window.ids() == tuple(ids)
        assert window.footprint() == sum(r.footprint() for r in window.messages) + OVERHEAD
    assert len(window.messages) == 50 and not window.complete
