"""Crypto-shredding: ``forget_user`` destroys the user's data key, so every copy of her
data (a backup of the files) becomes unreadable, and everyone else's stays readable."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.config.loader import load_config
from bruno_memory.config.models import StackConfig
from tests.privacy.stores import encrypted, new_key, opened, redis_cleanup, shipped

KEYSTORES = [
    pytest.param("file", id="keystore-file"),
    pytest.param("redis", id="keystore-redis", marks=pytest.mark.redis),
    pytest.param("postgres", id="keystore-postgres", marks=pytest.mark.postgres),
]


def _keystore(request: pytest.FixtureRequest, kind: str, tmp: Path) -> str:
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return str(tmp / "keys.db")


async def _fill(cfg: StackConfig, user: str, conversation: str, words: str) -> None:
    async with opened(cfg) as memory:
        await memory.get_context(user, conversation)  # the conversation becomes the user's
        await memory.store_message(Message(role=MessageRole.USER, content=words), conversation)
        await memory.store_memory(MemoryEntry(content=words, memory_type=MemoryType.FACT,
                                              user_id=user, conversation_id=conversation))


@pytest.mark.parametrize("kind", KEYSTORES)
async def test_a_copy_of_the_files_taken_before_forget_user_reads_bob_and_not_alice(
    request: pytest.FixtureRequest, kind: str, namespace: str, tmp_path: Path
) -> None:
    """Copy the data files (not the key store), store more, forget alice: the old copy
    opened with the live key store reads bob's data and none of alice's."""
    live, backup = tmp_path / "live", tmp_path / "backup"
    live.mkdir()
    keystore = _keystore(request, kind, tmp_path)
    key = new_key()
    cfg = encrypted(shipped(request, "laptop", namespace, live), [key], keystore)
    try:
        await _fill(cfg, "alice", "c-alice", "alice likes pelicans")
        await _fill(cfg, "bob", "c-bob", "bob likes pelicans too")
        shutil.copytree(live, backup)
        async with opened(cfg) as memory:
            await memory.store_message(
                Message(role=MessageRole.USER, content="bob again"), "c-bob")
            await memory.forget_user("alice")
            assert await memory.retrieve_messages("c-alice") == []

        rows = sqlite3.connect(backup / "memory.db").execute(
            "SELECT COUNT(*) FROM messages WHERE user_id = 'alice'").fetchone()
        assert rows == (1,)  # the copy still holds alice's rows: only the key is gone
        old = encrypted(shipped(request, "laptop", namespace, backup), [key], keystore)
        async with opened(old) as memory:
            bob = await memory.retrieve_messages("c-bob")
            assert [m.content for m in bob] == ["bob likes pelicans too"]
            assert [m.content for m in await memory.search_messages("pelican", "bob")] == [
                "bob likes pelicans too"]
            assert len(await memory.retrieve_memories(MemoryQuery(user_id="bob"))) == 1
            assert await memory.retrieve_messages("c-alice") == []
            assert await memory.search_messages("pelican", "alice") == []
            assert await memory.retrieve_memories(MemoryQuery(user_id="alice")) == []
            assert await memory.retrieve_memories(
                MemoryQuery(user_id="alice", query_text="pelicans")) == []
    finally:
        if kind == "redis":
            await redis_cleanup(keystore, namespace)
        if kind == "postgres":
            import asyncpg

            conn = await asyncpg.connect(keystore)
            await conn.execute("DELETE FROM bruno_keys WHERE namespace = $1", namespace)
            if not await conn.fetchval("SELECT COUNT(*) FROM bruno_keys"):
                await conn.execute("DROP TABLE IF EXISTS bruno_keys")  # the test made it
            await conn.close()


async def test_the_key_store_file_keeps_no_copy_of_a_destroyed_key(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """The SQLite key store runs with secure_delete: a forgotten user's wrapped key is in
    no byte of its file."""
    keystore = tmp_path / "keys.db"
    cfg = encrypted(shipped(request, "laptop", namespace, tmp_path), [new_key()], str(keystore))
    await _fill(cfg, "alice", "c-alice", "hello")
    (wrapped,) = sqlite3.connect(keystore).execute(
        "SELECT wrapped FROM bruno_keys WHERE owner = 'u:alice'").fetchone()
    assert wrapped.encode() in keystore.read_bytes()
    async with opened(cfg) as memory:
        await memory.forget_user("alice")
    assert wrapped.encode() not in keystore.read_bytes()
    beside = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert not [name for name in beside if name.startswith("keys.db-")]  # no journal, no WAL


async def test_a_key_destroyed_by_another_process_is_dropped_by_this_one(
    namespace: str, tmp_path: Path
) -> None:
    """Two stacks (as two processes) share the data and the key store; one forgets ann.
    The other, which held her key, stops using it (``key_recheck``): what it writes for
    her afterwards is sealed by her new key, so the first reads it, not shreds it."""
    cfg = load_config({
        "namespace": namespace,
        "tiers": [{"kind": "sqlite", "path": str(tmp_path / "memory.db")}],
    })
    cfg = encrypted(cfg, [new_key()], str(tmp_path / "keys.db"), key_recheck=0)
    async with opened(cfg) as one, opened(cfg) as two:
        await two.get_context("ann", "c1")
        await two.store_message(Message(role=MessageRole.USER, content="before"), "c1")
        await one.forget_user("ann")
        await two.get_context("ann", "c2")
        await two.store_message(Message(role=MessageRole.USER, content="after"), "c2")
        assert [m.content for m in await one.retrieve_messages("c2")] == ["after"]
        assert await one.retrieve_messages("c1") == []
