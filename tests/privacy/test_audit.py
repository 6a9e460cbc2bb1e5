"""The audit trail: hash-chained records of who did what to whose data, in the
authoritative tier (SQLite and PostgreSQL); the chain finds an edited and a deleted
record and says where; the CLI lists and verifies it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.build import check_config
from bruno_memory.cli import main
from bruno_memory.config.loader import load_config
from bruno_memory.core import audit
from bruno_memory.core.errors import BrunoMemoryConfigError, CapabilityMissing, TierError
from bruno_memory.core.queries import AppendAudit
from bruno_memory.managers import archive
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.tiers.sql import postgres_schema, sqlite_schema
from tests.factories.postgres import drop_schema


def say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


def config(kind: str, tmp_path: Path, request: pytest.FixtureRequest, ns: str) -> dict[str, Any]:
    durable: dict[str, Any] = {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "a.db")}
    if kind == "postgres":
        durable = {"name": "durable", "kind": "postgres",
                   "dsn": request.getfixturevalue("postgres_dsn")}
    return {"namespace": ns, "audit": {"actor": "app"},
            "tiers": [{"kind": "lru", "maxsize": 100}, durable]}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stack(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[tuple[MemoryStack, dict[str, Any]]]:
    cfg = config(request.param, tmp_path, request, namespace)
    memory = await build_memory(cfg)
    try:
        yield memory, cfg
    finally:
        await memory.close()
        if request.param == "postgres":
            await drop_schema(cfg["tiers"][1]["dsn"], namespace)


async def activity(memory: MemoryStack) -> None:
    """alice writes, deletes and is forgotten; support acts on bob's data; an export."""
    ctx = await memory.get_context("alice", "alice-chat")
    await memory.store_messages([say("hello"), say("my card")], ctx.conversation_id)
    entry = MemoryEntry(user_id="alice", content="likes tea", memory_type=MemoryType.FACT)
    await memory.store_memory(entry)
    await memory.delete_memory(str(entry.id))
    with memory.acting("support:jane"):
        bob = await memory.get_context("bob", "bob-chat")
        await memory.store_message(say("hi bob"), bob.conversation_id)
        await memory.clear_history(bob.conversation_id)
    await memory.forget_user("alice")
    await memory.record_event(audit.KEY_ROTATION, "key", detail={"from": 1, "to": 2})


async def test_writes_deletes_erasure_and_exports_are_recorded(
    stack: tuple[MemoryStack, dict[str, Any]], tmp_path: Path
) -> None:
    """Each write names its actor, action, kind, subject and targets, in order, chained."""
    memory, _ = stack
    await activity(memory)
    await archive.export_csv(memory, tmp_path / "all.csv")
    await archive.export(memory, tmp_path / "bob.jsonl", header=archive.Header("t"),
                         user_id="bob")
    trail = await memory.audit_trail(limit=1000)
    assert trail[-2].event.action == "export" and trail[-2].event.detail["format"] == "csv"
    seen = [(r.event.actor, r.event.action, r.event.kind, r.event.subject) for r in trail]
    assert ("app", "write", "message", "alice") in seen
    assert ("app", "write", "memory", "alice") in seen
    assert ("app", "delete", "memory", "alice") in seen  # read before it went
    assert ("support:jane", "write", "message", "bob") in seen
    assert ("support:jane", "clear_history", "conversation", "bob") in seen
    assert ("app", "forget_user", "user", "alice") in seen
    assert ("app", "key_rotation", "key", None) in seen
    assert seen[-1] == ("app", "export", "store", "bob")
    two = next(r for r in trail if r.event.kind == "message" and r.event.subject == "alice")
    assert len(two.event.targets) == 2  # one event for the batch of two messages
    assert [r.seq for r in trail] == list(range(1, len(trail) + 1))
    assert all(r.prev == p.hash for p, r in itertools.pairwise(trail))
    assert trail[-1].event.detail["records"] > 0
    verdict = await memory.verify_audit()
    assert verdict.ok and verdict.records == len(trail)
    assert verdict.head == (trail[-1].seq, trail[-1].hash)
    bobs = await memory.audit_trail(user_id="bob")
    assert bobs and {r.event.subject for r in bobs} == {"bob"}
    page = await memory.audit_trail(after=2, limit=2)
    assert [r.seq for r in page] == [3, 4]


