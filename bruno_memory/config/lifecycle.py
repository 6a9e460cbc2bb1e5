"""The ``lifecycle:`` section: summaries, archival and the maintenance runner.

::

    lifecycle:
      summaries:
        summarizer: extractive        # or llm (the application passes its LLMInterface)
        segment: {by: session, gap: 30m}   # or {by: turns, turns: 40}, {by: tokens, tokens: 1500}
        tail_tokens: 1500             # triggers: an unsummarised tail above this many tokens,
        age: 1d                       # a tail older than this, a session that ended
      archive: {after: 30d, keep_recent: 50}
      context: true                   # get_context's summary section reads the summaries
      steps: [summarize, archive]
      interval: 1h                    # the in-process periodic runner (omit: none)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bruno_memory.config.types import Duration, PositiveInt, Strict

__all__ = ["ArchiveConfig", "LifecycleConfig", "SegmentConfig", "SummariesConfig"]


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


class LifecycleConfig(Strict):
    """The ``lifecycle:`` section."""

    summaries: SummariesConfig = Field(default_factory=SummariesConfig)
    archive: ArchiveConfig | None = None  # None: nothing is archived
    context: bool = True  # the context builder's summary section reads these summaries
    steps: list[str] = Field(default_factory=lambda: ["summarize", "archive"])
    interval: Duration | None = None
    lease_ttl: Duration = 60.0
