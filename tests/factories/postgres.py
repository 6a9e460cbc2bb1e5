"""The postgres tier and the postgres-alone stack, each in a schema of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.factories import StackFactory, TierFactory, attribute

MARKS = [pytest.mark.postgres]


def postgres(request: pytest.FixtureRequest, ns: str, **extra: Any) -> dict[str, Any]:
    """A postgres tier config in schema ``ns`` of the test server."""
    return {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "schema": ns,
            "max_size": 4, **extra}


async def drop_schema(dsn: str, schema: str) -> None:
    """DROP SCHEMA ... CASCADE on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _drop_tier(tier: Any) -> None:
    await drop_schema(tier.config.dsn.get_secret_value(), attribute(tier, "schema"))


async def _drop_stack(memory: Any) -> None:
    await memory.flush()
    for tier in memory.tiers:
        if attribute(tier, "schema"):
            await _drop_tier(tier)


def _stack(request: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    return {"namespace": ns, "tiers": [{"name": "durable", **postgres(request, ns)}]}


TIERS = [TierFactory("postgres", lambda r, ns, tmp: postgres(r, ns), MARKS, _drop_tier)]
STACKS = [StackFactory("postgres", _stack, MARKS, _drop_stack)]


@contextlib.asynccontextmanager
async def production_stack(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, dsn: str, namespace: str
) -> AsyncIterator[Any]:
    """The shipped ``production`` stack on ``redis_url`` and ``dsn``, in ``namespace``;
    closed and its schema dropped afterwards."""
    from bruno_memory import build_memory

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("BRUNO_MEMORY_NAMESPACE", namespace)
    memory = await build_memory("production")
    try:
        yield memory
    finally:
        await memory.close()
        await drop_schema(dsn, namespace)
