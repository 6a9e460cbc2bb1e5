"""The redis tier (single node and a test-owned 3-master Cluster) and stacks over it.

Each instance writes under its own prefix (the test's namespace) and deletes its keys after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bruno_memory.core.capabilities import Capability
from bruno_memory.drivers.redis import connect
from tests.factories import StackFactory, TierFactory, attribute
from tests.factories.postgres import drop_schema, postgres
from tests.redis_servers import cluster_url

REDIS = [pytest.mark.redis]
REDIS_PG = [pytest.mark.redis, pytest.mark.postgres]


def redis(request: pytest.FixtureRequest, **extra: Any) -> dict[str, Any]:
    """A redis tier on the shared test server."""
    return {"kind": "redis", "url": request.getfixturevalue("redis_url"), **extra}


def redis_cluster(request: pytest.FixtureRequest, **extra: Any) -> dict[str, Any]:
    """A redis tier on the session's test-owned Redis Cluster."""
    return {"kind": "redis", "url": cluster_url(request), "cluster": True, **extra}


async def clear_tier(tier: Any) -> None:
    """Delete the tier's keys (everything under its prefix)."""
    await tier.clear()


async def clear_stack(memory: Any) -> None:
    """Delete every redis key (journal streams too) and drop every postgres schema the
    stack used."""
    await memory.flush()
    for tier in memory.tiers:
        if Capability.CLEAR in tier.capabilities:
            await tier.clear()
        if schema := attribute(tier, "schema"):
            await drop_schema(tier.config.dsn.get_secret_value(), schema)
        journal = attribute(tier, "journal")
        if journal is not None and journal.kind == "redis":
            await drop_stream(journal)


async def drop_stream(journal: Any) -> None:
    """Delete a redis journal's stream and dead letters (its liveness key goes at close)."""
    cfg = journal.cfg
    client = connect(cfg.url or "redis://", cluster=cfg.cluster, nodes=cfg.nodes)
    try:
        for name in (journal.stream, f"{journal.stream}:dead"):
            await client.delete(name)
    finally:
        await client.aclose()


def _sqlite(tmp: Path) -> dict[str, Any]:
    return {"name": "durable", "kind": "sqlite", "path": str(tmp / "memory.db")}


def _stack(ns: str, *tiers: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": ns, "tiers": list(tiers)}


TIERS = [
    TierFactory("redis", lambda r, ns, tmp: redis(r), REDIS, clear_tier),
    TierFactory("redis-cluster", lambda r, ns, tmp: redis_cluster(r), REDIS, clear_tier),
]

STACKS = [
    StackFactory(
        "lru->redis->postgres",
        lambda r, ns, tmp: _stack(
            ns, {"kind": "lru"}, redis(r, name="hot"), {"name": "durable", **postgres(r, ns)}
        ),
        REDIS_PG,
        clear_stack,
    ),
    StackFactory(
        "redis-cluster->postgres",
        lambda r, ns, tmp: _stack(
            ns, redis_cluster(r, name="hot"), {"name": "durable", **postgres(r, ns)}
        ),
        REDIS_PG,
        clear_stack,
    ),
    StackFactory(
        "redis->sqlite",
        lambda r, ns, tmp: _stack(ns, redis(r, name="hot"), _sqlite(tmp)),
        REDIS,
        clear_stack,
    ),
]
