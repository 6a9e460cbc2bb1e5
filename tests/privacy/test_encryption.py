"""Encryption at rest: no plaintext in any store, search still finds it, clear key errors."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.config.models import EmbeddingConfig
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.core.ops import Key
from bruno_memory.policies.encryption.keystore import KeyStoreError
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
    pytest.param("semantic", id="semantic-qdrant"),
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
    if cfg.embedding is not None:  # the hashing embedder: no model to load
        cfg = cfg.model_copy(update={"embedding": EmbeddingConfig(provider="hashing")})
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
            assert hits[0].content == f"My pet is a {MARKER} named Bo"  # (hybrid: more hits)
            assert hits[0].metadata == {"about": MARKER}
            found = await memory.retrieve_memories(
                MemoryQuery(user_id="alice", query_text=MARKER, categories=[MARKER],
                            tags=[MARKER]))
            assert [e.id for e in found][:1] == [entry.id]
            assert found[0].metadata.custom_fields == {"note": MARKER}
            assert (await memory.get_session(session.session_id)).metadata == {"topic": MARKER}
            if cfg.embedding is not None:  # the semantic tier holds the record, sealed
                held = await memory.tiers[-1].get([Key("message", str(hits[0].id))])
                assert [r.message.content for r in held.values()] == [hits[0].content]
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


async def test_vectors_false_keeps_records_out_of_the_semantic_tier(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """With ``vectors: false`` the semantic tier holds no point, and search is full-text."""
    cfg = shipped(request, "semantic", namespace, tmp_path)
    cfg = encrypted(cfg, [new_key()], str(tmp_path / "keys.db"), vectors=False)
    cfg = cfg.model_copy(update={"embedding": EmbeddingConfig(provider="hashing")})
    async with opened(cfg) as memory:
        session = await memory.create_session("alice")
        await memory.store_message(
            Message(role=MessageRole.USER, content=f"a {MARKER} here"), session.conversation_id)
        await memory.flush()
        hits = await memory.search_messages(MARKER, user_id="alice")
        assert [m.content for m in hits] == [f"a {MARKER} here"]
        semantic = memory.tiers[-1]
        assert await semantic.get([Key("message", str(hits[0].id))]) == {}


@pytest.mark.parametrize("index", ["user", "stack"])
async def test_the_blind_index_is_keyed_per_user_or_per_stack(
    request: pytest.FixtureRequest, index: str, namespace: str, tmp_path: Path
) -> None:
    """The full-text column holds tokens, not words: the same sentence of two users gives
    different tokens under ``index: user`` and the same under ``index: stack``."""
    cfg = encrypted(shipped(request, "laptop", namespace, tmp_path), [new_key()],
                    str(tmp_path / "keys.db"), index=index)
    async with opened(cfg) as memory:
        for user in ("ann", "bob"):
            await memory.get_context(user, f"c-{user}")
            await memory.store_message(
                Message(role=MessageRole.USER, content="Walking the dogs"), f"c-{user}")
        for user in ("ann", "bob"):
            hits = await memory.search_messages("walked dog", user_id=user)
            assert [m.content for m in hits] == ["Walking the dogs"]
    rows = await asyncio.to_thread(_contents, tmp_path / "memory.db")
    assert all(re.fullmatch(r"(x[0-9a-f]{15} ?){3}", c) for c in rows.values())
    assert (rows["ann"] == rows["bob"]) == (index == "stack")


def _contents(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT user_id, content FROM messages").fetchall())


async def test_encrypted_messages_read_without_the_encryption_section_are_refused(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A store written encrypted, opened without ``encryption:``, never hands out its
    sealed messages as if they were text."""
    plain = shipped(request, "laptop", namespace, tmp_path)
    async with opened(encrypted(plain, [new_key()], str(tmp_path / "keys.db"))) as memory:
        await memory.get_context("ann", "c1")
        await memory.store_message(Message(role=MessageRole.USER, content="secret"), "c1")
    async with opened(plain) as memory:
        with pytest.raises(BrunoMemoryConfigError, match="encryption: section"):
            await memory.retrieve_messages("c1")


async def test_every_sealed_record_read_without_the_encryption_section_is_refused(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """Memories, sessions and users' metadata of an encrypted store, read by a stack
    without ``encryption:``, fail with what to fix, never as envelopes or tokens."""
    plain = shipped(request, "laptop", namespace, tmp_path)
    async with opened(encrypted(plain, [new_key()], str(tmp_path / "keys.db"))) as memory:
        session = await memory.create_session("ann", metadata={"topic": "secret"})
        entry = MemoryEntry(content="ann likes quokkas", memory_type=MemoryType.SEMANTIC,
                            user_id="ann", metadata=MemoryMetadata(category="pets"))
        await memory.store_memory(entry)
    async with opened(plain) as memory:
        reads = {
            "get_memory": lambda: memory.get_memory(str(entry.id)),
            "retrieve_memories": lambda: memory.retrieve_memories(MemoryQuery(user_id="ann")),
            "get_session": lambda: memory.get_session(session.session_id),
            "list_sessions": lambda: memory.list_sessions("ann"),
            "get_context": lambda: memory.get_context("ann", "c-new"),
        }
        for name, read in reads.items():
            with pytest.raises(BrunoMemoryConfigError, match="encryption: section"):
                await read()
                pytest.fail(f"{name} handed out a sealed record")


async def test_an_unusable_key_store_fails_at_open_with_what_to_fix(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """A key store in a missing folder, or on a server that does not answer, stops the
    stack from opening with an error saying what is wrong."""
    cfg = shipped(request, "laptop", namespace, tmp_path)
    with pytest.raises(BrunoMemoryConfigError, match="does not exist"):
        await opened(encrypted(cfg, [new_key()], str(tmp_path / "nope" / "k.db"))).__aenter__()
    with pytest.raises(KeyStoreError, match="cannot be reached"):
        await opened(encrypted(cfg, [new_key()], "redis://127.0.0.1:1/0")).__aenter__()


async def test_reindex_embeds_the_plain_text_of_sealed_records(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    """``reindex`` over an encrypted stack embeds each record's text, not its blind
    tokens: after it, a vector search for a message's own text finds it (cosine ~1)."""
    from bruno_memory.reindex import reindex

    cfg = shipped(request, "semantic", namespace, tmp_path)
    cfg = encrypted(cfg, [new_key()], str(tmp_path / "keys.db"))
    cfg = cfg.model_copy(update={"embedding": EmbeddingConfig(provider="hashing")})
    text = f"the {MARKER} sleeps in the garden"
    async with opened(cfg) as memory:
        await memory.get_context("ann", "c1")
        await memory.store_message(Message(role=MessageRole.USER, content=text), "c1")
    done = await reindex(cfg, progress=False)
    assert done["records"] == 1
    async with opened(cfg) as memory:
        hits = await memory.search(text, user_id="ann", mode="vector")
        assert [h.item.content for h in hits] == [text]
        assert hits[0].score > 0.99  # the same text was embedded
