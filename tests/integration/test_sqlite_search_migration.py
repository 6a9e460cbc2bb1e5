"""A store of the previous SQLite schema migrates to the owner-scoped full-text index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.tiers.sql import sqlite_migrator
from bruno_memory.tiers.sql.sqlite_schema import MIGRATIONS


def _config(path: Path) -> dict[str, object]:
    return {"namespace": "migrate", "tiers": [{"kind": "sqlite", "path": str(path)}]}


async def test_previous_schema_migrates_and_user_scoped_search_finds_its_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages and memories written under schema version N-1 are kept and found by
    user-scoped search after the migration, and never by another user's search."""
    path = tmp_path / "old.db"
    previous = len(MIGRATIONS) - 1
    monkeypatch.setattr(sqlite_migrator, "MIGRATIONS", MIGRATIONS[:previous])
    memory = await build_memory(_config(path))
    try:
        for user, animal in (("alice", "otters"), ("bob", "owls")):
            session = await memory.create_session(user)
            await memory.store_messages(
                [
                    Message(role=MessageRole.USER, content=f"I love {animal} and rivers"),
                    Message(role=MessageRole.ASSISTANT, content="Noted, a fine hobby"),
                ],
                session.conversation_id,
            )
            await memory.store_memory(
                MemoryEntry(
                    content=f"{user} watches {animal}", memory_type=MemoryType.FACT, user_id=user
                )
            )
    finally:
        await memory.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == previous

    monkeypatch.setattr(sqlite_migrator, "MIGRATIONS", MIGRATIONS)
    memory = await build_memory(_config(path))
    try:
        found = await memory.search_messages("otters rivers", user_id="alice", limit=10)
        assert [m.content for m in found] == ["I love otters and rivers"]
        assert await memory.search_messages("otters", user_id="bob", limit=10) == []
        rivers = await memory.search_messages("rivers", user_id="bob", limit=10)
        assert [m.content for m in rivers] == ["I love owls and rivers"]
        memories = await memory.retrieve_memories(
            MemoryQuery(user_id="bob", query_text="owls", limit=5)
        )
        assert [m.content for m in memories] == ["bob watches owls"]
        # written after the migration: indexed with its owner too
        session = await memory.create_session("alice")
        await memory.store_message(
            Message(role=MessageRole.USER, content="otters again"), session.conversation_id
        )
        again = await memory.search_messages("otters", user_id="alice", limit=10)
        assert len(again) == 2
    finally:
        await memory.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
