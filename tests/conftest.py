"""Shared fixtures: real services, unique namespaces, and every tier and stack under test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bruno_memory.testing import services
from tests.factories import STACKS, TIERS, StackFactory, TierFactory
from tests.factories.semantic import chroma_server_url  # noqa: F401  (fixture)


def _require(factory: Iterator[str], what: str) -> Iterator[str]:
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(factory)  # type: ignore[arg-type]
            yield url
    except services.ServiceMissing as exc:
        if services.services_required():
            pytest.fail(f"{what} is required (BRUNO_MEMORY_REQUIRE_SERVICES=1): {exc}")
        pytest.skip(f"{what} not available: {exc}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server."""
    yield from _require(services.redis_service(), "Redis")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a real PostgreSQL server."""
    yield from _require(services.postgres_service(), "PostgreSQL")  # type: ignore[arg-type]


@pytest.fixture
def namespace() -> str:
    """A namespace (key prefix, schema) no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=[pytest.param(f, id=f.id, marks=f.marks) for f in TIERS])
async def tier(request: pytest.FixtureRequest, namespace: str, tmp_path: Any) -> AsyncIterator[Any]:
    """Every tier kind, opened in its own namespace and torn down after."""
    factory: TierFactory = request.param
    async with factory.open(request, namespace, tmp_path) as t:
        yield t


@pytest.fixture(params=[pytest.param(s, id=s.id, marks=s.marks) for s in STACKS])
async def stack(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Any
) -> AsyncIterator[Any]:
    """Every stack under the MemoryInterface contract, shipped YAML files included."""
    factory: StackFactory = request.param
    async with factory.open(request, namespace, tmp_path) as memory:
        yield memory
