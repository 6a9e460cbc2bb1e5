"""Consolidation: long-term memories extracted from conversations by an LLM, added
through staged dedup (``supersede.add_memory``), each with the ids of its source messages.

::

    step = Consolidate(LLMCalls(llm))          # a maintenance Step; also a plain API:
    report = await step.run(memory, "ada")     # or dry_run=True: what would be sent

Incremental: a cursor per conversation (the newest message consolidated) is kept in one
bookkeeping memory per user (category ``bruno.internal``, born expired: never retrieved,
counted or pruned), written after each batch, so a rerun with nothing new makes no LLM
call and a run cut short resumes after the last batch it finished.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core import lifetimes as lt
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.logs import get_logger
from bruno_memory.managers.lifecycle.calls import EXTRACT_PROMPT, LLMCalls, LLMJudge, parse_facts
from bruno_memory.managers.lifecycle.dedup import Index, Thresholds
from bruno_memory.managers.lifecycle.reading import conversations
from bruno_memory.managers.lifecycle.step import StepReport
from bruno_memory.managers.lifecycle.supersede import (
    INTERNAL,
    Embed,
    Judge,
    add_memory,
    load_index,
)

__all__ = ["Consolidate"]

log = get_logger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PAGE = 1000


@dataclass
class _Cursor:
    entry: MemoryEntry

    def of(self, conversation_id: str) -> tuple[datetime, set[str]]:
        held = self.entry.metadata.custom_fields.get("cursor", {}).get(conversation_id) or {}
        return lt.instant(held.get("ts")) or _EPOCH, set(held.get("ids") or [])

    def advance(self, conversation_id: str, batch: list[Message]) -> None:
        last = lt.aware(batch[-1].timestamp)
        ts, ids = self.of(conversation_id)
        same = {str(m.id) for m in batch if lt.aware(m.timestamp) == last}
        keep = ids | same if ts == last else same
        cursors = self.entry.metadata.custom_fields.setdefault("cursor", {})
        cursors[conversation_id] = {"ts": lt.iso(last), "ids": sorted(keep)}


class Consolidate:
    """Extract a user's long-term memories from her conversations (a maintenance step).

    Args:
        calls: the LLM, its pricing and cost tracker (``LLMCalls``).
        batch: messages per extraction call.
        template: the extraction prompt (``llm.EXTRACT_PROMPT``: ``{transcript}``).
        judge: ``True``: decide uncertain dedup matches with the LLM too (``LLMJudge``);
            or a judge of your own (e.g. ``LLMJudge(calls, template=...)``).
        thresholds: the dedup stages' thresholds.
        embed: texts -> vectors for the cosine stage.
    """

    name = "consolidate"

    def __init__(
        self,
        calls: LLMCalls,
        *,
        batch: int = 20,
        template: str = EXTRACT_PROMPT,
        judge: bool | Judge = False,
        thresholds: Thresholds | None = None,
        embed: Embed | None = None,
        clock: Any = None,
    ) -> None:
        if batch < 1:
            raise InvalidInput(f"batch must be a positive number of messages, got {batch!r}")
        if "{transcript}" not in template:
            raise InvalidInput("the extraction template needs a {transcript} placeholder")
        self.calls = calls
        self.batch = batch
        self.template = template
        self.judge: Judge | None = (
            LLMJudge(calls) if judge is True else None if judge is False else judge
        )
        self.thresholds = thresholds or Thresholds()
        self.embed = embed
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    async def run(self, memory: Any, user_id: str, *, dry_run: bool = False) -> StepReport:
        """Consolidate every conversation of ``user_id`` past its cursor."""
        report = StepReport(self.name, user_id, dry_run)
        cursor = await self._cursor(memory, user_id)
        index = await load_index(memory, user_id, self.thresholds, self.clock())
        async for session in conversations(memory, user_id):
            conversation = session.conversation_id
            for batch in await self._batches(memory, conversation, cursor):
                if dry_run:
                    report.details.append({"conversation_id": conversation, "action": "extract",
                                           "messages": [str(m.id) for m in batch]})
                    continue
                if not await self._extract(memory, user_id, conversation, batch, index, report):
                    break  # unreadable answer: the cursor stays, the next run retries
                cursor.advance(conversation, batch)
                await memory.store_memory(cursor.entry)
        return report

    async def _extract(
        self, memory: Any, user_id: str, conversation: str, batch: list[Message],
        index: Index, report: StepReport,
    ) -> bool:
        transcript = "\n".join(
            f"[{i}] {m.role.value}: {m.content}" for i, m in enumerate(batch, 1)
        )
        answer = await self.calls.ask(self.template.format(transcript=transcript), "extract")
        items = parse_facts(answer, len(batch))
        if items is None:
            log.warning("consolidation answer unreadable", conversation_id=conversation)
            report.details.append({"conversation_id": conversation, "action": "retry",
                                   "why": "the LLM's answer is not a JSON array"})
            return False
        for item in items:
            entry = _entry(item, user_id, conversation, batch)
            outcome = await add_memory(memory, entry, index=index, judge=self.judge,
                                       embed=self.embed, now=self.clock())
            if outcome.verdict == "duplicate":
                report.changed += 1
            else:
                report.added += 1
                report.changed += outcome.superseded is not None
            report.details.append({
                "id": str(outcome.kept.id), "action": outcome.verdict, "stage": outcome.stage,
                "content": outcome.kept.content,
                "superseded": None if outcome.superseded is None else str(outcome.superseded.id),
            })
        return True

    async def _batches(
        self, memory: Any, conversation: str, cursor: _Cursor
    ) -> list[list[Message]]:
        since, seen = cursor.of(conversation)
        end = self.clock() + timedelta(days=1)
        found: list[Message] = []
        while True:
            page = await memory.messages_between(since, end, conversation_id=conversation,
                                                 limit=_PAGE)
            found += page
            if len(page) < _PAGE:
                break
            since = lt.aware(page[-1].timestamp)
        fresh = list({m.id: m for m in found if str(m.id) not in seen
                      and m.role != MessageRole.SYSTEM}.values())
        return [fresh[i : i + self.batch] for i in range(0, len(fresh), self.batch)]

    async def _cursor(self, memory: Any, user_id: str) -> _Cursor:
        mid = uuid.uuid5(uuid.NAMESPACE_URL, f"bruno-memory:consolidation:{user_id}")
        found = await memory.get_memory(str(mid))
        if isinstance(found, MemoryEntry):
            return _Cursor(found)
        return _Cursor(MemoryEntry(
            id=mid, content="bruno-memory consolidation cursor", user_id=user_id,
            memory_type=MemoryType.PROCEDURAL, expires_at=_EPOCH,
            metadata=MemoryMetadata(source="bruno-memory", category=INTERNAL,
                                    custom_fields={"cursor": {}}),
        ))


def _entry(item: dict[str, Any], user_id: str, conversation: str,
           batch: list[Message]) -> MemoryEntry:
    sources = [str(batch[i - 1].id) for i in item["sources"]]
    md = MemoryMetadata(source="consolidation", category=item["kind"],
                        custom_fields={lt.SOURCES: sources})
    if item["importance"] is not None:
        md.importance = item["importance"]
    kind = MemoryType.LONG_TERM if item["kind"] == "preference" else MemoryType.FACT
    return MemoryEntry(content=item["content"], memory_type=kind, user_id=user_id,
                       conversation_id=conversation, metadata=md)
