"""Counting as records stream by (pure): growth per day and user, conversation patterns.

Each tally holds aggregates only (counts per day, user, conversation, hour), never the
records, so a scan of any size runs in memory bounded by the number of those keys.
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.records import MessageRecord


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC (a naive one is taken as UTC)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def day_of(instant: datetime) -> str:
    """The UTC day of ``instant``, ``YYYY-MM-DD``."""
    return utc(instant).date().isoformat()


@functools.lru_cache(maxsize=4096)
def day_of_epoch(day: int) -> str:
    """``YYYY-MM-DD`` of the ``day``-th day since 1970-01-01 (UTC)."""
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass
class Growth:
    """Messages (by timestamp) and memories (by ``created_at``) per UTC day and user."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    memories: Counter[tuple[str, str]] = field(default_factory=Counter)

    def message(self, record: MessageRecord) -> None:
        day = day_of_epoch(int(record.sort_key // 86400))  # sort_key: epoch seconds, UTC
        self.messages[(day, record.user_id or "")] += 1

    def memory(self, entry: MemoryEntry) -> None:
        self.memories[(day_of(entry.created_at), entry.user_id)] += 1

    def rows(self) -> list[dict[str, Any]]:
        """One row per (day, user): ``messages`` and ``memories``; ``""`` is no owner."""
        keys = sorted(set(self.messages) | set(self.memories))
        return [
            {"day": d, "user_id": u, "messages": self.messages[(d, u)],
             "memories": self.memories[(d, u)]}
            for d, u in keys
        ]

    def daily(self) -> list[dict[str, Any]]:
        """Every user together, one row per day from the first to the last (gaps zero)."""
        per: dict[str, list[int]] = {}
        for (d, _), n in self.messages.items():
            per.setdefault(d, [0, 0])[0] += n
        for (d, _), n in self.memories.items():
            per.setdefault(d, [0, 0])[1] += n
        if not per:
            return []
        first, last = date.fromisoformat(min(per)), date.fromisoformat(max(per))
        days = [date.fromordinal(o).isoformat() for o in range(first.toordinal(),
                                                              last.toordinal() + 1)]
        return [{"day": d, "messages": per.get(d, [0, 0])[0],
                 "memories": per.get(d, [0, 0])[1]} for d in days]


@dataclass
class Patterns:
    """Turns and span of each conversation, and the hours messages are written at."""

    turns: Counter[str] = field(default_factory=Counter)  # user messages per conversation
    spans: dict[str, list[float]] = field(default_factory=dict)  # first, last message
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    sessions: int = 0
    active_sessions: int = 0

    def message(self, record: MessageRecord) -> None:
        self.hours[int(record.sort_key % 86400 // 3600)] += 1
        role = getattr(record.message.role, "value", record.message.role)
        self.turns[record.conversation_id] += role == "user"
        span = self.spans.get(record.conversation_id)
        at = record.sort_key
        if span is None:
            self.spans[record.conversation_id] = [at, at]
        else:
            span[0], span[1] = min(span[0], at), max(span[1], at)

    def session(self, session: SessionContext) -> None:
        self.sessions += 1
        self.active_sessions += bool(session.is_active)

    def report(self) -> dict[str, Any]:
        """Distributions over conversations: ``turns_per_session`` (its user messages;
        the sessions resuming one conversation count together) and ``session_seconds``
        (from its first message to its last); ``active_hours``: messages per UTC hour."""
        return {
            "sessions": self.sessions,
            "active_sessions": self.active_sessions,
            "turns_per_session": summary(self.turns.values()),
            "session_seconds": summary(last - first for first, last in self.spans.values()),
            "active_hours": list(self.hours),
        }


def summary(values: Iterable[float]) -> dict[str, Any]:
    """Count, mean, median, p90 and max of ``values``, and a histogram of ten bins."""
    data = sorted(values)
    if not data:
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None,
                "histogram": []}
    return {
        "count": len(data),
        "mean": round(statistics.fmean(data), 3),
        "median": round(statistics.median(data), 3),
        "p90": round(data[min(len(data) - 1, int(0.9 * len(data)))], 3),
        "max": round(data[-1], 3),
        "histogram": histogram(data),
    }


def histogram(data: list[float], bins: int = 10) -> list[dict[str, float]]:
    """``bins`` equal-width bins from the least to the greatest of ``data`` (sorted)."""
    low, high = data[0], data[-1]
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in data:
        counts[min(int((value - low) / width), bins - 1)] += 1
    return [{"from": round(low + i * width, 3), "to": round(low + (i + 1) * width, 3),
             "count": n} for i, n in enumerate(counts)]
