"""The ``lifecycle:`` section: how memories are ranked, recalled and pruned.

::

    lifecycle:
      importance: {relevance: 0.5, importance: 0.3, recency: 0.15, strength: 0.05,
                   decay_per_hour: 0.995}
      recalls: {interval: 30, max_pending: 1000}
      prune: {min_age_days: 30, min_score: 0.05, max_per_user: 5000}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bruno_memory.core.salience import Weights

__all__ = ["ImportanceConfig", "LifecycleConfig", "PruneConfig", "RecallConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImportanceConfig(_Strict):
    """Weights of a memory's score (``bruno_memory.core.salience``); any may be 0."""

    relevance: float = Field(default=0.5, ge=0.0)
    importance: float = Field(default=0.3, ge=0.0)
    recency: float = Field(default=0.15, ge=0.0)
    strength: float = Field(default=0.05, ge=0.0)
    decay_per_hour: float = Field(default=0.995, gt=0.0, le=1.0)  # recency per hour
    emotion_share: float = Field(default=0.3, ge=0.0, le=1.0)  # of importance, from VADER
    strength_unit_hours: float = Field(default=24.0, gt=0.0)  # MemoryBank's S unit (a day)

    @model_validator(mode="after")
    def _some_weight(self) -> ImportanceConfig:
        if self.relevance + self.importance + self.recency + self.strength <= 0:
            raise ValueError("at least one of relevance, importance, recency, strength > 0")
        return self

    def weights(self) -> Weights:
        return Weights(**self.model_dump())


class RecallConfig(_Strict):
    """Access counts of recalled memories: batched, written every ``interval`` seconds, when
    ``max_pending`` memories wait, on ``flush()`` and on close."""

    enabled: bool = True
    interval: float = Field(default=30.0, gt=0.0)
    max_pending: int = Field(default=1000, ge=1)


class PruneConfig(_Strict):
    """What pruning takes (``managers.lifecycle.prune``): expired memories, memories scoring
    under ``min_score`` once older than ``min_age_days``, and the lowest-scoring past
    ``max_per_user``; archived (default) or, with ``mode: delete``, deleted. Pinned memories
    are never pruned."""

    expired: bool = True
    min_age_days: float = Field(default=30.0, ge=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    max_per_user: int | None = Field(default=None, ge=1)
    mode: Literal["archive", "delete"] = "archive"


class LifecycleConfig(_Strict):
    """The ``lifecycle:`` section of a stack."""

    importance: ImportanceConfig = Field(default_factory=ImportanceConfig)
    recalls: RecallConfig = Field(default_factory=RecallConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
