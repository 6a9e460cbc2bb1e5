"""Real services for tests: an env URL, else a testcontainers container, else a skip.

``BRUNO_MEMORY_REQUIRE_SERVICES=1`` turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

REDIS_ENV = "BRUNO_MEMORY_TEST_REDIS_URL"
POSTGRES_ENV = "BRUNO_MEMORY_TEST_POSTGRES_DSN"
REQUIRE_ENV = "BRUNO_MEMORY_REQUIRE_SERVICES"


class ServiceMissing(RuntimeError):
    """No way to reach the service; the message says which ones were tried."""


def docker_available() -> bool:
    """Whether a Docker engine answers (testcontainers needs one)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def redis_service() -> Iterator[str]:
    """A Redis URL from the env, or from a container."""
    yield from _service(REDIS_ENV, _redis_container)


@contextlib.contextmanager
def postgres_service() -> Iterator[str]:
    """A PostgreSQL DSN from the env, or from a container."""
    yield from _service(POSTGRES_ENV, _postgres_container)


def _service(
    env: str, container: Callable[[], contextlib.AbstractContextManager[str]]
) -> Iterator[str]:
    if os.environ.get(env):
        yield os.environ[env]
        return
    if not docker_available():
        raise ServiceMissing(f"{env} is not set and no Docker engine answers for testcontainers")
    with container() as url:
        yield url


@contextlib.contextmanager
def _redis_container() -> Iterator[str]:
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7") as c:
        yield f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:15", driver=None) as c:
        yield c.get_connection_url()


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false")
