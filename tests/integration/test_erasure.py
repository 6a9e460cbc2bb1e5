"""Erasure that reaches everything (DESIGN property 3): after ``forget_user``,
``delete_memory`` or ``clear_history`` every store the stack owns is inspected directly
(raw SQL, raw redis-py, the vector tier's own ``get``, the journal's file and stream, the
other process's reads): nothing removed is left, and a tombstone keeps no user id."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole
from pydantic import BaseModel
from redis.asyncio import Redis

from bruno_memory import build_memory
from bruno_memory.config.loader import interpolate, read
from bruno_memory.config.models import JournalConfig, WriteBehindConfig
from bruno_memory.core.errors import CorruptRecord
from bruno_memory.core.ops import Key
from bruno_memory.policies.write_behind.journal_file import FileJournal
from bruno_memory.policies.write_behind.journal_redis import RedisJournal
from bruno_memory.policies.write_behind.journals import create_journal
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.testing.faults import FlakyTier
from bruno_memory.testing.worker import Worker, msg_id
from bruno_memory.tiers.lru import LRUConfig, LRUTier
from bruno_memory.tiers.redis.keys import KeyNames
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.sqlite import SQLiteConfig, SQLiteTier
from bruno_memory.tiers.vector.base import VectorTier
from bruno_memory.tiers.window import Window
from tests.factories import attribute, layers
from tests.factories.postgres import drop_schema
from tests.factories.redis import drop_stream

ROOT = Path(__file__).resolve().parents[2]
SECRET = "zebra-passport-4471"  # only the erased records hold it
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TABLES = ("messages", "sessions", "users", "memories", "tombstones")
Erase = Callable[[Any, "Seeded"], Awaitable[None]]


def say(text: str, i: int = 0) -> Message:
    return Message(role=MessageRole.USER, content=text, timestamp=T0 + timedelta(seconds=i))


class Seeded:
    """alice's data in every shape: a message stored before her session, one after, both
    read (cached windows), a memory read by id; bob's conversation, which stays."""

    conversation: str
    bob: str
    fact: MemoryEntry

    @classmethod
    async def into(cls, memory: Any) -> Seeded:
        s = cls()
        s.conversation = f"conv-{uuid.uuid4()}"
        await memory.store_message(say(f"{SECRET} before her session", 0), s.conversation)
        await memory.retrieve_messages(s.conversation)
        await memory.get_context("alice", s.conversation)
        await memory.store_message(say(f"{SECRET} in her session", 1), s.conversation)
        await memory.retrieve_messages(s.conversation)
        s.fact = MemoryEntry(content=f"{SECRET} fact", user_id="alice", memory_type=MemoryType.FACT)
        await memory.store_memory(s.fact)
        await memory.get_memory(str(s.fact.id))
        s.bob = str((await memory.create_session("bob")).conversation_id)
        await memory.store_message(say("bob keeps this"), s.bob)
        return s


async def forget(memory: Any, s: Seeded) -> None:
    await memory.forget_user("alice")


async def delete_and_clear(memory: Any, s: Seeded) -> None:
    await memory.delete_memory(str(s.fact.id))
    await memory.clear_conversation(s.conversation)


ERASURES = [
    pytest.param(forget, id="forget_user"),
    pytest.param(delete_and_clear, id="delete_memory+clear_history"),
]


# -- opening the shipped stacks ---------------------------------------------------------


def shipped_config(name: str, request: pytest.FixtureRequest, ns: str, tmp: Path) -> Any:
    """A shipped stack (``tiers/<name>.yaml``) as a dict, for this test's services."""
    env = {
        "BRUNO_MEMORY_DB": str(tmp / "memory.db"),
        "BRUNO_MEMORY_DATA": str(tmp / "data"),
        "BRUNO_MEMORY_NAMESPACE": ns,
    }
    if name in ("single-node", "production"):
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["DATABASE_URL"] = request.getfixturevalue("postgres_dsn")
    raw, origin, _ = read(ROOT / "tiers" / f"{name}.yaml")
    return interpolate(raw, env, origin)


