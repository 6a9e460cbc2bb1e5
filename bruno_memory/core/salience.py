"""How much a memory matters now: an explainable score in [0, 1] (pure).

``score = Σ wᵢ·partᵢ / Σ wᵢ`` over the parts present (relevance only when there is a
query), each part in [0, 1]:

- **relevance**: how well the memory answers the query, given by the caller from its rank
  in the retrieval's order (``retrieve_memories``: ``1 / (1 + rank / 2)``; the context
  builder: ``1 / (1 + rank / 3)``), since fused scores compare within one list only.
- **importance**: 1 for a pinned memory (``custom_fields["pinned"] = True``), else
  ``(1 - emotion_share)·metadata.importance + emotion_share·emotion``, ``emotion`` being
  VADER's |compound| of the content (strongly charged statements weigh more).
- **recency**: ``decay ** hours`` since the memory was last updated or recalled; the
  default ``decay = 0.995`` per hour is Generative Agents' (a half-life of ~5.8 days).
- **strength**: MemoryBank's retention ``exp(-t / S)``, ``t`` the days since the last
  recall (or creation) and ``S = 1 + recalls`` days: each recall slows forgetting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import lifetimes
from bruno_memory.core.records import timestamp_key

__all__ = ["DEFAULT_WEIGHTS", "Salience", "Weights", "salience"]


@dataclass(frozen=True, slots=True)
class Weights:
    """The parts' weights and the decay constants (see the module doc)."""

    relevance: float = 0.5
    importance: float = 0.3
    recency: float = 0.15
    strength: float = 0.05
    decay_per_hour: float = 0.995
    emotion_share: float = 0.3
    strength_unit_hours: float = 24.0

    @property
    def half_life_hours(self) -> float:
        if self.decay_per_hour >= 1:
            return math.inf
        return math.log(0.5) / math.log(self.decay_per_hour)


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True, slots=True)
class Salience:
    """A score and its parts, for ranking and ``explain``."""

    score: float
    relevance: float | None
    importance: float
    recency: float
    strength: float
    pinned: bool
    emotion: float
    hours_since: float
    recalls: int

    def explain(self) -> str:
        rel = "" if self.relevance is None else f"relevance {self.relevance:.2f}, "
        imp = "pinned" if self.pinned else f"emotion {self.emotion:.2f}"
        return (
            f"{rel}importance {self.importance:.2f} ({imp}), recency {self.recency:.2f} "
            f"({self.hours_since:.0f}h), strength {self.strength:.2f} ({self.recalls} recalls)"
        )


def salience(
    e: MemoryEntry,
    now: datetime | float,
    weights: Weights = DEFAULT_WEIGHTS,
    *,
    relevance: float | None = None,
    emotion: float | None = None,
) -> Salience:
    """Score ``e`` at ``now`` (a datetime, or seconds since the epoch: what a caller scoring
    many memories converts once); ``emotion`` defaults to the one cached in its metadata."""
    w = weights
    at = timestamp_key(now) if isinstance(now, datetime) else float(now)
    accessed = timestamp_key(e.last_accessed)
    hours = max(at - max(timestamp_key(e.updated_at), accessed), 0.0) / 3600.0
    recency = w.decay_per_hour**hours
    md = e.metadata
    recalls = md.access_count
    since_recall = max(at - accessed, 0.0) / 3600.0
    strength = math.exp(-since_recall / (w.strength_unit_hours * (1 + recalls)))
    custom = md.custom_fields
    if emotion is None:
        cached = custom.get(lifetimes.EMOTION)
        emotion = float(cached) if _number(cached) else 0.0
    feeling = min(max(emotion, 0.0), 1.0)
    pinned = custom.get(lifetimes.PINNED) is True  # lifetimes.is_pinned
    importance = (1.0 if pinned
                  else (1 - w.emotion_share) * float(md.importance) + w.emotion_share * feeling)
    total = w.importance + w.recency + w.strength
    weighted = w.importance * importance + w.recency * recency + w.strength * strength
    if relevance is not None:
        total += w.relevance
        weighted += w.relevance * min(max(relevance, 0.0), 1.0)
    score = weighted / total if total > 0 else 0.0
    return Salience(score, relevance, importance, recency, strength, pinned, feeling, hours,
                    recalls)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
