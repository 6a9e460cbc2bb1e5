"""bruno-core models <-> the immutable records tiers hold (pure).

Tiers never hand out the objects they hold: every model leaving the
library is a fresh copy, so a caller mutating it never changes a cache.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from bruno_core.models.message import Message
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message with what the store adds: its conversation and owner."""

    message: Message
    conversation_id: str
    user_id: str | None

    @property
    def id(self) -> str:
        return str(self.message.id)

    @property
    def sort_key(self) -> float:
        """Chronological position; naive timestamps are taken as UTC."""
        return timestamp_key(self.message.timestamp)


def timestamp_key(ts: datetime) -> float:
    """Seconds since the epoch, naive datetimes read as UTC (bruno-core uses ``utcnow``)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return (ts - _EPOCH).total_seconds()


def fresh(model: M) -> M:
    """A copy safe to hand out: nested containers are not shared."""
    out = model.model_copy()
    for name, value in model.__dict__.items():
        if isinstance(value, (dict, list, BaseModel)) and value:
            object.__setattr__(out, name, _deep(value))
        elif isinstance(value, (dict, list)):
            object.__setattr__(out, name, type(value)())
    return out


def _deep(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return fresh(value)
    return copy.deepcopy(value)


def message_record(message: Message, conversation_id: str, user_id: str | None) -> MessageRecord:
    """Take in a caller's message: copy it and pin its conversation."""
    held = fresh(message)
    if held.conversation_id is None:
        held.conversation_id = conversation_id
    return MessageRecord(held, conversation_id, user_id)


def message_out(record: MessageRecord) -> Message:
    """A caller's copy of a stored message."""
    return fresh(record.message)
