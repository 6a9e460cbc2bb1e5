"""MemoryStack: the composed ``MemoryInterface``. It routes, reads through and fans out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from bruno_core.interfaces.memory import MemoryInterface
from bruno_core.models.context import ConversationContext, SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery
from bruno_core.models.message import Message
from cachetools import LRUCache

from bruno_memory.core import guards
from bruno_memory.core.errors import NotFound
from bruno_memory.core.generations import Generations
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    ClearHistory,
    Delete,
    FillWindow,
    Key,
    PurgeUser,
    Put,
    Value,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord, fresh, message_out, message_record
from bruno_memory.core.versions import CLOCK, stamp
from bruno_memory.stack import fills, hybrid
from bruno_memory.stack.routing import Routes, accepts, plan_routes
from bruno_memory.stack.stats import TierStats
from bruno_memory.tiers.base import Durable, TextSearch, Tier, Windowed

V = TypeVar("V")


class MemoryStack(MemoryInterface):
    """Tiers composed into one memory: caches on top, one authoritative tier below.

    Args:
        tiers: opened tiers, fastest first; ``None`` builds from ``config`` on first use.
        config: what ``build_memory`` accepts, used when ``tiers`` is ``None``.
        context_messages: how many messages ``get_context`` returns.
        clock: wall-clock seconds, for memory expiry.
    """

    def __init__(
        self,
        tiers: Sequence[Tier] | None = None,
        *,
        config: Any = None,
        context_messages: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._context_messages = context_messages
        self._clock = clock
        self._owners: LRUCache[str, str] = LRUCache(100_000)
        self._generations = Generations()
        self._opening = asyncio.Lock()
        self._routes: Routes | None = self._plan(tiers) if tiers else None
        self._stats = {t.name: TierStats() for t in tiers or ()}

    def __repr__(self) -> str:
        tiers = self._routes.tiers if self._routes else ()
        return f"MemoryStack([{', '.join(map(repr, tiers))}])"

    # -- lifecycle ------------------------------------------------------------------------

    async def _ready(self) -> Routes:
        if self._routes is None:
            async with self._opening:
                if self._routes is None:
                    from bruno_memory.build import open_tiers

                    tiers, cfg = await open_tiers(self._config)
                    self._context_messages = cfg.context_messages
                    self._stats = {t.name: TierStats() for t in tiers}
                    self._routes = self._plan(tiers)
        return self._routes

    @staticmethod
    def _plan(tiers: Sequence[Tier]) -> Routes:
        """Route the tiers; a write-behind durable tier settles the caches as it flushes."""
        routes = plan_routes(tiers)
        fills.settle_on_flush(routes)
        return routes

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, fastest first (empty until opened)."""
        return self._routes.tiers if self._routes else ()

    async def flush(self) -> None:
        """Wait until every queued write has reached its tier."""
        for tier in self.tiers:
            flush = getattr(tier, "flush", None)
            if flush is not None:
                await flush()

    async def close(self) -> None:
        """Drain queued writes, then release every tier."""
        try:
            await self.flush()
        finally:
            for tier in reversed(self.tiers):
                await tier.aclose()

    aclose = close

    async def __aenter__(self) -> MemoryStack:
        await self._ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def health(self) -> dict[str, dict[str, Any]]:
        """Per tier: up or down, ping latency, hits and misses."""
        routes = await self._ready()
        return {t.name: await self._stats[t.name].probe(t) for t in routes.tiers}

    # -- the routing primitives -----------------------------------------------------------

    async def _write(self, ops: list[WriteOp], touched: Sequence[object]) -> None:
        routes = await self._ready()
        ops = stamp(ops)  # every write carries a version: replays never regress a record
        gens = self._generations
        gens.bump(touched)
        await routes.durable.write([op for op in ops if accepts(routes.durable, op)])
        gens.bump(touched)
        for tier in (*routes.caches, *routes.others):
            mine = [op for op in ops if accepts(tier, op)]
            if mine:
                await tier.write(mine)

    async def _get(self, key: Key) -> Value | None:
        routes = await self._ready()
        stamp = self._generations.stamp(key)
        missed: list[tuple[Tier, str | None]] = []
        for tier in routes.readers(key.ns):
            found = (await tier.get([key])).get(key, MISS)
            self._stats[tier.name].count(found is not MISS)
            if found is MISS:
                await self._missed(routes, missed, tier, key)
                continue
            if found is EMPTY:
                return None
            await self._fill(missed, Put(key, found), key, stamp)
            return found
        return None

    async def _window(self, conversation_id: str, limit: int | None) -> Sequence[MessageRecord]:
        routes = await self._ready()
        wkey = ("window", conversation_id)
        stamp = self._generations.stamp(wkey)
        missed: list[tuple[Tier, str | None]] = []
        for tier in routes.windowed():
            got = await cast(Windowed, tier).window(
                conversation_id, limit
            )  # no runtime check: ~10us
            self._stats[tier.name].count(got is not MISS)
            if got is MISS:
                await self._missed(routes, missed, tier, conversation_id)
                continue
            complete = limit is None or len(got) < limit
            await self._fill(missed, FillWindow(conversation_id, tuple(got), complete), wkey, stamp)
            return got
        return ()

    async def _missed(self, routes: Routes, missed: list[tuple[Tier, str | None]], tier: Tier,
                      target: Key | str) -> None:
        """Note a tier to fill, with its lease when it takes one (see ``fills``)."""
        if tier.name not in routes.leased:
            missed.append((tier, None))
        elif (lease := await fills.lease(tier, target)) is not None:
            missed.append((tier, lease))

    async def _fill(self, tiers: list[tuple[Tier, str | None]], op: Put | FillWindow,
                    key: object, stamp: int) -> None:
        """Promote a lower tier's answer, unless a write to ``key`` raced with the read
        (in this process: the generation stamp; in another: the tier's lease)."""
        for tier, lease in tiers:
            if self._generations.stamp(key) != stamp:
                return
            if accepts(tier, op):
                await tier.write([fills.leased(op, lease)])

    async def _durable(self) -> Any:
        durable = (await self._ready()).durable
        assert isinstance(durable, Durable) and isinstance(durable, TextSearch)
        return durable

    # -- messages -------------------------------------------------------------------------

    async def store_message(self, message: Message, conversation_id: str) -> None:
        """Store (upsert by ``message.id``) one message of a conversation."""
        await self.store_messages([message], conversation_id)

    async def store_messages(self, messages: Sequence[Message], conversation_id: str) -> None:
        """Store many messages of one conversation in one batch."""
        guards.conversation_id(conversation_id)
        guards.messages(messages)
        owner = await self._owner(conversation_id)
        records = [message_record(m, conversation_id, _metadata_user(m) or owner) for m in messages]
        version = CLOCK.next  # stamped here: the hot path, one Put per message
        ops: list[WriteOp] = [Put(Key("message", r.id), r, version()) for r in records]
        await self._write(ops, [("window", conversation_id)])

    async def _owner(self, conversation_id: str) -> str | None:
        owner = self._owners.get(conversation_id)
        if owner is None:
            session = await self._get(Key("conversation", conversation_id))
            if isinstance(session, SessionContext):
                owner = self._owners[conversation_id] = session.user_id
        return owner

    async def retrieve_messages(
        self, conversation_id: str, limit: int | None = None
    ) -> list[Message]:
        """The newest ``limit`` messages (all if ``None``), most recent first."""
        guards.conversation_id(conversation_id)
        guards.limit(limit, allow_none=True)
        if limit == 0:
            return []
        window = await self._window(conversation_id, limit)
        return [message_out(r) for r in reversed(window)]

    async def search_messages(
        self, query: str, user_id: str | None = None, limit: int = 10
    ) -> list[Message]:
        """Messages ranked by relevance to ``query``, only ``user_id``'s when given."""
        guards.query(query)
        guards.limit(limit)
        found = await hybrid.search_messages(await self._ready(), query, user_id, limit)
        return [message_out(r) for r in found]

    async def clear_history(self, conversation_id: str, keep_system_messages: bool = True) -> None:
        """Remove a conversation's messages from every tier."""
        guards.conversation_id(conversation_id)
        op = ClearHistory(conversation_id, keep_system_messages)
        await self._write([op], [("window", conversation_id)])

    # -- memories -------------------------------------------------------------------------

    async def store_memory(self, memory_entry: MemoryEntry) -> None:
        """Store (upsert by id) a long-term memory."""
        guards.model(memory_entry, MemoryEntry, "memory_entry")
        key = Key("memory", str(memory_entry.id))
        await self._write([Put(key, fresh(memory_entry))], [key])

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """Memories matching every field of ``query``; ranked by ``query_text`` when given."""
        guards.model(query, MemoryQuery, "query")
        hits = await hybrid.query_memories(await self._ready(), query, self._clock())
        return [h.item for h in hits]

    async def delete_memory(self, memory_id: str) -> None:
        """Delete a memory from every tier; deleting an unknown id does nothing."""
        key = Key("memory", guards.identifier(memory_id, "memory_id"))
        await self._write([Delete(key)], [key])

    async def get_memory(self, memory_id: str) -> MemoryEntry | None:
        """One memory by id, read through the caches."""
        found = await self._get(Key("memory", guards.identifier(memory_id, "memory_id")))
        return fresh(found) if isinstance(found, MemoryEntry) else None

    # -- sessions and context -------------------------------------------------------------

    async def create_session(
        self, user_id: str, metadata: dict[str, Any] | None = None
    ) -> SessionContext:
        """Start a session (and its conversation) for ``user_id``."""
        guards.identifier(user_id, "user_id")
        session = SessionContext(user_id=user_id, metadata=dict(metadata or {}))
        await self._start(session)
        return fresh(session)

    async def _start(self, session: SessionContext) -> None:
        user = Key("user", session.user_id)
        ops: list[WriteOp] = [Put(Key("session", session.session_id), session)]
        if await self._get(user) is None:
            ops.append(Put(user, UserContext(user_id=session.user_id)))
        keys = [Key("session", session.session_id), Key("conversation", session.conversation_id)]
        await self._write(ops, [*keys, user])
        self._owners[session.conversation_id] = session.user_id

    async def get_session(self, session_id: str) -> SessionContext | None:
        """A session by id, or ``None``."""
        found = await self._get(Key("session", guards.identifier(session_id, "session_id")))
        return fresh(found) if isinstance(found, SessionContext) else None

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
        window = await self._window(session.conversation_id, self._context_messages)
        user = await self._get(Key("user", user_id))
        return ConversationContext(
            conversation_id=session.conversation_id,
            user=fresh(user) if isinstance(user, UserContext) else UserContext(user_id=user_id),
            session=fresh(session),
            messages=[message_out(r) for r in window],
            max_messages=max(self._context_messages, 1),
        )

    async def _session_for(self, user_id: str, session_id: str | None) -> SessionContext:
        if session_id is None:
            latest = await (await self._durable()).latest_session(user_id)
            return latest if latest is not None else await self.create_session(user_id)
        guards.identifier(session_id, "session_id")
        found = await self._get(Key("session", session_id)) or await self._get(
            Key("conversation", session_id)
        )
        if found is None:
            found = SessionContext(
                session_id=session_id, user_id=user_id, conversation_id=session_id
            )
            await self._start(found)
        assert isinstance(found, SessionContext)
        if found.user_id != user_id:
            raise NotFound(f"no session or conversation {session_id!r} for user {user_id!r}")
        return found

    async def get_statistics(self, user_id: str) -> dict[str, Any]:
        """Counts of the user's messages, conversations, sessions and memories."""
        guards.identifier(user_id, "user_id")
        stats: dict[str, Any] = await (await self._durable()).statistics(user_id)
        return stats

    # -- extensions bruno-core's registry and ContextManager call -------------------------

    async def retrieve_context(self, user_id: str, query: str, limit: int = 5) -> list[Message]:
        """The user's past messages most relevant to ``query``."""
        return await self.search_messages(query, user_id=user_id, limit=limit)

    async def search_memories(self, user_id: str, query: str, limit: int = 10) -> list[MemoryEntry]:
        """The user's memories most relevant to ``query``."""
        return await self.retrieve_memories(
            MemoryQuery(user_id=user_id, query_text=query, limit=limit)
        )

    async def clear_conversation(self, conversation_id: str) -> None:
        """Remove every message of a conversation, system messages included."""
        await self.clear_history(conversation_id, keep_system_messages=False)

    async def forget_user(self, user_id: str) -> None:
        """Erase a user everywhere: messages, sessions, memories and profile."""
        guards.identifier(user_id, "user_id")
        for conversation, owner in list(self._owners.items()):
            if owner == user_id:
                self._owners.pop(conversation, None)
        await self._write([PurgeUser(user_id)], self._generations.ALL)


def _metadata_user(message: Message) -> str | None:
    user = message.metadata.get("user_id")
    return user if isinstance(user, str) and user else None
