"""The ``summarize`` step: level-0 summaries of closed segments, summaries of summaries,
and a per-user summary; incremental and resumable.

Each conversation's cursor is the end of its newest level-0 summary (and the ids that
summary covers): a run reads only the messages after it, so a rerun with nothing new makes
no summarizer call. Summaries are written one by one, oldest first, each as soon as its
batch is summarised: a run cut short leaves a prefix, and the next run resumes after it.
A level ``k + 1`` summary is written for every ``fanout`` level-``k`` summaries of a
conversation that no higher summary covers yet; the per-user summary covers every
conversation's top summaries and is rewritten (as a new record) when they change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message

from bruno_memory.config.lifecycle import SummariesConfig
from bruno_memory.core.records import timestamp_key
from bruno_memory.managers.lifecycle.reading import EPOCH, conversations, messages_after
from bruno_memory.managers.lifecycle.reading import summaries_of as _summaries_of
from bruno_memory.managers.lifecycle.records import (
    USER_LEVEL,
    SummaryInfo,
    info_of,
    iso,
    summary_entry,
    summary_id,
)
from bruno_memory.managers.lifecycle.segments import closed_segments
from bruno_memory.managers.lifecycle.step import StepReport
from bruno_memory.managers.lifecycle.summarizer import Passage, Segment, Summarizer, Summary

__all__ = ["SummarizeStep"]


class SummarizeStep:
    """Writes the summaries a user's conversations are due (a ``Step``).

    Args:
        summarizer: an ``ExtractiveSummarizer``, an ``LLMSummarizer`` or your own.
        config: segments, triggers and hierarchy (the YAML ``lifecycle.summaries``).
        count: tokens of a text (default: the context builder's counter).
        clock: wall-clock seconds (the ``age`` trigger).
    """

    name = "summarize"

    def __init__(
        self,
        summarizer: Summarizer,
        config: SummariesConfig | None = None,
        *,
        count: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if count is None:
            from bruno_memory.managers.context.tokens import default_counter

            count = default_counter().count_tokens
        self.summarizer = summarizer
        self.config = config or SummariesConfig()
        self.count = count
        self.clock = clock

    def __repr__(self) -> str:
        return f"SummarizeStep({self.summarizer!r})"

    async def run(self, memory: Any, user_id: str, *, dry_run: bool = False) -> StepReport:
        """Summarise what is due for ``user_id`` (``dry_run``: only report it)."""
        report = StepReport(self.name, user_id, dry_run)
        held = await _summaries_of(memory, user_id)
        async for session in conversations(memory, user_id):
            conversation = session.conversation_id
            mine = [e for e in held if info_of(e).conversation_id == conversation]
            added = await self._segments(memory, user_id, session.is_active, conversation,
                                         mine, report)
            held.extend(added)
            mine.extend(added)
            held.extend(await self._levels(memory, user_id, conversation, mine, report))
        if self.config.user_summary:
            await self._user(memory, user_id, held, report)
        return report

    async def _segments(
        self, memory: Any, user_id: str, active: bool, conversation: str,
        mine: list[MemoryEntry], report: StepReport,
    ) -> list[MemoryEntry]:
        level0 = [info_of(e) for e in mine if info_of(e).level == 0]
        covered = {i for info in level0 for i in info.source_ids}
        start = max((datetime.fromisoformat(i.end) for i in level0), default=EPOCH)
        tail = await messages_after(memory, conversation, start, covered)
        segments = closed_segments(
            tail, self.config, lambda m: self.count(m.content), now=self.clock(), ended=not active
        )
        return await self._write(
            memory, user_id, conversation, report,
            [(Segment(tuple(_passage(m) for m in seg)), _span(seg)) for seg in segments],
        )

    async def _levels(
        self, memory: Any, user_id: str, conversation: str, mine: list[MemoryEntry],
        report: StepReport,
    ) -> list[MemoryEntry]:
        added: list[MemoryEntry] = []
        level = 0
        fanout = self.config.fanout
        while True:
            at = [e for e in mine + added if info_of(e).level == level]
            if not at:
                return added
            above = {i for e in mine + added if info_of(e).level == level + 1
                     for i in info_of(e).source_ids}
            free = sorted((e for e in at if str(e.id) not in above), key=_start)
            groups = [free[i : i + fanout] for i in range(0, len(free) - fanout + 1, fanout)]
            added.extend(await self._write(
                memory, user_id, conversation, report,
                [(_of_summaries(g, level + 1), _summary_span(g)) for g in groups],
            ))
            level += 1

    async def _user(
        self, memory: Any, user_id: str, held: list[MemoryEntry], report: StepReport
    ) -> None:
        infos = {str(e.id): info_of(e) for e in held}
        parents = {i for info in infos.values() if info.level != USER_LEVEL
                   for i in info.source_ids}
        roots = sorted(
            (e for e in held
             if infos[str(e.id)].level != USER_LEVEL and str(e.id) not in parents),
            key=_start,
        )
        if not roots:
            return
        ids = [str(e.id) for e in roots]
        if str(summary_id(user_id, USER_LEVEL, ids)) in infos:
            return
        await self._write(memory, user_id, None, report,
                          [(_of_summaries(roots, USER_LEVEL), _summary_span(roots))])

    async def _write(
        self, memory: Any, user_id: str, conversation: str | None, report: StepReport,
        work: Sequence[tuple[Segment, tuple[str, str]]],
    ) -> list[MemoryEntry]:
        if report.dry_run:
            for segment, (start, end) in work:
                report.added += 1
                report.details.append(_detail(segment, conversation, start, end, "would add"))
            return []
        written: list[MemoryEntry] = []
        batch = self.config.batch
        for at in range(0, len(work), batch):
            chunk = work[at : at + batch]
            made = await self.summarizer.summarize([s for s, _ in chunk])
            for (segment, span), summary in zip(chunk, made, strict=True):
                entry = self._entry(user_id, conversation, segment, span, summary)
                await memory.store_memory(entry)
                written.append(entry)
                report.added += 1
                report.details.append(
                    _detail(segment, conversation, *span, "added", str(entry.id))
                )
        return written

    def _entry(
        self, user_id: str, conversation: str | None, segment: Segment,
        span: tuple[str, str], summary: Summary,
    ) -> MemoryEntry:
        source_tokens = sum(self.count(p.line()) for p in segment.passages)
        info = SummaryInfo(
            level=segment.level,
            source_ids=tuple(p.id for p in segment.passages),
            start=span[0],
            end=span[1],
            model=summary.model,
            input_tokens=summary.input_tokens,
            output_tokens=summary.output_tokens,
            conversation_id=conversation,
            source_tokens=source_tokens,
            extracted=summary.source_ids,
        )
        return summary_entry(user_id, summary.text, info, datetime.now(timezone.utc))


def _passage(m: Message) -> Passage:
    speaker = m.metadata.get("name") if isinstance(m.metadata.get("name"), str) else None
    return Passage(str(m.id), m.content, speaker or m.role.value)


def _span(messages: list[Message]) -> tuple[str, str]:
    return iso(messages[0].timestamp), iso(messages[-1].timestamp)


def _start(e: MemoryEntry) -> tuple[float, str]:
    return timestamp_key(datetime.fromisoformat(info_of(e).start)), str(e.id)


def _of_summaries(entries: Sequence[MemoryEntry], level: int) -> Segment:
    return Segment(tuple(Passage(str(e.id), e.content) for e in entries), level)


def _summary_span(entries: Sequence[MemoryEntry]) -> tuple[str, str]:
    infos = [info_of(e) for e in entries]
    start = min(infos, key=lambda i: datetime.fromisoformat(i.start)).start
    end = max(infos, key=lambda i: datetime.fromisoformat(i.end)).end
    return start, end


def _detail(
    segment: Segment, conversation: str | None, start: str, end: str, action: str,
    record: str | None = None,
) -> dict[str, Any]:
    return {"id": record, "action": action, "level": segment.level,
            "conversation_id": conversation, "sources": len(segment.passages),
            "start": start, "end": end,
            "why": "closed segment" if segment.level == 0 else "summaries to roll up"}
