"""``analyze``: growth, conversation patterns, topics, tier performance and LLM cost of a
store, read a page at a time through the façade's ``scan`` (memory bounded by the number
of users, days and conversations, never by the number of records)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import guards
from bruno_memory.core.queries import ScanKind
from bruno_memory.core.records import MessageRecord
from bruno_memory.managers.analytics.cost import Tracker, llm_cost
from bruno_memory.managers.analytics.performance import tier_performance
from bruno_memory.managers.analytics.tally import Growth, Patterns
from bruno_memory.managers.analytics.topics import PERIODS, Period, TextSample, keywords
from bruno_memory.stack.facade import MemoryStack

Progress = Callable[[int], None]
"""Told how many more records were read (a progress bar's ``update``)."""


@dataclass(frozen=True)
class Options:
    """What ``analyze`` computes.

    Args:
        period: topics per ``day``, ``week`` or ``month`` (UTC).
        top_users: topics for this many users, those with the most messages (a report
            for one user: hers).
        keywords: keywords per user and period; periods: the latest periods per user.
        sample_chars: text per user and period the keywords are drawn from (its start).
        topics: ``False`` skips the keywords (no ``yake`` needed).
        page: records per ``scan`` page.
        concurrency: ``get_statistics`` calls (response times, one per user) at once.
    """

    period: Period = "month"
    top_users: int = 10
    keywords: int = 10
    periods: int = 6
    sample_chars: int = 30_000
    topics: bool = True
    page: int = 1000
    concurrency: int = 4


@dataclass
class _Pass:
    """What one pass over the store counts, a record at a time."""

    growth: Growth = field(default_factory=Growth)
    patterns: Patterns = field(default_factory=Patterns)
    per_user: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)
    memories_by_type: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)

    def message(self, record: MessageRecord) -> None:
        self.growth.message(record)
        self.patterns.message(record)
        self.conversations.add(record.conversation_id)
        if record.user_id:
            self.per_user[record.user_id] += 1
            self.users.add(record.user_id)

    def session(self, session: SessionContext) -> None:
        self.patterns.session(session)
        self.users.add(session.user_id)

    def memory(self, entry: MemoryEntry) -> None:
        self.growth.memory(entry)
        self.memories_by_type[getattr(entry.memory_type, "value", entry.memory_type)] += 1
        self.users.add(entry.user_id)


async def analyze(
    memory: MemoryStack,
    *,
    user_id: str | None = None,
    cost: Iterable[Tracker] = (),
    options: Options = Options(),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A JSON-ready report of the whole store, or of ``user_id``'s part of it.

    Keys: ``scope``, ``generated_at``, ``totals``, ``growth`` (``daily`` and ``by_user``:
    messages by timestamp, memories by creation, per UTC day), ``patterns`` (turns per
    session, session seconds, active hours, response times), ``topics`` (user -> period ->
    keywords), ``tiers`` (``analytics.tier_performance``) and ``cost`` (from the
    bruno-llm ``CostTracker``s passed, ``None`` without one).
    """
    if user_id is not None:
        guards.identifier(user_id, "user_id")
    guards.choice(options.period, "period", PERIODS)
    seen = await _count(memory, user_id, options.page, progress)
    responses = await _responses(memory, sorted(seen.users), options.concurrency)
    topics: dict[str, Any] = {}
    if options.topics:
        chosen = [user_id] if user_id else [u for u, _ in seen.per_user.most_common(
            options.top_users)]
        for user in chosen:
            topics[user] = await _topics(memory, user, options)
    trackers = list(cost)
    return {
        "scope": {"user_id": user_id},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "totals": {"messages": seen.totals["messages"], "sessions": seen.totals["sessions"],
                   "memories": seen.totals["memories"], "users": len(seen.users),
                   "conversations": len(seen.conversations),
                   "memories_by_type": dict(sorted(seen.memories_by_type.items()))},
        "growth": {"daily": seen.growth.daily(), "by_user": seen.growth.rows()},
        "patterns": {**seen.patterns.report(), "responses": responses},
        "topics": topics,
        "tiers": tier_performance(await memory.health()),
        "cost": llm_cost(trackers) if trackers else None,
    }


async def pages(
    memory: MemoryStack, kind: ScanKind, user_id: str | None, page: int
) -> AsyncIterator[list[Any]]:
    """Every record of ``kind`` (only ``user_id``'s when given), a page at a time."""
    after: str | None = None
    while True:
        found = await memory.scan(kind, user_id=user_id, after=after, limit=page)
        if found.items:
            yield found.items
        if found.next is None:
            return
        after = found.next


async def _count(
    memory: MemoryStack, user_id: str | None, page: int, progress: Progress | None
) -> _Pass:
    seen = _Pass()
    if user_id is not None:
        seen.users.add(user_id)
    kinds: list[tuple[ScanKind, str, Callable[[Any], None]]] = [
        ("message", "messages", seen.message), ("session", "sessions", seen.session),
        ("memory", "memories", seen.memory)]
    for kind, total, count in kinds:
        async for items in pages(memory, kind, user_id, page):
            for item in items:
                count(item)
            seen.totals[total] += len(items)
            _tell(progress, len(items))
    return seen


def _tell(progress: Progress | None, n: int) -> None:
    if progress is not None:
        progress(n)


async def _responses(memory: MemoryStack, users: list[str], concurrency: int) -> dict[str, Any]:
    """Replies right after a user turn (``get_statistics``), over every user: how many,
    their mean and longest delay in seconds, and the user turns."""
    gate = asyncio.Semaphore(max(concurrency, 1))

    async def one(user: str) -> dict[str, Any]:
        async with gate:
            return await memory.get_statistics(user)

    found = await asyncio.gather(*(one(u) for u in users))
    responses = sum(s.get("responses", 0) for s in found)
    waited = sum(s.get("responses", 0) * (s.get("mean_response_seconds") or 0) for s in found)
    longest = [s["max_response_seconds"] for s in found if s.get("max_response_seconds")]
    return {
        "turns": sum(s.get("turns", 0) for s in found),
        "responses": responses,
        "mean_seconds": round(waited / responses, 3) if responses else None,
        "max_seconds": max(longest) if longest else None,
    }


async def _topics(memory: MemoryStack, user_id: str, options: Options) -> dict[str, Any]:
    sample = TextSample(options.period, options.sample_chars)
    async for items in pages(memory, "message", user_id, options.page):
        for record in items:
            sample.add(record)
    return await keywords(sample, options.keywords, options.periods)
