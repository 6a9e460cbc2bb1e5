"""Where wrapped data keys live, apart from the data: an SQLite file, Redis or PostgreSQL.

Every store maps (namespace, owner) to one wrapped key, with insert-if-absent (two
processes creating a user's key at once agree on one), compare-and-swap (rotation) and
delete (crypto-shredding). The SQLite file keeps no copy of a deleted key: it runs with
``secure_delete`` and a rollback journal, not a WAL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from bruno_core.utils.exceptions import BrunoError

from bruno_memory.core.errors import BrunoMemoryConfigError, BrunoMemoryError


class KeyStoreError(BrunoMemoryError):
    """The key store could not be read or written."""


class KeyStore(Protocol):
    """Wrapped data keys of one namespace, by owner."""

    async def open(self) -> None: ...
    async def get(self, owner: str) -> str | None: ...
    async def add(self, owner: str, wrapped: str) -> str: ...  # the one stored after
    async def swap(self, owner: str, old: str, new: str) -> bool: ...
    async def delete(self, owner: str) -> None: ...
    async def items(self) -> list[tuple[str, str]]: ...
    async def aclose(self) -> None: ...


def keystore(location: str, namespace: str, base_dir: Path) -> KeyStore:
    """The key store at ``location`` (a path, a ``redis://`` or ``postgresql://`` URL)."""
    scheme = location.partition("://")[0] if "://" in location else ""
    if scheme in ("redis", "rediss"):
        return Guarded(RedisKeyStore(location, namespace))
    if scheme in ("postgresql", "postgres"):
        return Guarded(PostgresKeyStore(location, namespace))
    path = Path(location).expanduser()
    return Guarded(SqliteKeyStore(path if path.is_absolute() else base_dir / path, namespace))


class Guarded:
    """A key store whose driver errors (a lost connection, a locked file) come out as
    ``KeyStoreError``, once, at this boundary."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __repr__(self) -> str:
        return repr(self.store)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def guarded(*args: Any) -> Any:
            try:
                return await method(*args)
            except BrunoError:  # ours, config errors included
                raise
            except Exception as exc:
                raise KeyStoreError(
                    f"the key store {self.store!r} failed ({type(exc).__name__}: {exc}); "
                    "check that it is reachable and writable") from exc

        return guarded


class SqliteKeyStore:
    """A local file; one table ``bruno_keys``."""

    def __init__(self, path: Path, namespace: str) -> None:
        self.path, self.namespace = path, namespace
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r})"

    async def open(self) -> None:
        import aiosqlite

        if not self.path.parent.is_dir():
            raise BrunoMemoryConfigError(
                f"the key store's folder {self.path.parent} does not exist: create it or "
                "point keystore: elsewhere", path="encryption.keystore")
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        for sql in ("PRAGMA journal_mode=DELETE", "PRAGMA secure_delete=ON",
                    "PRAGMA busy_timeout=5000",
                    "CREATE TABLE IF NOT EXISTS bruno_keys (namespace TEXT NOT NULL, "
                    "owner TEXT NOT NULL, wrapped TEXT NOT NULL, PRIMARY KEY (namespace, owner))"):
            await self._conn.execute(sql)

    async def _one(self, sql: str, *args: Any) -> Any:
        async with self._conn.execute(sql, (self.namespace, *args)) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def get(self, owner: str) -> str | None:
        found: str | None = await self._one(
            "SELECT wrapped FROM bruno_keys WHERE namespace = ? AND owner = ?", owner)
        return found

    async def add(self, owner: str, wrapped: str) -> str:
        await self._conn.execute(
            "INSERT OR IGNORE INTO bruno_keys VALUES (?, ?, ?)", (self.namespace, owner, wrapped))
        return await self.get(owner) or wrapped

    async def swap(self, owner: str, old: str, new: str) -> bool:
        cur = await self._conn.execute(
            "UPDATE bruno_keys SET wrapped = ? WHERE namespace = ? AND owner = ? AND wrapped = ?",
            (new, self.namespace, owner, old))
        return bool(cur.rowcount)

    async def delete(self, owner: str) -> None:
        await self._conn.execute(
            "DELETE FROM bruno_keys WHERE namespace = ? AND owner = ?", (self.namespace, owner))

    async def items(self) -> list[tuple[str, str]]:
        async with self._conn.execute(
            "SELECT owner, wrapped FROM bruno_keys WHERE namespace = ? ORDER BY owner",
            (self.namespace,),
        ) as cur:
            return [(o, w) for o, w in await cur.fetchall()]

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0
"""


class RedisKeyStore:
    """One hash per namespace, ``{namespace}:bruno-keys`` (keep it on a Redis that persists)."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.key = url, f"{namespace}:bruno-keys"
        self._r: Any = None

    def __repr__(self) -> str:
        return f"RedisKeyStore(key={self.key!r})"

    async def open(self) -> None:
        from redis.exceptions import RedisError

        from bruno_memory.drivers.redis import connect

        self._r = connect(self.url, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            await self._r.ping()
        except (RedisError, OSError) as exc:
            await self.aclose()
            raise KeyStoreError(f"the key store (Redis) cannot be reached: {exc}") from exc

    async def get(self, owner: str) -> str | None:
        found = await self._r.hget(self.key, owner)
        return None if found is None else bytes(found).decode()

    async def add(self, owner: str, wrapped: str) -> str:
        await self._r.hsetnx(self.key, owner, wrapped)
        return await self.get(owner) or wrapped

    async def swap(self, owner: str, old: str, new: str) -> bool:
        return bool(await self._r.eval(_SWAP, 1, self.key, owner, old, new))

    async def delete(self, owner: str) -> None:
        await self._r.hdel(self.key, owner)

    async def items(self) -> list[tuple[str, str]]:
        found = await self._r.hgetall(self.key)
        return sorted((bytes(k).decode(), bytes(v).decode()) for k, v in found.items())

    async def aclose(self) -> None:
        if self._r is not None:
            await self._r.aclose()
            self._r = None


class PostgresKeyStore:
    """One table ``bruno_keys`` in the connection's default schema."""

    def __init__(self, dsn: str, namespace: str) -> None:
        self.dsn, self.namespace = dsn, namespace
        self._conn: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "PostgresKeyStore()"

    async def open(self) -> None:
        import asyncpg

        try:
            self._conn = await asyncpg.connect(self.dsn, timeout=10)
            await self._conn.execute(
                "SELECT pg_advisory_lock(hashtext('bruno_keys')); "
                "CREATE TABLE IF NOT EXISTS bruno_keys (namespace TEXT NOT NULL, "
                "owner TEXT NOT NULL, wrapped TEXT NOT NULL, PRIMARY KEY (namespace, owner)); "
                "SELECT pg_advisory_unlock(hashtext('bruno_keys'));")
        except (OSError, asyncpg.PostgresError) as exc:
            await self.aclose()
            raise KeyStoreError(f"the key store (PostgreSQL) cannot be used: {exc}") from exc

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        async with self._lock:  # one connection: one statement at a time
            return await getattr(self._conn, method)(sql, self.namespace, *args)

    async def get(self, owner: str) -> str | None:
        found: str | None = await self._call(
            "fetchval", "SELECT wrapped FROM bruno_keys WHERE namespace = $1 AND owner = $2",
            owner)
        return found

    async def add(self, owner: str, wrapped: str) -> str:
        await self._call("execute", "INSERT INTO bruno_keys VALUES ($1, $2, $3) "
                         "ON CONFLICT DO NOTHING", owner, wrapped)
        return await self.get(owner) or wrapped

    async def swap(self, owner: str, old: str, new: str) -> bool:
        done = await self._call(
            "execute", "UPDATE bruno_keys SET wrapped = $3 WHERE namespace = $1 AND owner = $2 "
            "AND wrapped = $4", owner, new, old)
        return str(done).endswith(" 1")

    async def delete(self, owner: str) -> None:
        await self._call("execute",
                         "DELETE FROM bruno_keys WHERE namespace = $1 AND owner = $2", owner)

    async def items(self) -> list[tuple[str, str]]:
        rows = await self._call(
            "fetch", "SELECT owner, wrapped FROM bruno_keys WHERE namespace = $1 ORDER BY owner")
        return [(r[0], r[1]) for r in rows]

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
