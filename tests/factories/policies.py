"""Stacks with policies (write-behind, journals, fallback, queue-on-error) under the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.factories import StackFactory, TierFactory, attribute
from tests.factories.postgres import drop_schema, postgres


def _sqlite(tmp: Path, **policy: Any) -> dict[str, Any]:
    return {"name": "durable", "kind": "sqlite", "path": str(tmp / "memory.db"), **policy}


def _journal_file(tmp: Path) -> dict[str, Any]:
    return {"kind": "file", "path": str(tmp / "journal.db")}


BEHIND = {"write": "write-behind", "write_behind": {"interval": "20ms", "batch_size": 100}}
RESILIENT = {"retry": {"attempts": 3, "budget": "1s"}, "breaker": {"failures": 5, "reset": "1s"}}


def _behind_sqlite(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    tier = _sqlite(tmp, **BEHIND, journal=_journal_file(tmp))
    return {"namespace": ns, "tiers": [{"kind": "lru"}, tier]}


def _queue_sqlite(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    tier = _sqlite(tmp, on_error="queue", journal=_journal_file(tmp), **RESILIENT)
    return {"namespace": ns, "tiers": [{"kind": "lru", **RESILIENT, "on_error": "skip"}, tier]}


def _redis_journal(r: pytest.FixtureRequest, ns: str) -> dict[str, Any]:
    return {"kind": "redis", "url": r.getfixturevalue("redis_url"), "stream": f"{ns}:journal",
            "lease": "2s"}


def _behind_postgres(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    durable = {"name": "durable", **postgres(r, ns), **BEHIND, **RESILIENT,
               "journal": _redis_journal(r, ns)}
    cache = {"name": "hot", "kind": "redis", "url": r.getfixturevalue("redis_url"),
             "prefix": ns, "on_error": "skip", **RESILIENT}
    return {"namespace": ns, "tiers": [{"kind": "lru"}, cache, durable]}


async def _drop_redis_and_schema(memory: Any) -> None:
    from redis.asyncio import Redis

    await memory.flush()
    for tier in memory.tiers:
        if schema := attribute(tier, "schema"):
            await drop_schema(tier.config.dsn.get_secret_value(), schema)
            client = Redis.from_url(tier.config.journal.url)
            await client.delete(tier.config.journal.stream, f"{tier.config.journal.stream}:dead")
            await client.aclose()
        if attribute(tier, "names") is not None:
            await tier.clear()


def _behind_tier(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    return {"kind": "sqlite", "path": str(tmp / "t.db"), **BEHIND, "journal": _journal_file(tmp)}


TIERS = [TierFactory("sqlite+write-behind", _behind_tier)]

STACKS = [
    StackFactory("lru->sqlite(write-behind, file journal)", _behind_sqlite),
    StackFactory("lru(skip)->sqlite(queue on error, file journal)", _queue_sqlite),
    StackFactory("lru->redis(skip)->postgres(write-behind, redis journal)", _behind_postgres,
                 [pytest.mark.redis, pytest.mark.postgres], _drop_redis_and_schema),
]
