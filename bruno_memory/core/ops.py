"""Keys, sentinels and write operations: writes are data, so they can be queued and replayed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, TypeAlias

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry
from typing_extensions import TypeIs

from bruno_memory.core.records import MessageRecord

Namespace = Literal["message", "session", "user", "memory", "conversation"]


@dataclass(frozen=True, slots=True)
class Key:
    """Address of one record: ``conversation`` maps a conversation id to its session."""

    ns: Namespace
    id: str

    def __str__(self) -> str:
        return f"{self.ns}:{self.id}"


class _Sentinel(Enum):
    MISS = "MISS"
    EMPTY = "EMPTY"

    def __repr__(self) -> str:
        return self.value


MISS: Final = _Sentinel.MISS
"""A cache does not know: ask the next tier."""
EMPTY: Final = _Sentinel.EMPTY
"""Known to be absent: an answer, not a miss."""

Miss = Literal[_Sentinel.MISS]
Empty = Literal[_Sentinel.EMPTY]

Value: TypeAlias = MessageRecord | SessionContext | UserContext | MemoryEntry


@dataclass(frozen=True, slots=True)
class Put:
    """Insert or replace the record at ``key``; ``version`` orders replays (newer wins)."""

    key: Key
    value: Value
    version: int = 0


@dataclass(frozen=True, slots=True)
class FillRecord:
    """Cache fill: a record read from a lower tier, copied into a cache above it.

    Not a change: it has no version, is never journaled or published, and durable tiers
    ignore it. ``lease`` is the fill lease a shared cache handed out before the lower
    tier was read (see ``tiers.base.Leased``).
    """

    key: Key
    value: Value
    lease: str | None = None


@dataclass(frozen=True, slots=True)
class FillAbsent:
    """Cache fill: the authoritative tier holds nothing at ``key``; only a cache that
    remembers absence (``Capability.ABSENCE``) takes it. A fill like ``FillRecord``
    (``lease`` too): any later write or drop of ``key`` ends it."""

    key: Key
    lease: str | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the record at ``key``; idempotent."""

    key: Key
    version: int = 0


@dataclass(frozen=True, slots=True)
class ClearHistory:
    """Remove a conversation's messages, optionally keeping system messages."""

    conversation_id: str
    keep_system: bool = True
    version: int = 0


@dataclass(frozen=True, slots=True)
class ClaimConversation:
    """Make ``user_id`` the owner of every message of a conversation (its first owner:
    messages stored before its first session or attributed write become the owner's)."""

    conversation_id: str
    user_id: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class PurgeUser:
    """Erase everything of one user: messages, sessions, memories, profile."""

    user_id: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class FillWindow:
    """Cache fill: the newest messages of a conversation, oldest first.

    ``complete`` means these are all the conversation's messages; ``lease`` as for a
    ``Put`` fill. Durable tiers ignore it.
    """

    conversation_id: str
    messages: tuple[MessageRecord, ...]
    complete: bool
    lease: str | None = None


WriteOp: TypeAlias = (
    Put | Delete | ClearHistory | ClaimConversation | PurgeUser | FillRecord | FillAbsent
    | FillWindow
)
Fill: TypeAlias = FillRecord | FillAbsent | FillWindow
Change: TypeAlias = Put | Delete | ClearHistory | ClaimConversation | PurgeUser


_FILLS: Final = frozenset({FillRecord, FillAbsent, FillWindow})


def is_fill(op: WriteOp) -> TypeIs[Fill]:
    """Whether ``op`` only copies what a lower tier holds (a cache fill), changing nothing."""
    return type(op) in _FILLS


def op_key(op: WriteOp) -> Key | tuple[str, str]:
    """The coalescing key of an op: later ops on the same key supersede earlier ones."""
    if isinstance(op, (Put, Delete, FillRecord, FillAbsent)):
        return op.key
    if isinstance(op, PurgeUser):
        return ("purge", op.user_id)
    return ("conversation", op.conversation_id)


def coalesce(ops: Iterable[WriteOp]) -> list[WriteOp]:
    """Keep the last op per key, in the order of each key's last write.

    Ops that touch many keys (clear, claim, purge, fills) are barriers: nothing is
    coalesced across them, so their effect on earlier puts is preserved.
    """
    out: list[WriteOp] = []
    segment: dict[Key, WriteOp] = {}
    for op in ops:
        if isinstance(op, (Put, Delete)):
            segment.pop(op.key, None)
            segment[op.key] = op
            continue
        out.extend(segment.values())
        segment.clear()
        out.append(op)
    out.extend(segment.values())
    return out


def puts_of(ops: Sequence[WriteOp], ns: Namespace) -> list[Put]:
    """The puts of one namespace, in order."""
    return [op for op in ops if isinstance(op, Put) and op.key.ns == ns]
