"""The façade's doors beyond ``MemoryInterface``: scoped, tunable search, phrase search,
time ranges, a paged scan, session listing and message paging. Managers, benchmarks and
the CLI use these instead of anything private."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery
from bruno_core.models.message import Message

from bruno_memory.core import cursors, guards, lifetimes, summaries
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Key
from bruno_memory.core.queries import (
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
)
from bruno_memory.core.records import fresh, message_out, record_out
from bruno_memory.stack import fusion, hybrid, ranking
from bruno_memory.stack.branches import Branches


class Doors(Branches):
    """Reads beyond ``MemoryInterface`` (mixed into ``MemoryStack``)."""

    async def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 10,
        mode: hybrid.Mode = "hybrid",
        fusion: fusion.Fusion = fusion.DEFAULT,
        include_archived: bool = False,
    ) -> list[Scored[Message]]:
        """Messages ranked by relevance to ``query``, best first, with their scores.

        Args:
            user_id: only this user's messages; conversation_id: only this conversation's.
            mode: ``hybrid`` (full text and vectors, when a semantic tier exists),
                ``text`` or ``vector``.
            fusion: how the lists are fused (``stack.fusion.Fusion``).
            include_archived: archived messages too (``managers.lifecycle`` archival).
        """
        guards.query(query)
        guards.limit(limit)
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if conversation_id is not None:
            guards.conversation_id(conversation_id)

        async def read() -> list[Scored[Message]]:
            found = await hybrid.search_messages(
                await self._ready(),
                query,
                user_id,
                limit,
                conversation_id=conversation_id,
                mode=mode,
                fusion=fusion,
                include_archived=include_archived,
            )
            return [Scored(message_out(h.item), h.score) for h in found]

        key = ("search", query, conversation_id, limit, mode, fusion, include_archived)
        return await self._cached(user_id, key, read, _copy_hits)

    async def scan(
        self,
        kind: ScanKind,
        *,
        user_id: str | None = None,
        after: str | None = None,
        limit: int = 500,
        since: int | None = None,
    ) -> Page[Any]:
        """One page of every stored record of ``kind`` (``message``: ``MessageRecord``s with
        their conversation and owner; ``session``, ``user``, ``memory``: the bruno-core
        models), in key order, as the authoritative tier holds them (queued writes first
        land). Pass the page's ``next`` as ``after`` for the following page; ``since`` (a
        ``watermark()``) keeps only the records written after it."""
        guards.choice(kind, "kind", ("message", "session", "user", "memory"))
        guards.limit(limit)
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if after is not None:
            guards.identifier(after, "after")
        if since is not None:
            guards.watermark(since)
        return await (await self._ready()).ask(Scan(kind, user_id, after, limit, since))

    async def search_phrase(
        self,
        phrase: str,
        *,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int = 10,
        include_archived: bool = False,
    ) -> list[Scored[Message]]:
        """Messages holding ``phrase`` verbatim (case-insensitive: ASCII letters only on
        SQLite), ranked by full-text relevance, best first; only ``user_id``'s /
        ``conversation_id``'s when given."""
        guards.phrase(phrase)
        guards.limit(limit)
        self._scope(user_id, conversation_id)

        async def read() -> list[Scored[Message]]:
            found = await (await self._ready()).ask(
                SearchPhrase(phrase, user_id, limit, conversation_id, include_archived)
            )
            return [Scored(message_out(h.item), h.score) for h in found]

        key = ("phrase", phrase, conversation_id, limit, include_archived)
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
        return [record_out(e) for e in found]

    async def query_memories(
        self, query: MemoryQuery, *, as_of: datetime | None = None
    ) -> list[MemoryEntry]:
        """``retrieve_memories(query)``, or with ``as_of`` the memories that held at that
        instant (history): created by then, not yet superseded nor expired of themselves
        (an archived memory still counts for the time it was current), ranked alike."""
        guards.memory_query(query)
        if as_of is None:
            found = await self._ranked_memories(query)
            self._recalled(found)
            return found
        if not isinstance(as_of, datetime):
            raise InvalidInput(f"as_of must be a datetime or None, got {type(as_of).__name__}")
        past = lifetimes.aware(as_of)
        wide = query.model_copy(update={
            "include_expired": True, "limit": min(max(query.limit * 5, 100), 1000),
        })
        found = await self._ranked_memories(wide)  # history: not counted as recalls
        held = [e for e in found if not summaries.hidden(e.metadata.category, query.categories)
                and lifetimes.valid_at(e, past)]
        return held[: query.limit]

    async def _ranked_memories(self, query: MemoryQuery) -> list[MemoryEntry]:
        """``retrieve_memories`` without counting recalls (``query`` already checked)."""

        async def read() -> list[MemoryEntry]:
            now = self._clock()
            engine = await self._ready()
            hits = await hybrid.query_memories(engine, ranking.pool(query), now)
            weights = self._conversing.lifecycle.importance.weights()
            return [record_out(h.item) for h in await ranking.ranked(hits, query, weights, now)]

        key = ("memories", query.model_dump_json())
        return await self._cached(query.user_id, key, read, lambda es: [fresh(e) for e in es])

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
        page = await (await self._ready()).ask(
            ListSessions(user_id, position, limit, conversations)
        )
        return Page([record_out(s) for s in page.items], page.next, page.prev)

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
        continues the same way (``None``: nothing more), ``prev`` turns back. A branch
        (``fork_conversation``) pages through its shared prefix and its own messages.
        """
        guards.conversation_id(conversation_id)
        guards.limit(limit, maximum=1000)
        if before is not None and after is not None:
            raise InvalidInput("pass before or after, not both: a page goes one way")
        lineage = await self._lineage(conversation_id)
        if lineage is not None:  # a branch: its shared prefix, then its own messages
            return await self._branch_page(conversation_id, lineage, before, after, limit)
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

    async def conversation_session(self, conversation_id: str) -> SessionContext | None:
        """The latest session of a conversation (its ``user_id`` is the conversation's
        owner), or ``None`` for a conversation without one."""
        found = await self._get(Key("conversation", guards.conversation_id(conversation_id)))
        return record_out(found) if isinstance(found, SessionContext) else None

    @staticmethod
    def _scope(user_id: str | None, conversation_id: str | None, *, required: bool = False) -> None:
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if conversation_id is not None:
            guards.conversation_id(conversation_id)
        if required and user_id is None and conversation_id is None:
            raise InvalidInput(
                "pass user_id or conversation_id (or both): a range query never reads "
                "every user's messages"
            )


def _copy_hits(hits: list[Scored[Message]]) -> list[Scored[Message]]:
    return [Scored(fresh(h.item), h.score) for h in hits]
