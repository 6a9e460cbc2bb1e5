"""Encryption at rest: no plaintext in any store, search still finds it, clear key errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.errors import BrunoMemoryConfigError
from tests.privacy.stores import (
    cleanup,
    encrypted,
    file_bytes,
    new_key,
    opened,
    server_bytes,
    shipped,
)

MARKER = "Quokkazanzibar"

STACKS = [
    pytest.param("laptop", id="laptop"),
    pytest.param("single-node", id="single-node", marks=[pytest.mark.redis, pytest.mark.postgres]),
    pytest.param("production", id="production", marks=[pytest.mark.redis, pytest.mark.postgres]),
]


def leaks(blobs: list[tuple[str, bytes]]) -> list[str]:
    """Where the marker appears, in any case, as UTF-8 or UTF-16."""
    needles = [MARKER.encode(), MARKER.lower().encode(), MARKER.upper().encode(),
               MARKER.encode("utf-16-le")]
    return [where for where, data in blobs if any(n in data for n in needles)]


@pytest.mark.parametrize("stack", STACKS)
async def test_a_marker_word_is_in_no_byte_of_any_store_and_search_finds_it(
    request: pytest.FixtureRequest, stack: str, namespace: str, tmp_path: Path
) -> None:
    """Messages, memories and metadata holding a marker leave no trace of it in the SQLite
    files (WAL and FTS included), Redis values and streams, PostgreSQL rows and files or
    journals, and full-text search still finds each record."""
    keystore = str(tmp_path / "keys" / "keys.db")
    (tmp_path / "keys").mkdir()
    cfg = encrypted(shipped(request, stack, namespace, tmp_path / "data"), [new_key()], keystore)
    (tmp_path / "data").mkdir()
    try:
        async with opened(cfg) as memory:
            session = await memory.create_session("alice", metadata={"topic": MARKER})
            conv = session.conversation_id
            await memory.store_message(
                Message(role=MessageRole.USER, content=f"My pet is a {MARKER} named Bo",
                        metadata={"about": MARKER}), conv)
            await memory.store_message(
                Message(role=MessageRole.ASSISTANT, content="What a lovely animal!"), conv)
            entry = MemoryEntry(
                content=f"Alice keeps a {MARKER}", memory_type=MemoryType.FACT, user_id="alice",
                metadata=MemoryMetadata(category=MARKER, tags=[MARKER],
                                        custom_fields={"note": MARKER}))
            await memory.store_memory(entry)
            await memory.flush()

            hits = await memory.search_messages(MARKER.lower(), user_id="alice")
            assert [m.content for m in hits] == [f"My pet is a {MARKER} named Bo"]
            assert hits[0].metadata == {"about": MARKER}
            found = await memory.retrieve_memories(
                MemoryQuery(user_id="alice", query_text=MARKER, categories=[MARKER],
                            tags=[MARKER]))
            assert [e.id for e in found] == [entry.id]
            assert found[0].metadata.custom_fields == {"note": MARKER}
            assert (await memory.get_session(session.session_id)).metadata == {"topic": MARKER}
            recent = await memory.retrieve_messages(conv, 10)
            assert [m.metadata for m in recent][-1] == {"about": MARKER}

            blobs = list(file_bytes(tmp_path)) + await server_bytes(cfg, namespace)
            assert blobs and not leaks(blobs)
        blobs = list(file_bytes(tmp_path)) + await server_bytes(cfg, namespace)
        assert not leaks(blobs)
    finally:
        await cleanup(cfg, namespace)


async def test_a_wrong_key_fails_at_open_with_what_to_fix(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A stack opened with another master key than its key store's refuses to open."""
    keystore = str(tmp_path / "keys.db")
    cfg = shipped(request, "laptop", namespace, tmp_path)
    async with opened(encrypted(cfg, [new_key()], keystore)) as memory:
        await memory.store_message(Message(role=MessageRole.USER, content="hi"), "c1")
    with pytest.raises(BrunoMemoryConfigError, match="none of the configured keys opens"):
        await opened(encrypted(cfg, [new_key()], keystore)).__aenter__()
