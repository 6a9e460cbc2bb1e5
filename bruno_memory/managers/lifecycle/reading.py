"""Paged reads through the facade the lifecycle steps share: a user's summaries, their
conversations, a conversation's messages after a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from functools import partial
from typing import Any

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message

from bruno_memory.core.queries import every
from bruno_memory.managers.lifecycle.records import is_summary

__all__ = ["FAR", "conversations", "messages_after", "summaries_of"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FAR = datetime(9999, 1, 1, tzinfo=timezone.utc)
PAGE = 1000


async def summaries_of(
    memory: Any, user_id: str, *, conversation_id: str | None = None, end: datetime = FAR
) -> list[MemoryEntry]:
    """Every summary of a user (of one conversation, when given) whose span ends before
    ``end``, oldest span end first."""
    out: dict[str, MemoryEntry] = {}
    start = EPOCH
    while True:
        page: list[MemoryEntry] = await memory.memories_between(
            user_id, start, end, conversation_id=conversation_id, limit=PAGE
        )
        fresh = [e for e in page if str(e.id) not in out]
        for e in fresh:
            if is_summary(e):
                out[str(e.id)] = e
        if len(page) < PAGE or not fresh:
            return list(out.values())
        start = page[-1].created_at


async def conversations(memory: Any, user_id: str) -> AsyncIterator[SessionContext]:
    """The user's conversations (each as its latest session)."""
    async for session in every(
        partial(memory.list_conversations, user_id, limit=PAGE), cursor="before"
    ):
        yield session


async def messages_after(
    memory: Any, conversation_id: str, start: datetime, skip: set[str]
) -> list[Message]:
    """A conversation's messages from ``start`` on (oldest first), less the ids in ``skip``."""
    out: list[Message] = []
    seen = set(skip)
    while True:
        page: list[Message] = await memory.messages_between(
            start, FAR, conversation_id=conversation_id, limit=PAGE
        )
        fresh = [m for m in page if str(m.id) not in seen]
        for m in fresh:
            seen.add(str(m.id))
        out.extend(fresh)
        if len(page) < PAGE or not fresh:
            return out
        start = page[-1].timestamp
