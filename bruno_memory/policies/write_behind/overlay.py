"""Pending writes laid over a tier's answers: read-your-writes for write-behind (pure).

Each function takes what the tier answered and the pending ops that may change it,
oldest first, and returns what the tier will answer once they are applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bruno_core.models.message import MessageRole

from bruno_memory.core.archived import is_archived
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    ClaimConversation,
    ClearHistory,
    Delete,
    Key,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord


def owner(value: Any) -> str | None:
    """The user a record belongs to."""
    return getattr(value, "user_id", None)


def hidden_by(op: WriteOp, value: Any) -> bool:
    """Whether a barrier op (clear, purge) removes ``value``."""
    if isinstance(op, PurgeUser):
        return owner(value) == op.user_id
    if isinstance(op, ClearHistory) and isinstance(value, MessageRecord):
        system = value.message.role == MessageRole.SYSTEM
        return value.conversation_id == op.conversation_id and not (op.keep_system and system)
    return False


def claimed(op: ClaimConversation, record: MessageRecord) -> MessageRecord:
    """``record`` as it is once ``op`` re-owned its conversation."""
    if record.conversation_id != op.conversation_id or record.user_id == op.user_id:
        return record
    return MessageRecord(record.message, record.conversation_id, op.user_id)


def erases(op: WriteOp, held: WriteOp) -> bool:
    """Whether erasing ``op`` (a delete, clear or purge) removes what ``held`` (a queued or
    dead-lettered write) would store: such a write must not outlive the erasure."""
    if not isinstance(held, Put):
        return isinstance(op, PurgeUser) and isinstance(held, ClaimConversation) and (
            held.user_id == op.user_id)
    if isinstance(op, Delete):
        return op.key == held.key
    return hidden_by(op, held.value)


def value_after(key: Key, found: Any, ops: Sequence[WriteOp]) -> Any:
    """The answer for ``key`` (a record, ``EMPTY`` or ``MISS``) after ``ops``."""
    for op in ops:
        if isinstance(op, Put) and _same(op.key, key, op.value):
            found = op.value
        elif isinstance(op, Delete) and op.key == key:
            found = EMPTY
        elif isinstance(op, ClaimConversation) and isinstance(found, MessageRecord):
            found = claimed(op, found)
        elif found is not MISS and found is not EMPTY and hidden_by(op, found):
            found = EMPTY
    return found


def _same(put_key: Key, key: Key, value: Any) -> bool:
    if put_key == key:
        return True
    return key.ns == "conversation" and getattr(value, "conversation_id", None) == key.id


def window_after(
    conversation_id: str, held: Sequence[MessageRecord], ops: Sequence[WriteOp]
) -> list[MessageRecord]:
    """A conversation's messages (oldest first) after ``ops``."""
    by_id = {r.id: r for r in held}
    for op in ops:
        if isinstance(op, Put) and isinstance(op.value, MessageRecord):
            by_id.pop(op.value.id, None)
            if op.value.conversation_id == conversation_id and not is_archived(op.value):
                by_id[op.value.id] = op.value  # an archived message leaves the window
        elif isinstance(op, Delete) and op.key.ns == "message":
            by_id.pop(op.key.id, None)
        elif isinstance(op, ClaimConversation) and op.conversation_id == conversation_id:
            by_id = {i: claimed(op, r) for i, r in by_id.items()}
        elif isinstance(op, (ClearHistory, PurgeUser)):
            by_id = {i: r for i, r in by_id.items() if not hidden_by(op, r)}
    return sorted(by_id.values(), key=lambda r: r.sort_key)  # stable: ties keep store order


def newest(records: list[MessageRecord], limit: int | None) -> list[MessageRecord]:
    """The newest ``limit`` of chronological ``records`` (all for ``None``)."""
    return records if limit is None or len(records) <= limit else records[len(records) - limit :]
