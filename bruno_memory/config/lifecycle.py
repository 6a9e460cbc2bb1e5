"""The ``lifecycle:`` section: summaries, archival, the maintenance runner, and how memories
are ranked, recalled and pruned.

::

    lifecycle:
      summaries:
        summarizer: extractive        # or llm (the application passes its LLMInterface)
        segment: {by: session, gap: 30m}   # or {by: turns, turns: 40}, {by: tokens, tokens: 1500}
        tail_tokens: 1500             # triggers: an unsummarised tail above this many tokens,
        age: 1d                       # a tail older than this, a session that ended
      archive: {after: 30d, keep_recent: 50}
      context: true                   # get_context's summary section reads the summaries
      steps: [summarize, archive]     # also: consolidate (needs an LLM), prune
      interval: 1h                    # the in-process periodic runner (omit: none)
      importance: {relevance: 0.5, importance: 0.3, recency: 0.15, strength: 0.05,
                   decay_per_hour: 0.995}
      recalls: {interval: 30, max_pending: 10000}
      prune: {min_age_days: 30, min_score: 0.05, max_per_user: 5000}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bruno_memory.config.types import Duration, PositiveInt, Strict
from bruno_memory.core.salience import Weights

__all__ = [
    "ArchiveConfig",
    "ImportanceConfig",
    "LifecycleConfig",
    "PruneConfig",
    "RecallConfig",
    "SegmentConfig",
    "SummariesConfig",
]


class SegmentConfig(Strict):
    """Where one level-0 summary ends: a session (a pause longer than ``gap``), ``turns``
    messages or ``tokens`` tokens."""

    by: Literal["session", "turns", "tokens"] = "session"
    gap: Duration = 1800.0
    turns: PositiveInt = 40
    tokens: PositiveInt = 1500


class SummariesConfig(Strict):
    """How summaries are made and when (``tail_tokens``, ``age``, ``on_session_end``)."""

    summarizer: Literal["extractive", "llm"] = "extractive"
    ratio: float = Field(default=0.15, gt=0.0, le=1.0)  # extractive: share of the source
    max_tokens: PositiveInt = 128  # one summary's ceiling (fits a 2,048-token context's share)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    tail_tokens: PositiveInt = 1500
    age: Duration | None = 86400.0
    on_session_end: bool = True
    fanout: int = Field(default=8, ge=2)  # summaries per summary one level up
    user_summary: bool = True
    batch: PositiveInt = 16  # segments handed to the summarizer at once


class ArchiveConfig(Strict):
    """Which messages leave the hot path: summarised ones older than ``after``, past the
    newest ``keep_recent`` of their conversation."""

    after: Duration = 30 * 86400.0
    keep_recent: int = Field(default=50, ge=0)


class ImportanceConfig(Strict):
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


class RecallConfig(Strict):
    """Access counts of recalled memories: batched, written every ``interval`` seconds, when
    ``max_pending`` memories wait, on ``flush()`` and on close."""

    enabled: bool = True
    interval: float = Field(default=30.0, gt=0.0)
    max_pending: int = Field(default=10_000, ge=1)  # ~2 MB of counts at most


class PruneConfig(Strict):
    """What pruning takes (``managers.lifecycle.prune``): expired memories, memories scoring
    under ``min_score`` once older than ``min_age_days``, and the lowest-scoring past
    ``max_per_user``; archived (default) or, with ``mode: delete``, deleted. Pinned memories
    are never pruned."""

    expired: bool = True
    min_age_days: float = Field(default=30.0, ge=0.0)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    max_per_user: int | None = Field(default=None, ge=1)
    mode: Literal["archive", "delete"] = "archive"


class LifecycleConfig(Strict):
    """The ``lifecycle:`` section."""

    summaries: SummariesConfig = Field(default_factory=SummariesConfig)
    archive: ArchiveConfig | None = None  # None: nothing is archived
    context: bool = True  # the context builder's summary section reads these summaries
    # the runner's steps, in order: summarize, archive, consolidate (needs an LLM), prune
    steps: list[str] = Field(default_factory=lambda: ["summarize", "archive"])
    interval: Duration | None = None
    lease_ttl: Duration = 60.0
    importance: ImportanceConfig = Field(default_factory=ImportanceConfig)
    recalls: RecallConfig = Field(default_factory=RecallConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
