"""``production``'s writes ride the journal's append: one Redis round trip per write when
the journal, the hot cache and the invalidation channel share a server (``core.rides``).

Round trips are counted with ``MONITOR`` on a Redis server of the test's own: commands
sent by clients, and those a script ran (``lua``), in the order the server ran them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole
from redis.asyncio import Redis

from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.ops import Key
from bruno_memory.core.rides import Ride, joined
from bruno_memory.drivers.redis_fuse import fused_call
from bruno_memory.testing.faults import RedisServer
from bruno_memory.tiers.redis.keys import KeyNames
from bruno_memory.tiers.redis.scripts import APPLY, APPLY_CHUNK
from bruno_memory.tiers.redis.tier import _joined
from tests.factories.postgres import production_stack

BACKGROUND = {"PING", "XINFO", "MGET", "CLIENT", "XPENDING", "XREADGROUP", "SUBSCRIBE"}
"""Commands of the stack's background tasks (heartbeat, reclaim, subscription)."""


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
async def production(
    redis_server: RedisServer, postgres_dsn: str, namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Any]:
    """The shipped ``production`` stack on the test's own Redis server."""
    async with production_stack(monkeypatch, redis_server.url, postgres_dsn, namespace) as memory:
        yield memory


@contextlib.asynccontextmanager
async def monitored(url: str) -> AsyncIterator[list[tuple[str, str]]]:
    """``(client type, command)`` of every command the server ran inside the block,
    background tasks' left out."""
    client, marking, marker = Redis.from_url(url), Redis.from_url(url), uuid.uuid4().hex
    await marking.ping()  # connected (HELLO) before the count starts
    seen: list[tuple[str, str]] = []
    async with client.monitor() as monitor:

        async def until(mark: str) -> None:
            while mark not in (info := await monitor.next_command())["command"]:
                seen.append((info["client_type"], info["command"]))

        await marking.echo(marker + "start")
        await asyncio.wait_for(until(marker + "start"), 5)
        seen.clear()
        yield seen
        await marking.echo(marker + "end")
        await asyncio.wait_for(until(marker + "end"), 5)
    for c in (client, marking):
        await c.aclose()
    seen[:] = [(t, c) for t, c in seen if c.split(" ", 1)[0].upper() not in BACKGROUND
               and ":alive:" not in c]


def sent(seen: list[tuple[str, str]]) -> list[str]:
    """The commands clients sent (round trips), by name."""
    return [c.split(" ", 1)[0].upper() for t, c in seen if t != "lua"]


def ran(seen: list[tuple[str, str]]) -> list[str]:
    """The commands scripts ran, by name, in order."""
    return [c.split(" ", 1)[0].upper() for t, c in seen if t == "lua"]


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_production_write_is_one_round_trip_journal_then_cache_then_publish(
    production: Any, redis_server: RedisServer
) -> None:
    """A message and a memory each cost one script call: the journal append first, then
    the hot cache's writes, then the invalidation (last: another process acting on it
    must find the shared cache written)."""
    session = await production.create_session("u1")
    conv = session.conversation_id
    await production.store_message(Message(role=MessageRole.USER, content="first"), conv)
    await production.retrieve_messages(conv, 10)  # the window is cached in Redis now
    memory = MemoryEntry(content="likes tea", memory_type=MemoryType.FACT, user_id="u1")
    for write in (
        lambda: production.store_message(Message(role=MessageRole.USER, content="hi"), conv),
        lambda: production.store_memory(memory),
    ):
        async with monitored(redis_server.url) as seen:
            await write()
        assert sent(seen) == ["EVALSHA"], seen
        inner = ran(seen)
        assert inner[0] == "XADD" and inner[-1] == "PUBLISH", inner
        assert any(c in ("SET", "LLEN", "RPUSH", "LSET") for c in inner), inner  # the cache
    await production.flush()
    assert [m.content for m in await production.retrieve_messages(conv, 10)] == [
        "hi", "first"]
    assert (await production.get_memory(str(memory.id))).content == "likes tea"


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_local_cache_without_invalidation_does_not_stop_the_hot_cache_riding(
    redis_server: RedisServer, postgres_dsn: str, namespace: str
) -> None:
    """``production`` without its LRU's invalidation: the LRU sends nothing, so the hot
    cache's write still rides the journal's append, one round trip per write, and the
    LRU holds the write as well."""
    from bruno_memory import build_memory

    url = redis_server.url
    memory = await build_memory({"namespace": namespace, "tiers": [
        {"name": "local", "kind": "lru", "window": 50},
        {"name": "hot", "kind": "redis", "url": url, "policy": "cache-skip-on-error"},
        {"name": "durable", "kind": "postgres", "dsn": postgres_dsn,
         "policy": "batched-journaled", "journal": {"kind": "redis", "url": url}},
    ]})
    try:
        conv = (await memory.create_session("u1")).conversation_id
        await memory.store_message(Message(role=MessageRole.USER, content="first"), conv)
        await memory.retrieve_messages(conv, 10)  # the window is cached in both caches now
        async with monitored(url) as seen:
            await memory.store_message(Message(role=MessageRole.USER, content="hi"), conv)
        assert sent(seen) == ["EVALSHA"], seen
        inner = ran(seen)
        assert inner[0] == "XADD" and "PUBLISH" not in inner, inner
        assert "RPUSH" in inner, inner  # the hot cache's part: appended to its window
        local = memory.tiers[0]
        assert [r.message.content for r in await local.window(conv, 10)] == ["first", "hi"]
    finally:
        await memory.drop()


