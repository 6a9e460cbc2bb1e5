"""Schema migrations up and down on populated SQLite and PostgreSQL stores, validated after
each step, refused on a schema newer than the code, serialized between migrators."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bruno_memory import build_memory
from bruno_memory.cli import main
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import TierError
from bruno_memory.tiers.sql import postgres_schema, sqlite_schema
from bruno_memory.tiers.sql.schemas import open_schema
from tests.factories.postgres import drop_schema
from tests.ops.store import populate_all, postgres_only, reads, sqlite_only

Snapshot = Callable[[], Awaitable[dict[str, list[Any]]]]
RECORDS = ("messages", "sessions", "users", "memories")
TABLES = ("messages", "sessions", "users", "memories", "tombstones", "bruno_meta")


async def _migrate(cfg: dict[str, Any], target: int | None) -> list[Any]:
    stack = load_config(cfg)
    async with open_schema(stack.tiers[-1], stack.namespace) as schema:
        return await schema.migrate(target)


async def _version(cfg: dict[str, Any]) -> int:
    stack = load_config(cfg)
    async with open_schema(stack.tiers[-1], stack.namespace) as schema:
        return (await schema.status()).version


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[tuple[dict[str, Any], Snapshot, int]]:
    """A populated store (config, a snapshot of every table, the newest version)."""
    if request.param == "sqlite":
        cfg = sqlite_only(tmp_path)
        path = cfg["tiers"][0]["path"]

        async def snapshot() -> dict[str, list[Any]]:
            db = sqlite3.connect(path)
            try:
                have = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
                out = {}
                for t in TABLES:
                    if t in have:  # stored columns only: a generated one is derived data
                        cols = ", ".join(r[1] for r in db.execute(f"PRAGMA table_xinfo({t})")
                                         if r[6] not in (2, 3))
                        out[t] = db.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall()
                return out
            finally:
                db.close()

        latest = len(sqlite_schema.MIGRATIONS)
    else:
        cfg = postgres_only(request, namespace)
        dsn = cfg["tiers"][0]["dsn"]

        async def snapshot() -> dict[str, list[Any]]:
            conn = await asyncpg.connect(dsn)
            try:
                out = {}
                for t in TABLES:
                    if await conn.fetchval("SELECT to_regclass($1)", f'"{namespace}".{t}'):
                        cols = ", ".join(await conn.fetchval(  # stored columns only
                            "SELECT array_agg(column_name::text ORDER BY ordinal_position) "
                            "FROM information_schema.columns WHERE table_schema = $1 AND "
                            "table_name = $2 AND is_generated = 'NEVER'", namespace, t))
                        rows = await conn.fetch(
                            f'SELECT {cols} FROM "{namespace}".{t} ORDER BY 1, 2')
                        out[t] = [tuple(r) for r in rows]
                return out
            finally:
                await conn.close()

        latest = len(postgres_schema.MIGRATIONS)
    async with await build_memory(cfg) as memory:
        await populate_all(memory)
    try:
        yield cfg, snapshot, latest
    finally:
        if request.param == "postgres":
            await drop_schema(dsn, namespace)


async def test_every_migration_goes_down_and_up_and_keeps_the_data(
    store: tuple[dict[str, Any], Snapshot, int],
) -> None:
    """From the newest version, down to each older one and back up: every table holds what
    it held (tombstones too, unless the version went below 2, which has none), and the API
    reads the same."""
    cfg, snapshot, latest = store
    async with await build_memory(cfg) as memory:
        before_reads = await reads(memory)
        before_found = await memory.search_messages("turn mail", user_id="ada", limit=20)
    before = await snapshot()
    assert before["tombstones"] and before["messages"] and before["memories"]
    for target in range(latest - 1, 0, -1):
        down = await _migrate(cfg, target)
        assert [s.direction for s in down] == ["down"] * (latest - target)
        assert await _version(cfg) == target
        held = await snapshot()
        for table in RECORDS:
            assert held[table] == before[table], (target, table)
        assert ("tombstones" in held) == (target >= 2)
        up = await _migrate(cfg, None)
        assert [s.version for s in up] == list(range(target + 1, latest + 1))
        after = await snapshot()
        kept = before if target >= 2 else {t: before[t] for t in RECORDS}  # v1: no tombstones
        assert {t: after[t] for t in kept} == kept, target
    async with await build_memory(cfg) as memory:
        assert await reads(memory) == before_reads
        found = await memory.search_messages("turn mail", user_id="ada", limit=20)
        assert len(before_found) == 5 and found == before_found  # the full-text index too


async def test_down_to_zero_removes_the_schema_and_up_rebuilds_it(
    store: tuple[dict[str, Any], Snapshot, int],
) -> None:
    """Version 0 is an empty schema (the data goes with it); going up again validates."""
    cfg, snapshot, latest = store
    assert [s.version for s in await _migrate(cfg, 0)] == list(range(latest - 1, -1, -1))
    assert await snapshot() == {}
    assert len(await _migrate(cfg, None)) == latest
    async with await build_memory(cfg) as memory:
        assert await memory.retrieve_messages("chat-1") == []


async def test_a_schema_newer_than_the_code_is_refused(
    store: tuple[dict[str, Any], Snapshot, int],
) -> None:
    """Opening a store whose schema a newer bruno-memory wrote fails and says to upgrade;
    so does migrating it."""
    cfg, _, latest = store
    tier = cfg["tiers"][0]
    if tier["kind"] == "sqlite":
        db = sqlite3.connect(tier["path"])
        db.execute(f"PRAGMA user_version = {latest + 1}")
        db.commit()
        db.close()
    else:
        conn = await asyncpg.connect(tier["dsn"])
        await conn.execute(
            f'INSERT INTO "{cfg["namespace"]}".schema_version (version, search_config) '
            "VALUES ($1, 'english')",
            latest + 1,
        )
        await conn.close()
    with pytest.raises(TierError, match=r"newer than this bruno-memory.*upgrade bruno-memory"):
        await build_memory(cfg)
    with pytest.raises(TierError, match="newer than this bruno-memory"):
        await _migrate(cfg, latest)


async def test_a_schema_changed_by_hand_fails_validation_and_rolls_back(
    store: tuple[dict[str, Any], Snapshot, int],
) -> None:
    """A step whose result lacks an expected object is refused, and every step of the run
    is rolled back."""
    cfg, _, _ = store
    await _migrate(cfg, 1)
    tier = cfg["tiers"][0]
    if tier["kind"] == "sqlite":
        db = sqlite3.connect(tier["path"])
        db.execute("DROP INDEX messages_user")
        db.commit()
        db.close()
    else:
        conn = await asyncpg.connect(tier["dsn"])
        await conn.execute(f'DROP INDEX "{cfg["namespace"]}".messages_user')
        await conn.close()
    with pytest.raises(TierError, match="missing index messages_user"):
        await _migrate(cfg, None)
    assert await _version(cfg) == 1


async def test_concurrent_migrators_are_serialized(
    store: tuple[dict[str, Any], Snapshot, int],
) -> None:
    """Four migrators at once: one moves the schema, the others find nothing left to do."""
    cfg, snapshot, latest = store
    before = await snapshot()
    await _migrate(cfg, 2)
    runs = await asyncio.gather(*(_migrate(cfg, None) for _ in range(4)))
    assert sorted(len(r) for r in runs) == [0, 0, 0, latest - 2]
    assert await snapshot() == before


def test_cli_status_down_dry_run_and_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``migrate`` shows versions, plans without applying on ``--dry-run``, moves down and
    up, and refuses a version that does not exist."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"tiers:\n  - {{kind: sqlite, path: {tmp_path / 'c.db'}}}\n")
    latest = len(sqlite_schema.MIGRATIONS)
    assert main(["migrate", str(cfg), "--status", "--json"]) == 0
    assert '"version": 0' in capsys.readouterr().out
    assert main(["migrate", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE messages" in out and f"up {latest}" in out
    assert main(["migrate", str(cfg), "--status", "--json"]) == 0
    assert '"version": 0' in capsys.readouterr().out
    assert main(["migrate", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["migrate", str(cfg), "--to", "1", "--json"]) == 0
    (moved,) = json.loads(capsys.readouterr().out)["tiers"]
    assert moved["version"] == 1 and len(moved["steps"]) == latest - 1
    assert main(["migrate", str(cfg), "--to", str(latest + 1)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_newest_first_guards_drop_older_rows_without_hashing_newer_ones() -> None:
    """Schema 7's guards: a row older than a covering tombstone (here a user's purge) is
    dropped as before; a row newer than every tombstone is stored without the owner being
    hashed (no call of ``bruno_pseudonym``)."""
    from bruno_memory.tiers.sql import text as sql_text
    from bruno_memory.tiers.sql.durable import PURGE_VERSIONED, UPSERTS

    hashed: list[str | None] = []

    def pseudonym(key: str | None, user: str | None) -> str | None:
        hashed.append(user)
        return sql_text.pseudonym(key, user)

    db = sqlite3.connect(":memory:")
    db.create_function("bruno_pseudonym", 2, pseudonym)
    for migration in sqlite_schema.MIGRATIONS:
        for statement in migration.up:
            db.execute(statement)
    db.execute(PURGE_VERSIONED[-1], ("ada", 100))  # an erasure at version 100 (no rows)
    db.execute(sql_text.PURGE_TOMBSTONE, ("ada", 100))
    row = ("m-old", "c1", "ada", "user", 1.0, "hello", "{}", 50)
    hashed.clear()
    db.execute(UPSERTS["message"], row)  # a replay older than the erasure: dropped
    assert hashed == ["ada"]
    hashed.clear()
    db.execute(UPSERTS["message"], ("m-new", *row[1:7], 150))  # newer: stored, not hashed
    assert hashed == []
    assert db.execute("SELECT id FROM messages").fetchall() == [("m-new",)]
