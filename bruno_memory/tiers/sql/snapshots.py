"""Consistent snapshots of a durable tier for backups: SQLite's online backup API (a whole
file, copied page by page while writers go on), and a PostgreSQL ``REPEATABLE READ``
transaction read a page at a time (every page sees the same instant)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bruno_memory.core.errors import translate_errors
from bruno_memory.core.ops import Key, Value
from bruno_memory.core.queries import ScanKind, Tombstone
from bruno_memory.tiers.sql import changes
from bruno_memory.tiers.sql import postgres_schema as pg_schema
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.durable import decode_row
from bruno_memory.tiers.sql.postgres import ERRORS as PG_ERRORS
from bruno_memory.tiers.sql.postgres import PostgresConfig, numbered
from bruno_memory.tiers.sql.sqlite import ERRORS as SQLITE_ERRORS

PAGE = 1000


async def sqlite_copy(source: str | Path, target: str | Path, *, name: str = "sqlite") -> None:
    """Copy the SQLite database ``source`` into ``target`` with the online backup API: a
    consistent snapshot, taken while other connections write."""

    def run() -> None:
        src = sqlite3.connect(str(source))
        try:
            dst = sqlite3.connect(str(target))
            try:
                src.backup(dst, pages=4096)
            finally:
                dst.close()
        finally:
            src.close()

    with translate_errors(name, "backup", SQLITE_ERRORS):
        await asyncio.to_thread(run)


class PostgresSnapshot:
    """What one ``REPEATABLE READ`` transaction sees of a schema."""

    def __init__(self, conn: Any, name: str) -> None:
        self._conn, self._name = conn, name

    async def _fetch(self, sql: str, params: list[Any]) -> list[Any]:
        with translate_errors(self._name, "backup", PG_ERRORS):
            rows: list[Any] = await self._conn.fetch(numbered(sql), *params)
            return rows

    async def watermark(self) -> int:
        return int((await self._fetch(_sql.WATERMARK, []))[0][0] or 0)

    async def tombstones(self, since: int | None) -> AsyncIterator[Tombstone]:
        """The transferable tombstones left after ``since``."""
        after: str | None = None
        while True:
            rows = await self._fetch(*changes.tombstones(since or 0, after, PAGE))
            items = [Tombstone(str(s), str(i), int(v)) for s, i, v in rows]
            for item in items:
                yield item
            if len(rows) < PAGE:
                return
            after = changes.cursor(items[-1])

    async def records(self, kinds: tuple[ScanKind, ...], since: int | None) -> AsyncIterator[Value]:
        """Every record of each kind written after ``since``, in key order."""
        for kind in kinds:
            after: str | None = None
            while True:
                rows = await self._fetch(*_sql.scan(kind, None, after, PAGE, since))
                with translate_errors(self._name, "backup", PG_ERRORS):
                    for row in rows:
                        yield decode_row(Key(kind, str(row[0])), row[1:])
                if len(rows) < PAGE:
                    break
                after = str(rows[-1][0])


@asynccontextmanager
async def postgres_snapshot(cfg: PostgresConfig, namespace: str) -> AsyncIterator[PostgresSnapshot]:
    """A read-only ``REPEATABLE READ`` transaction on the tier's schema."""
    name = cfg.name or cfg.kind
    schema = cfg.schema or pg_schema.check_schema_name(namespace)
    with translate_errors(name, "backup", PG_ERRORS):
        conn = await asyncpg.connect(
            cfg.dsn.get_secret_value(),
            timeout=cfg.connect_timeout,
            server_settings={"search_path": pg_schema.quoted(schema)},
        )
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield PostgresSnapshot(conn, name)
    finally:
        await conn.close()
