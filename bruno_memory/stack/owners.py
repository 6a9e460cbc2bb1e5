"""Ownership: a conversation has one owner, fixed by its first session or first
attributed write; writes naming another user, or reusing another owner's ids, are refused
and move nothing; claiming an ownerless conversation claims its messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.message import Message

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import InvalidInput, TierError, TierUnavailable
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import (
    ClaimConversation,
    Key,
    Put,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord, message_record
from bruno_memory.stack.plumbing import Plumbing

log = get_logger(__name__)


class Owners(Plumbing):
    """Who owns a conversation, and the checks that keep it so (mixed into ``MemoryStack``)."""

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
        await self._check_message_ids(messages, records, conversation_id, owner)
        session = SessionContext(
            session_id=conversation_id, user_id=owner, conversation_id=conversation_id
        )
        claim, touched = await self._start_ops(session, claim=True)
        ops = [*claim, *(Put(Key("message", r.id), r) for r in records)]
        with refused_moves():
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
        self,
        messages: Sequence[Message],
        records: Sequence[MessageRecord],
        conversation_id: str,
        owner: str | None,
    ) -> None:
        """Refuse ids the authoritative tier holds for another conversation or owner
        (minted ids need no look: ``stack.minted``)."""
        if not await self._queued():  # the tier's upsert refuses a move itself (refused_moves)
            return
        place = (conversation_id, owner)
        vouches = self._minted.vouches
        keys = [Key("message", r.id) for m, r in zip(messages, records, strict=True)
                if not vouches(m, r.id, place)]
        if not keys:
            return
        found = await self._held(keys)
        for key, held in found.items():
            if isinstance(held, MessageRecord) and (
                held.conversation_id != conversation_id or held.user_id not in (None, owner)
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
            log.warning(
                "ids not checked against the authoritative tier (down): a record "
                "reusing another owner's id will be dropped when applied",
                error=str(exc),
                records=len(keys),
            )
            return {}

    async def _owner(self, conversation_id: str, *, fresh: bool = False) -> str | None:
        """The user of the conversation's session (its owner), read through the caches
        (``fresh``: before claiming it; see ``Engine.get``).

        Remembered once known (an owner is fixed): a conversation whose owner another
        process forgets stays attributed to her here until this process's ``_owners``
        drops it; a later claim re-owns every message of the conversation anyway.
        """
        owner = self._owners.get(conversation_id)
        if owner is None:
            session = await self._get(Key("conversation", conversation_id), fresh=fresh)
            if isinstance(session, SessionContext):
                owner = self._owners[conversation_id] = session.user_id
        return owner

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
        if await self._get(user, fresh=True) is None:  # not to overwrite a profile
            ops.append(Put(user, UserContext(user_id=session.user_id)))
        keys: list[object] = [
            Key("session", session.session_id),
            Key("conversation", session.conversation_id),
            user,
        ]
        if claim:
            ops.append(ClaimConversation(session.conversation_id, session.user_id))
            keys.append(("window", session.conversation_id))
        return ops, keys


class _RefusedMoves:
    """``refused_moves``: a plain context manager (the write path's, so cheap)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, TierError) and MOVED in str(exc):
            raise InvalidInput(
                "an id in this write is already used by another conversation's message or "
                "another user's memory: an upsert never moves a record; give it a new id"
            ) from exc


def refused_moves() -> _RefusedMoves:
    """A write the authoritative tier refused as moving a record (``_sql.MOVED``): the
    caller's mistake, said as such. Checked there on a write-through tier (no read on the
    hot path); a write-behind tier's queue is checked by the façade first (``_held``)."""
    return _REFUSED


_REFUSED = _RefusedMoves()
MOVED = "belongs to a record of another conversation or owner"


def metadata_user(message: Message) -> str | None:
    user = message.metadata.get("user_id")
    return user if isinstance(user, str) and user else None
