"""MemoryStack: the ``MemoryInterface`` façade over the routing engine.

It owns what the interface means (sessions, owners, context, guards at the boundary) and
leaves where data lives to the ``Engine``. Its public doors beyond the interface
(``search``, ``scan``, ``flush``, ``health``) are what managers, benchmarks and the CLI use.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bruno_core.interfaces.memory import MemoryInterface
from bruno_core.models.context import ConversationContext, SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery
from bruno_core.models.message import Message
from cachetools import LRUCache

from bruno_memory.core import cursors, errors, guards
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import InvalidInput, NotFound, TierError, TierUnavailable
from bruno_memory.core.generations import Generations
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    Key,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.queries import (
    LatestSession,
    ListSessions,
    MemoriesBetween,
    MemoryTime,
    MessagePage,
    MessagesBetween,
    Page,
    Scan,
    ScanKind,
    Scored,
    SearchPhrase,
    Statistics,
)
from bruno_memory.core.records import MessageRecord, fresh, message_out, message_record
from bruno_memory.stack import fusion, hybrid
from bruno_memory.stack.engine import Engine
from bruno_memory.stack.results import QueryCache
from bruno_memory.tiers.base import Tier

V = TypeVar("V")
log = get_logger(__name__)
Composer = Callable[["MemoryStack", str, str], Awaitable[list[Message]]]
"""Builds ``get_context``'s messages: (memory, user id, conversation id) -> messages."""
Opener = Callable[[], Awaitable[tuple[Engine, int, "Composer | None"]]]


