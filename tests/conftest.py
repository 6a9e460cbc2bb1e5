"""Shared fixtures: real services, unique namespaces, and every tier and stack under test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from bruno_memory.testing import services
from tests.factories import STACKS, TIERS, opened
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


tier = opened("tier", TIERS, "Every tier kind, opened in its own namespace and torn down after.")
stack = opened("stack", STACKS, "Every stack under the MemoryInterface contract, shipped YAML too.")
