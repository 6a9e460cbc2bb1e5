"""Branching: fork a conversation at a message into a new conversation that shares the
history up to that message, without copying it.

The branch is a new conversation of the same owner; its session's metadata records its
lineage (``core.branches``). Its messages are the shared parts (read from the parent
conversations, up to the fork's position) followed by its own, so ``retrieve_messages``,
``get_context``, the context builder and ``page_messages`` of a branch read prefix and own
messages as one conversation. A branch of a branch, forked at a message of the shared
prefix, shares only up to there.

What erasure does (nothing was copied):

- ``clear_history(branch)`` removes the branch's own messages; the shared prefix is the
  parent's and stays (the branch then reads the prefix alone).
- ``clear_history(parent)`` removes the parent's messages, so every branch loses that part
  of its prefix; branches keep their own messages.
- ``forget_user`` erases the user's conversations, branches and their lineage with them.

A lineage is honoured only while every conversation it names has the branch's owner.
"""

from __future__ import annotations

from bruno_core.models.context import SessionContext
from bruno_core.models.message import Message

from bruno_memory.core import cursors, guards
from bruno_memory.core.branches import ROOT, Lineage
from bruno_memory.core.errors import NotFound
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import Key
from bruno_memory.core.queries import MessageAt, MessagePage, Page
from bruno_memory.core.records import MessageRecord, fresh, message_out
from bruno_memory.stack.owners import Owners

log = get_logger(__name__)

CHUNK = 1000
"""Messages read from a shared part per query."""

Parts = list[tuple[str, "cursors.MessagePosition | None"]]
"""(conversation, through) of each part of a branch's messages; its own last (``None``)."""


