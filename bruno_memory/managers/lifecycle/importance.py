"""Importance and decay of memories: the score (``core.salience``), pinning, and the
emotional signal cached in each memory's metadata.

::

    from bruno_memory.managers.lifecycle import importance

    s = await importance.score(entry)         # Salience(score, importance, recency, ...)
    s.explain()                               # "importance 0.85 (emotion 0.83), recency ..."
    await importance.pin(memory, memory_id)   # maximal importance, never pruned
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import lifetimes as lt
from bruno_memory.core.errors import NotFound
from bruno_memory.core.salience import DEFAULT_WEIGHTS, Salience, Weights, salience
from bruno_memory.providers import emotion

__all__ = ["Salience", "Weights", "pin", "score", "scores", "unpin"]


async def scores(
    entries: Sequence[MemoryEntry],
    now: datetime | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    relevance: Sequence[float | None] | None = None,
) -> list[Salience]:
    """The score of each entry at ``now``; emotion computed (off the loop) where the
    metadata holds none and ``vaderSentiment`` is installed."""
    when = now or datetime.now(timezone.utc)
    missing = [e.content for e in entries if lt.EMOTION not in e.metadata.custom_fields]
    felt: dict[str, float] = {}
    if missing and emotion.available():
        felt = dict(zip(missing, await asyncio.to_thread(emotion.charges, missing), strict=True))
    rel = list(relevance) if relevance is not None else [None] * len(entries)
    return [
        salience(e, when, weights, relevance=r, emotion=felt.get(e.content))
        for e, r in zip(entries, rel, strict=True)
    ]


async def score(entry: MemoryEntry, now: datetime | None = None,
                weights: Weights = DEFAULT_WEIGHTS) -> Salience:
    return (await scores([entry], now, weights))[0]


async def pin(memory: Any, memory_id: str) -> MemoryEntry:
    """Pin a memory: maximal importance, never pruned."""
    return await _set_pin(memory, memory_id, True)


async def unpin(memory: Any, memory_id: str) -> MemoryEntry:
    return await _set_pin(memory, memory_id, False)


async def _set_pin(memory: Any, memory_id: str, pinned: bool) -> MemoryEntry:
    found = await memory.get_memory(memory_id)
    if not isinstance(found, MemoryEntry):
        raise NotFound(f"no memory {memory_id!r} to pin or unpin")
    out = found.model_copy(deep=True)
    if pinned:
        out.metadata.custom_fields[lt.PINNED] = True
    else:
        out.metadata.custom_fields.pop(lt.PINNED, None)
    await memory.store_memory(out)
    return out
