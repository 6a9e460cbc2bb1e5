"""MemoryStack: the ``MemoryInterface`` façade over the routing engine.

It owns what the interface means (sessions, owners, context, guards at the boundary) and
leaves where data lives to the ``Engine``. Its public doors beyond the interface
(``search``, ``scan``, ``flush``, ``health``) are what managers, benchmarks and the CLI use.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from bruno_core.interfaces.memory import MemoryInterface
from bruno_core.models.context import ConversationContext, SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery
from bruno_core.models.message import Message

from bruno_memory.core import guards
from bruno_memory.core.errors import InvalidInput, NotFound
from bruno_memory.core.generations import Generations
from bruno_memory.core.ops import (
    ClearHistory,
    Delete,
    Key,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.queries import (
    LatestSession,
    Statistics,
)
from bruno_memory.core.records import (
    fresh,
    message_out,
    message_record,
    record_out,
    timestamp_key,
)
from bruno_memory.stack.admin import AccessHook, AdminMemory
from bruno_memory.stack.audit import Audited
from bruno_memory.stack.doors import Doors
from bruno_memory.stack.owners import Owners, metadata_user, refused_moves
from bruno_memory.stack.plumbing import Composer, Opener
from bruno_memory.stack.redaction import Redacting
from bruno_memory.stack.restore import Restore
from bruno_memory.stack.scoped import ScopedMemory
from bruno_memory.stack.sealed import Sealed

__all__ = ["Composer", "MemoryStack", "Opener"]


class MemoryStack(Audited, Redacting, Doors, Restore, Owners, Sealed, MemoryInterface):
    """Tiers composed into one memory: caches on top, one authoritative tier below.

    Args:
        tiers: opened tiers, fastest first (or an ``Engine`` over them).
        opener: opens the engine on first use instead (returns it, ``context_messages``
            and ``composer``); ``build.ConfiguredMemory`` passes one.
        context_messages: how many messages ``get_context`` returns.
        composer: builds ``get_context``'s messages instead of the last
            ``context_messages`` (the token-budgeted builder of a YAML ``context:``).
        clock: wall-clock seconds, for memory expiry.
        query_cache: keeps results of user-scoped searches, memory queries and statistics
            until a write of that user through this stack (``stack.results.QueryCache``;
            other processes' writes are bounded by its ``ttl`` only).
    """

    def for_user(self, user_id: str, *, actor: str | None = None) -> ScopedMemory:
        """A handle whose every call acts for ``user_id`` only (``stack.scoped``);
        ``actor``: who the audit trail names (default: the user)."""
        return ScopedMemory(self, user_id, actor)

    def admin(self, hook: AccessHook, *, actor: str) -> AdminMemory:
        """Operations across users, each first allowed by the app's ``hook``
        (``stack.admin``)."""
        return AdminMemory(self, hook, actor)

    async def store_message(self, message: Message, conversation_id: str) -> None:
        """Store (upsert by ``message.id``) one message of a conversation."""
        await self.store_messages([message], conversation_id)

    async def store_messages(self, messages: Sequence[Message], conversation_id: str) -> None:
        """Store many messages of one conversation in one batch.

        Every message belongs to the conversation's owner. A ``metadata["user_id"]``
        naming another user is refused (``InvalidInput``); on a conversation without an
        owner it is the conversation's first attributed write, which makes that user the
        owner (a session of theirs whose conversation this is) of every message in it.
        An id already used by a message of another conversation or owner is refused.
        """
        guards.conversation_id(conversation_id)
        guards.messages(messages)
        named = {u for m in messages if (u := metadata_user(m)) is not None}
        owner = await self._owner(conversation_id)
        if owner is None and named:
            async with self._claiming:
                owner = await self._owner(conversation_id, fresh=True)
                if owner is None:
                    await self._store_claimed(messages, conversation_id, named)
                    return
        self._check_named(named, owner, conversation_id)
        records = [message_record(m, conversation_id, owner) for m in messages]
        await self._check_message_ids(messages, records, conversation_id, owner)
        ops: list[WriteOp] = [Put(Key("message", r.id), r) for r in records]
        with refused_moves():
            await self._write(ops, [("window", conversation_id)])

    async def retrieve_messages(
        self, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        """The newest ``limit`` messages (all if ``None``), most recent first."""
        guards.conversation_id(conversation_id)
        guards.limit(limit, allow_none=True)
        if limit == 0:
            return []
        window = await self._window(conversation_id, limit)  # a branch's prefix included
        return [message_out(r) for r in reversed(window)]

    async def search_messages(
        self, query: str, user_id: str | None = None, limit: int = 10
    ) -> list[Message]:
        """Messages ranked by relevance to ``query``, only ``user_id``'s when given."""
        return [h.item for h in await self.search(query, user_id=user_id, limit=limit)]

    async def clear_history(self, conversation_id: str, keep_system_messages: bool = True) -> None:
        """Remove a conversation's messages from every tier."""
        guards.conversation_id(conversation_id)
        op = ClearHistory(conversation_id, keep_system_messages)
        await self._write([op], [("window", conversation_id)])

    async def store_memory(self, memory_entry: MemoryEntry) -> None:
        """Store (upsert by id) a long-term memory; an id of another user's memory is
        refused (``InvalidInput``)."""
        guards.memory(memory_entry)
        key = Key("memory", str(memory_entry.id))
        held = None
        if await self._queued() and not self._minted.vouches(
            memory_entry, key.id, memory_entry.user_id
        ):
            held = (await self._held([key])).get(key)
        if isinstance(held, MemoryEntry) and held.user_id != memory_entry.user_id:
            raise InvalidInput(
                f"memory id {key.id} is already used by another user's memory: an upsert "
                "never changes a memory's owner; give the memory a new id"
            )
        if self._recalls is not None:
            self._recalls.written([key.id])
        with refused_moves():
            await self._write([Put(key, fresh(memory_entry))], [key])

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """Memories matching every field of ``query``, current ones only unless
        ``include_expired`` (superseded and archived memories are expired), best first by
        salience (``core.salience``: relevance to ``query_text``, importance, recency,
        strength; weights from the YAML ``lifecycle.importance``). Each one returned counts
        as a recall (batched: ``stack.recalls``)."""
        return await self.query_memories(query)

    async def delete_memory(self, memory_id: str) -> None:
        """Delete a memory from every tier; deleting an unknown id does nothing."""
        key = Key("memory", guards.identifier(memory_id, "memory_id"))
        if self._recalls is not None:
            self._recalls.forget([key.id])
        await self._write([Delete(key)], [key])

    async def get_memory(self, memory_id: str) -> MemoryEntry | None:
        """One memory by id, read through the caches."""
        found = await self._get(Key("memory", guards.identifier(memory_id, "memory_id")))
        return record_out(found) if isinstance(found, MemoryEntry) else None

    async def create_session(
        self, user_id: str, metadata: dict[str, Any] | None = None
    ) -> SessionContext:
        """Start a session (and its conversation) for ``user_id``."""
        guards.identifier(user_id, "user_id")
        if metadata is not None:
            guards.metadata(metadata)
        session = SessionContext(user_id=user_id, metadata=dict(metadata or {}))
        await self._start(session)
        return fresh(session)

    async def get_session(self, session_id: str) -> SessionContext | None:
        """A session by id, or ``None``."""
        found = await self._get(Key("session", guards.identifier(session_id, "session_id")))
        return record_out(found) if isinstance(found, SessionContext) else None

    async def end_session(self, session_id: str) -> None:
        """Mark a session ended; raises ``NotFound`` for an unknown id."""
        session = await self.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}: nothing to end")
        session.end_session()
        keys = [Key("session", session_id), Key("conversation", session.conversation_id)]
        await self._write([Put(keys[0], session)], keys)

    async def get_context(self, user_id: str, session_id: str | None = None) -> ConversationContext:
        """The user, the session and its last messages (chronological) for the LLM.

        ``session_id`` may be a session id or a conversation id; an unknown id starts
        a session of ``user_id`` whose conversation is that id.
        """
        guards.identifier(user_id, "user_id")
        session = await self._session_for(user_id, session_id)
        conversation = session.conversation_id
        if self._conversing.composer is not None:
            messages = await self._conversing.composer(self, user_id, conversation)
        else:
            window = await self._window(conversation, self._conversing.context_messages)
            messages = [message_out(r) for r in window]
        user = await self._get(Key("user", user_id))
        return ConversationContext(
            conversation_id=session.conversation_id,
            user=(record_out(user) if isinstance(user, UserContext)
                  else UserContext(user_id=user_id)),
            session=record_out(session),
            messages=messages,
            max_messages=self._max_messages(messages),
        )

    def _max_messages(self, messages: list[Message]) -> int:
        """bruno-core trims the oldest non-system messages past ``max_messages``: a budgeted
        context keeps room for the turn ``BaseAssistant`` adds before the LLM call, and
        its reply, so nothing the budget chose is trimmed."""
        if self._conversing.composer is not None:
            return len(messages) + 2
        return max(self._conversing.context_messages, 1)

    async def _session_for(self, user_id: str, session_id: str | None) -> SessionContext:
        if session_id is None:
            latest = await (await self._ready()).ask(LatestSession(user_id))
            if latest is not None and await self._lapsed(latest):
                await self.end_session(latest.session_id)  # a conversation boundary
                latest = None
            return latest if latest is not None else await self.create_session(user_id)
        guards.identifier(session_id, "session_id")
        found = await self._find_session(session_id)
        if found is None:
            async with self._claiming:  # one first owner, however many callers race here
                found = await self._find_session(session_id, fresh=True)
                if found is None:
                    found = SessionContext(
                        session_id=session_id, user_id=user_id, conversation_id=session_id
                    )
                    await self._start(found, claim=True)
        assert isinstance(found, SessionContext)
        if found.user_id != user_id:
            raise NotFound(f"no session or conversation {session_id!r} for user {user_id!r}")
        return found

    async def _lapsed(self, session: SessionContext) -> bool:
        """Whether ``session`` saw no message for longer than ``session_gap``."""
        gap = self._conversing.session_gap
        if gap is None:
            return False
        newest = await (await self._ready()).window(session.conversation_id, 1)
        last = newest[-1].sort_key if newest else timestamp_key(session.started_at)
        return self._clock() - last > gap

    async def _find_session(self, session_id: str, *, fresh: bool = False) -> Any:
        return await self._get(Key("session", session_id), fresh=fresh) or await self._get(
            Key("conversation", session_id), fresh=fresh
        )

    async def get_statistics(self, user_id: str) -> dict[str, Any]:
        """Counts of the user's messages, conversations, sessions and memories (expired
        memories, superseded and archived ones included, are not counted)."""
        guards.identifier(user_id, "user_id")

        async def read() -> dict[str, Any]:
            return await (await self._ready()).ask(Statistics(user_id, self._clock()))

        return await self._cached(user_id, ("statistics",), read, copy.deepcopy)

    async def retrieve_context(self, user_id: str, query: str, limit: int = 5) -> list[Message]:
        """The user's past messages most relevant to ``query`` (``user_id`` is required)."""
        guards.identifier(user_id, "user_id")
        return await self.search_messages(query, user_id=user_id, limit=limit)

    async def search_memories(self, user_id: str, query: str, limit: int = 10) -> list[MemoryEntry]:
        """The user's memories most relevant to ``query``."""
        guards.identifier(user_id, "user_id")
        guards.text(query, "query", empty=True)
        guards.limit(limit, maximum=1000)
        if limit == 0:
            return []
        return await self.retrieve_memories(
            MemoryQuery(user_id=user_id, query_text=query, limit=limit)
        )

    async def clear_conversation(self, conversation_id: str) -> None:
        """Remove every message of a conversation, system messages included."""
        await self.clear_history(conversation_id, keep_system_messages=False)

    async def forget_user(self, user_id: str) -> None:
        """Erase a user everywhere: messages, sessions, memories and profile."""
        guards.identifier(user_id, "user_id")
        if self._recalls is not None:
            self._recalls.forget(user_id=user_id)
        for conversation, owner in list(self._owners.items()):
            if owner == user_id:
                self._owners.pop(conversation, None)
        await self._write([PurgeUser(user_id)], Generations.ALL)