@pytest.mark.redis
@pytest.mark.postgres
async def test_concurrent_writes_share_one_round_trip(
    production: Any, redis_server: RedisServer
) -> None:
    """Writes arriving together ride one script call (group commit kept), their
    invalidations one message per call."""
    session = await production.create_session("u1")
    conv = session.conversation_id
    await production.store_message(Message(role=MessageRole.USER, content="warm"), conv)
    async with monitored(redis_server.url) as seen:
        await asyncio.gather(*(
            production.store_message(Message(role=MessageRole.USER, content=f"m{i}"), conv)
            for i in range(20)))
    assert len(sent(seen)) < 20, sent(seen)
    assert set(sent(seen)) == {"EVALSHA"}
    assert ran(seen).count("XADD") == 20
    assert ran(seen).count("PUBLISH") == len(sent(seen))


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_failing_cache_part_fails_neither_the_write_nor_the_reads(
    production: Any, redis_server: RedisServer, namespace: str
) -> None:
    """The hot cache's part fails on the server (its window key holds a string): the
    write is still acknowledged and the invalidation still published; the cache owes
    the write and serves nothing stale."""
    session = await production.create_session("u1")
    conv = session.conversation_id
    await production.store_message(Message(role=MessageRole.USER, content="first"), conv)
    await production.flush()
    raw = Redis.from_url(redis_server.url)
    await raw.set(KeyNames(namespace).window(conv), "not a list")
    async with monitored(redis_server.url) as seen:
        await production.store_message(Message(role=MessageRole.USER, content="second"), conv)
    assert sent(seen) == ["EVALSHA"] and ran(seen)[-1] == "PUBLISH", seen
    await raw.delete(KeyNames(namespace).window(conv))
    await raw.aclose()
    await production.flush()
    got = [m.content for m in await production.retrieve_messages(conv, 10)]
    assert got == ["second", "first"]


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_refused_append_reaches_no_cache_and_publishes_nothing(
    production: Any, redis_server: RedisServer, namespace: str
) -> None:
    """The journal's part fails (its stream key holds a string): the write is refused,
    and the rides after it never ran: no cache write, no invalidation."""
    await production.create_session("u1")
    raw = Redis.from_url(redis_server.url)
    stream = f"journal:{{{namespace}:durable}}"
    await raw.delete(stream)
    await raw.set(stream, "not a stream")
    memory = MemoryEntry(content="never", memory_type=MemoryType.FACT, user_id="u1")
    async with monitored(redis_server.url) as seen:
        with pytest.raises(TierUnavailable):
            await production.store_memory(memory)
    assert "PUBLISH" not in ran(seen) and "SET" not in ran(seen), seen
    assert await raw.get(KeyNames(namespace).record(Key("memory", str(memory.id)))) is None
    await raw.delete(stream)
    await raw.aclose()


# -- joining and fusing (pure) -----------------------------------------------------------


def _ride(script: str, n: int) -> Ride:
    return Ride("redis://x", script, (), (f"{script}{n}",), n,
                join=lambda rides: [(Ride("redis://x", script, (), ("+".join(
                    str(r.item) for r in rides),)), list(rides))])


def test_rides_of_one_kind_join_where_the_last_was_and_all_get_the_answer() -> None:
    """Two writes' cache parts and publications become one part of each kind, the kinds
    in the order they came (every cache part before the publication)."""
    rides = [_ride("cache", 1), _ride("pub", 1), _ride("cache", 2), _ride("pub", 2)]
    parts = joined(rides)
    assert [(p.script, p.args, len(answered)) for p, answered in parts] == [
        ("cache", ("1+2",), 2), ("pub", ("1+2",), 2)]
    lone = Ride("redis://x", "alone", ("k",), ("a",))
    assert joined([lone]) == [(lone, [lone])]


def test_joined_cache_parts_hold_at_most_a_script_chunk_of_commands() -> None:
    """Many concurrent writes' cache parts split into ``APPLY`` parts of at most
    ``APPLY_CHUNK`` commands, in order, each answering for its own writes."""
    rides = [Ride("redis://x", APPLY, (), (orjson.dumps([["SET", f"k{i}.{j}", "v"]
                                                         for j in range(3)]),),
                  item=3, join=_joined) for i in range(100)]
    parts = joined(rides)
    assert len(parts) == 3
    sent = [orjson.loads(part.args[0]) for part, _ in parts]
    assert all(len(cmds) <= APPLY_CHUNK for cmds in sent)
    assert [c[1] for cmds in sent for c in cmds] == [f"k{i}.{j}" for i in range(100)
                                                      for j in range(3)]
    assert [r for _, answered in parts for r in answered] == rides


def test_a_fused_call_lays_out_each_part_and_reuses_a_script_once() -> None:
    text, sha, call = fused_call([("A", ("k1",), ("a", "b")), ("B", (), ("c",)),
                                  ("A", ("k2",), ())])
    assert text.count("function(KEYS, ARGV)") == 2 and len(sha) == 40
    assert call == [2, "k1", "k2", 3, 1, 1, 2, 2, 0, 1, 1, 1, 0, "a", "b", "c"]
