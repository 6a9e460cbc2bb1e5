"""Reads as data through one channel: every query type is guarded by ``Fallback`` and kept
read-your-writes by ``WriteBehind`` by construction, and a semantic tier that goes down
behind ``on_error: skip`` degrades search to full text instead of failing it."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory.config.models import BreakerConfig, RetryConfig, WriteBehindConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.ops import Key, Put
from bruno_memory.core.queries import Query
from bruno_memory.policies.fallback.breaker import State
from bruno_memory.policies.fallback.policy import Fallback
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.providers.embedding import create_embedding
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.testing.clock import FakeClock
from bruno_memory.testing.faults import FlakyTier
from bruno_memory.testing.queries import one_of_each
from bruno_memory.testing.tier_contract import msg
from bruno_memory.tiers.base import Tier, TierContext
from bruno_memory.tiers.lru import LRUConfig, LRUTier
from bruno_memory.tiers.redis.tier import RedisConfig, RedisTier
from bruno_memory.tiers.sql.sqlite import SQLiteConfig, SQLiteTier
from bruno_memory.tiers.vector.qdrant import QdrantConfig, QdrantTier

ONE_TRY = RetryConfig(attempts=1)
TWO_FAILURES = BreakerConfig(failures=2, reset=30.0)


def _context(tmp_path: Path) -> TierContext:
    return TierContext(base_dir=tmp_path, embedding=create_embedding(None))  # hashing


async def _answering(q: Query[Any], tmp_path: Path) -> Tier:
    """An opened real tier able to answer ``q``: SQLite, or an embedded Qdrant."""
    context = _context(tmp_path)
    tier: Tier
    if q.needs is Capability.VECTOR_SEARCH:
        tier = QdrantTier(QdrantConfig(kind="qdrant", path=str(tmp_path / "q")), context)
    elif q.needs is Capability.EPOCH:
        url = os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        tier = RedisTier(RedisConfig(kind="redis", url=url, prefix=tmp_path.name[-40:]), context)
    else:
        tier = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")), context)
    await tier.open()
    return tier


@pytest.mark.parametrize("q", one_of_each(), ids=lambda q: type(q).__name__)
async def test_every_query_is_guarded_by_fallback(
    q: Query[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Any query type, its tier down: a cache or semantic tier answers ``degraded()`` (and
    logs it), the authoritative tier raises; either way the failures open the breaker."""
    inner = await _answering(q, tmp_path)
    flaky = FlakyTier(inner)
    clock = FakeClock()
    cache = Capability.DURABLE not in inner.capabilities
    guarded = Fallback(flaky, on_error="skip" if cache else "fail", retry=ONE_TRY,
                       breaker=TWO_FAILURES, clock=clock)
    try:
        assert await guarded.query(q) == await inner.query(q)  # up: answered by the tier
        flaky.fail()
        for _ in range(3):  # two failures open the circuit; the third is refused outright
            if cache:
                with caplog.at_level(logging.WARNING):
                    assert await guarded.query(q) == q.degraded()
            else:
                with pytest.raises(TierUnavailable):
                    await guarded.query(q)
        assert guarded.breaker is not None and guarded.breaker.state is State.OPEN
        assert flaky.calls.get(type(q).__name__, 0) == 1  # the up call only: none got through
        if cache:
            assert "degraded" in caplog.text
        flaky.heal()
        clock.advance(31)
        assert await guarded.query(q) == await inner.query(q)  # the probe closes it again
        assert guarded.breaker.state is State.CLOSED
    finally:
        await inner.aclose()


@pytest.mark.parametrize(
    "q", [q for q in one_of_each() if Capability.DURABLE in SQLiteTier.capabilities
          and q.needs in SQLiteTier.capabilities],
    ids=lambda q: type(q).__name__,
)
async def test_every_durable_query_sees_queued_writes(q: Query[Any], tmp_path: Path) -> None:
    """Any query of the authoritative tier behind write-behind: the answer is the one the
    tier gives once the writes queued before the query have landed."""
    inner = await _answering(q, tmp_path)
    slow = WriteBehindConfig(batch_size=10_000, interval=3600.0)
    behind = WriteBehind(inner, slow)
    await behind.open()
    try:
        records = [msg("rc", i, "u1", text=f"coffee talk number {i}") for i in range(3)]
        await behind.write([Put(Key("message", r.id), r, 10 + i) for i, r in enumerate(records)])
        answer = await behind.query(q)
        await behind.flush()
        assert answer == await inner.query(q)
    finally:
        await behind.aclose()


@pytest.fixture
async def semantic_stack(
    tmp_path: Path,
) -> AsyncIterator[tuple[MemoryStack, FlakyTier, Fallback, FakeClock]]:
    """lru -> sqlite -> qdrant (embedded), the semantic tier behind ``on_error: skip``
    (its breaker on a ``FakeClock``)."""
    context = _context(tmp_path)
    vectors = FlakyTier(QdrantTier(QdrantConfig(kind="qdrant", path=str(tmp_path / "q")), context))
    clock = FakeClock()
    guarded = Fallback(vectors, on_error="skip", retry=ONE_TRY, breaker=TWO_FAILURES,
                       clock=clock)
    tiers: list[Tier] = [
        LRUTier(LRUConfig(kind="lru"), context),
        SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")), context),
        guarded,
    ]
    for tier in tiers:
        await tier.open()
    memory = MemoryStack(tiers)
    yield memory, vectors, guarded, clock
    await memory.close()


async def test_search_degrades_to_full_text_while_the_semantic_tier_is_down(
    semantic_stack: tuple[MemoryStack, FlakyTier, Fallback, FakeClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The semantic tier goes down: searches keep answering from full text (logged), its
    breaker opens, and once it is back, hybrid ranking returns."""
    memory, vectors, guarded, clock = semantic_stack
    session = await memory.create_session("ana")
    texts = ["we fly to Lisbon in May", "the dog chewed my slipper", "Lisbon trams are yellow"]
    await memory.store_messages(
        [Message(role=MessageRole.USER, content=t) for t in texts], session.conversation_id
    )
    await memory.flush()
    vectors.fail(only=["SearchVector", "Similarities", "write"])
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            found = [m.content for m in await memory.search_messages("Lisbon", user_id="ana")]
            assert sorted(found[:2]) == sorted(t for t in texts if "Lisbon" in t)  # full text
    assert "degraded" in caplog.text
    assert guarded.breaker is not None and guarded.breaker.state is State.OPEN
    health = await memory.health()
    assert health[guarded.name]["metrics"]["fallback"]["circuit"] == "open"
    assert await memory.retrieve_context("ana", "Lisbon", limit=2)  # bruno-core's path too

    vectors.heal()
    clock.advance(31)  # the breaker's probe is due
    asked = vectors.calls.get("SearchVector", 0)
    assert len(await memory.search_messages("Lisbon", user_id="ana")) >= 2
    assert vectors.calls["SearchVector"] == asked + 1  # hybrid again
    assert guarded.breaker.state is State.CLOSED
