"""A fake of the few facade methods the context builder reads through (not a store)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from bruno_core.models import MemoryEntry, MemoryQuery, Message, MessageRole

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


class FakeMemory:
    """Conversations as lists (oldest first); search ranks by shared words."""

    def __init__(self) -> None:
        self.conversations: dict[str, list[Message]] = {}
        self.owners: dict[str, str] = {}
        self.memories: list[MemoryEntry] = []
        self.calls: list[str] = []

    def add(self, user: str, conversation: str, texts: list[str]) -> list[Message]:
        self.owners[conversation] = user
        held = self.conversations.setdefault(conversation, [])
        out = []
        for text in texts:
            role = MessageRole.USER if len(held) % 2 == 0 else MessageRole.ASSISTANT
            m = Message(
                role=role,
                content=text,
                conversation_id=conversation,
                timestamp=T0 + timedelta(minutes=len(held)),
            )
            held.append(m)
            out.append(m)
        return out

    async def retrieve_messages(
        self, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        self.calls.append(f"retrieve_messages:{limit}")
        held = self.conversations.get(conversation_id, [])
        newest = list(reversed(held))
        return [m.model_copy(deep=True) for m in (newest if limit is None else newest[:limit])]

    async def search_messages(
        self, query: str, user_id: str | None = None, limit: int = 10
    ) -> list[Message]:
        self.calls.append("search_messages")
        q = words(query)
        scored = []
        for conv, held in self.conversations.items():
            if user_id is not None and self.owners.get(conv) != user_id:
                continue
            for i, m in enumerate(held):
                overlap = len(q & words(m.content))
                if overlap:
                    scored.append((-overlap, conv, i, m))
        scored.sort(key=lambda t: (t[0], t[1], t[2]))
        return [m.model_copy(deep=True) for *_, m in scored[:limit]]

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        self.calls.append("retrieve_memories")
        mine = [e for e in self.memories if e.user_id == query.user_id]
        if query.query_text:
            q = words(query.query_text)
            mine = [e for e in mine if q & words(e.content)]
            mine.sort(key=lambda e: -len(q & words(e.content)))
        return [e.model_copy(deep=True) for e in mine[: query.limit]]
