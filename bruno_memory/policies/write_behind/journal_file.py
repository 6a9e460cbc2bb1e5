"""The file journal: an SQLite file in WAL mode. Each writer owns its entries and holds an
OS lock on an owner file while it lives; a process that opens the journal takes over the
entries of every owner whose lock is free (its process died) and replays them."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bruno_memory.core.errors import TierError, TierUnavailable, translate_errors
from bruno_memory.core.rides import Ride
from bruno_memory.policies.write_behind.journal import DeadLetter, GroupCommit, Item, Landed

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: dead owners are not detected
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

ERRORS: dict[type[BaseException], type[TierError]] = {
    sqlite3.OperationalError: TierUnavailable,  # locked, disk full, cannot open
    OSError: TierUnavailable,
    sqlite3.Error: TierError,
}
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "owner TEXT NOT NULL, op BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS journal_owner ON journal (owner, id)",
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "entry INTEGER, tier TEXT NOT NULL, op BLOB NOT NULL, error TEXT NOT NULL, "
    "at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0))",
]


class FileJournal:
    """An SQLite WAL file; every call runs on one thread of its own, in order."""

    kind = "file"

    def __init__(self, path: Path, owner: str, tier: str) -> None:
        self.path, self.owner, self.tier = path, owner, tier
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._group = GroupCommit(lambda items, _: self._do(self._insert, items))

    def __repr__(self) -> str:
        return f"FileJournal({str(self.path)!r}, owner={self.owner!r})"

    async def _do(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            raise TierUnavailable("the journal is closed", tier=f"{self.tier}.journal", op="use")
        with translate_errors(f"{self.tier}.journal", fn.__name__.strip("_"), ERRORS):
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> list[Item]:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bruno-journal")
        try:
            await self._do(self._open)
            return await self._do(self._load, self.owner) + await self.reclaim()
        except BaseException:
            await self.aclose()
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._owners_dir.mkdir(exist_ok=True)
        fd = os.open(self._owners_dir / f"{self.owner}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise TierError(f"journal owner {self.owner!r} is in use by another process",
                            tier=f"{self.tier}.journal", op="open")
        self._lock_fd = fd
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # survives a killed process
        conn.execute("PRAGMA secure_delete = ON")  # an applied or erased op leaves no bytes
        for statement in _SCHEMA:
            conn.execute(statement)
        self._conn = conn

    @property
    def _owners_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".owners")

    def _db(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    def _load(self, owner: str) -> list[Item]:
        sql = "SELECT id, op FROM journal WHERE owner = ? ORDER BY id"
        rows = self._db().execute(sql, (owner,))
        return [(i, bytes(op)) for i, op in rows]

    def _insert(self, items: list[bytes]) -> list[Any]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [db.execute("INSERT INTO journal (owner, op) VALUES (?, ?)",
                              (self.owner, item)).lastrowid for item in items]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ids

    def _delete(self, ids: list[Any]) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            db.execute(f"DELETE FROM journal WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        db.execute("COMMIT")

    def _bury(self, id: Any, data: bytes, error: str) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO dead_letters (entry, tier, op, error) VALUES (?, ?, ?, ?)",
                   (id, self.tier, data, error))
        db.execute("DELETE FROM journal WHERE id = ?", (id,))
        db.execute("COMMIT")

    def _buried(self, limit: int) -> list[DeadLetter]:
        rows = self._db().execute(
            "SELECT entry, op, error FROM dead_letters WHERE tier = ? ORDER BY id LIMIT ?",
            (self.tier, limit))
        return [DeadLetter(i, bytes(op), err) for i, op, err in rows]

    def _erase(self, match: Callable[[bytes], bool]) -> int:
        """Delete the matching dead letters of this tier, then truncate the WAL (its old
        frames still hold what was deleted)."""
        db = self._db()
        rows = db.execute("SELECT id, op FROM dead_letters WHERE tier = ?", (self.tier,))
        gone = [i for i, op in rows.fetchall() if match(bytes(op))]
        if gone:
            db.execute("BEGIN IMMEDIATE")
            for at in range(0, len(gone), 500):
                chunk = gone[at : at + 500]
                db.execute(f"DELETE FROM dead_letters WHERE id IN ({','.join('?' * len(chunk))})",
                           chunk)
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(gone)

    def _take_over(self) -> list[Item]:
        """Entries of owners whose lock is free (their process is gone), now ours."""
        db, taken = self._db(), []
        owners = [o for (o,) in db.execute("SELECT DISTINCT owner FROM journal") if o != self.owner]
        for owner in owners:
            lock = self._owners_dir / f"{owner}.lock"
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_lock(fd):
                    continue  # its writer is alive
                db.execute("BEGIN IMMEDIATE")
                taken += self._load(owner)
                db.execute("UPDATE journal SET owner = ? WHERE owner = ?", (self.owner, owner))
                db.execute("COMMIT")
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return taken

    async def append(
        self, items: list[bytes], then: Landed | None = None, rides: Sequence[Ride] = ()
    ) -> list[Any]:
        return await self._group.submit(items, then)  # a file carries no ride

    def carrier(self) -> str | None:
        return None

    async def ack(self, ids: list[Any]) -> None:
        if ids:
            await self._do(self._delete, ids)

    async def dead_letter(self, id: Any, data: bytes, error: str) -> None:
        await self._do(self._bury, id, data, error)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self._do(self._buried, limit)

    async def reclaim(self) -> list[Item]:
        return await self._do(self._take_over)

    async def erase_dead_letters(self, match: Callable[[bytes], bool]) -> int:
        return await self._do(self._erase, match)

    async def drop(self) -> None:
        """Close, then delete the journal file (WAL and owner locks with it)."""
        await self.aclose()

        def remove() -> None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            shutil.rmtree(self._owners_dir, ignore_errors=True)

        with translate_errors(f"{self.tier}.journal", "drop", ERRORS):
            await asyncio.to_thread(remove)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        await asyncio.get_running_loop().run_in_executor(pool, self._close)
        pool.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            (self._owners_dir / f"{self.owner}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
