"""How sections become ``Message`` objects for the LLM.

- **pinned**: the system prompt is one ``system`` message; pinned items go in as given.
- **summary**: the provider's message, as given.
- **memories**: one ``system`` message, a header and one line per memory, most relevant
  first: ``- <content>`` (newlines folded to spaces). The message's id is derived from
  the memories' ids, so the same memories give the same id.
- **search** (relevant past messages): a short ``system`` header, then each message
  *verbatim*: the stored message's id, role, content, timestamp and metadata unchanged,
  oldest first, so evidence can be traced to the stored turn by id.
- **recent**: when past messages precede it, a short ``system`` line marks where the
  conversation resumes; then the window's messages verbatim, oldest first.

Headers are counted (by the same counter) against the section they introduce.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from bruno_core.models import MemoryEntry, Message, MessageRole

__all__ = [
    "MEMORIES_HEADER",
    "RECENT_HEADER",
    "SEARCH_HEADER",
    "header",
    "memories_message",
    "memory_line",
    "system_prompt",
]

_NS = uuid.UUID("6f2d3c1e-58a7-4c1b-9a55-0b7f3a9e2c11")

MEMORIES_HEADER = "What you remember about the user (most relevant first):"
SEARCH_HEADER = "Relevant earlier messages:"
RECENT_HEADER = "Latest turns:"


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NS, "\x1f".join(parts))


def system_prompt(text: str) -> Message:
    """The system prompt as a system message (its id derived from its text)."""
    return Message(role=MessageRole.SYSTEM, content=text, id=_id("system", text))


def header(text: str) -> Message:
    """A section header (a system message)."""
    return Message(role=MessageRole.SYSTEM, content=text, id=_id("header", text))


def memory_line(entry: MemoryEntry) -> str:
    """The line a memory takes in the memories message."""
    return "- " + " ".join(entry.content.split())


def memories_message(entries: Sequence[MemoryEntry]) -> Message:
    """One system message listing ``entries``, in the order given."""
    body = "\n".join([MEMORIES_HEADER, *(memory_line(e) for e in entries)])
    return Message(
        role=MessageRole.SYSTEM, content=body, id=_id("memories", *(str(e.id) for e in entries))
    )
