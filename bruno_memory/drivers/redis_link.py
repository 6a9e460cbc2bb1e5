"""One lean connection to a single Redis server, for hot write paths.

redis-py's per-command machinery (pool checkout, retries, hooks, a Python packer, reply
callbacks) costs as much as a loopback round trip; ``OneConnection`` packs commands with
hiredis, writes them at once on a connection of its own and reads the replies in order,
raw (no reply callbacks). The connection is redis-py's, so it connects, authenticates,
selects the database and uses TLS exactly as the pooled client does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis import exceptions as rx

try:
    import hiredis
except ImportError:  # pragma: no cover - redis-py packs then
    hiredis = None  # type: ignore[assignment]

from bruno_memory.core.deadline import deadline

Command = tuple[Any, ...]


class OneConnection:
    """Commands sent one batch at a time on one connection; replies read in order.

    ``client`` is a ``single_connection_client`` (``drivers.redis.connect``) without a
    socket timeout: ``timeout``, if given, bounds each batch's I/O (connecting, writing,
    reading) as one and raises ``redis.exceptions.TimeoutError``. A batch cut by an error
    or a cancellation leaves the connection closed (redis-py closes it), so the next
    batch reconnects and never reads a stale reply.
    """

    def __init__(self, client: Any, timeout: float | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._conn: Any = None

    async def send(self, *commands: Command) -> list[Any]:
        """The replies in order; the first error reply is raised, once all are read."""
        async with self._lock:
            if self._timeout is None:
                replies = await self._exchange(commands)
            else:
                try:
                    async with deadline(self._timeout):
                        replies = await self._exchange(commands)
                except TimeoutError:  # the deadline's, not redis-py's (not a builtin one)
                    raise rx.TimeoutError(f"no reply within {self._timeout}s") from None
        for reply in replies:
            if isinstance(reply, rx.ResponseError):
                raise reply
        return replies

    async def _exchange(self, commands: tuple[Command, ...]) -> list[Any]:
        conn = self._conn
        if conn is None:
            conn = self._conn = (await self._client.initialize()).connection
        await conn.send_packed_command(b"".join(_pack(conn, c) for c in commands))
        replies: list[Any] = []
        for _ in commands:  # read every reply, errors too, so the next batch is in step
            try:
                replies.append(await conn.read_response())
            except rx.ResponseError as exc:
                replies.append(exc)
        return replies

    async def aclose(self) -> None:
        self._conn = None
        await self._client.aclose()


def _pack(conn: Any, command: Command) -> bytes:
    if hiredis is not None:
        packed: bytes = hiredis.pack_command(command)
        return packed
    return b"".join(conn.pack_command(*command))


__all__ = ["Command", "OneConnection"]
