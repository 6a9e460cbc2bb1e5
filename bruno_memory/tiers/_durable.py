"""What the SQL tiers share beyond SQL text: write ops -> statements, rows -> records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bruno_core.models.context import SessionContext, UserContext

from bruno_memory import codec
from bruno_memory.ops import ClearHistory, Delete, FillWindow, Key, Put, PurgeUser, Value, WriteOp
from bruno_memory.records import MessageRecord
from bruno_memory.tiers import _sql

Statement = tuple[str, list[tuple[Any, ...]]]

_UPSERT = {
    "message": _sql.upsert("messages", _sql.MESSAGE_COLUMNS, "id"),
    "session": _sql.upsert("sessions", _sql.SESSION_COLUMNS, "session_id"),
    "user": _sql.upsert("users", _sql.USER_COLUMNS, "user_id"),
    "memory": _sql.upsert("memories", _sql.MEMORY_COLUMNS, "id"),
}
_DELETE = {
    "message": "DELETE FROM messages WHERE id = ?",
    "session": "DELETE FROM sessions WHERE session_id = ?",
    "conversation": "DELETE FROM sessions WHERE conversation_id = ?",
    "user": "DELETE FROM users WHERE user_id = ?",
    "memory": "DELETE FROM memories WHERE id = ?",
}
CLEAR_ALL = "DELETE FROM messages WHERE conversation_id = ?"
CLEAR_KEEP_SYSTEM = "DELETE FROM messages WHERE conversation_id = ? AND role <> 'system'"
PURGE = [
    "DELETE FROM messages WHERE user_id = ? OR conversation_id IN "
    "(SELECT conversation_id FROM sessions WHERE user_id = ?)",
    "DELETE FROM sessions WHERE user_id = ?",
    "DELETE FROM memories WHERE user_id = ?",
    "DELETE FROM users WHERE user_id = ?",
]
_PURGE_ARITY = [2, 1, 1, 1]


def plan(ops: Sequence[WriteOp], tags: Any) -> list[Statement]:
    """Statements for ``ops``, consecutive ones with the same SQL batched together.

    Args:
        ops: the writes, in order.
        tags: turns a tag list into the driver's parameter (JSON text or an array).
    """
    out: list[Statement] = []
    for sql, row in _rows(ops, tags):
        if out and out[-1][0] == sql:
            out[-1][1].append(row)
        else:
            out.append((sql, [row]))
    return out


def _rows(ops: Sequence[WriteOp], tags: Any) -> Any:
    for op in ops:
        if isinstance(op, Put):
            yield _UPSERT[op.key.ns], (*_row(op.value, tags), op.version)
        elif isinstance(op, Delete):
            yield _DELETE[op.key.ns], (op.key.id,)
        elif isinstance(op, ClearHistory):
            yield (CLEAR_KEEP_SYSTEM if op.keep_system else CLEAR_ALL), (op.conversation_id,)
        elif isinstance(op, PurgeUser):
            for sql, arity in zip(PURGE, _PURGE_ARITY):
                yield sql, (op.user_id,) * arity
        elif not isinstance(op, FillWindow):
            raise TypeError(f"unknown write op {op!r}")


def _row(value: Value, tags: Any) -> tuple[Any, ...]:
    if isinstance(value, MessageRecord):
        return codec.message_row(value)
    if isinstance(value, SessionContext):
        return codec.session_row(value)
    if isinstance(value, UserContext):
        return codec.user_row(value)
    row = codec.memory_row(value)
    return (*row[:5], tags(row[5]), *row[6:])


class DurableWrites:
    """Mixin: ``write`` plans statements and hands them to the tier's ``_run``."""

    async def _run(self, statements: Sequence[Statement]) -> None:
        raise NotImplementedError

    def _tags_param(self, tags: list[str]) -> Any:
        raise NotImplementedError

    async def write(self, ops: Sequence[WriteOp]) -> None:
        statements = plan(ops, self._tags_param)
        if statements:
            await self._run(statements)

    @staticmethod
    def _decode_row(key: Key, row: Sequence[Any]) -> Value:
        if key.ns == "message":
            conversation_id, user_id, text = row
            return codec.message_from_row(text, conversation_id, user_id)
        value: Value = codec.from_payload(key.ns, row[0])
        return value
