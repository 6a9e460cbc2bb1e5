"""Summaries as stored records: episodic memories marked in their metadata (pure).

A summary is a ``MemoryEntry`` of type ``episodic`` (what happened in a stretch of a
conversation is an episode) whose ``metadata.custom_fields["bruno_summary"]`` holds its
provenance:
the ids it summarises, its level (0: of messages, 1+: of summaries, ``USER_LEVEL``: the
per-user summary), the span of time it covers, the model and token counts. An existing
model needs no new record kind: every tier (LRU, Redis, SQL, vector) stores, exports,
purges and erases it with the user's other memories. Its category
(``core.summaries.SUMMARY_CATEGORY``) keeps it out of ``retrieve_memories`` unless asked
for, so summaries never crowd the facts a caller ranks. Its id is derived from what it summarises,
so a summary written twice (a crash between the write and the next one) is one record.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryType

from bruno_memory.core.summaries import SUMMARY_CATEGORY

__all__ = [
    "SUMMARY",
    "USER_LEVEL",
    "SummaryInfo",
    "info_of",
    "is_summary",
    "iso",
    "summary_entry",
    "summary_id",
]

SUMMARY = "bruno_summary"
"""The metadata key holding a summary's provenance."""
USER_LEVEL = 99
"""The level of the per-user summary (above every conversation's hierarchy)."""
_IDS = uuid.UUID("6f1b3c52-8a5e-4d1e-9f1e-2b7c0c1d5a10")


@dataclass(frozen=True, slots=True)
class SummaryInfo:
    """Provenance of a summary (``metadata["bruno_summary"]``)."""

    level: int
    source_ids: tuple[str, ...]
    start: str  # ISO 8601 instants of the first and last source
    end: str
    model: str
    input_tokens: int
    output_tokens: int
    conversation_id: str | None = None
    source_tokens: int = 0  # what the sources cost when read in full
    extracted: tuple[str, ...] = ()  # extractive: the sources its sentences come from

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["source_ids"] = list(self.source_ids)
        out["extracted"] = list(self.extracted)
        return out


def is_summary(entry: MemoryEntry) -> bool:
    """Whether a memory is a summary written by the lifecycle manager."""
    return isinstance(entry.metadata.custom_fields.get(SUMMARY), dict)


def info_of(entry: MemoryEntry) -> SummaryInfo:
    """The provenance of a summary memory."""
    raw = dict(entry.metadata.custom_fields[SUMMARY])
    raw["source_ids"] = tuple(raw.get("source_ids", ()))
    raw["extracted"] = tuple(raw.get("extracted", ()))
    return SummaryInfo(**raw)


def summary_id(user_id: str, level: int, source_ids: Sequence[str]) -> uuid.UUID:
    """The deterministic id of the summary of ``source_ids`` at ``level``."""
    return uuid.uuid5(_IDS, f"{user_id}\x00{level}\x00" + "\x00".join(source_ids))


def summary_entry(user_id: str, text: str, info: SummaryInfo, now: datetime) -> MemoryEntry:
    """The memory holding one summary; created at the end of its span (so the summaries of
    a conversation list in the order of what they cover), updated ``now``."""
    return MemoryEntry(
        id=summary_id(user_id, info.level, info.source_ids),
        content=text,
        memory_type=MemoryType.EPISODIC,
        user_id=user_id,
        conversation_id=info.conversation_id,
        metadata=MemoryMetadata(
            source="bruno-memory lifecycle",
            category=SUMMARY_CATEGORY,
            tags=["summary", f"level-{info.level}"],
            custom_fields={SUMMARY: info.to_json()},
        ),
        created_at=datetime.fromisoformat(info.end),
        updated_at=now,
    )


def iso(ts: datetime) -> str:
    """An aware ISO 8601 instant (naive datetimes are UTC, as bruno-core writes them)."""
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)).isoformat()