class MemoryStack(MemoryInterface):
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

    def __init__(
        self,
        tiers: Sequence[Tier] | Engine | None = None,
        *,
        opener: Opener | None = None,
        context_messages: int = 20,
        composer: Composer | None = None,
        clock: Callable[[], float] = time.time,
        query_cache: QueryCache | None = None,
    ) -> None:
        if tiers is None and opener is None:
            raise TypeError("MemoryStack needs tiers or an opener; use build_memory()")
        self._engine: Engine | None = (
            tiers if isinstance(tiers, Engine) else Engine(tiers) if tiers else None
        )
        self._opener = opener
        self._context_messages = context_messages
        self._composer = composer
        self._clock = clock
        self._claiming = asyncio.Lock()  # a conversation's first owner is fixed once
        self._owners: LRUCache[str, str] = LRUCache(100_000)  # owners never change but by
        # forget_user (then a claim): this process forgets its own; see _owner
        self._opening = asyncio.Lock()
        self._closed = False
        self.query_cache = query_cache

    def __repr__(self) -> str:
        return f"MemoryStack([{', '.join(map(repr, self.tiers))}])"

    # -- lifecycle ------------------------------------------------------------------------

    async def _ready(self) -> Engine:
        if self._closed:
            raise errors.Closed(
                "this memory stack is closed: every call is refused; build a new one "
                "(build_memory) to go on"
            )
        if self._engine is None:
            async with self._opening:
                if self._engine is None:
                    assert self._opener is not None
                    opened = await self._opener()
                    self._engine, self._context_messages, self._composer = opened
        return self._engine

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, fastest first (empty until opened)."""
        return self._engine.tiers if self._engine else ()

    async def open(self) -> MemoryStack:
        """Open the tiers now rather than on first use; raises ``Closed`` once closed."""
        await self._ready()
        return self

    async def flush(self) -> None:
        """Wait until every queued write has reached its tier."""
        if self._closed:
            await self._ready()  # raises Closed
        if self._engine is not None:
            await self._engine.flush()

    async def close(self) -> None:
        """Drain queued writes, then release every tier. Closing is final: every later
        call raises ``Closed`` (``async with`` on a closed stack too); closing again does
        nothing."""
        if self._closed:
            return
        self._closed = True
        if self._engine is not None:
            await self._engine.aclose()

    aclose = close

    async def __aenter__(self) -> MemoryStack:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def health(self) -> dict[str, dict[str, Any]]:
        """Per tier: up or down, ping latency, hits and misses, policy metrics."""
        return await (await self._ready()).health()

    async def _write(self, ops: list[WriteOp], touched: Sequence[object]) -> None:
        try:
            await (await self._ready()).write(ops, touched)
        finally:
            if self.query_cache is not None:  # after the write: a read racing it is dropped
                for user in _users_of(ops, self._owners):
                    self.query_cache.bump(user)

    async def _cached(
        self,
        user_id: str | None,
        key: Hashable,
        read: Callable[[], Awaitable[V]],
        copy: Callable[[V], V],
    ) -> V:
        """``read()``, or its result kept for ``user_id`` in the query cache."""
        cache = self.query_cache
        if cache is None or user_id is None:
            return await read()
        found, held = cache.get(user_id, key)
        if found:
            return copy(held)
        stamp = cache.stamp(user_id)
        value = await read()
        cache.put(user_id, key, stamp, copy(value))
        return value

    async def _get(self, key: Key) -> Any:
        return await (await self._ready()).get(key)

    # -- public doors beyond MemoryInterface -------------------------------------------

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
        """Messages ranked by relevance to ``query``, best first, with their scores.

        Args:
            user_id: only this user's messages; conversation_id: only this conversation's.
            mode: ``hybrid`` (full text and vectors, when a semantic tier exists),
                ``text`` or ``vector``.
            fusion: how the lists are fused (``stack.fusion.Fusion``).
        """
        guards.query(query)
        guards.limit(limit)
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if conversation_id is not None:
            guards.conversation_id(conversation_id)

        async def read() -> list[Scored[Message]]:
            found = await hybrid.search_messages(
                await self._ready(), query, user_id, limit,
                conversation_id=conversation_id, mode=mode, fusion=fusion,
            )
            return [Scored(message_out(h.item), h.score) for h in found]

        key = ("search", query, conversation_id, limit, mode, fusion)
        return await self._cached(user_id, key, read, _copy_hits)

    async def scan(
        self,
        kind: ScanKind,
        *,
        user_id: str | None = None,
        after: str | None = None,
        limit: int = 500,
    ) -> Page[Any]:
        """One page of every stored record of ``kind`` (``message``: ``MessageRecord``s with
        their conversation and owner; ``session``, ``user``, ``memory``: the bruno-core
        models), in key order, as the authoritative tier holds them (queued writes first
        land). Pass the page's ``next`` as ``after`` for the following page."""
        guards.choice(kind, "kind", ("message", "session", "user", "memory"))
        guards.limit(limit)
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if after is not None:
            guards.identifier(after, "after")
        return await (await self._ready()).ask(Scan(kind, user_id, after, limit))

    async def search_phrase(
        self,
        phrase: str,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 10,
    ) -> list[Scored[Message]]:
        """Messages holding ``phrase`` verbatim (case-insensitive: ASCII letters only on
        SQLite), ranked by full-text relevance, best first; only ``user_id``'s /
        ``conversation_id``'s when given."""
        guards.phrase(phrase)
        guards.limit(limit)
        self._scope(user_id, conversation_id)

        async def read() -> list[Scored[Message]]:
            found = await (await self._ready()).ask(
                SearchPhrase(phrase, user_id, limit, conversation_id)
            )
            return [Scored(message_out(h.item), h.score) for h in found]

        key = ("phrase", phrase, conversation_id, limit)
        return await self._cached(user_id, key, read, _copy_hits)

    async def messages_between(
        self,
        start: datetime,
        end: datetime,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 100,
    ) -> list[Message]:
        """The messages of a user and/or a conversation timestamped in ``[start, end)``
        (naive datetimes are UTC), oldest first, at most ``limit``; at least one of
        ``user_id`` and ``conversation_id`` is required."""
        lo, hi = guards.between(start, end)
        guards.limit(limit)
        self._scope(user_id, conversation_id, required=True)
        records = await (await self._ready()).ask(
            MessagesBetween(lo, hi, user_id, conversation_id, limit)
        )
        return [message_out(r) for r in records]

    async def memories_between(
        self,
        user_id: str,
        start: datetime,
        end: datetime,
        *,
        conversation_id: str | None = None,
        by: MemoryTime = "created",
        limit: int = 100,
    ) -> list[MemoryEntry]:
        """A user's memories whose ``by`` instant (``created_at`` or ``updated_at``) is in
        ``[start, end)``, oldest first, expired ones included; only those of
        ``conversation_id`` when given."""
        guards.identifier(user_id, "user_id")
        lo, hi = guards.between(start, end)
        guards.choice(by, "by", ("created", "updated"))
        guards.limit(limit, maximum=1000)
        self._scope(None, conversation_id)
        found = await (await self._ready()).ask(
            MemoriesBetween(user_id, lo, hi, limit, conversation_id, by)
        )
        return [fresh(e) for e in found]

    async def list_sessions(
        self, user_id: str, *, before: str | None = None, limit: int = 20
    ) -> Page[SessionContext]:
        """A page of the user's sessions, newest first; pass the page's ``next`` as
        ``before`` for the following (older) page."""
        return await self._list(user_id, before, limit, conversations=False)

    async def list_conversations(
        self, user_id: str, *, before: str | None = None, limit: int = 20
    ) -> Page[SessionContext]:
        """A page of the user's conversations, most recently started or resumed first: one
        item per conversation, its latest session (``.conversation_id``); pass ``next`` as
        ``before`` for the following page."""
        return await self._list(user_id, before, limit, conversations=True)

    async def _list(
        self, user_id: str, before: str | None, limit: int, *, conversations: bool
    ) -> Page[SessionContext]:
        guards.identifier(user_id, "user_id")
        guards.limit(limit, maximum=1000)
        position = None if before is None else cursors.session_position(before, "before")
        return await (await self._ready()).ask(
            ListSessions(user_id, position, limit, conversations)
        )

    async def page_messages(
        self,
        conversation_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page[Message]:
        """One screen of a conversation, oldest first within the page.

        No cursor: the newest ``limit`` messages. ``before=cursor``: the ones just older
        (a chat UI scrolling up); ``after=cursor``: the ones just newer (``after=START``,
        ``bruno_memory.core.cursors.START``: from the first message). The page's ``next``
        continues the same way (``None``: nothing more), ``prev`` turns back.
        """
        guards.conversation_id(conversation_id)
        guards.limit(limit, maximum=1000)
        if before is not None and after is not None:
            raise InvalidInput("pass before or after, not both: a page goes one way")
        forward = after is not None
        position = None
        if before is not None:
            position = cursors.message_position(before, "before")
        elif after is not None and after != cursors.START:
            position = cursors.message_position(after, "after")
        page = await (await self._ready()).ask(
            MessagePage(conversation_id, position, forward, limit)
        )
        return Page([message_out(r) for r in page.items], page.next, page.prev)

    @staticmethod
    def _scope(
        user_id: str | None, conversation_id: str | None, *, required: bool = False
    ) -> None:
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if conversation_id is not None:
            guards.conversation_id(conversation_id)
        if required and user_id is None and conversation_id is None:
            raise InvalidInput(
                "pass user_id or conversation_id (or both): a range query never reads "
                "every user's messages"
            )

    # -- messages -------------------------------------------------------------------------

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
        named = {u for m in messages if (u := _metadata_user(m)) is not None}
        owner = await self._owner(conversation_id)
        if owner is None and named:
            async with self._claiming:
                owner = await self._owner(conversation_id)
                if owner is None:
                    await self._store_claimed(messages, conversation_id, named)
                    return
        self._check_named(named, owner, conversation_id)
        records = [message_record(m, conversation_id, owner) for m in messages]
        await self._check_message_ids(records, conversation_id, owner)
        ops: list[WriteOp] = [Put(Key("message", r.id), r) for r in records]
        async with _moved():
            await self._write(ops, [("window", conversation_id)])

    async def _store_claimed(
        self, messages: Sequence[Message], conversation_id: str, named: set[str]
    ) -> None:
        """The first attributed write of an ownerless conversation: its user claims it."""
        if len(named) > 1:
            raise InvalidInput(
                f"messages for conversation {conversation_id!r} name {len(named)} users in "
                "metadata['user_id']: a conversation has one owner; store each user's "
                "messages in a conversation of their own"
            )
        (owner,) = named
        records = [message_record(m, conversation_id, owner) for m in messages]
        await self._check_message_ids(records, conversation_id, owner)
        session = SessionContext(
            session_id=conversation_id, user_id=owner, conversation_id=conversation_id
        )
        claim, touched = await self._start_ops(session, claim=True)
        ops = [*claim, *(Put(Key("message", r.id), r) for r in records)]
        async with _moved():
            await self._write(ops, touched)
        self._owners[conversation_id] = owner

    @staticmethod
    def _check_named(named: set[str], owner: str | None, conversation_id: str) -> None:
        others = sorted(named - {owner}) if owner is not None else []
        if others:
            raise InvalidInput(
                f"metadata['user_id'] {others[0]!r} is not the owner of conversation "
                f"{conversation_id!r}: every message of a conversation belongs to its one "
                "owner; drop user_id from the metadata, or store the message in a "
                f"conversation of {others[0]!r}"
            )

    async def _check_message_ids(
        self, records: Sequence[MessageRecord], conversation_id: str, owner: str | None
    ) -> None:
        """Refuse ids the authoritative tier holds for another conversation or owner."""
        if not await self._queued():  # the tier's upsert refuses a move itself (_moved)
            return
        found = await self._held([Key("message", r.id) for r in records])
        for key, held in found.items():
            if isinstance(held, MessageRecord) and (
                held.conversation_id != conversation_id
                or held.user_id not in (None, owner)
            ):
                raise InvalidInput(
                    f"message id {key.id} is already used by another conversation: an "
                    "upsert keeps a message where it is; give the message a new id"
                )

    async def _queued(self) -> bool:
        """Whether the authoritative tier queues writes (its refusals come too late)."""
        return Capability.QUEUED in (await self._ready()).routes.durable.capabilities

    async def _held(self, keys: Sequence[Key]) -> Mapping[Key, Any]:
        """What the authoritative tier holds at ``keys`` (queued writes included), to check
        an upsert against. While it is down the write is not refused for that: a queued
        write goes on queueing, and the tier's upsert itself never moves a record to
        another conversation or owner (it is dropped there, with a warning here)."""
        try:
            return await (await self._ready()).authoritative(keys)
        except TierUnavailable as exc:
            log.warning("ids not checked against the authoritative tier (down): a record "
                        "reusing another owner's id will be dropped when applied",
                        error=str(exc), records=len(keys))
            return {}

    async def _owner(self, conversation_id: str) -> str | None:
        """The user of the conversation's session (its owner), read through the caches.

        Remembered once known (an owner is fixed): a conversation whose owner another
        process forgets stays attributed to her here until this process's ``_owners``
        drops it; a later claim re-owns every message of the conversation anyway.
        """
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
        window = await (await self._ready()).window(conversation_id, limit)
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

    # -- memories -------------------------------------------------------------------------

    async def store_memory(self, memory_entry: MemoryEntry) -> None:
        """Store (upsert by id) a long-term memory; an id of another user's memory is
        refused (``InvalidInput``)."""
        guards.memory(memory_entry)
        key = Key("memory", str(memory_entry.id))
        held = (await self._held([key])).get(key) if await self._queued() else None
        if isinstance(held, MemoryEntry) and held.user_id != memory_entry.user_id:
            raise InvalidInput(
                f"memory id {key.id} is already used by another user's memory: an upsert "
                "never changes a memory's owner; give the memory a new id"
            )
        async with _moved():
            await self._write([Put(key, fresh(memory_entry))], [key])

    async def retrieve_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """Memories matching every field of ``query``; ranked by ``query_text`` when given."""
        guards.memory_query(query)

        async def read() -> list[MemoryEntry]:
            hits = await hybrid.query_memories(await self._ready(), query, self._clock())
            return [h.item for h in hits]

        key = ("memories", query.model_dump_json())
        return await self._cached(query.user_id, key, read, lambda es: [fresh(e) for e in es])

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
        if metadata is not None:
            guards.metadata(metadata)
        session = SessionContext(user_id=user_id, metadata=dict(metadata or {}))
        await self._start(session)
        return fresh(session)

    async def _start(self, session: SessionContext, *, claim: bool = False) -> None:
        await self._write(*await self._start_ops(session, claim=claim))
        self._owners[session.conversation_id] = session.user_id

    async def _start_ops(
        self, session: SessionContext, *, claim: bool
    ) -> tuple[list[WriteOp], list[object]]:
        """The writes starting ``session`` (and its user), with the keys they touch;
        ``claim``: its conversation may hold messages already, which become the user's."""
        user = Key("user", session.user_id)
        ops: list[WriteOp] = [Put(Key("session", session.session_id), session)]
        if await self._get(user) is None:
            ops.append(Put(user, UserContext(user_id=session.user_id)))
        keys: list[object] = [
            Key("session", session.session_id), Key("conversation", session.conversation_id),
            user,
        ]
        if claim:
            ops.append(ClaimConversation(session.conversation_id, session.user_id))
            keys.append(("window", session.conversation_id))
        return ops, keys

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
        engine = await self._ready()
        conversation = session.conversation_id
        if self._composer is not None:
            messages = await self._composer(self, user_id, conversation)
        else:
            window = await engine.window(conversation, self._context_messages)
            messages = [message_out(r) for r in window]
        user = await self._get(Key("user", user_id))
        return ConversationContext(
            conversation_id=session.conversation_id,
            user=fresh(user) if isinstance(user, UserContext) else UserContext(user_id=user_id),
            session=fresh(session),
            messages=messages,
            max_messages=self._max_messages(messages),
        )

    def _max_messages(self, messages: list[Message]) -> int:
        """bruno-core trims the oldest non-system messages past ``max_messages``: a budgeted
        context keeps room for the turn ``BaseAssistant`` adds before the LLM call, and
        its reply, so nothing the budget chose is trimmed."""
        if self._composer is not None:
            return len(messages) + 2
        return max(self._context_messages, 1)

    async def _session_for(self, user_id: str, session_id: str | None) -> SessionContext:
        if session_id is None:
            latest = await (await self._ready()).ask(LatestSession(user_id))
            return latest if latest is not None else await self.create_session(user_id)
        guards.identifier(session_id, "session_id")
        found = await self._find_session(session_id)
        if found is None:
            async with self._claiming:  # one first owner, however many callers race here
                found = await self._find_session(session_id)
                if found is None:
                    found = SessionContext(
                        session_id=session_id, user_id=user_id, conversation_id=session_id
                    )
                    await self._start(found, claim=True)
        assert isinstance(found, SessionContext)
        if found.user_id != user_id:
            raise NotFound(f"no session or conversation {session_id!r} for user {user_id!r}")
        return found

    async def _find_session(self, session_id: str) -> Any:
        return await self._get(Key("session", session_id)) or await self._get(
            Key("conversation", session_id)
        )

    async def get_statistics(self, user_id: str) -> dict[str, Any]:
        """Counts of the user's messages, conversations, sessions and memories."""
        guards.identifier(user_id, "user_id")

        async def read() -> dict[str, Any]:
            return await (await self._ready()).ask(Statistics(user_id))

        return await self._cached(user_id, ("statistics",), read, copy.deepcopy)

    # -- extensions bruno-core's registry and ContextManager call -------------------------

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
        for conversation, owner in list(self._owners.items()):
            if owner == user_id:
                self._owners.pop(conversation, None)
        await self._write([PurgeUser(user_id)], Generations.ALL)


@contextlib.asynccontextmanager
async def _moved() -> AsyncIterator[None]:
    """A write the authoritative tier refused as moving a record (``_sql.MOVED``): the
    caller's mistake, said as such. Checked there on a write-through tier (no read on the
    hot path); a write-behind tier's queue is checked by the façade first (``_held``)."""
    try:
        yield
    except TierError as exc:
        if "belongs to a record of another conversation or owner" not in str(exc):
            raise
        raise InvalidInput(
            "an id in this write is already used by another conversation's message or "
            "another user's memory: an upsert never moves a record; give it a new id"
        ) from exc


def _copy_hits(hits: list[Scored[Message]]) -> list[Scored[Message]]:
    return [Scored(fresh(h.item), h.score) for h in hits]


def _users_of(ops: Sequence[WriteOp], owners: Mapping[str, str]) -> set[str | None]:
    """The users whose query results ``ops`` may change (``None``: a user not known here,
    e.g. the owner of a deleted memory: every user's)."""
    users: set[str | None] = set()
    for op in ops:
        if isinstance(op, Put):
            value = op.value
            if isinstance(value, MessageRecord):
                if value.user_id is not None:
                    users.add(value.user_id)
            elif isinstance(value, (SessionContext, UserContext, MemoryEntry)):
                users.add(value.user_id)
            else:
                users.add(None)
        elif isinstance(op, (ClaimConversation, PurgeUser)):
            users.add(op.user_id)
        elif isinstance(op, ClearHistory):
            users.add(owners.get(op.conversation_id))
        else:
            users.add(None)
    return users


def _metadata_user(message: Message) -> str | None:
    user = message.metadata.get("user_id")
    return user if isinstance(user, str) and user else None
