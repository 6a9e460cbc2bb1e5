"""Moving a SQLite file between schema versions (``PRAGMA user_version``), in one
``BEGIN IMMEDIATE`` transaction: concurrent migrators wait their turn, and a step whose
result does not have the expected shape rolls every step back."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from typing import Any

from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.migration import Shape, Step, check_shape, normalized, plan
from bruno_memory.tiers.sql.sqlite_schema import MIGRATIONS

_SHAPE = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"


async def version(conn: Any) -> int:
    """The schema version of the file (0: a new file)."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(
    conn: Any, where: str, target: int | None = None, *, dry_run: bool = False
) -> list[Step]:
    """Bring the file ``conn`` is open on to version ``target`` (default: the newest),
    checking the shape after each step; ``dry_run`` plans without applying. ``where``
    names the file in errors. Raises ``SchemaMismatch`` (newer than this code, a version
    that does not exist, a shape that is not the expected one)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        current = await version(conn)
        steps = plan(where, current, len(MIGRATIONS) if target is None else target, MIGRATIONS)
        for step in [] if dry_run else steps:
            for statement in step.statements:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {step.version}")
            found = await shape(conn)
            check_shape(where, step.version, found, await asyncio.to_thread(expected, step.version))
        await (conn.rollback() if dry_run else conn.commit())
    except BaseException:
        await conn.rollback()
        raise
    return steps


async def shape(conn: Any) -> Shape:
    """Every table, index and trigger of the file with its definition."""
    async with conn.execute(_SHAPE) as cur:
        return {f"{kind} {name}": normalized(sql) for kind, name, sql in await cur.fetchall()}


@functools.cache
def expected(number: int) -> Shape:
    """The shape of schema version ``number``: its migrations applied to an empty database."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.create_function("bruno_pseudonym", 2, _sql.pseudonym, deterministic=True)
        for migration in MIGRATIONS[:number]:
            for statement in migration.up:
                conn.execute(statement)
        return {f"{k} {n}": normalized(s) for k, n, s in conn.execute(_SHAPE).fetchall()}
    finally:
        conn.close()
