"""The context builder's summary section, read from the lifecycle's summaries.

For a conversation, the provider gives one system message: the summaries of what came
before the recent window, newest first, as many as fit ``max_tokens`` (then shown oldest
first). It takes the highest level that covers a stretch without overlap: a level-1
summary instead of the level-0 ones it covers, until ``max_tokens`` would be exceeded.

Given the build's ``query`` it is question-aware: the lines of the session (level-0)
summaries (an extractive summary's line quotes one sentence) that hold at least
``min_relevance`` of the query's content words come first, most relevant per token first,
then the others, newest first, as many as fit. The builder asks such a provider last, for
only the budget the verbatim sections could not use
(``managers.context.summary``): on locomo-dev a summary in its fixed share cost evidence
recall (0.755 against 0.764 at 2,048 tokens), since every token it took was a search
hit's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.records import timestamp_key
from bruno_memory.managers.lifecycle.reading import FAR, summaries_of
from bruno_memory.managers.lifecycle.records import USER_LEVEL, info_of
from bruno_memory.stack.fusion import keyword_query

__all__ = ["StoredSummaries"]

HEADER = "Summary of the earlier conversation:"
_WORD = re.compile(r"\w+", re.UNICODE)


class StoredSummaries:
    """A ``SummaryProvider`` over the summaries the ``summarize`` step writes.

    Args:
        memory: the ``MemoryStack`` (its ``memories_between`` door).
        max_tokens: the most the summary message may cost (the builder's share still
            applies: a message over the share is left out).
        count: tokens of a text (default: the context builder's counter).
        min_relevance: with a query, the least share of its content words a summary must
            hold to be shown before the others.
    """

    def __init__(
        self,
        memory: Any,
        *,
        max_tokens: int = 200,
        count: Callable[[str], int] | None = None,
        min_relevance: float = 0.5,
    ) -> None:
        if count is None:
            from bruno_memory.managers.context.tokens import default_counter

            count = default_counter().count_tokens
        self.memory = memory
        self.max_tokens = max_tokens
        self.count = count
        self.min_relevance = min_relevance

    def __repr__(self) -> str:
        return f"StoredSummaries(max_tokens={self.max_tokens})"

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None,
        query: str | None = None, max_tokens: int | None = None,
    ) -> Message | None:
        """The summaries of ``conversation_id`` that end before ``before``, as one message
        of at most ``max_tokens`` (default: the provider's); with ``query``, the lines most
        relevant to it (see the module doc)."""
        size = self.max_tokens if max_tokens is None else min(max_tokens, self.max_tokens)
        end = FAR if before is None else before
        found = await summaries_of(self.memory, user_id, conversation_id=conversation_id,
                                   end=end if end.tzinfo is not None
                                   else end.replace(tzinfo=timezone.utc))
        usable = [e for e in found if info_of(e).level != USER_LEVEL]
        if query is not None and query.strip():
            lines = self._relevant(usable, query, size)
        else:
            chosen = self._fit(_tiling(usable), {str(e.id): e for e in usable}, size)
            lines = [(e, e.content) for e in chosen]
        if not lines:
            return None
        ids = list(dict.fromkeys(str(e.id) for e, _ in lines))
        key = ",".join(ids) if query is None else "|".join(text for _, text in lines)
        return Message(
            id=uuid5(NAMESPACE_URL, "bruno-summary:" + key),
            role=MessageRole.SYSTEM,
            content="\n".join([HEADER, *(_line(e, text) for e, text in lines)]),
            conversation_id=conversation_id,
            metadata={"bruno_summary_of": ids},
        )

    def _relevant(
        self, entries: list[MemoryEntry], query: str, size: int
    ) -> list[tuple[MemoryEntry, str]]:
        """Lines of the session summaries by relevance to ``query``: those holding
        ``min_relevance`` of its content words first, by share per token, then the others,
        newest first; as many as fit ``size``, shown in their order in time."""
        wanted = _words(keyword_query(query))
        ranked = []
        for e in entries:
            if info_of(e).level != 0:
                continue
            for i, text in enumerate(t for t in e.content.splitlines() if t.strip()):
                share = len(wanted & _words(text)) / max(len(wanted), 1)
                cost = self.count(_line(e, text)) + 1
                relevant = share >= self.min_relevance and share > 0
                order = -share / cost if relevant else 0.0
                ranked.append(((not relevant, order, -_start(e), i), cost, (e, text)))
        ranked.sort(key=lambda t: t[0])
        out: list[tuple[tuple[float, int], tuple[MemoryEntry, str]]] = []
        spent = self.count(HEADER)
        for (_, _, start, i), cost, line in ranked:
            if spent + cost <= size:
                out.append(((-start, i), line))
                spent += cost
        return [line for _, line in sorted(out, key=lambda t: t[0])]

    def _fit(
        self, tiles: list[MemoryEntry], by_id: dict[str, MemoryEntry], size: int
    ) -> list[MemoryEntry]:
        """The newest summaries whose lines fit ``max_tokens``, oldest first: a summary too
        long for what is left gives way to the summaries it covers."""
        out: list[MemoryEntry] = []
        spent = self.count(HEADER)
        stack = list(tiles)  # oldest first: pop() takes the newest
        while stack:
            e = stack.pop()
            cost = self.count(_line(e, e.content)) + 1
            if spent + cost <= size:
                out.append(e)
                spent += cost
                continue
            children = [by_id[i] for i in info_of(e).source_ids if i in by_id]
            if info_of(e).level == 0 or not children:
                break
            stack.extend(sorted(children, key=_start))
        return out[::-1]


def _tiling(entries: list[MemoryEntry]) -> list[MemoryEntry]:
    """Summaries covering the history without overlap, highest level first, oldest first."""
    covered: set[str] = set()
    for e in entries:
        if info_of(e).level > 0:
            covered.update(info_of(e).source_ids)
    tops = [e for e in entries if str(e.id) not in covered]
    return sorted(tops, key=_start)


def _start(e: MemoryEntry) -> float:
    return timestamp_key(datetime.fromisoformat(info_of(e).start))


def _line(e: MemoryEntry, text: str) -> str:
    return f"- ({_day(e)}) {text}"


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _day(e: MemoryEntry) -> str:
    return datetime.fromisoformat(info_of(e).start).strftime("%d %b %Y")
