"""Archival: old, summarised messages leave the hot path and stay in the durable tier.

An archived message carries ``metadata["bruno_archived"]`` (``core.archived``): windows and
default search leave it out, caches drop it, and it stays exportable, searchable on request
and restorable with :func:`unarchive`. Only messages a summary already covers are archived
(the context keeps their summary), never the newest ``keep_recent`` of a conversation.
Nothing is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.message import Message

from bruno_memory.config.lifecycle import ArchiveConfig
from bruno_memory.core.archived import ARCHIVED, is_archived
from bruno_memory.core.records import timestamp_key
from bruno_memory.managers.lifecycle.reading import EPOCH, conversations, messages_after
from bruno_memory.managers.lifecycle.reading import summaries_of as _summaries_of
from bruno_memory.managers.lifecycle.records import info_of
from bruno_memory.managers.lifecycle.step import StepReport

__all__ = ["ArchiveStep", "archive", "unarchive"]

CHUNK = 200


class ArchiveStep:
    """Archives a user's summarised messages older than ``after`` (a ``Step``)."""

    name = "archive"

    def __init__(
        self, config: ArchiveConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or ArchiveConfig()
        self.clock = clock

    def __repr__(self) -> str:
        return f"ArchiveStep(after={self.config.after:g}s, keep_recent={self.config.keep_recent})"

    async def run(self, memory: Any, user_id: str, *, dry_run: bool = False) -> StepReport:
        """Archive (``dry_run``: only report) what is due for ``user_id``."""
        report = StepReport(self.name, user_id, dry_run)
        covered = {i for e in await _summaries_of(memory, user_id) if info_of(e).level == 0
                   for i in info_of(e).source_ids}
        cutoff = self.clock() - self.config.after
        async for session in conversations(memory, user_id):
            history = await messages_after(memory, session.conversation_id, EPOCH, set())
            keep = self.config.keep_recent
            older = history[: len(history) - keep] if keep else history
            due = [m for m in older if str(m.id) in covered and not is_archived(m)
                   and timestamp_key(m.timestamp) < cutoff]
            for m in due:
                report.details.append({"id": str(m.id), "action": "archive",
                                       "why": "summarised and older than the archive age"})
            report.archived += len(due)
            if due and not dry_run:
                await archive(memory, session.conversation_id, due)
        return report


async def archive(memory: Any, conversation_id: str, messages: Iterable[Message]) -> int:
    """Mark ``messages`` of a conversation archived; returns how many changed."""
    when = datetime.now(timezone.utc).isoformat()
    return await _mark(memory, conversation_id, messages, lambda md: {**md, ARCHIVED: when})


async def unarchive(
    memory: Any, conversation_id: str, ids: Iterable[str] | None = None
) -> int:
    """Bring archived messages of a conversation back (all of them, or ``ids``)."""
    wanted = None if ids is None else set(ids)
    history = await messages_after(memory, conversation_id, EPOCH, set())
    chosen = [m for m in history if is_archived(m) and (wanted is None or str(m.id) in wanted)]
    return await _mark(memory, conversation_id, chosen,
                       lambda md: {k: v for k, v in md.items() if k != ARCHIVED})


async def _mark(
    memory: Any, conversation_id: str, messages: Iterable[Message],
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> int:
    changed = [m.model_copy(update={"metadata": change(dict(m.metadata))}) for m in messages]
    for at in range(0, len(changed), CHUNK):
        await memory.store_messages(changed[at : at + CHUNK], conversation_id)
    return len(changed)
