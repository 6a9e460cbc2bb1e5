"""Scores of ranked candidates (pure).

- A past message found by ``search_messages`` gets ``1 / (1 + rank / 10)`` (rank 0 is the
  best): the facade returns a ranking, not comparable scores, and the head of a hybrid
  ranking (which already lends rank to a hit's neighbouring turns) is nearly flat.
- A memory gets ``0.6 relevance + 0.25 importance + 0.15 recency``: relevance
  ``1 / (1 + rank / 3)`` in the order ``retrieve_memories(query_text=...)`` gave (0 with
  no query), importance from its metadata, recency ``0.5 ** (age / half_life)`` of its
  last update (30 days by default).
"""

from __future__ import annotations

from datetime import datetime, timezone

from bruno_core.models import MemoryEntry

__all__ = ["memory_score", "search_score"]

HALF_LIFE_DAYS = 30.0


def search_score(rank: int) -> float:
    return 1.0 / (1.0 + rank / 10.0)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def memory_score(
    rank: int | None, entry: MemoryEntry, now: datetime, half_life_days: float = HALF_LIFE_DAYS
) -> float:
    relevance = 0.0 if rank is None else 1.0 / (1.0 + rank / 3.0)
    age = max((_aware(now) - _aware(entry.updated_at)).total_seconds(), 0.0) / 86400.0
    recency = 0.5 ** (age / half_life_days) if half_life_days > 0 else 1.0
    return 0.6 * relevance + 0.25 * float(entry.metadata.importance) + 0.15 * recency