@contextlib.asynccontextmanager
async def shipped(
    name: str, request: pytest.FixtureRequest, ns: str, tmp: Path
) -> AsyncIterator[Any]:
    memory = await build_memory(shipped_config(name, request, ns, tmp))
    try:
        yield memory
    finally:
        await memory.close()
        if name in ("single-node", "production"):
            await _drop_services(request, ns)


async def _drop_services(request: pytest.FixtureRequest, ns: str) -> None:
    await drop_schema(request.getfixturevalue("postgres_dsn"), ns)
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        names = [k async for k in client.scan_iter(match=KeyNames(ns).pattern)]
        names += [f"journal:{{{ns}:durable}}", f"journal:{{{ns}:durable}}:dead"]
        await client.delete(*names)
    finally:
        await client.aclose()


# -- looking into each store ------------------------------------------------------------


def lru_contents(memory: Any) -> str:
    """Everything the process's LRU holds (message contents and owners included), as text."""
    held = [layers(t)[-1] for t in memory.tiers]
    caches = [t._cache for t in held if isinstance(t, LRUTier)]
    return repr([(k, _text(v)) for cache in caches for k, v in cache.items()])


def _text(value: Any) -> str:
    if isinstance(value, Window):
        return repr([(m.user_id, m.conversation_id, m.json()) for m in value.messages])
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return repr(value)