class Branches(Owners):
    """Forks and the reads of a branch (mixed into ``MemoryStack``)."""

    async def fork_conversation(
        self, user_id: str, conversation_id: str, at_message_id: str
    ) -> SessionContext:
        """A new conversation of ``user_id`` sharing ``conversation_id``'s messages up to
        and including ``at_message_id``; returns its session (``.conversation_id``).

        Raises:
            NotFound: the conversation is not the user's, or the message is not in it.
        """
        guards.identifier(user_id, "user_id")
        guards.conversation_id(conversation_id)
        guards.identifier(at_message_id, "at_message_id")
        if await self._owner(conversation_id) != user_id:
            raise NotFound(f"no conversation {conversation_id!r} of user {user_id!r} to fork")
        lineage = await self._lineage(conversation_id) or ROOT
        parts = _parts(conversation_id, lineage)
        engine = await self._ready()
        for part in range(len(parts) - 1, -1, -1):
            conv, through = parts[part]
            at = await engine.ask(MessageAt(conv, at_message_id))
            if at is not None and (through is None or at <= through):
                branch = lineage.fork(part, conv, at_message_id, at)
                session = SessionContext(user_id=user_id, metadata=branch.metadata())
                await self._start(session)
                self._lineages[session.conversation_id] = branch
                return fresh(session)
        raise NotFound(
            f"message {at_message_id!r} is not in conversation {conversation_id!r}: fork at "
            "one of its messages"
        )

    async def branch_of(self, conversation_id: str) -> Lineage | None:
        """The lineage of a branch (its ``parent``, the message ``at`` which it was forked,
        and the shared ``prefix``), or ``None`` for a conversation that is no branch."""
        guards.conversation_id(conversation_id)
        return await self._lineage(conversation_id)

    async def _lineage(self, conversation_id: str) -> Lineage | None:
        """The conversation's lineage, if it is a branch whose parts are all its owner's."""
        known = self._lineages.get(conversation_id)
        if known is None:
            session = await self._get(Key("conversation", conversation_id))
            if not isinstance(session, SessionContext):
                return None
            known = Lineage.of(session.metadata) or ROOT
            self._lineages[conversation_id] = known
        if not known.prefix:
            return None
        owner = await self._owner(conversation_id)
        for part in known.prefix:
            if owner is None or await self._owner(part.conversation_id) != owner:
                log.warning("branch lineage ignored: a part is not the owner's",
                            conversation=conversation_id)
                return None
        return known

    async def _window(self, conversation_id: str, limit: int | None) -> list[MessageRecord]:
        """The newest ``limit`` messages (all: ``None``), oldest first: a branch's prefix
        included."""
        engine = await self._ready()
        own = list(await engine.window(conversation_id, limit))
        lineage = await self._lineage(conversation_id)
        if lineage is None:
            return own
        out = own
        for part in reversed(lineage.prefix):
            need = None if limit is None else limit - len(out)
            if need == 0:
                break
            out = await self._newest(part.conversation_id, part.through, need) + out
        return out

    async def _newest(
        self, conversation_id: str, through: cursors.MessagePosition, need: int | None
    ) -> list[MessageRecord]:
        """The newest ``need`` messages of a shared part, oldest first."""
        engine = await self._ready()
        out: list[MessageRecord] = []
        cursor = None
        while need is None or len(out) < need:
            ask = CHUNK if need is None else min(CHUNK, need - len(out))
            page = await engine.ask(MessagePage(conversation_id, cursor, False, ask, through))
            out = page.items + out
            if page.next is None:
                break
            cursor = cursors.message_position(page.next, "next")
        return out

    async def _branch_page(
        self, conversation_id: str, lineage: Lineage, before: str | None, after: str | None,
        limit: int,
    ) -> Page[Message]:
        """``page_messages`` of a branch: its parts and own messages as one conversation;
        cursors name the part they are in."""
        parts = _parts(conversation_id, lineage)
        if after is not None:
            if after == cursors.START:
                return await self._forward(parts, 0, "start", limit)
            part, place = cursors.branch_position(after, "after", len(parts))
            return await self._forward(parts, part, place, limit)
        if before is None:
            return await self._backward(parts, len(parts) - 1, "end", limit)
        part, place = cursors.branch_position(before, "before", len(parts))
        return await self._backward(parts, part, place, limit)

    async def _backward(
        self, parts: Parts, part: int, place: cursors.MessagePosition | cursors.Edge, limit: int
    ) -> Page[Message]:
        engine = await self._ready()
        items: list[MessageRecord] = []
        near: str | None = None
        more: str | None = None
        while part >= 0 and len(items) < limit:
            conv, through = parts[part]
            if place != "start":
                cursor = None if place == "end" else place
                page = await engine.ask(
                    MessagePage(conv, cursor, False, limit - len(items), through)
                )
                if page.items and near is None and page.prev is not None:
                    near = cursors.branch(part, cursors.message_position(page.prev, "prev"))
                items = page.items + items
                if page.next is not None:
                    more = cursors.branch(part, cursors.message_position(page.next, "next"))
                    break
            part, place = part - 1, "end"
            if len(items) >= limit and part >= 0:
                more = cursors.branch(part, "end")
        return Page([message_out(r) for r in items], more, near)

    async def _forward(
        self, parts: Parts, part: int, place: cursors.MessagePosition | cursors.Edge, limit: int
    ) -> Page[Message]:
        engine = await self._ready()
        items: list[MessageRecord] = []
        near: str | None = None
        more: str | None = None
        while part < len(parts) and len(items) < limit:
            conv, through = parts[part]
            if place != "end":
                cursor = None if place == "start" else place
                page = await engine.ask(
                    MessagePage(conv, cursor, True, limit - len(items), through)
                )
                if page.items and near is None and page.prev is not None:
                    near = cursors.branch(part, cursors.message_position(page.prev, "prev"))
                items += page.items
                if page.next is not None:
                    more = cursors.branch(part, cursors.message_position(page.next, "next"))
                    break
            part, place = part + 1, "start"
            if len(items) >= limit and part < len(parts):
                more = cursors.branch(part, "start")
        return Page([message_out(r) for r in items], more, near)


def _parts(conversation_id: str, lineage: Lineage) -> Parts:
    shared: Parts = [(p.conversation_id, p.through) for p in lineage.prefix]
    return [*shared, (conversation_id, None)]

