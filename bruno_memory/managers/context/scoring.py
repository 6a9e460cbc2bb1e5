"""Scores of ranked candidates (pure but for the cached emotional signal).

- A past message found by ``search_messages`` gets ``1 / (1 + rank / 10)`` (rank 0 is the
  best): the facade returns a ranking, not comparable scores, and the head of a hybrid
  ranking (which already lends rank to a hit's neighbouring turns) is nearly flat.
- A memory gets its salience (``bruno_memory.core.salience``, the score
  ``retrieve_memories`` ranks by): relevance ``1 / (1 + rank / 3)`` in the order
  ``retrieve_memories(query_text=...)`` gave (left out with no query), importance (pinned:
  1; else the stated importance with VADER's emotional charge), recency (0.995 per hour
  by default) and strength (MemoryBank's ``exp(-t/S)``, S growing with each recall).
"""

from __future__ import annotations

from datetime import datetime

from bruno_core.models import MemoryEntry

from bruno_memory.core import lifetimes
from bruno_memory.core.salience import DEFAULT_WEIGHTS, Salience, Weights, salience
from bruno_memory.providers import emotion

__all__ = ["memory_salience", "memory_score", "search_score"]


def search_score(rank: int) -> float:
    return 1.0 / (1.0 + rank / 10.0)


def memory_salience(
    rank: int | None, entry: MemoryEntry, now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> Salience:
    """The memory's salience at ``now`` with relevance from its ``rank`` (``None``: no
    query). Emotion: the one in its metadata, else VADER's (cached per text)."""
    relevance = None if rank is None else 1.0 / (1.0 + rank / 3.0)
    felt = None
    if lifetimes.EMOTION not in entry.metadata.custom_fields and emotion.available():
        felt = emotion.charge(entry.content)
    return salience(entry, now, weights, relevance=relevance, emotion=felt)


def memory_score(
    rank: int | None, entry: MemoryEntry, now: datetime, weights: Weights = DEFAULT_WEIGHTS
) -> float:
    return memory_salience(rank, entry, now, weights).score
