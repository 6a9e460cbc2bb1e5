"""Stacks for the lifecycle tests: embedded, and Redis over PostgreSQL (real servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.factories.embedded import STACKS as EMBEDDED
from tests.factories.policies import STACKS as POLICIES
from tests.factories.redis import STACKS as REDIS
from tests.factories.semantic import STACKS as SEMANTIC

FACTORIES = {f.id: f for f in [*EMBEDDED, *REDIS, *SEMANTIC, *POLICIES]}
IDS = ("lru->sqlite", "lru->redis->postgres", "lru->sqlite(write-behind, file journal)")
SEMANTIC_ID = "lru->sqlite->qdrant-edge"


@pytest.fixture(params=[pytest.param(i, marks=FACTORIES[i].marks, id=i) for i in IDS])
async def memory(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An opened stack in a namespace of its own, removed after the test."""
    async with FACTORIES[request.param].open(request, namespace, tmp_path) as stack:
        yield stack


@pytest.fixture
async def semantic_memory(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An embedded stack with a semantic tier (hybrid search and memory queries)."""
    async with FACTORIES[SEMANTIC_ID].open(request, namespace, tmp_path) as stack:
        yield stack


@pytest.fixture
async def sqlite_memory(namespace: str, tmp_path: Path) -> AsyncIterator[Any]:
    """An embedded LRU over SQLite (for tests that need no server)."""
    async with FACTORIES["lru->sqlite"].open(None, namespace, tmp_path) as stack:  # type: ignore[arg-type]
        yield stack


T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    """An instant ``minutes`` after the tests' origin."""
    return T0 + timedelta(minutes=minutes)
