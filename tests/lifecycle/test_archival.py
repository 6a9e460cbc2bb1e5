"""Archival: archived messages leave windows, caches and default search, stay durable,
exportable, searchable on request and restorable; the schema migration has a real down."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest

from bruno_memory.core.archived import ARCHIVED, is_archived
from bruno_memory.managers.archive import Header, export
from bruno_memory.managers.lifecycle.archival import archive, unarchive
from bruno_memory.tiers.sql import postgres_schema, sqlite_schema
from tests.lifecycle.helpers import converse


async def _archive_first_session(memory: Any, user: str) -> tuple[str, list[Any]]:
    conversation = await converse(memory, user, sessions=2)
    newest_first = await memory.retrieve_messages(conversation)  # warms the caches
    old = list(reversed(newest_first))[:6]
    assert await archive(memory, conversation, old) == 6
    return conversation, old


async def test_archived_messages_leave_the_window_and_caches(memory: Any) -> None:
    """A window read (cached before) no longer holds archived messages; nothing is lost."""
    conversation, old = await _archive_first_session(memory, "arc")
    for _ in range(2):  # the first read refills the caches, the second reads them
        window = await memory.retrieve_messages(conversation)
        assert len(window) == 6 and not {m.id for m in window} & {m.id for m in old}
    ctx = await memory.get_context("arc", conversation)
    assert not {m.id for m in ctx.messages} & {m.id for m in old}
    stored = await memory.messages_between(old[0].timestamp, old[-1].timestamp.replace(
        year=old[-1].timestamp.year + 1), conversation_id=conversation)
    assert len(stored) == 12 and sum(is_archived(m) for m in stored) == 6


async def test_search_leaves_archived_out_unless_asked(memory: Any) -> None:
    """Default search skips archived messages (also from vector hits);
    ``include_archived=True`` finds them."""
    await _search_leaves_archived_out(memory)


async def test_search_leaves_archived_out_unless_asked_semantic(semantic_memory: Any) -> None:
    """The same with a semantic tier (hybrid search, vector candidates)."""
    await _search_leaves_archived_out(semantic_memory)


async def _search_leaves_archived_out(memory: Any) -> None:
    _, old = await _archive_first_session(memory, "srch")
    query = "Session 0 turn 0 Pixel"
    default = await memory.search_messages(query, user_id="srch", limit=20)
    assert default and not {m.id for m in default} & {m.id for m in old}
    everything = await memory.search(query, user_id="srch", limit=20, include_archived=True)
    assert {m.id for m in old} & {h.item.id for h in everything}
    phrase = await memory.search_phrase("Session 0 turn 0.", user_id="srch")
    assert phrase == []
    phrase = await memory.search_phrase("Session 0 turn 0.", user_id="srch",
                                        include_archived=True)
    assert [h.item.id for h in phrase] == [old[0].id]


async def test_unarchive_restores_window_and_search(memory: Any) -> None:
    """Unarchived messages are back in the window (in order) and in default search."""
    conversation, old = await _archive_first_session(memory, "back")
    await memory.retrieve_messages(conversation)  # caches hold the short window
    assert await unarchive(memory, conversation, [str(old[0].id)]) == 1
    window = list(reversed(await memory.retrieve_messages(conversation)))
    assert [m.id for m in window] == [old[0].id, *[m.id for m in window[1:]]]
    assert len(window) == 7 and not is_archived(window[0])
    assert await unarchive(memory, conversation) == 5
    assert len(await memory.retrieve_messages(conversation)) == 12
    hits = await memory.search_messages("Session 0 turn 0 Pixel", user_id="back", limit=20)
    assert old[0].id in {m.id for m in hits}


async def test_export_carries_the_archive_flag(sqlite_memory: Any, tmp_path: Path) -> None:
    """An export holds every message, archived ones with their flag."""
    _, old = await _archive_first_session(sqlite_memory, "exp")
    path = tmp_path / "out.jsonl.gz"
    await export(sqlite_memory, path, header=Header(namespace="t"))
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    messages = [r for r in rows if r.get("kind") == "message"]
    assert len(messages) == 12
    flagged = {r["record"]["id"] for r in messages
               if ARCHIVED in r["record"]["metadata"]}
    assert flagged == {str(m.id) for m in old}


async def test_sqlite_migration_down_and_up(sqlite_memory: Any, tmp_path: Path) -> None:
    """The archive column's migration undoes and redoes cleanly on a database with data."""
    await _archive_first_session(sqlite_memory, "mig")
    await sqlite_memory.flush()
    db = tmp_path / "memory.db"
    async with aiosqlite.connect(db) as conn:
        for statement in sqlite_schema.ARCHIVED_DOWN:
            await conn.execute(statement)
        columns = [r[1] async for r in await conn.execute("PRAGMA table_xinfo(messages)")]
        assert "archived" not in columns
        for statement in sqlite_schema.ARCHIVED:
            await conn.execute(statement)
        count = await (await conn.execute(
            "SELECT COUNT(*) FROM messages WHERE archived")).fetchone()
        assert count == (6,)


async def test_postgres_migration_down_and_up(postgres_dsn: str, namespace: str) -> None:
    """The same on PostgreSQL, in a schema of its own."""
    from bruno_memory import build_memory
    from tests.factories.postgres import drop_schema

    memory = await build_memory({"namespace": namespace, "tiers": [
        {"kind": "postgres", "dsn": postgres_dsn, "schema": namespace}]})
    try:
        await _archive_first_session(memory, "pgm")
    finally:
        await memory.close()
    conn = await asyncpg.connect(postgres_dsn, server_settings={"search_path": namespace})
    try:
        async with conn.transaction():
            for statement in postgres_schema.ARCHIVED_DOWN:
                await conn.execute(statement)
        assert await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 "
            "AND table_name = 'messages' AND column_name = 'archived'", namespace) == 0
        async with conn.transaction():
            for statement in postgres_schema.ARCHIVED:
                await conn.execute(statement.replace("{config}", "'english'"))
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE archived") == 6
    finally:
        await conn.close()
        await drop_schema(postgres_dsn, namespace)


async def test_archival_holds_on_an_encrypted_stack(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """With every record sealed, the archive flag stays readable to the stores: archived
    messages still leave windows and default search, and the text stays sealed."""
    from tests.factories.encrypted import STACKS as ENCRYPTED

    laptop = next(f for f in ENCRYPTED if f.id == "encrypted:lru->sqlite")
    async with laptop.open(request, namespace, tmp_path) as memory:
        conversation, old = await _archive_first_session(memory, "enc")
        window = await memory.retrieve_messages(conversation)
        assert len(window) == 6 and not {m.id for m in window} & {m.id for m in old}
        found = await memory.search_messages("Session 0 turn 0 Pixel", user_id="enc", limit=20)
        assert found and not {m.id for m in found} & {m.id for m in old}
    db = sqlite3.connect(tmp_path / "m.db")
    try:
        rows = db.execute("SELECT content, payload FROM messages WHERE archived").fetchall()
    finally:
        db.close()
    assert len(rows) == 6 and not any("Session 0" in c + p for c, p in rows)
