"""What a cache must drop after a change it did not see (pure).

Dropping goes through the ordinary write protocol, so it works on any cache tier: a
``Delete`` forgets a record, a ``ClearHistory`` forgets a conversation's cached window,
a ``PurgeUser`` forgets a user; a ``ClaimConversation`` re-owns a conversation's messages,
so a cached window of it is forgotten.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    Key,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord

CLEAR_AFTER = 10_000
"""Owed drops beyond which a tier with ``clear()`` is cleared instead."""


def drops_for(ops: Iterable[WriteOp]) -> dict[Hashable, WriteOp]:
    """The drops undoing what ``ops`` would have changed in a cache, one per target."""
    out: dict[Hashable, WriteOp] = {}
    for op in ops:
        if isinstance(op, Put) and isinstance(op.value, MessageRecord):
            cid = op.value.conversation_id
            out[("window", cid)] = ClearHistory(cid, keep_system=False)
        elif isinstance(op, (Put, Delete)):
            out[op.key] = Delete(op.key)
            if isinstance(op, Put) and isinstance(op.value, SessionContext):
                conv = Key("conversation", op.value.conversation_id)
                out[conv] = Delete(conv)
        elif isinstance(op, (ClearHistory, ClaimConversation)):
            out[("window", op.conversation_id)] = ClearHistory(op.conversation_id, False)
        elif isinstance(op, PurgeUser):
            out[("user", op.user_id)] = PurgeUser(op.user_id)
    return out


def users_of(ops: Iterable[WriteOp], owners: Mapping[str, str] | None = None) -> set[str | None]:
    """The users whose query results ``ops`` may change (``None``: a user not known here,
    e.g. the owner of a deleted memory, so any user's); ``owners`` maps conversation ids
    to their owners where known."""
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
            users.add((owners or {}).get(op.conversation_id))
        else:
            users.add(None)
    return users


class Owed:
    """Drops a cache is owed for writes that skipped it."""

    def __init__(self) -> None:
        self._drops: dict[Hashable, WriteOp] = {}
        self._clear = False

    def __len__(self) -> int:
        return len(self._drops) + (1 if self._clear else 0)

    def __bool__(self) -> bool:
        return bool(self._drops) or self._clear

    def add(self, ops: Sequence[WriteOp]) -> None:
        self._drops.update(drops_for(ops))

    def owe_clear(self) -> None:
        """The cache may hold anything stale: clear it before it serves again."""
        self._clear = True

    def take(self, *, has_clear: bool) -> tuple[list[WriteOp], bool]:
        """(drops, clear): what to apply now; a clear replaces many drops when possible."""
        clear = has_clear and (self._clear or len(self._drops) > CLEAR_AFTER)
        ops = [] if clear else list(self._drops.values())
        self._drops, self._clear = {}, False
        return ops, clear

    def restore(self, ops: list[WriteOp], clear: bool) -> None:
        """Put back what could not be applied."""
        self._clear = self._clear or clear
        for op in ops:
            self._drops.setdefault(op, op)
