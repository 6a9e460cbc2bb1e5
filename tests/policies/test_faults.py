"""Fault tests: real processes killed, real servers stopped, real connections cut.

Every Redis server here is the test's own (a spare port, stopped by its pid); PostgreSQL
is only ever cut off through a proxy, never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from redis.asyncio import Redis

from bruno_memory import build_memory
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.testing.faults import RedisServer, TcpProxy, free_port
from bruno_memory.testing.worker import Worker, message, msg_id
from tests.factories.postgres import drop_schema, postgres

STORED = 10_000
KILL_AFTER = 4_500  # acknowledgements read before the SIGKILL
BATCH = 3_000  # so at the kill some batches are applied and some ops are only journaled


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a spare port."""
    with RedisServer() as server:
        yield server


def postgres_port(dsn: str) -> int:
    """The port of a ``postgresql://...`` DSN (5432 when it names none)."""
    return int(dsn.rsplit(":", 1)[1].split("/")[0]) if dsn.count(":") > 1 else 5432


def with_port(dsn: str, port: int) -> str:
    """``dsn`` pointing at ``127.0.0.1:port`` instead of its own host."""
    scheme, _, rest = dsn.partition("://")
    user, _, hostpath = rest.rpartition("@")
    path = hostpath.partition("/")[2]
    return f"{scheme}://{user + '@' if user else ''}127.0.0.1:{port}/{path}"


async def sqlite_ids(path: Path, conversation: str) -> list[str]:
    def read() -> list[str]:
        with sqlite3.connect(path) as db:
            sql = "SELECT id FROM messages WHERE conversation_id = ?"
            return [r[0] for r in db.execute(sql, (conversation,))]
    return await asyncio.to_thread(read)


async def postgres_ids(dsn: str, schema: str, conversation: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        sql = f'SELECT id FROM "{schema}".messages WHERE conversation_id = $1'
        return [r[0] for r in await conn.fetch(sql, conversation)]
    finally:
        await conn.close()


# -- SIGKILL while writing through write-behind ------------------------------------------


@pytest.mark.parametrize("kind", ["file", pytest.param(
    "redis", marks=[pytest.mark.redis, pytest.mark.postgres])])
async def test_sigkill_mid_run_loses_no_acknowledged_write(
    kind: str, tmp_path: Path, namespace: str, request: pytest.FixtureRequest
) -> None:
    """A child writing 10,000 messages is SIGKILLed; after a restart every acknowledged
    message is in the durable tier exactly once."""
    server = None
    if kind == "file":
        durable: dict[str, Any] = {"kind": "sqlite", "path": str(tmp_path / "d.db")}
        journal: dict[str, Any] = {"kind": "file", "path": str(tmp_path / "journal")}
    else:
        server = request.getfixturevalue("redis_server")
        durable = postgres(request, namespace)
        journal = {"kind": "redis", "url": server.url, "lease": "1s"}
    cfg = {"namespace": namespace, "tiers": [{
        "name": "durable", **durable, "write": "write-behind", "journal": journal,
        "write_behind": {"interval": "1h", "batch_size": BATCH, "max_pending": 20_000}}]}
    try:
        acked = await run_and_kill(cfg)
        if server is not None:
            await lease_expired(server.url)
        restarted = await Worker(cfg).start()
        health = (await restarted.call(cmd="health"))["health"]
        await restarted.call(cmd="flush")
        await restarted.stop()
        replayed = health["durable"]["metrics"]["write_behind"]["replayed"]
        if kind == "file":
            ids = await sqlite_ids(tmp_path / "d.db", "c")
        else:
            ids = await postgres_ids(request.getfixturevalue("postgres_dsn"), namespace, "c")
        assert replayed > 0  # some acknowledged writes were only in the journal
        assert acked <= set(ids) and len(ids) == len(set(ids))
    finally:
        if kind == "redis":
            await drop_schema(request.getfixturevalue("postgres_dsn"), namespace)


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_killed_writers_acknowledged_writes_are_read_at_once_after_a_restart(
    namespace: str, request: pytest.FixtureRequest, redis_server: RedisServer
) -> None:
    """A writer with a Redis journal is SIGKILLed; a process opened right after, well within
    the dead writer's 30 s lease, reads every acknowledged message on its first read: the
    writer's vanished connection says it is dead, no lease has to expire."""
    journal = {"kind": "redis", "url": redis_server.url, "lease": "30s"}
    cfg = {"namespace": namespace, "tiers": [{
        "name": "durable", **postgres(request, namespace), "write": "write-behind",
        "journal": journal,
        "write_behind": {"interval": "1h", "batch_size": BATCH, "max_pending": 20_000}}]}
    try:
        acked = await run_and_kill(cfg)
        restarted = await Worker(cfg).start()
        try:
            found = await restarted.call(cmd="window", conversation="c", limit=None)
            assert acked <= set(found["ids"])
        finally:
            await restarted.stop()
    finally:
        await drop_schema(request.getfixturevalue("postgres_dsn"), namespace)


async def run_and_kill(cfg: dict[str, Any]) -> set[str]:
    """Start a writer of ``STORED`` messages, SIGKILL it mid-run; the ids it acknowledged."""
    writer = await Worker(cfg).start()
    await writer.send(cmd="store", conversation="c", count=STORED, concurrency=4)
    acked: set[str] = set()
    while len(acked) < KILL_AFTER:
        answer = await writer.read()
        assert "ack" in answer, answer
        acked.add(answer["ack"])
    writer.kill()
    assert writer.proc is not None
    await writer.proc.wait()
    assert len(acked) < STORED
    return acked


async def lease_expired(url: str) -> None:
    """Wait until the killed writer's liveness key has expired (its lease)."""
    client = Redis.from_url(url)
    try:
        for _ in range(100):
            if not [k async for k in client.scan_iter(match="*:alive:*")]:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the dead writer's lease never expired")
    finally:
        await client.aclose()


# -- the Redis tier stops mid-run --------------------------------------------------------


def entry(i: int, text: str) -> MemoryEntry:
    return MemoryEntry(id=memory_id(i), content=text, memory_type=MemoryType.LONG_TERM,
                       user_id="ann")


def memory_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"m{i}"))


