"""Encrypted stacks for the privacy tests, and the raw bytes of every store they use."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bruno_memory import build_memory
from bruno_memory.config.encryption import EncryptionConfig
from bruno_memory.config.models import StackConfig
from tests.factories.postgres import drop_schema
from tests.factories.shipped import ROOT, _loader, servers_of


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def shipped(request: pytest.FixtureRequest, name: str, ns: str, tmp: Path) -> StackConfig:
    """A shipped stack's config with its servers and files set for this test."""
    path = ROOT / "tiers" / f"{name}.yaml"
    cfg: StackConfig = _loader(path, servers_of(path))(request, ns, tmp)
    return cfg


def encrypted(cfg: StackConfig, keys: list[str], keystore: str, **extra: Any) -> StackConfig:
    section = EncryptionConfig.model_validate({"key": keys, "keystore": keystore, **extra})
    return cfg.model_copy(update={"encryption": section})


@asynccontextmanager
async def opened(cfg: StackConfig) -> AsyncIterator[Any]:
    memory = await build_memory(cfg)
    try:
        yield memory
    finally:
        await memory.close()


def file_bytes(folder: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``folder`` (SQLite, its WAL, Qdrant segments, journals)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes()


async def redis_bytes(url: str, ns: str) -> list[tuple[str, bytes]]:
    """``DUMP`` of every key holding the namespace (values, windows, streams, key store)."""
    client = Redis.from_url(url)
    try:
        out = []
        async for key in client.scan_iter(match=f"*{ns}*", count=1000):
            dumped = await client.dump(key)
            if dumped is not None:
                out.append((key.decode(), bytes(dumped)))
        return out
    finally:
        await client.aclose()


async def redis_cleanup(url: str, ns: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{ns}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def postgres_bytes(dsn: str, schema: str) -> list[tuple[str, bytes]]:
    """Every row of every table of ``schema`` as text, and the bytes of every relation file
    (tables, indexes, TOAST) after a checkpoint: dead tuples included."""
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        for (table,) in tables:
            rows = await conn.fetch(f'SELECT t::text FROM "{schema}"."{table}" t')
            out.append((f"{schema}.{table} rows", "\n".join(r[0] for r in rows).encode()))
        await conn.execute("CHECKPOINT")
        files = await conn.fetch(
            "SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
            "AND pg_relation_filepath(c.oid) IS NOT NULL", schema)
        for name, path in files:
            data = await conn.fetchval("SELECT pg_read_binary_file($1, 0, 100000000, true)", path)
            out.append((f"{schema}.{name} file", bytes(data or b"")))
        return out
    finally:
        await conn.close()


async def server_bytes(memory_cfg: StackConfig, ns: str) -> list[tuple[str, bytes]]:
    """The raw bytes the stack's servers hold for it."""
    out: list[tuple[str, bytes]] = []
    for t in memory_cfg.tiers:
        if t.kind == "redis":
            out += await redis_bytes(str(t.url), ns)  # type: ignore[attr-defined]
        if t.kind == "postgres":
            out += await postgres_bytes(t.dsn.get_secret_value(), ns)  # type: ignore[attr-defined]
    return out


async def cleanup(cfg: StackConfig, ns: str) -> None:
    for t in cfg.tiers:
        if t.kind == "redis":
            await redis_cleanup(str(t.url), ns)  # type: ignore[attr-defined]
        if t.kind == "postgres":
            await drop_schema(t.dsn.get_secret_value(), ns)  # type: ignore[attr-defined]


