"""A store holding every model variant and every kind of tombstone, written through the
API, and the configs of the stacks the operations tests move it between."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.managers.archive import Header
from bruno_memory.stack.facade import MemoryStack
from tests.managers.test_archive import laptop, populate, reads, single_node, sorted_body

__all__ = [
    "HEADER",
    "first_changes",
    "laptop",
    "populate_all",
    "postgres_only",
    "reads",
    "reads_all",
    "second_changes",
    "single_node",
    "sorted_body",
    "sqlite_only",
]

HEADER = Header(namespace="bruno")


async def tombstones(memory: MemoryStack) -> None:
    """A deleted memory, a cleared conversation (system messages kept and not), a forgotten
    user: one tombstone of each scope."""
    doomed = MemoryEntry(content="to forget", memory_type=MemoryType.FACT, user_id="ada")
    await memory.store_memory(doomed)
    await memory.delete_memory(str(doomed.id))
    for conversation, keep in (("cleared-keep", True), ("cleared-all", False)):
        ctx = await memory.get_context("cy", conversation)
        await memory.store_messages(
            [Message(role=MessageRole.SYSTEM, content="rules"),
             Message(role=MessageRole.USER, content=f"soon gone {conversation}")],
            ctx.conversation_id,
        )
        await memory.clear_history(ctx.conversation_id, keep_system_messages=keep)
    await memory.get_context("zed", "zed-chat")
    await memory.store_message(Message(role=MessageRole.USER, content="zed was here"), "zed-chat")
    await memory.forget_user("zed")


async def reads_all(memory: MemoryStack) -> dict[str, Any]:
    """``reads`` and what the tombstones left: the cleared and the forgotten conversations,
    the forgotten user's sessions, a search the forgotten messages would answer."""
    out = await reads(memory)
    for conversation in ("cleared-keep", "cleared-all", "zed-chat"):
        out[conversation] = [m.model_dump() for m in await memory.retrieve_messages(conversation)]
    out["zed-sessions"] = [s.model_dump() for s in (await memory.list_sessions("zed")).items]
    out["gone"] = await memory.search_messages("soon gone", user_id="cy", limit=10)
    return out


async def populate_all(memory: MemoryStack) -> None:
    """Every model variant (``tests.managers.test_archive.populate``) and every tombstone."""
    await populate(memory)
    await tombstones(memory)
    await memory.flush()


async def first_changes(memory: MemoryStack) -> None:
    """New messages, an updated and a deleted memory, an ended session, a cleared chat."""
    await memory.store_message(Message(role=MessageRole.USER, content="later turn"), "chat-1")
    held = await memory.retrieve_memories(MemoryQuery(user_id="ada", limit=100))
    updated = held[0].model_copy(update={"content": "updated fact",
                                         "updated_at": datetime.now(timezone.utc)})
    await memory.store_memory(updated)
    await memory.delete_memory(str(held[1].id))
    session = await memory.create_session("bob", metadata={"n": 1})
    await memory.store_message(
        Message(role=MessageRole.USER, content="bob again"), session.conversation_id
    )
    await memory.end_session(session.session_id)
    await memory.clear_history("chat-1", keep_system_messages=True)


async def second_changes(memory: MemoryStack) -> None:
    """Messages in the chat cleared before, a new memory, the new session's chat cleared."""
    await memory.store_messages(
        [Message(role=MessageRole.USER, content="after the clear"),
         Message(role=MessageRole.ASSISTANT, content="fresh start")],
        "chat-1",
    )
    entry = MemoryEntry(content="new fact", memory_type=MemoryType.SEMANTIC, user_id="bob")
    await memory.store_memory(entry)
    (ended, *_) = (await memory.list_sessions("bob")).items
    await memory.clear_history(ended.conversation_id, keep_system_messages=False)


UNCOUNTED = {"recalls": {"enabled": False}}
"""``lifecycle:`` for stores whose tables are compared before and after: recalled memories
would otherwise get their access counts written back (``stack.recalls``)."""


def sqlite_only(tmp: Path, name: str = "a") -> dict[str, Any]:
    return {"namespace": "bruno", "lifecycle": UNCOUNTED,
            "tiers": [{"kind": "sqlite", "path": str(tmp / f"{name}.db")}]}


def postgres_only(request: pytest.FixtureRequest, ns: str) -> dict[str, Any]:
    dsn = request.getfixturevalue("postgres_dsn")
    return {"namespace": ns, "lifecycle": UNCOUNTED,
            "tiers": [{"kind": "postgres", "dsn": dsn, "max_size": 2}]}