def sqlite_contents(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return repr({t: db.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES})
    finally:
        db.close()


def sqlite_purge_tombstones(path: Path) -> tuple[list[str], str | None]:
    db = sqlite3.connect(path)
    try:
        ids = [i for (i,) in db.execute("SELECT id FROM tombstones WHERE scope = 'purge'")]
        meta = db.execute("SELECT name FROM sqlite_master WHERE name = 'bruno_meta'").fetchone()
        if meta is None:
            return ids, None
        (key,) = db.execute("SELECT value FROM bruno_meta WHERE name = 'pseudonym_key'").fetchone()
        return ids, key
    finally:
        db.close()


async def postgres_contents(dsn: str, schema: str) -> tuple[str, list[str], str | None]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        rows = {t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t}")] for t in TABLES}
        ids = [r[0] for r in await conn.fetch("SELECT id FROM tombstones WHERE scope = 'purge'")]
        key = None
        if await conn.fetchval("SELECT to_regclass('bruno_meta')") is not None:
            key = await conn.fetchval("SELECT value FROM bruno_meta WHERE name = 'pseudonym_key'")
        return repr(rows), ids, key
    finally:
        await conn.close()


async def redis_contents(url: str, ns: str, *streams: str) -> str:
    """Every key of the namespace (and ``streams``) with its value, as text."""
    client = Redis.from_url(url)
    try:
        out: list[Any] = []
        names = [k async for k in client.scan_iter(match=KeyNames(ns).pattern)]
        for name in [*names, *(s.encode() for s in streams)]:
            kind = (await client.type(name)).decode()
            value: Any = {
                "string": lambda n: client.get(n),
                "list": lambda n: client.lrange(n, 0, -1),
                "set": lambda n: client.smembers(n),
                "stream": lambda n: client.xrange(n),
                "none": lambda n: client.exists(n),
            }[kind](name)
            out.append((name, await value))
        return repr(out)
    finally:
        await client.aclose()


def assert_none_of_alice(text: str) -> None:
    assert SECRET not in text
    assert "alice" not in text


def assert_pseudonymized(ids: list[str], key: str | None) -> None:
    """A forgotten user's tombstone holds her keyed hash, never her id."""
    assert "alice" not in ids
    assert key is not None and len(key) == 64 and ids == [_sql.pseudonym(key, "alice")]


# -- the stacks -------------------------------------------------------------------------


@pytest.mark.parametrize("erase", ERASURES)
async def test_laptop_erasure_leaves_nothing_in_the_lru_or_sqlite(
    erase: Erase, request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    async with shipped("laptop", request, namespace, tmp_path) as memory:
        s = await Seeded.into(memory)
        await erase(memory, s)
        assert SECRET not in lru_contents(memory)
        assert SECRET not in sqlite_contents(tmp_path / "memory.db")
        assert await memory.retrieve_messages(s.conversation) == []
        assert [m.content for m in await memory.retrieve_messages(s.bob)] == ["bob keeps this"]
        if erase is forget:
            assert_none_of_alice(lru_contents(memory))
            assert_none_of_alice(sqlite_contents(tmp_path / "memory.db"))
            assert_pseudonymized(*sqlite_purge_tombstones(tmp_path / "memory.db"))
            assert (await memory.get_context("mallory", s.conversation)).messages == []


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.parametrize("erase", ERASURES)
async def test_single_node_erasure_leaves_nothing_in_lru_redis_or_postgres(
    erase: Erase,
    request: pytest.FixtureRequest,
    namespace: str,
    tmp_path: Path,
    redis_url: str,
    postgres_dsn: str,
) -> None:
    async with shipped("single-node", request, namespace, tmp_path) as memory:
        s = await Seeded.into(memory)
        await erase(memory, s)
        rows, ids, key = await postgres_contents(postgres_dsn, namespace)
        cached = await redis_contents(redis_url, namespace)
        assert SECRET not in lru_contents(memory)
        assert SECRET not in cached
        assert SECRET not in rows
        if erase is forget:
            for text in (lru_contents(memory), cached, rows):
                assert_none_of_alice(text)
            assert_pseudonymized(ids, key)
        assert await memory.retrieve_messages(s.conversation) == []


@pytest.mark.redis
@pytest.mark.postgres
async def test_production_forget_user_reaches_the_other_process_and_every_store(
    request: pytest.FixtureRequest,
    namespace: str,
    tmp_path: Path,
    redis_url: str,
    postgres_dsn: str,
) -> None:
    """Process B caches a window of messages stored before alice's session; A claims the
    conversation for her, then forgets her: B stops serving them, and Redis (keys, journal
    stream, dead letters) and PostgreSQL hold nothing of hers."""
    config = shipped_config("production", request, namespace, tmp_path)
    conv = f"early-{uuid.uuid4()}"
    ids = [msg_id(conv, i) for i in range(3)]
    async with shipped("production", request, namespace, tmp_path) as a:
        b = await Worker(config).start()
        try:
            await b.send(cmd="store", conversation=conv, count=3)
            while "done" not in await b.read():  # one ack per message, then done
                pass
            assert (await b.call(cmd="window", conversation=conv))["ids"] == ids[::-1]
            await a.get_context("alice", conv)  # claims the three messages for her
            await a.store_message(say(f"{SECRET} hers", 10), conv)
            assert await eventually(
                lambda: b.call(cmd="window", conversation=conv), lambda got: len(got["ids"]) == 4
            )
            await a.forget_user("alice")
            assert await eventually(
                lambda: b.call(cmd="window", conversation=conv), lambda got: got["ids"] == []
            )
            assert (await a.get_context("mallory", conv)).messages == []
        finally:
            await b.stop()
        journal = f"journal:{{{namespace}:durable}}"
        cached = await redis_contents(redis_url, namespace, journal, journal + ":dead")
        rows, tombstones, key = await postgres_contents(postgres_dsn, namespace)
        for text in (lru_contents(a), cached, rows):
            assert_none_of_alice(text)
            assert f"of {conv}" not in text  # the worker's messages: "message i of <conv>"
        assert_pseudonymized(tombstones, key)


async def eventually(
    read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], tries: int = 100
) -> bool:
    """Whether ``ok(await read())`` holds within ``tries`` reads 0.05 s apart (the
    invalidation's ``max_lag`` is 1 s)."""
    import asyncio

    for _ in range(tries):
        if ok(await read()):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("erase", ERASURES)
async def test_semantic_erasure_leaves_no_vector_payload(
    erase: Erase, request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """Qdrant held full payloads of messages stored before her session: none after."""
    async with shipped("semantic", request, namespace, tmp_path) as memory:
        s = await Seeded.into(memory)
        await memory.flush()
        vectors = next(layers(t)[-1] for t in memory.tiers if isinstance(layers(t)[-1], VectorTier))
        window = await memory.retrieve_messages(s.conversation)
        keys = [Key("message", str(m.id)) for m in window] + [Key("memory", str(s.fact.id))]
        held = await vectors.get(keys)
        assert len(held) == 3
        await erase(memory, s)
        assert await vectors.get(keys) == {}
        assert {getattr(v, "user_id", None) for v in held.values()} == {"alice"}  # claimed
        assert SECRET not in sqlite_contents(tmp_path / "memory.db")


# -- dead letters -----------------------------------------------------------------------


def journal_kinds() -> list[Any]:
    return ["memory", "file", pytest.param("redis", marks=pytest.mark.redis)]


@contextlib.asynccontextmanager
async def failing_stack(
    kind: str, request: pytest.FixtureRequest, ns: str, tmp: Path
) -> AsyncIterator[tuple[MemoryStack, FlakyTier, WriteBehind]]:
    """LRU over a write-behind SQLite tier that can be made to reject writes (so they are
    dead-lettered), journaled in a file, a Redis Stream, or not at all (kept in memory)."""
    journal = None
    if kind == "file":
        journal = create_journal(
            JournalConfig(kind="file", path=str(tmp / "wal")), "durable", ns, tmp
        )
    elif kind == "redis":
        cfg = JournalConfig(kind="redis", url=request.getfixturevalue("redis_url"))
        journal = create_journal(cfg, "durable", ns, tmp)
    flaky = FlakyTier(SQLiteTier(SQLiteConfig(path=str(tmp / "d.db")), None))
    cfg_wb = WriteBehindConfig(
        interval=0.01, backoff=0.005, max_backoff=0.05, max_attempts=1, drain_timeout=10
    )
    wb = WriteBehind(flaky, cfg_wb, journal)
    lru = LRUTier(LRUConfig(), None)
    await lru.open()
    await wb.open()
    memory = MemoryStack([lru, wb])
    try:
        yield memory, flaky, wb
    finally:
        await memory.close()
        if isinstance(journal, RedisJournal):
            await drop_stream(journal)


@pytest.mark.parametrize("kind", journal_kinds())
@pytest.mark.parametrize("erase", ERASURES)
async def test_dead_letters_of_what_is_erased_are_erased(
    kind: str, erase: Erase, request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A write of hers that kept failing leaves the dead letters with the erasure: from
    the in-memory list, the file journal's table (and its file), the Redis ``:dead`` stream."""
    async with failing_stack(kind, request, namespace, tmp_path) as (memory, flaky, wb):
        s = Seeded()
        s.conversation = str((await memory.create_session("alice")).conversation_id)
        s.fact = MemoryEntry(content=f"{SECRET} fact", user_id="alice", memory_type=MemoryType.FACT)
        await memory.flush()
        flaky.fail(times=4, error=CorruptRecord, only=["write"])  # each: batch, then alone
        await memory.store_message(say(f"{SECRET} said"), s.conversation)
        await memory.flush()
        await memory.store_memory(s.fact)
        await memory.flush()
        flaky.heal()
        dead = await wb.dead_letters()
        assert len(dead) == 2 and all(SECRET.encode() in d.data for d in dead)
        await erase(memory, s)
        assert await wb.dead_letters() == []
        assert all(SECRET.encode() not in d.data for d in wb._flusher.dead)
        journal = attribute(wb, "journal")
        if isinstance(journal, FileJournal):
            for path in journal.path.parent.glob(journal.path.name + "*"):
                if path.is_file():
                    assert SECRET.encode() not in path.read_bytes(), path
        if isinstance(journal, RedisJournal):
            raw = await redis_contents(
                request.getfixturevalue("redis_url"),
                namespace,
                journal.stream,
                journal.stream + ":dead",
            )
            assert SECRET not in raw
