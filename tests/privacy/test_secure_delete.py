"""Erasure without encryption: after ``forget_user`` and close, no byte of the SQLite files
(database, WAL, full-text segments) or of the write-behind journal holds the user's text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

ALICE_WORD = "zqxwvkrt"  # no suffix the porter stemmer cuts, no prefix shared with
BOB_WORD = "jmqxbbrt"  # another term (FTS5 prefix-compresses terms): indexed whole


def laptop(tmp_path: Path, journaled: bool) -> str | dict[str, Any]:
    """The shipped laptop stack (LRU over SQLite, its file in ``BRUNO_MEMORY_DB``), or the
    same with a write-behind durable tier journaled to a local file."""
    if not journaled:
        return "laptop"
    durable = {"name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db"),
               "policy": "batched-journaled",
               "journal": {"kind": "file", "path": str(tmp_path / "m.journal")}}
    return {"namespace": "privacy", "tiers": [{"kind": "lru", "maxsize": 1000}, durable]}


async def seed(memory: Any, user: str, word: str) -> None:
    """A user's messages, memory and session metadata, all holding ``word``, read back."""
    ctx = await memory.get_context(user, f"{user}-chat")
    for i in range(30):  # enough rows for several FTS segments and overflowing pages
        text = f"note {i} about {word} and the {word} picnic " + "filler " * 40
        await memory.store_message(Message(role=MessageRole.USER, content=text),
                                   ctx.conversation_id)
    await memory.store_memory(MemoryEntry(user_id=user, content=f"likes {word}",
                                          memory_type=MemoryType.FACT,
                                          metadata={"topic": word}))
    await memory.create_session(user, metadata={"about": word})
    assert await memory.search_messages(word, user_id=user)


def file_bytes(tmp_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("journaled", [False, True], ids=["laptop", "laptop-journaled"])
async def test_forget_user_leaves_no_plaintext_in_the_files(
    tmp_path: Path, journaled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice's marker word is in no byte of any file after forget_user and close; bob's is."""
    monkeypatch.setenv("BRUNO_MEMORY_DB", str(tmp_path / "m.db"))
    memory = await build_memory(laptop(tmp_path, journaled))
    await seed(memory, "alice", ALICE_WORD)
    await seed(memory, "bob", BOB_WORD)
    await memory.flush()
    held = file_bytes(tmp_path)
    assert any(ALICE_WORD.encode() in data for data in held.values())  # the check can fail
    await memory.forget_user("alice")
    assert not await memory.search_messages(ALICE_WORD, user_id="alice")
    await memory.close()
    files = file_bytes(tmp_path)
    assert "m.db" in files
    for name, data in files.items():
        assert ALICE_WORD.encode() not in data, f"{name} still holds alice's text"
        assert ALICE_WORD.encode("utf-16-le") not in data, name
    assert BOB_WORD.encode() in files["m.db"]  # bob's data stays, in the checkpointed file

    reopened = await build_memory(laptop(tmp_path, journaled))
    try:
        assert await reopened.search_messages(BOB_WORD, user_id="bob")
        assert not await reopened.search_messages(ALICE_WORD)
    finally:
        await reopened.close()
