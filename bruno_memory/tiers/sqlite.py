"""``sqlite``: the embedded durable tier (aiosqlite, WAL, FTS5 bm25)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import orjson
from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory import codec
from bruno_memory.capabilities import Capability
from bruno_memory.config.models import Duration, TierConfig
from bruno_memory.errors import CorruptRecord, TierError, TierUnavailable, translate_errors
from bruno_memory.ops import EMPTY, Empty, Key, Value, WriteOp
from bruno_memory.records import MessageRecord
from bruno_memory.text import terms
from bruno_memory.tiers import _sql
from bruno_memory.tiers._durable import DurableWrites, Statement
from bruno_memory.tiers.base import BaseTier, Scored
from bruno_memory.tiers.sqlite_schema import MIGRATIONS

ERRORS: dict[type[BaseException], type[TierError]] = {
    codec.DecodeError: CorruptRecord,
    sqlite3.OperationalError: TierUnavailable,  # locked, busy, cannot open, disk I/O
    sqlite3.DatabaseError: TierError,  # integrity, interface, corrupt file
    ValueError: TierError,  # closed connection
}


class SQLiteConfig(TierConfig):
    """``path`` is relative to the working directory; ``:memory:`` for a private database."""

    kind: Literal["sqlite"] = "sqlite"
    path: str = "bruno-memory.db"
    busy_timeout: Duration = 5.0
    synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"


class SQLiteTier(DurableWrites, BaseTier[SQLiteConfig]):
    """Everything, authoritative, in one SQLite file."""

    config_model = SQLiteConfig
    capabilities = frozenset(Capability) - {Capability.VECTOR_SEARCH}
    placeholder = "?"

    async def open(self) -> None:
        cfg = self.config
        self._lock = asyncio.Lock()
        with self._errors("open"):
            if cfg.path != ":memory:":
                Path(cfg.path).parent.mkdir(parents=True, exist_ok=True)
            self._writer = await self._connect()
            await self._migrate()
            self._reader = self._writer if cfg.path == ":memory:" else await self._connect()
            if self._reader is not self._writer:
                await self._reader.execute("PRAGMA query_only = 1")

    async def _connect(self) -> aiosqlite.Connection:
        cfg = self.config
        conn = await aiosqlite.connect(cfg.path, timeout=cfg.busy_timeout)
        for pragma in (
            "journal_mode = WAL",
            f"synchronous = {cfg.synchronous}",
            f"busy_timeout = {int(cfg.busy_timeout * 1000)}",
            "temp_store = MEMORY",
        ):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def _migrate(self) -> None:
        conn = self._writer
        await conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = await (await conn.execute("PRAGMA user_version")).fetchone() or (0,)
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {version}")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise

    async def aclose(self) -> None:
        for conn in {id(c): c for c in (getattr(self, "_reader", None), getattr(self, "_writer", None)) if c}.values():
            await conn.close()

    async def ping(self) -> None:
        with self._errors("ping"):
            await self._reader.execute("SELECT 1")

    def _errors(self, op: str) -> Any:
        return translate_errors(self.name, op, ERRORS)

    # -- writes -------------------------------------------------------------------------

    async def _run(self, statements: Sequence[Statement]) -> None:
        async with self._lock:
            with self._errors("write"):
                try:
                    for sql, rows in statements:
                        await self._writer.executemany(sql, rows)
                    await self._writer.commit()
                except BaseException:
                    await self._writer.rollback()
                    raise

    def _tags_param(self, tags: list[str]) -> Any:
        return orjson.dumps(tags).decode()

    # -- reads --------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Iterable[Any], op: str) -> list[Any]:
        with self._errors(op):
            async with self._reader.execute(sql, tuple(params)) as cur:
                return list(await cur.fetchall())

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        out: dict[Key, Value | Empty] = {}
        for key in keys:
            rows = await self._fetch(*_sql.by_key(key), "get")
            with self._errors("get"):
                out[key] = self._decode_row(key, rows[0]) if rows else EMPTY
        return out

    async def window(self, conversation_id: str, limit: int | None) -> Sequence[MessageRecord]:
        rows = await self._fetch(_sql.WINDOW, (conversation_id, -1 if limit is None else limit), "window")
        with self._errors("window"):
            return [codec.message_from_row(p, c, u) for c, u, p in reversed(rows)]

    async def search_messages(
        self, query: str, user_id: str | None, limit: int, conversation_id: str | None = None
    ) -> list[Scored[MessageRecord]]:
        words = terms(query)
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        where, params = ["messages_fts MATCH ?"], [match]
        for column, value in (("m.user_id", user_id), ("m.conversation_id", conversation_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = (
            "SELECT m.conversation_id, m.user_id, m.payload, -bm25(messages_fts) AS score "
            "FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY score DESC LIMIT ?"
        )
        rows = await self._fetch(sql, [*params, limit], "search")
        with self._errors("search"):
            return [Scored(codec.message_from_row(p, c, u), s) for c, u, p, s in rows]

    async def query_memories(self, query: MemoryQuery, now: float) -> list[Scored[MemoryEntry]]:
        where, params = _sql.memory_filters(query, now, _tags_any)
        words = terms(query.query_text or "")
        if words:
            sql = (
                "SELECT m.payload, -bm25(memories_fts) AS score FROM memories_fts "
                "JOIN memories m ON m.seq = memories_fts.rowid "
                f"WHERE memories_fts MATCH ? AND {where} ORDER BY score DESC LIMIT ?"
            )
            params = [" OR ".join(f'"{w}"' for w in words), *params]
        else:
            sql = f"SELECT m.payload, 1.0 FROM memories m WHERE {where} ORDER BY {_sql.DEFAULT_MEMORY_ORDER} LIMIT ?"
        rows = await self._fetch(sql, [*params, query.limit], "query_memories")
        scores = _sql.relative_scores([s for _, s in rows])
        with self._errors("query_memories"):
            return [Scored(codec.from_payload("memory", p), s) for (p, _), s in zip(rows, scores)]

    async def latest_session(self, user_id: str) -> SessionContext | None:
        rows = await self._fetch(_sql.LATEST_SESSION, (user_id,), "latest_session")
        with self._errors("latest_session"):
            return codec.from_payload("session", rows[0][0]) if rows else None

    async def statistics(self, user_id: str) -> dict[str, Any]:
        rows = await self._fetch(_sql.STATISTICS, [user_id] * 5, "statistics")
        by_type = await self._fetch(_sql.MEMORIES_BY_TYPE, (user_id,), "statistics")
        return _sql.statistics(rows[0], by_type)


def _tags_any(tags: list[str]) -> tuple[str, list[Any]]:
    marks = ", ".join("?" for _ in tags)
    return f"EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value IN ({marks}))", tags
