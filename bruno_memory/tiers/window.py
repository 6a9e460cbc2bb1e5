"""A cached message window: the newest messages of a conversation (pure, shared by caches)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from bruno_memory.core.archived import is_archived
from bruno_memory.core.ops import MISS, Miss
from bruno_memory.core.records import MessageRecord

OVERHEAD = 200
"""Bytes a window holds beyond its records (the tuple and the object)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Oldest first. ``complete``: these are all the conversation's messages.

    Its footprint and its ids are computed once, then carried from window to window as a
    message is added (``merge_into``): storing a message costs no walk over the window.
    """

    messages: tuple[MessageRecord, ...]
    complete: bool
    _bytes: int = field(default=-1, compare=False, repr=False)
    _ids: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def footprint(self) -> int:
        """Bytes held: its records' footprints (``MessageRecord.footprint``) and ``OVERHEAD``."""
        size = self._bytes
        if size < 0:
            size = sum(r.footprint() for r in self.messages) + OVERHEAD
            object.__setattr__(self, "_bytes", size)
        return size

    def ids(self) -> tuple[str, ...]:
        """The ids of its messages, in order."""
        ids = self._ids
        if ids is None:
            ids = tuple(r.id for r in self.messages)
            object.__setattr__(self, "_ids", ids)
        return ids

    def trimmed(self, size: int) -> Window:
        """Keep the newest ``size``; a trimmed window is no longer complete."""
        held = self.messages
        if len(held) <= size:
            return self
        cut = len(held) - size
        weight = self._bytes
        if weight >= 0:
            weight -= sum(r.footprint() for r in held[:cut])
        ids = None if self._ids is None else self._ids[cut:]
        return Window(held[cut:], False, weight, ids)


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
    held, ids = window.messages, window.ids()
    weight = window._bytes
    if rec.id in ids:
        i = ids.index(rec.id)
        old = held[i]
        if old.sort_key != rec.sort_key:
            return None
        if weight >= 0:
            weight += rec.footprint() - old.footprint()
        return Window((*held[:i], rec, *held[i + 1 :]), window.complete, weight, ids)
    if weight >= 0:
        weight += rec.footprint()
    if not held or rec.sort_key >= held[-1].sort_key:  # the usual case: the newest message
        return Window((*held, rec), window.complete, weight, (*ids, rec.id)).trimmed(size)
    at = bisect.bisect_right([m.sort_key for m in held], rec.sort_key)
    if at == 0 and held and not window.complete:
        return window  # older than everything held: not among the newest
    merged = (*held[:at], rec, *held[at:])
    return Window(merged, window.complete, weight, (*ids[:at], rec.id, *ids[at:])).trimmed(size)
