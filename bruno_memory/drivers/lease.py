"""Cross-process leases: one maintenance runner at a time per namespace.

Three kinds, one per store family, each freed when its holder dies:

- ``RedisLease``: ``SET name token NX PX ttl``, renewed by its holder every ``ttl / 3``
  and compared before it is renewed or released (a Lua script); a holder that dies stops
  renewing and the lease expires after ``ttl``.
- ``PostgresLease``: a session advisory lock (``pg_try_advisory_lock``) on a connection of
  its own; the server frees it when that connection closes, a dead holder's included.
- ``FileLease``: ``flock`` on a file next to an SQLite database; the kernel frees it when
  the holder's process exits.

Each has ``acquire``/``renew``/``release``; ``managers.lifecycle.lease.held`` holds one for a
maintenance run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from pathlib import Path
from typing import Any

__all__ = ["FileLease", "PostgresLease", "RedisLease"]


_RENEW = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
          "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end")
_RELEASE = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('DEL', KEYS[1]) else return 0 end")


class RedisLease:
    """A lease on a Redis key that expires ``ttl`` seconds after its last renewal."""

    def __init__(self, client: Any, name: str, ttl: float = 60.0) -> None:
        self.client = client
        self.name = name
        self.ttl = ttl
        self.token = uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"RedisLease({self.name!r}, ttl={self.ttl})"

    async def acquire(self) -> bool:
        return bool(await self.client.set(self.name, self.token, nx=True,
                                          px=int(self.ttl * 1000)))

    async def renew(self) -> bool:
        return bool(await self.client.eval(_RENEW, 1, self.name, self.token,
                                           int(self.ttl * 1000)))

    async def release(self) -> None:
        await self.client.eval(_RELEASE, 1, self.name, self.token)
        await self.client.aclose()


class PostgresLease:
    """A session advisory lock on a connection of its own."""

    def __init__(self, dsn: str, name: str, ttl: float = 60.0) -> None:
        self.dsn = dsn
        self.name = name
        self.ttl = ttl
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"PostgresLease({self.name!r})"

    async def acquire(self) -> bool:
        import asyncpg

        self._conn = await asyncpg.connect(self.dsn)
        got = await self._conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.name)
        if not got:
            await self._conn.close()
            self._conn = None
        return bool(got)

    async def renew(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.name)
            await self._conn.close()
            self._conn = None


class FileLease:
    """An exclusive ``flock`` on ``path`` (created if missing)."""

    def __init__(self, path: str | Path, ttl: float = 60.0) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.ttl = ttl
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FileLease({self.name!r})"

    async def acquire(self) -> bool:
        return await asyncio.to_thread(self._acquire)

    def _acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def renew(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