@contextlib.asynccontextmanager
async def pg(dsn: str, ns: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to the stack's schema."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'SET search_path TO "{ns}"')
        yield conn
    finally:
        await conn.close()


async def raw(cfg: dict[str, Any], ns: str, *statements: str) -> None:
    """Run SQL on the trail as someone with access to the files or the server would,
    the append-only triggers dropped first."""
    durable = cfg["tiers"][1]
    if durable["kind"] == "sqlite":
        with sqlite3.connect(durable["path"]) as db:
            for s in ("DROP TRIGGER IF EXISTS audit_no_update",
                      "DROP TRIGGER IF EXISTS audit_no_delete", *statements):
                db.execute(s)
        return
    async with pg(durable["dsn"], ns) as conn:
        for s in ("DROP TRIGGER IF EXISTS audit_append_only ON audit", *statements):
            await conn.execute(s)


async def test_append_only_refuses_changes(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str
) -> None:
    """The trail's table refuses an UPDATE and a DELETE (and on PostgreSQL a TRUNCATE)."""
    memory, cfg = stack
    await activity(memory)
    durable = cfg["tiers"][1]
    changes = ("UPDATE audit SET actor = 'x'", "DELETE FROM audit")
    if durable["kind"] == "sqlite":
        with sqlite3.connect(durable["path"]) as db:
            for sql in changes:
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    db.execute(sql)
        return
    async with pg(durable["dsn"], namespace) as conn:
        for sql in (*changes, "TRUNCATE audit"):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute(sql)


async def test_an_edited_record_is_detected_and_located(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str
) -> None:
    """Changing record 3's actor breaks its hash; rehashing it breaks record 4's link."""
    memory, cfg = stack
    await activity(memory)
    assert (await memory.verify_audit()).ok
    await raw(cfg, namespace, "UPDATE audit SET actor = 'someone-else' WHERE seq = 3")
    verdict = await memory.verify_audit()
    assert not verdict.ok
    assert [(p.seq, "edited" in p.what) for p in verdict.problems] == [(3, True)]
    record = (await memory.audit_trail(after=2, limit=1))[0]
    forged = audit.digest(3, record.event.row(), record.prev)
    await raw(cfg, namespace, f"UPDATE audit SET hash = '{forged}' WHERE seq = 3")
    verdict = await memory.verify_audit()
    assert [p.seq for p in verdict.problems] == [4]
    assert "record 3 was changed" in verdict.problems[0].what


async def test_a_deleted_record_is_detected_and_located(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str
) -> None:
    """Removing record 2 is reported at record 3, naming the missing number."""
    memory, cfg = stack
    await activity(memory)
    await raw(cfg, namespace, "DELETE FROM audit WHERE seq = 2")
    verdict = await memory.verify_audit()
    assert [str(p) for p in verdict.problems] == ["record 3: record 2 deleted before it"]
    await raw(cfg, namespace, "DELETE FROM audit WHERE seq IN (4, 5)")
    verdict = await memory.verify_audit()
    assert [p.seq for p in verdict.problems] == [3, 6]
    assert "records 4 to 5 deleted" in verdict.problems[1].what


REFUSE_AUDIT = {
    "sqlite": ["CREATE TRIGGER audit_refused BEFORE INSERT ON audit "
               "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"],
    "postgres": ["CREATE FUNCTION audit_refused() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$",
                 "CREATE TRIGGER audit_refused BEFORE INSERT ON audit FOR EACH ROW "
                 "EXECUTE FUNCTION audit_refused()"],
}


async def test_a_write_and_its_audit_record_commit_together(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str
) -> None:
    """The record is appended in the write's own transaction: when appending it fails,
    the write is not committed either, so no crash between the two can lose a record."""
    memory, cfg = stack
    ctx = await memory.get_context("ann", "ann-chat")
    await memory.store_message(say("kept"), ctx.conversation_id)
    trail = await memory.audit_trail()
    await raw(cfg, namespace, *REFUSE_AUDIT[cfg["tiers"][1]["kind"]])
    with pytest.raises(TierError, match="audit refused"):
        await memory.store_message(say("lost with its record"), ctx.conversation_id)
    assert await stored_texts(cfg, namespace) == ["kept"]
    assert await memory.audit_trail() == trail


async def test_coalesced_writes_commit_with_their_records(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent writes applied as one engine write (``stack.coalescing``) keep the rule:
    each one's record names its own actor and is appended in the batch's transaction (no
    append after it); with appending refused, none of the batch is committed."""
    memory, cfg = stack
    ctx = await memory.get_context("ann", "ann-chat")
    engine = await memory._ready()
    asked: list[Any] = []
    ask = engine.ask

    async def counted(query: Any) -> Any:
        asked.append(query)
        return await ask(query)

    monkeypatch.setattr(engine, "ask", counted)

    async def write(i: int, text: str) -> None:
        with memory.acting(f"agent-{i}"):
            await memory.store_message(say(f"{text} {i}"), ctx.conversation_id)

    seen, before = len(await memory.audit_trail(limit=10_000)), engine.write_metrics()
    await asyncio.gather(*(write(i, "kept") for i in range(30)))
    assert engine.write_metrics()["batches"] - before["batches"] < 30
    assert not [q for q in asked if isinstance(q, AppendAudit)]
    records = (await memory.audit_trail(limit=10_000))[seen:]
    assert sorted(r.event.actor for r in records) == sorted(f"agent-{i}" for i in range(30))
    await raw(cfg, namespace, *REFUSE_AUDIT[cfg["tiers"][1]["kind"]])
    results = await asyncio.gather(*(write(i, "lost") for i in range(30)),
                                   return_exceptions=True)
    assert all(isinstance(r, TierError) and "audit refused" in str(r) for r in results)
    assert sorted(await stored_texts(cfg, namespace)) == sorted(f"kept {i}" for i in range(30))


async def stored_texts(cfg: dict[str, Any], ns: str) -> list[str]:
    """The messages the durable tier holds, read past the stack."""
    durable = cfg["tiers"][1]
    if durable["kind"] == "sqlite":
        with sqlite3.connect(durable["path"]) as db:
            return [r[0] for r in db.execute("SELECT content FROM messages ORDER BY seq")]
    async with pg(durable["dsn"], ns) as conn:
        return [r[0] for r in await conn.fetch("SELECT content FROM messages ORDER BY seq")]


@pytest.mark.postgres
async def test_concurrent_writers_never_fork_the_chain(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> None:
    """Two stacks (two pools) on one schema appending at once leave one valid chain."""
    cfg = config("postgres", tmp_path, request, namespace)
    one, two = await build_memory(cfg), await build_memory(cfg)
    try:
        async def chat(memory: MemoryStack, user: str) -> None:
            ctx = await memory.get_context(user, f"{user}-c")
            await asyncio.gather(*(memory.store_message(say(f"m{i}"), ctx.conversation_id)
                                   for i in range(20)))

        await asyncio.gather(chat(one, "u1"), chat(two, "u2"), chat(one, "u3"))
        verdict = await one.verify_audit()
        assert verdict.ok and verdict.records >= 60
    finally:
        await one.close()
        await two.close()
        await drop_schema(cfg["tiers"][1]["dsn"], namespace)


def test_the_cli_lists_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``audit CONFIG --verify`` exits 0 on an intact chain and 1 naming a deleted record;
    ``--user`` lists only that user's records."""
    cfg: dict[str, Any] = {"namespace": "cli", "audit": {}, "tiers": [
        {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "a.db")}]}
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(cfg))

    async def seed() -> None:
        async with await build_memory(cfg) as memory:
            await activity(memory)

    asyncio.run(seed())
    assert main(["audit", str(path), "--verify", "--user", "bob", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verify"]["ok"] and out["records"]
    assert {r["subject"] for r in out["records"]} == {"bob"}
    asyncio.run(raw(cfg | {"tiers": [None, cfg["tiers"][0]]}, "cli",
                    "DELETE FROM audit WHERE seq = 2"))
    assert main(["audit", str(path), "--verify"]) == 1
    text = capsys.readouterr().out
    assert "BROKEN" in text and "record 3: record 2 deleted before it" in text


async def test_audit_needs_a_tier_that_keeps_it(tmp_path: Path) -> None:
    """A stack with no tier able to keep the trail is refused at config time; a stack
    without an audit section has no trail to read."""
    with pytest.raises(BrunoMemoryConfigError, match="audit") as caught:
        check_config(load_config({"audit": {}, "tiers": [{"kind": "lru"}]}))
    assert caught.value.path == "audit"
    async with await build_memory({"tiers": [
            {"kind": "sqlite", "path": str(tmp_path / "n.db")}]}) as memory:
        await memory.store_message(say("x"), "c1")
        assert await memory.record_event(audit.EXPORT, "store") is False
        with pytest.raises(CapabilityMissing, match="audit:"):
            await memory.verify_audit()


async def test_the_audit_migration_goes_down_and_up(
    stack: tuple[MemoryStack, dict[str, Any]], namespace: str
) -> None:
    """The migration's down removes the trail (table, triggers, functions) and its up
    brings it back, on SQLite and PostgreSQL."""
    memory, cfg = stack
    await activity(memory)
    durable = cfg["tiers"][1]
    if durable["kind"] == "sqlite":
        (mig,) = [m for m in sqlite_schema.MIGRATIONS if m.up is sqlite_schema.AUDIT]
        with sqlite3.connect(durable["path"]) as db:
            for s in mig.down:
                db.execute(s)
            assert not db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'audit%'"
                                  ).fetchall()
            for s in mig.up:
                db.execute(s)
            assert db.execute("SELECT count(*) FROM audit").fetchone() == (0,)
        return
    (mig,) = [m for m in postgres_schema.MIGRATIONS if m.up is postgres_schema.AUDIT]
    async with pg(durable["dsn"], namespace) as conn:
        async with conn.transaction():
            for s in mig.down:
                await conn.execute(s)
        assert await conn.fetchval("SELECT to_regclass('audit')") is None
        assert not await conn.fetch("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON "
                                    "n.oid = p.pronamespace WHERE n.nspname = $1 AND "
                                    "p.proname LIKE 'audit%'", namespace)
        async with conn.transaction():
            for s in mig.up:
                await conn.execute(s)
        assert await conn.fetchval("SELECT count(*) FROM audit") == 0
