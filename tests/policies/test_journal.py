"""Journals: an acknowledged write is journaled, replayed by the next owner, trimmed only
once applied, dead-lettered with its error; a journal that is down never gets a silent ack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from bruno_core.models.memory import MemoryEntry, MemoryType
from redis.asyncio import Redis

from bruno_memory.config.models import JournalConfig, WriteBehindConfig
from bruno_memory.core.errors import CorruptRecord, TierUnavailable
from bruno_memory.core.opcodec import decode_op, encode_op
from bruno_memory.core.ops import EMPTY, Key, Put
from bruno_memory.drivers.redis import connect
from bruno_memory.policies.write_behind.journal import Journal
from bruno_memory.policies.write_behind.journal_file import FileJournal
from bruno_memory.policies.write_behind.journal_redis import RedisJournal
from bruno_memory.policies.write_behind.journals import create_journal
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.testing.faults import FlakyTier, TcpProxy
from bruno_memory.tiers.sql.sqlite import SQLiteConfig, SQLiteTier
from tests.redis_servers import cluster_url

SLOW = WriteBehindConfig(interval=3600, backoff=0.005, max_backoff=0.05, max_attempts=1,
                         drain_timeout=1.0)  # a flush under a loaded host


def memory(text: str = "likes jazz") -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.LONG_TERM, user_id="u1")


def mput(entry: MemoryEntry) -> Put:
    return Put(Key("memory", str(entry.id)), entry)


async def stored(tier: SQLiteTier, entries: list[MemoryEntry]) -> list[Any]:
    keys = [Key("memory", str(e.id)) for e in entries]
    found = await tier.get(keys)
    return [found[k] for k in keys]


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("redis-cluster", marks=pytest.mark.redis)])
def journal_cfg(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> JournalConfig:
    """A journal config of each kind (a Redis Stream on one node or on a Cluster),
    private to the test."""
    if request.param == "file":
        return JournalConfig(kind="file", path=str(tmp_path / "journal"))
    if request.param == "redis-cluster":  # the test's own cluster; a hash tag: one slot
        seed = cluster_url(request)
        tag = off_seed(seed, lambda i: f"{{{namespace}{i}}}")
        return JournalConfig(kind="redis", url=seed, cluster=True, stream=f"{tag}:journal",
                             lease=0.3)
    url = request.getfixturevalue("redis_url")
    return JournalConfig(kind="redis", url=url, stream=f"{namespace}:journal", lease=0.3)


@pytest.fixture
async def cleanup_stream(journal_cfg: JournalConfig) -> AsyncIterator[None]:
    yield
    if journal_cfg.kind == "redis":  # never SCAN a shared server: name the keys
        client = connect(journal_cfg.url or "", cluster=journal_cfg.cluster)
        await client.delete(f"{journal_cfg.stream}", f"{journal_cfg.stream}:dead")
        await client.aclose()


def off_seed(seed_url: str, key: Callable[[int], str]) -> str:
    """The first ``key(i)`` whose slot the seed node does not serve: a client that ignored
    the cluster would fail on it (MOVED)."""
    seed = redis.Redis.from_url(seed_url)
    try:
        for i in range(100):
            try:
                seed.exists(key(i))
            except redis.exceptions.MovedError:
                return key(i)
    finally:
        seed.close()
    raise AssertionError("the seed node serves every slot: not a 3-master cluster")


def journal(cfg: JournalConfig, tmp: Path, owner: str | None = None) -> Journal:
    return create_journal(cfg.model_copy(update={"owner": owner}), "durable", "t", tmp)


async def test_a_closed_writers_journal_is_replayed_by_the_next(
    journal_cfg: JournalConfig, tmp_path: Path, cleanup_stream: None
) -> None:
    """Writes acknowledged while the tier was down are applied by the next process to open."""
    sqlite = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")))
    flaky = FlakyTier(sqlite)
    first = WriteBehind(flaky, SLOW, journal(journal_cfg, tmp_path))
    await first.open()
    flaky.fail(only=["write"])
    entries = [memory(f"m{i}") for i in range(50)]
    for e in entries:
        await first.write([mput(e)])
    await first.aclose()  # cannot drain: the entries stay journaled
    again = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")))
    second = WriteBehind(again, SLOW, journal(journal_cfg, tmp_path))
    await second.open()
    await second.flush()
    assert await stored(again, entries) == entries
    assert second.metrics()["write_behind"]["replayed"] == 50
    await second.aclose()


async def test_a_live_writers_entries_are_left_alone_until_it_is_gone(
    journal_cfg: JournalConfig, tmp_path: Path, cleanup_stream: None
) -> None:
    """Another process claims nothing while the writer lives, everything once it is dead."""
    a, b = journal(journal_cfg, tmp_path, "a"), journal(journal_cfg, tmp_path, "b")
    await a.open()
    await b.open()
    op = encode_op(mput(memory()))
    ids = await a.append([op, op])
    assert await b.reclaim() == []
    if isinstance(a, RedisJournal):  # a SIGKILL leaves the liveness key to expire
        assert a._beat is not None
        a._beat.cancel()
        await asyncio.sleep(journal_cfg.lease + 0.1)
        claimed = await b.reclaim()
    else:
        await a.aclose()
        claimed = await b.reclaim()
    assert [i for i, _ in claimed] == ids and all(d == op for _, d in claimed)
    await b.ack(ids)
    assert await b.reclaim() == []
    if isinstance(a, RedisJournal):
        await a.aclose()
    await b.aclose()


@pytest.fixture
async def journaled(
    journal_cfg: JournalConfig, tmp_path: Path, cleanup_stream: None
) -> AsyncIterator[tuple[WriteBehind, FlakyTier, Journal]]:
    """A write-behind with a journal of each kind over a flaky SQLite tier."""
    flaky = FlakyTier(SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db"))))
    j = journal(journal_cfg, tmp_path)
    wb = WriteBehind(flaky, SLOW, j)
    await wb.open()
    yield wb, flaky, j
    flaky.heal()
    await wb.aclose()


async def test_entries_are_trimmed_only_once_applied(
    journaled: tuple[WriteBehind, FlakyTier, Journal],
) -> None:
    """Journal entries stay while the tier is down and are deleted once applied."""
    wb, flaky, j = journaled
    flaky.fail(only=["write"])
    await wb.write([mput(memory(f"m{i}")) for i in range(10)])
    with pytest.raises(TierUnavailable):
        await wb.flush()
    assert await held(j) == 10
    flaky.heal()
    await wb.flush()
    assert await held(j) == 0


async def held(j: Journal) -> int:
    if isinstance(j, FileJournal):
        return await j._do(lambda: j._db().execute("SELECT COUNT(*) FROM journal").fetchone()[0])
    assert isinstance(j, RedisJournal)
    return int(await j._client.xlen(j.stream))


async def test_an_entry_that_keeps_failing_is_dead_lettered_with_its_error(
    journaled: tuple[WriteBehind, FlakyTier, Journal],
) -> None:
    """The failing op moves to the dead letters with its error; the journal is emptied."""
    wb, flaky, j = journaled
    flaky.fail(times=2, error=CorruptRecord, only=["write"])  # the batch, then the op alone
    entry = memory()
    await wb.write([mput(entry)])
    await wb.flush()
    [dead] = await wb.dead_letters()
    assert "injected failure" in dead.error and decode_op(dead.data).value == entry
    assert await held(j) == 0


@pytest.mark.redis
@pytest.mark.parametrize("on_down", ["reject", "write-through"])
async def test_a_journal_that_is_down_never_gets_a_silent_ack(
    on_down: str, redis_url: str, tmp_path: Path, namespace: str
) -> None:
    """With the journal unreachable a write is rejected, or applied before it is acknowledged."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy("127.0.0.1", port) as proxy:
        cfg = JournalConfig(kind="redis", url=proxy.url("redis://127.0.0.1:{port}/0"),
                            stream=f"{namespace}:journal", timeout=0.5, on_down=on_down)
        sqlite = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")))
        wb = WriteBehind(sqlite, SLOW, journal(cfg, tmp_path), on_journal_down=on_down)
        await wb.open()
        proxy.cut()
        entry = memory()
        if on_down == "reject":
            with pytest.raises(TierUnavailable, match="journal unavailable"):
                await wb.write([mput(entry)])
            assert (await wb.get([Key("memory", str(entry.id))])) == {
                Key("memory", str(entry.id)): EMPTY}
        else:
            await wb.write([mput(entry)])
            assert await stored(sqlite, [entry]) == [entry]
        proxy.restore()
        await wb.aclose()
    client = Redis.from_url(redis_url)
    await client.delete(f"{namespace}:journal", f"{namespace}:journal:dead")
    await client.aclose()


def test_a_redis_journal_shows_no_password() -> None:
    """A journal's repr and its config's dump mask the password of its URL."""
    secret = uuid.uuid4().hex
    cfg = JournalConfig(kind="redis", url=f"redis://user:{secret}@127.0.0.1:6379/0")
    j = create_journal(cfg, "durable", "t", Path("."))
    assert secret not in repr(j) and secret not in repr(cfg) and secret not in str(cfg.model_dump())


async def test_a_redis_journal_sets_no_socket_timeout() -> None:
    """The journal bounds each call with its own ``timeout`` (a deadline), so its
    connections carry no socket timeout; redis-py 8 would give them 5 s, and wrap every
    send on the append path in a task of its own."""
    j = create_journal(JournalConfig(kind="redis", url="redis://127.0.0.1:6379/0"),
                       "durable", "t", Path("."))
    assert isinstance(j, RedisJournal)
    for client in (j._connect(), j._connect(single_connection_client=True)):
        try:
            assert client.connection_pool.connection_kwargs["socket_timeout"] is None
        finally:
            await client.aclose()
