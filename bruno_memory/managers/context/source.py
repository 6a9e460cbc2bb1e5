"""The facade methods the context builder reads through.

``MemoryStack`` provides them; so can any object with the same methods (a test double, a
scoped handle). Only the public API: the newest messages of a conversation, ranked search
of a user's messages, ranked memories.

Optional, used when present (``managers.context.searching``): the facade's ``search`` door
(``search(query, *, user_id, conversation_id, limit, mode, fusion)`` returning scored
hits with ``.item``), and ``branch_of(conversation_id)`` (a branch's lineage).
"""

from __future__ import annotations

from typing import Protocol

from bruno_core.models import MemoryEntry, MemoryQuery, Message

__all__ = ["ContextSource"]


class ContextSource(Protocol):
    async def retrieve_messages(
        self, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        """The newest ``limit`` messages, most recent first."""
        ...

    async def search_messages(
        self, query: str, user_id: str | None = None, limit: int = 10
    ) -> list[Message]:
        """The user's messages ranked by relevance to ``query``, best first."""
        ...

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """Memories matching ``query``, ranked by ``query_text`` when given."""
        ...
