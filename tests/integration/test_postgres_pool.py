"""The postgres tier's connection pool, on the real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from bruno_memory.tiers._pgpool import Pool, PoolClosed

pytestmark = pytest.mark.postgres
PID = "SELECT pg_backend_pid()"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def connect(postgres_dsn: str) -> Callable[[], Any]:
    return lambda: asyncpg.connect(postgres_dsn)


@pytest.fixture
async def pool(connect: Callable[[], Any]) -> AsyncIterator[Pool]:
    """A pool of at most three connections, one opened up front."""
    p = Pool(connect, min_size=1, max_size=3)
    await p.fill()
    yield p
    await p.close()


async def pid(pool: Pool) -> int:
    return int(await pool.run(lambda c: c.fetchval(PID)))


async def test_fill_opens_min_size_connections(pool: Pool) -> None:
    """fill() leaves min_size idle connections ready."""
    assert pool.metrics() == {"pool_size": 1, "pool_idle": 1}


async def test_never_more_than_max_size_connections(pool: Pool) -> None:
    """Twenty concurrent calls share at most three server backends."""
    pids = await asyncio.gather(*(
        pool.run(lambda c: c.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.02)"))
        for _ in range(20)
    ))
    assert 1 <= len(set(pids)) <= 3
    assert pool.metrics()["pool_size"] <= 3


async def test_connections_are_reused(pool: Pool) -> None:
    """Sequential calls run on the same backend."""
    assert await pid(pool) == await pid(pool)


async def test_a_server_error_keeps_the_connection(pool: Pool) -> None:
    """An ordinary SQL error leaves the connection healthy and pooled."""
    before = await pid(pool)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await pool.run(lambda c: c.fetchval("SELECT 1 / 0"))
    assert await pid(pool) == before


async def test_a_cancelled_call_drops_its_connection_and_its_query(pool: Pool) -> None:
    """A call cancelled mid-query closes its connection and stops the query on the server."""
    before = await pid(pool)
    call = asyncio.ensure_future(pool.run(lambda c: c.execute("SELECT pg_sleep(30)")))
    await asyncio.sleep(0.2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert pool.metrics() == {"pool_size": 0, "pool_idle": 0}
    assert await pid(pool) != before
    alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
    for _ in range(200):
        if not await pool.run(lambda c: c.fetchval(alive, before)):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the cancelled query kept running on the server")


async def test_a_connection_left_in_a_transaction_is_dropped(pool: Pool) -> None:
    """Work that leaves a transaction open does not pass it on to the next caller."""
    before = await pid(pool)
    await pool.run(lambda c: c.execute("BEGIN"))
    assert await pid(pool) != before


async def test_idle_connections_past_max_idle_are_replaced(connect: Callable[[], Any]) -> None:
    """A connection idle longer than max_idle is closed instead of reused."""
    clock = Clock()
    p = Pool(connect, min_size=0, max_size=2, max_idle=60, clock=clock)
    try:
        first = await pid(p)
        clock.now = 30
        assert await pid(p) == first
        clock.now = 200
        assert await pid(p) != first
        assert p.metrics()["pool_size"] == 1
    finally:
        await p.close()


async def test_expire_replaces_idle_and_busy_connections(pool: Pool) -> None:
    """After expire(), no connection opened before it is used again."""
    idle = await pid(pool)
    gate = asyncio.Event()

    async def busy(c: Any) -> int:
        await gate.wait()
        return int(await c.fetchval(PID))

    running = asyncio.ensure_future(pool.run(busy))
    await asyncio.sleep(0.05)
    pool.expire()
    gate.set()
    busy_pid = await running
    assert await pid(pool) not in {idle, busy_pid}
    assert pool.metrics()["pool_size"] == 1


async def test_a_closed_pool_refuses_work(pool: Pool) -> None:
    """run() after close() raises PoolClosed (an asyncpg InterfaceError)."""
    await pool.close()
    with pytest.raises(PoolClosed):
        await pid(pool)
    assert isinstance(PoolClosed("x"), asyncpg.InterfaceError)


async def test_fill_fails_whole_when_the_server_is_unreachable() -> None:
    """fill() raises the connect error and keeps no connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = Pool(lambda: asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/x"),
             min_size=2, max_size=2)
    with pytest.raises(OSError):
        await p.fill()
    assert p.metrics() == {"pool_size": 0, "pool_idle": 0}
