"""``drop``: every tier kind erases what it holds for its namespace, and a stack drops
its schema, keys, streams, journals, files and collections, with real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryType

from bruno_memory.build import build_memory
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import Closed
from bruno_memory.core.ops import Key, Put
from bruno_memory.drivers.redis import connect
from tests.factories import attribute
from tests.factories.populated import populate


async def _redis_keys(url: str, pattern: str) -> list[bytes]:
    client = connect(url)
    try:
        return [k async for k in client.scan_iter(match=pattern, count=500)]
    finally:
        await client.aclose()


async def _schema_exists(dsn: str, schema: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", schema)
        return bool(found)
    finally:
        await conn.close()


def _exists(path: Path) -> bool:
    return path.exists()


def _files(root: Path) -> list[str]:
    """Every file and folder under ``root``, by its path relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _records(user: str) -> list[Put]:
    entry = MemoryEntry(content="likes tea", memory_type=MemoryType.FACT, user_id=user)
    session = SessionContext(user_id=user)
    return [Put(Key("memory", str(entry.id)), entry, 1),
            Put(Key("session", session.session_id), session, 1)]


async def test_each_tier_drops_its_file_schema_or_keys(tier: Any, namespace: str) -> None:
    """``drop`` removes the SQLite file, the PostgreSQL schema, the Redis keys under the
    prefix (the tier contract checks every tier holds nothing afterwards)."""
    assert Capability.DROP in tier.capabilities
    puts = _records("ada")
    await tier.write(puts)
    await tier.flush()
    await tier.drop()
    kind = tier.config.kind
    if kind == "sqlite":
        assert not _exists(Path(tier.config.path))
    elif kind == "postgres":
        assert not await _schema_exists(tier.config.dsn.get_secret_value(),
                                        attribute(tier, "schema"))
    elif kind == "redis" and not tier.config.cluster:
        assert await _redis_keys(tier.config.url, "{" + namespace + ":*") == []
    elif kind == "redis":
        assert await tier.get([p.key for p in puts]) == {}  # a cluster: SCAN every node


def _server_stack(redis_url: str, dsn: str, ns: str) -> dict[str, Any]:
    journal = {"kind": "redis", "url": redis_url}
    return {"namespace": ns, "tiers": [
        {"kind": "lru", "invalidation": {"url": redis_url}},
        {"name": "hot", "kind": "redis", "url": redis_url, "on_error": "skip"},
        {"name": "durable", "kind": "postgres", "dsn": dsn, "max_size": 4,
         "write": "write-behind", "journal": journal},
    ]}


@pytest.mark.redis
@pytest.mark.postgres
async def test_stack_drop_removes_schema_keys_and_journal_stream(
    redis_url: str, postgres_dsn: str, namespace: str
) -> None:
    """A Redis + PostgreSQL stack (an invalidated LRU, a fallback hot tier, a
    Redis-journaled write-behind durable tier): ``drop`` leaves no schema, no key under
    the prefix, no journal stream, and closes the stack."""
    memory = await build_memory(_server_stack(redis_url, postgres_dsn, namespace))
    try:
        await populate(memory, messages=60, conversations=3, memories=2)
        await memory.get_context("ada")
        assert await _redis_keys(redis_url, "journal:{" + namespace + ":*")
        await memory.drop()
        with pytest.raises(Closed):
            await memory.get_statistics("ada")
    finally:
        await memory.close()
    assert not await _schema_exists(postgres_dsn, namespace)
    assert await _redis_keys(redis_url, "{" + namespace + ":*") == []
    assert await _redis_keys(redis_url, "journal:{" + namespace + ":*") == []
    again = await build_memory(_server_stack(redis_url, postgres_dsn, namespace))
    try:
        assert (await again.get_statistics("ada"))["total_messages"] == 0
        await again.drop()
    finally:
        await again.close()


async def test_embedded_stack_drop_deletes_files(tmp_path: Path, namespace: str) -> None:
    """An LRU over SQLite with a file-journaled write-behind and an embedded Qdrant:
    ``drop`` deletes the database, the journal and the namespace's collection."""
    config = {"namespace": namespace, "embedding": {"provider": "hashing", "dimension": 32},
              "tiers": [
                  {"kind": "lru"},
                  {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db"),
                   "write": "write-behind",
                   "journal": {"kind": "file", "path": str(tmp_path / "j.db")}},
                  {"name": "semantic", "kind": "qdrant", "path": str(tmp_path / "q")},
              ]}
    async with await build_memory(config) as memory:
        await populate(memory, messages=40, conversations=2, memories=2)
        await memory.flush()
        await memory.drop()
    left = _files(tmp_path)
    assert not [n for n in left if n.startswith(("m.db", "j.db"))], left  # + -wal, .owners
    assert not [n for n in left if namespace in n], left