@pytest.mark.parametrize("breaker", [
    pytest.param({"breaker": {"failures": 2, "reset": "200ms"}}, id="circuit-opens:clear"),
    pytest.param({}, id="no-circuit:owed-drops"),
    pytest.param({"on_error": "fail"}, id="no-policy:the-engine-owes-the-drops"),
])
async def test_a_redis_outage_degrades_to_sql_and_serves_nothing_stale_after(
    breaker: dict[str, Any], tmp_path: Path, namespace: str
) -> None:
    """With Redis stopped, reads and writes go on through SQLite (a write SQLite committed
    never fails because Redis did, whatever Redis's policy); when Redis comes back with its
    old data, no read returns what changed during the outage."""
    with RedisServer(persist=True) as server:
        cfg = {"namespace": namespace, "tiers": [
            {"name": "hot", "kind": "redis", "url": server.url, "on_error": "skip",
             "socket_timeout": "300ms", "connect_timeout": "300ms", **breaker},
            {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db")}]}
        memory = await build_memory(cfg)
        try:
            await outage_and_return(memory, server)
        finally:
            await memory.close()


async def outage_and_return(memory: Any, server: RedisServer) -> None:
    await memory.get_context("ann", "chat")
    for i in range(10):
        await memory.store_memory(entry(i, "before"))
    for i in range(5):
        await memory.store_message(message("chat", i), "chat")
    await expect(memory, {i: "before" for i in range(10)}, 5)  # now cached in Redis
    server.stop()
    for i in range(5):
        await memory.store_memory(entry(i, "during"))
    for i in range(5, 8):
        await memory.delete_memory(memory_id(i))
    for i in range(5, 8):
        await memory.store_message(message("chat", i), "chat")
    during = {**{i: "during" for i in range(5)}, **dict.fromkeys(range(5, 8)),
              **{i: "before" for i in (8, 9)}}
    await expect(memory, during, 8)  # served by SQLite
    server.start()  # back, with its pre-outage data
    for _ in range(20):  # across the breaker's probe and after it
        await expect(memory, during, 8)
        await asyncio.sleep(0.02)
    fallback = (await memory.health())["hot"].get("metrics", {}).get("fallback", {})
    assert fallback.get("circuit", "none") in ("closed", "none")


async def expect(memory: Any, contents: dict[int, str | None], messages: int) -> None:
    for i, text in contents.items():
        found = await memory.get_memory(memory_id(i))
        assert (found.content if found else None) == text, (i, text)
    got = await memory.retrieve_messages("chat", 100)
    assert [str(m.id) for m in got] == [msg_id("chat", i) for i in reversed(range(messages))]


async def test_a_cache_down_at_open_opens_degraded_and_is_taken_back(
    tmp_path: Path, namespace: str
) -> None:
    """Redis is not running when the stack opens: build_memory succeeds, reads and writes go
    through SQLite; once Redis answers, the stack opens it and serves from it again."""
    port = free_port()
    cfg = {"namespace": namespace, "tiers": [
        {"name": "hot", "kind": "redis", "url": f"redis://127.0.0.1:{port}/0",
         "policy": "cache-skip-on-error", "connect_timeout": "300ms",
         "breaker": {"failures": 2, "reset": "100ms"}},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db")}]}
    memory = await build_memory(cfg)
    try:
        assert (await memory.health())["hot"]["status"] == "down"
        await memory.get_context("ann", "chat")
        await memory.store_memory(entry(1, "while redis was away"))
        await expect(memory, {1: "while redis was away"}, 0)
        with RedisServer(port=port):
            for _ in range(100):  # the breaker's probe opens it: reads fill it again
                await asyncio.sleep(0.05)
                await expect(memory, {1: "while redis was away"}, 0)
                if (await memory.health())["hot"]["hits"] > 0:
                    break
            else:
                raise AssertionError("the stack never took Redis back")
            await memory.store_memory(entry(1, "with redis back"))
            await expect(memory, {1: "with redis back"}, 0)
    finally:
        await memory.close()


async def test_drop_reaches_a_cache_that_was_down_at_open(tmp_path: Path, namespace: str) -> None:
    """A stack whose Redis was down at open: drop says so while Redis is still down (and
    leaves SQLite alone), and once Redis answers, drop opens it and erases its keys."""
    port = free_port()
    cfg = {"namespace": namespace, "tiers": [
        {"name": "hot", "kind": "redis", "url": f"redis://127.0.0.1:{port}/0",
         "policy": "cache-skip-on-error", "connect_timeout": "300ms"},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db")}]}
    down = await build_memory(cfg)
    with pytest.raises(TierUnavailable, match="hot"):
        await down.drop()
    assert (tmp_path / "d.db").exists()
    memory = await build_memory(cfg)
    with RedisServer(port=port) as server:
        raw = Redis.from_url(server.url)
        try:
            await raw.set(f"{{{namespace}:memory:left-behind}}", b"x")
            await memory.drop()
            assert await raw.keys(f"{{{namespace}:*") == []
        finally:
            await raw.aclose()
    assert not (tmp_path / "d.db").exists()


def _redis_over_sql(ns: str, url: str, tmp: Path, *, lru: bool = False) -> dict[str, Any]:
    """Redis (cache-skip-on-error) over SQLite, under an LRU when asked (single-node's shape)."""
    hot = {"name": "hot", "kind": "redis", "url": url, "policy": "cache-skip-on-error",
           "socket_timeout": "300ms", "connect_timeout": "300ms"}
    local = [{"name": "local", "kind": "lru", "ttl": "30s"}] if lru else []
    durable = {"name": "durable", "kind": "sqlite", "path": str(tmp / "d.db")}
    return {"namespace": ns, "tiers": [*local, hot, durable]}


async def _reads(worker: Worker, mid: str, content: str, failure: str) -> None:
    """Wait (4 s at most: the epoch watch looks every second) until ``worker`` reads it."""
    for _ in range(40):
        if (await worker.call(cmd="get_memory", id=mid))["memory"] == content:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(failure)


@pytest.mark.parametrize("aof", [True, False], ids=["restarted-with-its-data", "empty"])
@pytest.mark.parametrize("ending", ["closes", "is-killed"])
async def test_after_a_redis_restart_every_process_reads_what_sql_holds(
    aof: bool, ending: str, tmp_path: Path, namespace: str
) -> None:
    """Writer A changes a memory while Redis is down (Redis skipped, SQLite committed) and
    then closes, or is killed, so nobody remembers Redis missed it; Redis comes back with
    its old data, or empty. Process B, idle through the outage, reads the new value within
    a couple of seconds: its epoch watch sees Redis go and come back (a new run_id), and
    the cache is cleared before B serves from it again."""
    with RedisServer(persist=aof) as server:
        cfg = _redis_over_sql(namespace, server.url, tmp_path, lru=True)
        a, b = await Worker(cfg).start(), await Worker(cfg).start()
        try:
            mid = str(uuid.uuid4())
            await a.call(cmd="store_memory", id=mid, user="ann", content="before")
            assert (await b.call(cmd="get_memory", id=mid))["memory"] == "before"  # cached
            server.stop()
            await a.call(cmd="store_memory", id=mid, user="ann", content="during")
            if ending == "closes":
                await a.stop()
            else:
                a.kill()
            server.start()
            await _reads(b, mid, "during", "B kept serving what Redis held before its restart")
        finally:
            await b.stop()
            if ending == "closes":
                with contextlib.suppress(Exception):
                    await a.stop()


async def test_after_a_network_cut_from_redis_every_process_reads_what_sql_holds(
    tmp_path: Path, namespace: str, redis_server: RedisServer
) -> None:
    """Redis stays up but is cut off (it keeps its data, its run_id does not change):
    writer A changes a memory during the cut and is killed; once Redis is reachable again,
    process B reads the new value within a couple of seconds (it saw Redis unreachable)."""
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        cfg = _redis_over_sql(namespace, proxy.url("redis://127.0.0.1:{port}/0"), tmp_path)
        a, b = await Worker(cfg).start(), await Worker(cfg).start()
        try:
            mid = str(uuid.uuid4())
            await a.call(cmd="store_memory", id=mid, user="ann", content="before")
            assert (await b.call(cmd="get_memory", id=mid))["memory"] == "before"  # cached
            proxy.cut()
            await a.call(cmd="store_memory", id=mid, user="ann", content="during")
            a.kill()
            await asyncio.sleep(1.5)  # B's watch looks while Redis is unreachable
            proxy.restore()
            await _reads(b, mid, "during", "B kept serving what Redis held before the cut")
        finally:
            proxy.restore()
            await b.stop()


# -- PostgreSQL unreachable with on_error: queue -----------------------------------------


@pytest.mark.postgres
async def test_postgres_unreachable_queues_writes_in_the_journal_and_all_land(
    request: pytest.FixtureRequest, namespace: str, redis_server: RedisServer
) -> None:
    """Cut off from PostgreSQL, writes are acknowledged from the Redis journal; when the
    connection returns, every one of them lands."""
    dsn = request.getfixturevalue("postgres_dsn")
    port = postgres_port(dsn)
    with TcpProxy("127.0.0.1", port) as proxy:
        tier = {**postgres(request, namespace), "dsn": with_port(dsn, proxy.port),
                "name": "durable", "connect_timeout": "1s", "statement_timeout": "2s",
                "on_error": "queue", "journal": {"kind": "redis", "url": redis_server.url},
                "retry": {"attempts": 2, "budget": "1s"},
                "breaker": {"failures": 2, "reset": "300ms"},
                "write_behind": {"backoff": "50ms", "max_backoff": "300ms"}}
        memory = await build_memory({"namespace": namespace, "tiers": [tier]})
        try:
            await memory.get_context("ann", "q")  # the conversation's owner is known from here
            for i in range(50):
                await memory.store_message(message("q", i), "q")
            proxy.cut()
            for i in range(50, 250):
                await memory.store_message(message("q", i), "q")  # acknowledged: journaled
            queue = (await memory.health())["durable"]["metrics"]["write_behind"]
            assert queue["queue_depth"] > 0 and queue["down"]
            proxy.restore()
            await memory.flush()
        finally:
            proxy.restore()
            await memory.close()
    try:
        ids = await postgres_ids(dsn, namespace, "q")
        assert sorted(ids) == sorted(msg_id("q", i) for i in range(250))
    finally:
        await drop_schema(dsn, namespace)


@pytest.mark.postgres
async def test_reads_needing_queued_writes_fail_fast_while_postgres_is_down(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """batched-journaled over an unreachable PostgreSQL: a read that must see queued writes
    (search, statistics, bruno-core's retrieve_context) fails at once with TierUnavailable
    instead of waiting out the 30 s drain timeout; once PostgreSQL is back, all land."""
    dsn = request.getfixturevalue("postgres_dsn")
    port = postgres_port(dsn)
    with TcpProxy("127.0.0.1", port) as proxy:
        tier = {**postgres(request, namespace), "dsn": with_port(dsn, proxy.port),
                "name": "durable", "connect_timeout": "1s", "statement_timeout": "2s",
                "policy": "batched-journaled",
                "journal": {"kind": "file", "path": str(tmp_path / "j.journal")}}
        memory = await build_memory({"namespace": namespace, "tiers": [tier]})
        try:
            await memory.get_context("ann", "ff")
            await memory.flush()
            proxy.cut()
            for i in range(5):
                await memory.store_message(message("ff", i), "ff")  # acknowledged: journaled
            await _until_down(memory)
            for call in (
                memory.search_messages("message", user_id="ann"),
                memory.get_statistics("ann"),
                memory.retrieve_context("ann", "message"),
            ):
                with pytest.raises(TierUnavailable, match="cannot land while the tier is down"):
                    await asyncio.wait_for(call, 10)  # far below the 30 s drain timeout
            proxy.restore()
            await memory.flush()
            assert len(await memory.search_messages("message", user_id="ann")) == 5
        finally:
            proxy.restore()
            await memory.close()
    await drop_schema(dsn, namespace)


async def _until_down(memory: Any) -> None:
    """Wait until the write-behind queue has seen its tier fail (a flush was tried)."""
    for _ in range(200):
        if (await memory.health())["durable"]["metrics"]["write_behind"]["down"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the write-behind queue never saw PostgreSQL down")


@pytest.mark.postgres
async def test_a_stalled_postgres_is_bounded_by_the_configured_timeouts(
    request: pytest.FixtureRequest, namespace: str
) -> None:
    """PostgreSQL stops answering mid-session (packets swallowed, connections kept): a
    write fails with TierUnavailable within statement_timeout + connect_timeout, the retry
    and the wait for a connection included, instead of several times that."""
    dsn = request.getfixturevalue("postgres_dsn")
    port = postgres_port(dsn)
    with TcpProxy("127.0.0.1", port) as proxy:
        tier = {**postgres(request, namespace), "dsn": with_port(dsn, proxy.port),
                "name": "durable", "connect_timeout": "1s", "statement_timeout": "1s"}
        memory = await build_memory({"namespace": namespace, "tiers": [{"kind": "lru"}, tier]})
        try:
            await memory.get_context("ann", "st")
            await memory.store_message(message("st", 0), "st")
            proxy.stall()
            with pytest.raises(TierUnavailable):
                await asyncio.wait_for(memory.store_message(message("st", 1), "st"), 3.5)
        finally:
            proxy.restore()
            await memory.close()
    await drop_schema(dsn, namespace)


# -- two processes with local caches -----------------------------------------------------

MAX_LAG = 0.5


def coherent(tmp: Path, ns: str, redis_url: str, channel_url: str) -> dict[str, Any]:
    return {"namespace": ns, "tiers": [
        {"name": "local", "kind": "lru",
         "invalidation": {"url": channel_url, "max_lag": f"{MAX_LAG}s"}},
        {"name": "hot", "kind": "redis", "url": redis_url},
        {"name": "durable", "kind": "sqlite", "path": str(tmp / "d.db")}]}


async def test_a_delete_in_one_process_stops_being_served_by_another_within_the_bound(
    tmp_path: Path, namespace: str, redis_server: RedisServer
) -> None:
    """Process B stops serving a memory deleted (or changed) by process A within max_lag."""
    cfg = coherent(tmp_path, namespace, redis_server.url, redis_server.url)
    a, b = await Worker(cfg).start(), await Worker(cfg).start()
    try:
        gone, changed = str(uuid.uuid4()), str(uuid.uuid4())
        for mid in (gone, changed):
            await a.call(cmd="store_memory", id=mid, user="ann", content="v1")
            assert (await b.call(cmd="get_memory", id=mid))["memory"] == "v1"  # cached in B
        await a.call(cmd="delete_memory", id=gone)
        await a.call(cmd="store_memory", id=changed, user="ann", content="v2")
        await asyncio.sleep(MAX_LAG)
        assert (await b.call(cmd="get_memory", id=gone))["memory"] is None
        assert (await b.call(cmd="get_memory", id=changed))["memory"] == "v2"
    finally:
        await a.stop()
        await b.stop()


async def test_a_process_that_loses_its_invalidation_channel_stops_serving_its_cache(
    tmp_path: Path, namespace: str, redis_server: RedisServer
) -> None:
    """With B's channel silently dead, B still stops serving A's deleted memory in time."""
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        channel = proxy.url("redis://127.0.0.1:{port}/0")
        a = await Worker(coherent(tmp_path, namespace, redis_server.url, redis_server.url)).start()
        b = await Worker(coherent(tmp_path, namespace, redis_server.url, channel)).start()
        try:
            mid = str(uuid.uuid4())
            await a.call(cmd="store_memory", id=mid, user="ann", content="v1")
            assert (await b.call(cmd="get_memory", id=mid))["memory"] == "v1"
            proxy.hang()  # B hears nothing more, not even an error
            await a.call(cmd="delete_memory", id=mid)
            await asyncio.sleep(MAX_LAG)
            assert (await b.call(cmd="get_memory", id=mid))["memory"] is None
        finally:
            proxy.restore()
            await a.stop()
            await b.stop()


async def test_a_write_behind_flush_reaches_other_processes_caches_without_redis(
    tmp_path: Path, namespace: str, redis_server: RedisServer
) -> None:
    """LRUs with pub/sub invalidation over a write-behind SQLite tier, no Redis tier: a window
    process B refilled from SQLite before A's queued message landed is dropped once it
    lands, so B sees the message within max_lag of A's flush."""
    cfg = {"namespace": namespace, "tiers": [
        {"name": "local", "kind": "lru",
         "invalidation": {"url": redis_server.url, "max_lag": f"{MAX_LAG}s"}},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db"),
         "write": "write-behind", "write_behind": {"interval": "30s"}}]}
    a, b = await Worker(cfg).start(), await Worker(cfg).start()
    try:
        await a.call(cmd="session", user="ann", conversation="wb")
        await _stored(a, "wb", 0)
        await a.call(cmd="flush")
        first = [msg_id("wb", 0)]
        assert (await b.call(cmd="window", conversation="wb", limit=10))["ids"] == first
        await _stored(a, "wb", 1)  # queued in A
        await asyncio.sleep(MAX_LAG)  # A's write-time drop reached B...
        # ...so B reads SQLite again, which does not hold it yet: B caches the old window
        assert (await b.call(cmd="window", conversation="wb", limit=10))["ids"] == first
        await a.call(cmd="flush")  # it lands: every process must drop what it filled before
        await asyncio.sleep(MAX_LAG)
        both = [msg_id("wb", 1), msg_id("wb", 0)]
        assert (await b.call(cmd="window", conversation="wb", limit=10))["ids"] == both
    finally:
        await a.stop()
        await b.stop()


async def test_a_dead_writers_replayed_writes_reach_every_processs_cache(
    tmp_path: Path, namespace: str, redis_server: RedisServer
) -> None:
    """Process B caches a conversation's window; writer A is SIGKILLed with acknowledged
    messages only in its journal; C opens, replays and flushes them: B serves them within
    max_lag of that flush (C's settle drops B's window through invalidation)."""
    cfg = {"namespace": namespace, "tiers": [
        {"name": "local", "kind": "lru",
         "invalidation": {"url": redis_server.url, "max_lag": f"{MAX_LAG}s"}},
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db"),
         "write": "write-behind", "write_behind": {"interval": "1h", "max_pending": 20_000},
         "journal": {"kind": "file", "path": str(tmp_path / "journal")}}]}
    b = await Worker(cfg).start()
    try:
        assert (await b.call(cmd="window", conversation="c", limit=None))["ids"] == []
        acked = await run_and_kill(cfg)
        c = await Worker(cfg).start()  # takes over the dead writer's journal entries
        try:
            await c.call(cmd="flush")
        finally:
            await c.stop()
        await asyncio.sleep(MAX_LAG)
        assert acked <= set((await b.call(cmd="window", conversation="c", limit=None))["ids"])
    finally:
        await b.stop()


async def _stored(worker: Worker, conversation: str, i: int) -> None:
    """Have ``worker`` store message ``i`` and read its answers up to ``done``."""
    await worker.send(cmd="store", conversation=conversation, start=i, count=1)
    while "done" not in await worker.read():
        pass


# -- graceful close under load -----------------------------------------------------------


def _configs() -> list[Any]:
    behind = {"write": "write-behind", "write_behind": {"interval": "100ms"}}
    redis_marks = [pytest.mark.redis]
    return [
        pytest.param({}, id="write-through"),
        pytest.param(behind, id="write-behind"),
        pytest.param({**behind, "journal": {"kind": "file"}}, id="write-behind+file-journal"),
        pytest.param({**behind, "journal": "redis"}, id="write-behind+redis-journal",
                     marks=redis_marks),
        pytest.param({"on_error": "queue", "journal": {"kind": "file"}},
                     id="queue-on-error+file-journal"),
        pytest.param({**behind, "journal": "redis", "durable": "postgres"},
                     id="postgres+write-behind+redis-journal",
                     marks=[*redis_marks, pytest.mark.postgres]),
        pytest.param({**behind, "write_behind": {"flushers": 2, "batch_size": 50},
                      "journal": "redis", "durable": "postgres"},
                     id="postgres+two-flushers+redis-journal",
                     marks=[*redis_marks, pytest.mark.postgres]),
    ]


@pytest.mark.parametrize("policy", _configs())
async def test_graceful_close_under_load_loses_nothing(
    policy: dict[str, Any], tmp_path: Path, namespace: str, request: pytest.FixtureRequest,
    redis_server: RedisServer,
) -> None:
    """Closing while eight writers keep writing: every acknowledged write is durable."""
    policy = dict(policy)
    on_postgres = policy.pop("durable", None) == "postgres"
    if policy.get("journal") == "redis":
        policy["journal"] = {"kind": "redis", "url": redis_server.url}
    elif policy.get("journal"):
        policy["journal"] = {**policy["journal"], "path": str(tmp_path / "journal")}
    durable = postgres(request, namespace) if on_postgres else {
        "kind": "sqlite", "path": str(tmp_path / "d.db")}
    memory = await build_memory({"namespace": namespace, "tiers": [
        {"kind": "lru"}, {"name": "durable", **durable, **policy}]})
    acked: list[str] = []
    under_way = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(100_000):
            await memory.store_message(message(f"w{w}", i), f"w{w}")
            acked.append(msg_id(f"w{w}", i))
            if len(acked) >= 200:
                under_way.set()

    writers = [asyncio.create_task(writer(w)) for w in range(8)]
    # Close once the writers are well under way, however slow the machine is.
    await asyncio.wait_for(under_way.wait(), 60)
    await memory.close()
    await asyncio.gather(*writers, return_exceptions=True)
    try:
        if on_postgres:
            dsn = request.getfixturevalue("postgres_dsn")
            ids = {i for w in range(8) for i in await postgres_ids(dsn, namespace, f"w{w}")}
        else:
            ids = {i for w in range(8) for i in await sqlite_ids(tmp_path / "d.db", f"w{w}")}
        assert len(acked) >= 200 and set(acked) <= ids
    finally:
        if on_postgres:
            await drop_schema(request.getfixturevalue("postgres_dsn"), namespace)
