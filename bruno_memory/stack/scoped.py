"""A handle bound to one user: ``memory.for_user(user_id)``.

Every call of the handle acts for that user only. An id of another user's conversation,
session or memory raises ``NotFound`` (the handle does not say whether it exists); a
``user_id`` argument naming another user, a memory or query of another user, or a message
id another user's message holds raises ``InvalidInput``. Nothing is read or changed
before the check. The handle is the user's ``MemoryInterface`` (``BaseAssistant`` takes
it), and its calls are recorded in the audit trail with the user (or ``actor``) as actor.

Operations across users (health, restore, other users' data) are not on the handle: the
app reaches them through ``memory.admin(hook)`` (``stack.admin``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from bruno_core.interfaces.memory import MemoryInterface
from bruno_core.models.context import ConversationContext, SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery
from bruno_core.models.message import Message

from bruno_memory.core import guards
from bruno_memory.core.audit import AuditRecord
from bruno_memory.core.branches import Lineage
from bruno_memory.core.errors import InvalidInput, NotFound
from bruno_memory.core.queries import MemoryTime, Page, ScanKind, Scored
from bruno_memory.stack import fusion, hybrid
from bruno_memory.stack.audit import ACTOR

MemoryStack = Any
"""The ``MemoryStack`` a handle wraps (``stack.facade`` imports this module, so it is not
imported back; the façade's own types check the calls)."""


class ScopedMemory(MemoryInterface):
    """The memory of one user (build it with ``MemoryStack.for_user``)."""

    def __init__(self, stack: MemoryStack, user_id: str, actor: str | None = None) -> None:
        self._stack = stack
        self.user_id = guards.identifier(user_id, "user_id")
        self.actor = guards.identifier(actor, "actor") if actor is not None else user_id

    def __repr__(self) -> str:
        return f"ScopedMemory({self.user_id!r}, actor={self.actor!r})"

    # -- the checks ------------------------------------------------------------------------

    @asynccontextmanager
    async def _acting(self) -> AsyncIterator[MemoryStack]:
        token = ACTOR.set(self.actor)
        try:
            yield self._stack
        finally:
            ACTOR.reset(token)

    def _me(self, user_id: str | None, *, required: bool = True) -> str:
        """The bound user; a ``user_id`` naming anyone else is refused."""
        if user_id is None and not required:
            return self.user_id
        if user_id != self.user_id:
            raise InvalidInput(
                f"this handle acts for user {self.user_id!r} only, not {user_id!r}: use "
                "a handle of that user (for_user) or an admin handle (admin)"
            )
        return self.user_id

    async def _mine(self, conversation_id: str | None) -> None:
        """A conversation the user owns (``None``: no conversation named)."""
        if conversation_id is None:
            return
        guards.conversation_id(conversation_id)
        if await self._stack._owner(conversation_id) != self.user_id:
            raise NotFound(f"no conversation {conversation_id!r} for user {self.user_id!r}")

    async def _writable(self, conversation_id: str) -> None:
        """A conversation the user owns, or an unknown one, which becomes the user's."""
        guards.conversation_id(conversation_id)
        owner = await self._stack._owner(conversation_id)
        if owner is None:
            async with self._acting() as s:
                await s._session_for(self.user_id, conversation_id)  # claims it
        elif owner != self.user_id:
            raise NotFound(f"no conversation {conversation_id!r} for user {self.user_id!r}")

    async def _session(self, session_id: str) -> SessionContext | None:
        found = await self._stack.get_session(session_id)
        if found is not None and found.user_id != self.user_id:
            raise NotFound(f"no session {session_id!r} for user {self.user_id!r}")
        return found

    async def _memory(self, memory_id: str) -> MemoryEntry | None:
        found = await self._stack.get_memory(memory_id)
        if found is not None and found.user_id != self.user_id:
            raise NotFound(f"no memory {memory_id!r} for user {self.user_id!r}")
        return found

    # -- MemoryInterface ---------------------------------------------------------------------

    async def store_message(self, message: Message, conversation_id: str) -> None:
        """Store a message in one of the user's conversations (an unknown id starts one)."""
        await self.store_messages([message], conversation_id)

    async def store_messages(self, messages: Sequence[Message], conversation_id: str) -> None:
        """Store messages in one of the user's conversations (an unknown id starts one)."""
        guards.messages(messages)
        await self._writable(conversation_id)
        async with self._acting() as s:
            await s.store_messages(messages, conversation_id)

    async def retrieve_messages(
        self, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        """The newest messages of one of the user's conversations, most recent first."""
        await self._mine(conversation_id)
        found: list[Message] = await self._stack.retrieve_messages(conversation_id, limit)
        return found

    async def search_messages(
        self, query: str, user_id: str | None = None, limit: int = 10
    ) -> list[Message]:
        """The user's messages ranked by relevance to ``query``."""
        me = self._me(user_id, required=False)
        found: list[Message] = await self._stack.search_messages(query, me, limit)
        return found

    async def clear_history(self, conversation_id: str, keep_system_messages: bool = True) -> None:
        """Remove the messages of one of the user's conversations."""
        await self._mine(conversation_id)
        async with self._acting() as s:
            await s.clear_history(conversation_id, keep_system_messages)

    async def store_memory(self, memory_entry: MemoryEntry) -> None:
        """Store one of the user's memories."""
        self._me(memory_entry.user_id)
        await self._memory(str(memory_entry.id))
        async with self._acting() as s:
            await s.store_memory(memory_entry)

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """The user's memories matching ``query`` (whose ``user_id`` must be the user)."""
        self._me(query.user_id)
        found: list[MemoryEntry] = await self._stack.retrieve_memories(query)
        return found

    async def delete_memory(self, memory_id: str) -> None:
        """Delete one of the user's memories; an unknown id does nothing."""
        if await self._memory(memory_id) is not None:
            async with self._acting() as s:
                await s.delete_memory(memory_id)

    async def create_session(
        self, user_id: str, metadata: dict[str, Any] | None = None
    ) -> SessionContext:
        """Start a session of the user."""
        async with self._acting() as s:
            return await s.create_session(self._me(user_id), metadata)

    async def get_session(self, session_id: str) -> SessionContext | None:
        """One of the user's sessions, or ``None``."""
        return await self._session(session_id)

    async def end_session(self, session_id: str) -> None:
        """End one of the user's sessions."""
        if await self._session(session_id) is None:
            raise NotFound(f"no session {session_id!r}: nothing to end")
        async with self._acting() as s:
            await s.end_session(session_id)

    async def get_context(self, user_id: str, session_id: str | None = None) -> ConversationContext:
        """The user's context (see ``MemoryStack.get_context``): another user's session or
        conversation id raises ``NotFound``; an unknown one starts a session of the user."""
        async with self._acting() as s:
            return await s.get_context(self._me(user_id), session_id)

    async def get_statistics(self, user_id: str) -> dict[str, Any]:
        """The user's counts."""
        found: dict[str, Any] = await self._stack.get_statistics(self._me(user_id))
        return found

    # -- the façade's other doors -------------------------------------------------------------

    async def get_memory(self, memory_id: str) -> MemoryEntry | None:
        """One of the user's memories, or ``None``."""
        return await self._memory(memory_id)

    async def retrieve_context(self, user_id: str, query: str, limit: int = 5) -> list[Message]:
        """The user's past messages most relevant to ``query``."""
        found: list[Message] = await self._stack.retrieve_context(self._me(user_id), query, limit)
        return found

    async def search_memories(self, user_id: str, query: str, limit: int = 10) -> list[MemoryEntry]:
        """The user's memories most relevant to ``query``."""
        me = self._me(user_id)
        found: list[MemoryEntry] = await self._stack.search_memories(me, query, limit)
        return found

    async def clear_conversation(self, conversation_id: str) -> None:
        """Remove every message of one of the user's conversations."""
        await self.clear_history(conversation_id, keep_system_messages=False)

    async def forget_user(self, user_id: str) -> None:
        """Erase the user everywhere (a handle erases its own user only)."""
        async with self._acting() as s:
            await s.forget_user(self._me(user_id))

    async def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 10,
        mode: hybrid.Mode = "hybrid",
        fusion: fusion.Fusion = fusion.DEFAULT,
    ) -> list[Scored[Message]]:
        """The user's messages ranked by relevance (see ``MemoryStack.search``)."""
        me = self._me(user_id, required=False)
        await self._mine(conversation_id)
        found: list[Scored[Message]] = await self._stack.search(
            query, user_id=me, conversation_id=conversation_id, limit=limit, mode=mode,
            fusion=fusion)
        return found

    async def scan(
        self, kind: ScanKind, *, user_id: str | None = None, after: str | None = None,
        limit: int = 500,
    ) -> Page[Any]:
        """A page of the user's records of ``kind`` (see ``MemoryStack.scan``)."""
        me = self._me(user_id, required=False)
        found: Page[Any] = await self._stack.scan(kind, user_id=me, after=after, limit=limit)
        return found

    async def search_phrase(
        self, phrase: str, *, user_id: str | None = None, conversation_id: str | None = None,
        limit: int = 10,
    ) -> list[Scored[Message]]:
        """The user's messages holding ``phrase`` verbatim."""
        me = self._me(user_id, required=False)
        await self._mine(conversation_id)
        found: list[Scored[Message]] = await self._stack.search_phrase(
            phrase, user_id=me, conversation_id=conversation_id, limit=limit)
        return found

    async def messages_between(
        self, start: datetime, end: datetime, *, user_id: str | None = None,
        conversation_id: str | None = None, limit: int = 100,
    ) -> list[Message]:
        """The user's messages timestamped in ``[start, end)``, oldest first."""
        me = self._me(user_id, required=False)
        await self._mine(conversation_id)
        found: list[Message] = await self._stack.messages_between(
            start, end, user_id=me, conversation_id=conversation_id, limit=limit)
        return found

    async def memories_between(
        self, user_id: str, start: datetime, end: datetime, *,
        conversation_id: str | None = None, by: MemoryTime = "created", limit: int = 100,
    ) -> list[MemoryEntry]:
        """The user's memories created (or updated) in ``[start, end)``."""
        await self._mine(conversation_id)
        found: list[MemoryEntry] = await self._stack.memories_between(
            self._me(user_id), start, end, conversation_id=conversation_id, by=by, limit=limit)
        return found

    async def list_sessions(
        self, user_id: str, *, before: str | None = None, limit: int = 20
    ) -> Page[SessionContext]:
        """A page of the user's sessions, newest first."""
        me = self._me(user_id)
        found: Page[SessionContext] = await self._stack.list_sessions(me, before=before,
                                                                      limit=limit)
        return found

    async def list_conversations(
        self, user_id: str, *, before: str | None = None, limit: int = 20
    ) -> Page[SessionContext]:
        """A page of the user's conversations, most recent first."""
        me = self._me(user_id)
        found: Page[SessionContext] = await self._stack.list_conversations(me, before=before,
                                                                           limit=limit)
        return found

    async def page_messages(
        self, conversation_id: str, *, before: str | None = None, after: str | None = None,
        limit: int = 50,
    ) -> Page[Message]:
        """One screen of one of the user's conversations (see ``MemoryStack.page_messages``)."""
        await self._mine(conversation_id)
        found: Page[Message] = await self._stack.page_messages(
            conversation_id, before=before, after=after, limit=limit)
        return found

    async def branch_of(self, conversation_id: str) -> Lineage | None:
        """The lineage of one of the user's conversations (see ``MemoryStack.branch_of``)."""
        await self._mine(conversation_id)
        found: Lineage | None = await self._stack.branch_of(conversation_id)
        return found

    async def audit_trail(
        self, *, user_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        """The audit records about the user's data (a GDPR access request)."""
        me = self._me(user_id, required=False)
        found: list[AuditRecord] = await self._stack.audit_trail(user_id=me, after=after,
                                                                 limit=limit)
        return found

    async def flush(self) -> None:
        """Wait until every queued write has reached its tier."""
        await self._stack.flush()
