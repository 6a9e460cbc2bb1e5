"""A branch's lineage: which conversations' messages, up to where, come before its own
(pure).

A branch (a conversation forked at a message of another) copies nothing: it records, in
its session's metadata, the parts of history it shares, oldest first, each a conversation
and the position (ts, seq) of the last message taken from it. Its messages are those
parts, in order, then its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bruno_memory.core.cursors import MessagePosition

__all__ = ["KEY", "Lineage", "Part"]

KEY = "bruno_memory.branch"
"""The session metadata key holding a branch's lineage."""


@dataclass(frozen=True, slots=True)
class Part:
    """Messages of ``conversation_id`` up to and including ``message_id``, at ``through``."""

    conversation_id: str
    message_id: str
    through: MessagePosition


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a branch comes from: forked from ``parent`` at message ``at``; ``prefix`` is
    the history it shares, oldest part first (the last part is ``parent``'s)."""

    prefix: tuple[Part, ...]

    @property
    def parent(self) -> str:
        return self.prefix[-1].conversation_id

    @property
    def at(self) -> str:
        return self.prefix[-1].message_id

    def fork(self, part: int, conversation_id: str, message_id: str,
             at: MessagePosition) -> Lineage:
        """The lineage of a branch of this one's conversation forked at a message of its
        part ``part`` (``len(prefix)``: its own messages)."""
        return Lineage((*self.prefix[:part], Part(conversation_id, message_id, at)))

    def metadata(self) -> dict[str, Any]:
        """As stored in the branch's session metadata."""
        return {KEY: [[p.conversation_id, p.message_id, *p.through] for p in self.prefix]}

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> Lineage | None:
        """The lineage a session's metadata holds (``None``: none, or not one we wrote)."""
        raw = metadata.get(KEY)
        if not isinstance(raw, list) or not raw:
            return None
        parts = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 4):
                return None
            conversation_id, message_id, ts, seq = item
            if not (isinstance(conversation_id, str) and isinstance(message_id, str)
                    and isinstance(ts, (int, float)) and not isinstance(ts, bool)
                    and type(seq) is int):
                return None
            parts.append(Part(conversation_id, message_id, (float(ts), seq)))
        return cls(tuple(parts))


ROOT = Lineage(())
"""The lineage of a conversation that is no branch (its own messages only)."""
