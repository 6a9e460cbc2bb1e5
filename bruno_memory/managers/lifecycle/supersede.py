"""Adding a memory through dedup: a new one is stored, a duplicate is merged into the one
it repeats, an update supersedes the one it replaces. Nothing is ever deleted.

::

    from bruno_memory.managers.lifecycle import add_memory

    outcome = await add_memory(memory, entry)      # Outcome(verdict, kept, superseded)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any, Protocol

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import lifetimes as lt
from bruno_memory.core.queries import every
from bruno_memory.core.summaries import SUMMARY_CATEGORY
from bruno_memory.managers.lifecycle.dedup import Index, Match, Thresholds, Verdict, content_hash

__all__ = ["Judge", "Outcome", "add_memory", "current_memories", "load_index"]

INTERNAL = lt.INTERNAL


class Judge(Protocol):
    """Decides an uncertain match (``consolidate.LLMJudge``)."""

    async def __call__(self, new: str, match: Match) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``add_memory`` did: ``kept`` is the memory that now holds the fact (the new one,
    or the existing one a duplicate was merged into); ``superseded`` the one it replaced."""

    verdict: Verdict
    kept: MemoryEntry
    superseded: MemoryEntry | None = None
    stage: str = "none"
    similarity: float = 0.0


def is_current(e: MemoryEntry, now: datetime) -> bool:
    """Neither superseded, archived, expired, bookkeeping nor a summary."""
    if e.metadata.category in (INTERNAL, SUMMARY_CATEGORY) or lt.is_superseded(e) or (
        lt.is_archived(e)
    ):
        return False
    return e.expires_at is None or lt.aware(e.expires_at) > now


async def all_memories(memory: Any, user_id: str) -> list[MemoryEntry]:
    """Every stored memory of the user (current or not), through ``scan``."""
    held = every(partial(memory.scan, "memory", user_id=user_id, limit=500))
    return [e async for e in held if isinstance(e, MemoryEntry)]


async def current_memories(memory: Any, user_id: str, now: datetime) -> list[MemoryEntry]:
    return [e for e in await all_memories(memory, user_id) if is_current(e, now)]


async def load_index(
    memory: Any, user_id: str, thresholds: Thresholds | None = None,
    now: datetime | None = None,
) -> Index:
    """The user's current memories, indexed for dedup (MinHashes built off the loop)."""
    when = now or datetime.now(timezone.utc)
    entries = await current_memories(memory, user_id, when)

    def build() -> Index:
        index = Index(thresholds or Thresholds())
        for e in entries:
            index.add(e)
        return index

    return await asyncio.to_thread(build)


Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


async def add_memory(
    memory: Any,
    entry: MemoryEntry,
    *,
    index: Index | None = None,
    judge: Judge | None = None,
    embed: Embed | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Add ``entry`` for its user unless it repeats a current memory.

    Args:
        memory: the ``MemoryStack``.
        index: the user's indexed memories (``load_index``; loaded when ``None``), kept up
            to date with what this call adds or supersedes.
        judge: decides uncertain matches (e.g. ``LLMJudge``); without one the stages do.
        embed: texts -> vectors, for the cosine stage (``entry.metadata.embedding`` is
            used when set); existing memories need ``metadata.embedding`` for it.
        now: the instant of the change (default: now).
    """
    when = lt.aware(now or datetime.now(timezone.utc))
    if index is None:
        index = await load_index(memory, entry.user_id, now=when)
    vector = entry.metadata.embedding
    if vector is None and embed is not None:
        vector = (await embed([entry.content]))[0]
    match = await asyncio.to_thread(index.match, entry.content, vector)
    verdict = match.verdict
    if judge is not None and match.uncertain and match.existing is not None:
        verdict = await judge(entry.content, match)
    if verdict == "duplicate" and match.existing is not None:
        merged = _merged(match.existing, entry, when)
        await memory.store_memory(merged)
        index.forget(match.existing)
        index.add(merged)
        return Outcome("duplicate", merged, None, match.stage, match.similarity)
    added = _stamped(entry, when, match.existing if verdict == "update" else None)
    if vector is not None and added.metadata.embedding is None:
        added.metadata.embedding = list(vector)  # for later cosine stages
    await memory.store_memory(added)  # the new one first: the fact is never missing
    index.add(added)
    if verdict == "update" and match.existing is not None:
        old = lt.ended(match.existing, when, {
            lt.VALID_TO: lt.iso(when), lt.SUPERSEDED_BY: str(added.id),
        })
        await memory.store_memory(old)
        index.forget(match.existing)
        return Outcome("update", added, old, match.stage, match.similarity)
    return Outcome("new", added, None, match.stage, match.similarity)


def _stamped(entry: MemoryEntry, when: datetime, replaces: MemoryEntry | None) -> MemoryEntry:
    out = entry.model_copy(deep=True)
    custom = out.metadata.custom_fields
    custom.setdefault(lt.VALID_FROM, lt.iso(when))
    custom[lt.CONTENT_HASH] = content_hash(entry.content)
    if replaces is not None:
        custom[lt.SUPERSEDES] = str(replaces.id)
    return out


def _merged(existing: MemoryEntry, dup: MemoryEntry, when: datetime) -> MemoryEntry:
    """``existing`` with what the duplicate adds: its sources, tags, the higher importance
    and confidence, one more merge; its content and id unchanged."""
    out = existing.model_copy(deep=True)
    md, new = out.metadata, dup.metadata
    md.tags = _union(md.tags, new.tags)
    md.importance = max(md.importance, new.importance)
    md.confidence = max(md.confidence, new.confidence)
    custom = md.custom_fields
    sources = _union(custom.get(lt.SOURCES) or [], new.custom_fields.get(lt.SOURCES) or [])
    if sources:
        custom[lt.SOURCES] = sources
    custom[lt.MERGED] = int(custom.get(lt.MERGED) or 0) + 1
    if new.custom_fields.get(lt.PINNED) is True:
        custom[lt.PINNED] = True
    out.updated_at = when
    return out


def _union(a: Sequence[Any], b: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys([*a, *b]))

