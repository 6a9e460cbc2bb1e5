"""A small asyncpg connection pool: idle connections in a LIFO list under a semaphore.

asyncpg's own ``Pool`` runs a reset query on every release (the tier would skip it) and
releases through ``asyncio.shield``, a task per call: measured through the stack, a single
``store_message`` took ~1.35x a raw INSERT with it and ~1.2x with this pool (see
``benchmarks/postgres_bench.py``). Here a release is a list append.

A connection is reused only when its work ended normally or with an ordinary server
error; after a cancellation, a dropped connection or a client error its state is
unknown, so it is closed (in the background, after asyncpg has cancelled the interrupted
query on the server) and a fresh one is made when needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
Connect = Callable[[], Awaitable[Any]]

UNHEALTHY: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # the connection is gone
    asyncpg.OperatorInterventionError,  # terminated, server shutting down, query cancelled
)


class PoolClosed(asyncpg.InterfaceError):
    """The pool was closed; the tier maps this like any closed connection."""


class Pool:
    """At most ``max_size`` connections; idle ones older than ``max_idle`` are not reused.

    Args:
        connect: makes one connection (with the tier's settings).
        min_size: connections opened by ``fill`` and kept warm.
        max_size: connections open at once; more callers wait.
        max_idle: seconds an idle connection may wait before it is closed instead of used.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        connect: Connect,
        *,
        min_size: int,
        max_size: int,
        max_idle: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._min_size = min_size
        self._slots = asyncio.Semaphore(max_size)
        self._max_idle = max_idle
        self._clock = clock
        self._idle: list[tuple[Any, int, float]] = []  # (connection, generation, idle since)
        self._size = 0
        self._generation = 0
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    async def fill(self) -> None:
        """Open ``min_size`` connections (all or none)."""
        made = await asyncio.gather(
            *(self._connect() for _ in range(self._min_size)), return_exceptions=True
        )
        failed = [m for m in made if isinstance(m, BaseException)]
        for conn in made:
            if not isinstance(conn, BaseException):
                self._size += 1
                self._keep(conn, self._generation)
        if failed:
            await self.close()
            raise failed[0]

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``await work(connection)`` on a pooled connection."""
        async with self._slots:
            conn, generation = await self._take()
            try:
                result = await work(conn)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, UNHEALTHY):
                    self._drop(conn)
                else:
                    self._keep(conn, generation)
                raise
            except BaseException:
                self._retire(conn)
                raise
            self._keep(conn, generation)
            return result

    def expire(self) -> None:
        """Replace every connection: idle ones now, busy ones when they come back."""
        self._generation += 1
        while self._idle:
            self._drop(self._idle.pop()[0])

    async def close(self) -> None:
        """Close the idle connections; busy ones are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn, _, _ in idle:
            self._size -= 1
            await _close(conn)
        await asyncio.gather(*self._closing)

    def metrics(self) -> dict[str, int]:
        return {"pool_size": self._size, "pool_idle": len(self._idle)}

    async def _take(self) -> tuple[Any, int]:
        if self._closed:
            raise PoolClosed("the connection pool is closed")
        oldest = self._clock() - self._max_idle
        while self._idle:
            conn, generation, since = self._idle.pop()
            if since >= oldest and not conn.is_closed():
                return conn, generation
            self._drop(conn)
        conn = await self._connect()
        self._size += 1
        return conn, self._generation

    def _keep(self, conn: Any, generation: int) -> None:
        stale = self._closed or generation != self._generation
        if stale or conn.is_closed() or conn.is_in_transaction():
            self._drop(conn)
        else:
            self._idle.append((conn, generation, self._clock()))

    def _drop(self, conn: Any) -> None:
        self._size -= 1
        conn.terminate()

    def _retire(self, conn: Any) -> None:
        """Close in the background: asyncpg first cancels an interrupted query."""
        self._size -= 1
        task = asyncio.get_running_loop().create_task(_close(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close(conn: Any) -> None:
    try:
        await conn.close(timeout=5)
    except (Exception, asyncio.CancelledError):
        conn.terminate()
