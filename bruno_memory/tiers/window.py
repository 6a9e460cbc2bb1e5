"""A cached message window: the newest messages of a conversation (pure, shared by caches)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from bruno_memory.core.archived import is_archived
from bruno_memory.core.ops import MISS, Miss
from bruno_memory.core.records import MessageRecord


@dataclass(frozen=True, slots=True)
class Window:
    """Oldest first. ``complete``: these are all the conversation's messages."""

    messages: tuple[MessageRecord, ...]
    complete: bool

    def trimmed(self, size: int) -> Window:
        """Keep the newest ``size``; a trimmed window is no longer complete."""
        if len(self.messages) <= size:
            return self
        return Window(self.messages[-size:], False)


def serve(window: Window, limit: int | None) -> Sequence[MessageRecord] | Miss:
    """The newest ``limit`` messages if the window holds them all, else a miss."""
    held = window.messages
    if limit is None:
        return held if window.complete else MISS
    if len(held) >= limit:
        return held[len(held) - limit :]
    return held if window.complete else MISS


def merge_into(window: Window, rec: MessageRecord, size: int) -> Window | None:
    """The window after storing ``rec``; ``None`` if it can no longer be trusted (an
    archived message leaves it: the window refills from the durable tier without it)."""
    if is_archived(rec):
        return None
    held = window.messages
    for i, old in enumerate(held):
        if old.id == rec.id:
            if old.sort_key != rec.sort_key:
                return None
            return Window((*held[:i], rec, *held[i + 1 :]), window.complete)
    if not held or rec.sort_key >= held[-1].sort_key:  # the usual case: the newest message
        return Window((*held, rec), window.complete).trimmed(size)
    at = bisect.bisect_right([m.sort_key for m in held], rec.sort_key)
    if at == 0 and held and not window.complete:
        return window  # older than everything held: not among the newest
    return Window((*held[:at], rec, *held[at:]), window.complete).trimmed(size)
