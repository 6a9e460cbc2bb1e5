"""Moving a PostgreSQL schema between versions, in one transaction under the advisory lock
every opener takes (concurrent migrators wait their turn); a step whose result does not
have the expected shape rolls every step back."""

from __future__ import annotations

import secrets
from typing import Any

from bruno_memory.tiers.sql.migration import (
    SchemaMismatch,
    Shape,
    Step,
    check_shape,
    normalized,
    plan,
    too_new,
)
from bruno_memory.tiers.sql.postgres_schema import MIGRATIONS, VERSION_TABLE, lock_key, quoted

_NAMESPACE = "(SELECT oid FROM pg_namespace WHERE nspname = $1)"
_SHAPE = [
    "SELECT 'table ' || relname, relkind::text FROM pg_class WHERE relnamespace = "
    f"{_NAMESPACE} AND relkind IN ('r', 'p', 'v', 'm', 'S') AND relname <> 'schema_version'",
    "SELECT 'column ' || table_name || '.' || column_name, concat_ws(' ', data_type, "
    "is_nullable, column_default, generation_expression, is_identity) "
    "FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'schema_version'",
    "SELECT 'index ' || indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = $1 AND tablename <> 'schema_version'",
    "SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
    f"JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {_NAMESPACE} "
    "AND NOT t.tgisinternal",
    "SELECT 'function ' || proname, prosrc FROM pg_proc WHERE pronamespace = " + _NAMESPACE,
]
_EXPECTED: dict[tuple[int, str], Shape] = {}


def where(schema: str) -> str:
    return f"PostgreSQL schema {schema!r}"


async def state(conn: Any, schema: str) -> tuple[int, str | None]:
    """(version, search config of the newest version); (0, None) for a fresh schema."""
    table = await conn.fetchval("SELECT to_regclass($1)::text", f"{quoted(schema)}.schema_version")
    if table is None:
        return 0, None
    row = await conn.fetchrow(
        f"SELECT version, search_config FROM {quoted(schema)}.schema_version "
        "ORDER BY version DESC LIMIT 1"
    )
    return (row[0], row[1]) if row else (0, None)


async def upgrade(conn: Any, schema: str, search_config: str) -> int:
    """Bring ``schema`` to the newest version (what opening the tier does); returns it.

    Raises ``SchemaMismatch`` when the schema is newer than this code or was indexed with
    another text search configuration.
    """
    version, indexed = await state(conn, schema)
    if version < len(MIGRATIONS):
        await migrate(conn, schema, search_config)
        version, indexed = await state(conn, schema)
    if version > len(MIGRATIONS):
        raise too_new(where(schema), version, len(MIGRATIONS))
    same = await conn.fetchval("SELECT $1::regconfig = $2::regconfig", indexed, search_config)
    if not same:
        raise SchemaMismatch(
            f"schema {schema!r} was indexed with search_config {indexed!r}, not "
            f"{search_config!r}: set search_config: {indexed} or use another schema"
        )
    return int(version)


async def migrate(
    conn: Any,
    schema: str,
    search_config: str,
    target: int | None = None,
    *,
    dry_run: bool = False,
) -> list[Step]:
    """Bring ``schema`` to version ``target`` (default: the newest), checking the shape
    after each step; ``dry_run`` plans without applying. A schema already indexed keeps
    its search configuration."""
    tr = conn.transaction()
    await tr.start()
    try:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key(schema))
        await conn.execute("SET LOCAL statement_timeout = 0")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}")
        await conn.execute(f"SET LOCAL search_path TO {quoted(schema)}")
        await conn.execute(VERSION_TABLE)
        current, indexed = await state(conn, schema)
        config = await conn.fetchval("SELECT $1::regconfig::text", indexed or search_config)
        steps = plan(where(schema), current, len(MIGRATIONS) if target is None else target,
                     MIGRATIONS)
        for step in [] if dry_run else steps:
            await _apply(conn, step, config)
            expected = await _expected(conn, step.version, config)
            check_shape(where(schema), step.version, await shape(conn, schema), expected)
    except BaseException:
        await tr.rollback()
        raise
    await (tr.rollback() if dry_run else tr.commit())
    return steps


async def _apply(conn: Any, step: Step, config: str) -> None:
    literal = f"'{config}'"
    for statement in step.statements:
        await conn.execute(statement.replace("{config}", literal))
    if step.direction == "up":
        await conn.execute(
            "INSERT INTO schema_version (version, search_config) VALUES ($1, $2)",
            step.number,
            config,
        )
    else:
        await conn.execute("DELETE FROM schema_version WHERE version = $1", step.number)


async def shape(conn: Any, schema: str) -> Shape:
    """Every table, column, index, trigger and function of ``schema``, its name left out of
    the definitions."""
    out: dict[str, str] = {}
    for sql in _SHAPE:
        for name, definition in await conn.fetch(sql, schema):
            text = definition.replace(f"{quoted(schema)}.", "").replace(f"{schema}.", "")
            out[name] = normalized(text)
    return out


async def _expected(conn: Any, number: int, config: str) -> Shape:
    """The shape of version ``number``: its migrations applied to a scratch schema in a
    savepoint that is rolled back."""
    if (number, config) not in _EXPECTED:
        scratch = f"bruno_expected_{secrets.token_hex(6)}"
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute(f"CREATE SCHEMA {quoted(scratch)}")
            await conn.execute(f"SET LOCAL search_path TO {quoted(scratch)}")
            for n in range(1, number + 1):
                for statement in MIGRATIONS[n - 1].up:
                    await conn.execute(statement.replace("{config}", f"'{config}'"))
            _EXPECTED[number, config] = await shape(conn, scratch)
        finally:
            await tr.rollback()
    return _EXPECTED[number, config]
