"""The schema of a durable tier, opened without opening the tier (which would migrate it
to the newest version): its version, and moving it to another (``bruno-memory migrate``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiosqlite

from bruno_memory.config.models import TierConfig
from bruno_memory.core.errors import translate_errors
from bruno_memory.tiers.sql import postgres_migrator, sqlite_migrator, sqlite_schema
from bruno_memory.tiers.sql import postgres_schema as pg_schema
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.migration import Step
from bruno_memory.tiers.sql.sqlite import ERRORS as SQLITE_ERRORS
from bruno_memory.tiers.sql.sqlite import SQLiteConfig

if TYPE_CHECKING:  # the postgres extra (asyncpg) is imported only for a PostgreSQL tier
    from bruno_memory.tiers.sql.postgres import PostgresConfig

DURABLE_KINDS = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class Status:
    """Where a schema is, at which version, and the newest version this code knows."""

    tier: str
    where: str
    version: int
    latest: int

    def summary(self) -> dict[str, Any]:
        return {"tier": self.tier, "where": self.where, "version": self.version,
                "latest": self.latest}


class Schema(Protocol):
    """A durable tier's schema."""

    async def status(self) -> Status: ...
    async def migrate(self, target: int | None, *, dry_run: bool = False) -> list[Step]: ...


def is_durable(cfg: TierConfig) -> bool:
    """Whether ``cfg`` is a tier with a versioned schema."""
    return cfg.kind in DURABLE_KINDS


@asynccontextmanager
async def open_schema(cfg: TierConfig, namespace: str) -> AsyncIterator[Schema]:
    """The schema of the durable tier ``cfg`` (``is_durable``), on a connection of its own."""
    name = cfg.name or cfg.kind
    if isinstance(cfg, SQLiteConfig):
        with translate_errors(name, "migrate", SQLITE_ERRORS):
            conn = await aiosqlite.connect(cfg.path, timeout=cfg.busy_timeout)
        try:
            await conn.create_function("bruno_pseudonym", 2, _sql.pseudonym, deterministic=True)
            yield _SQLite(name, cfg, conn)
        finally:
            await conn.close()
    elif cfg.kind == "postgres":
        import asyncpg

        from bruno_memory.tiers.sql.postgres import ERRORS as PG_ERRORS
        from bruno_memory.tiers.sql.postgres import PostgresConfig

        assert isinstance(cfg, PostgresConfig)
        schema = cfg.schema or pg_schema.check_schema_name(namespace)
        with translate_errors(name, "migrate", PG_ERRORS):
            conn = await asyncpg.connect(
                cfg.dsn.get_secret_value(), timeout=cfg.connect_timeout
            )
        try:
            yield _Postgres(name, cfg, schema, conn)
        finally:
            await conn.close()
    else:
        raise TypeError(f"tier {name!r} ({cfg.kind}) has no versioned schema")


class _SQLite:
    def __init__(self, name: str, cfg: SQLiteConfig, conn: Any) -> None:
        self.name, self.cfg, self.conn = name, cfg, conn
        self.where = f"the SQLite file {cfg.path!r}"

    async def status(self) -> Status:
        with translate_errors(self.name, "migrate", SQLITE_ERRORS):
            version = await sqlite_migrator.version(self.conn)
        return Status(self.name, self.cfg.path, version, len(sqlite_schema.MIGRATIONS))

    async def migrate(self, target: int | None, *, dry_run: bool = False) -> list[Step]:
        with translate_errors(self.name, "migrate", SQLITE_ERRORS):
            return await sqlite_migrator.migrate(self.conn, self.where, target, dry_run=dry_run)


class _Postgres:
    def __init__(self, name: str, cfg: PostgresConfig, schema: str, conn: Any) -> None:
        self.name, self.cfg, self.schema, self.conn = name, cfg, schema, conn

    async def status(self) -> Status:
        from bruno_memory.tiers.sql.postgres import ERRORS as PG_ERRORS
        from bruno_memory.tiers.sql.postgres import masked

        with translate_errors(self.name, "migrate", PG_ERRORS):
            version, _ = await postgres_migrator.state(self.conn, self.schema)
        where = f"{masked(self.cfg.dsn.get_secret_value())} schema {self.schema}"
        return Status(self.name, where, version, len(pg_schema.MIGRATIONS))

    async def migrate(self, target: int | None, *, dry_run: bool = False) -> list[Step]:
        from bruno_memory.tiers.sql.postgres import ERRORS as PG_ERRORS

        with translate_errors(self.name, "migrate", PG_ERRORS):
            return await postgres_migrator.migrate(
                self.conn, self.schema, self.cfg.search_config, target, dry_run=dry_run
            )
