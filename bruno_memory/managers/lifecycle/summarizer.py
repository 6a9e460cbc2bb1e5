"""The summarizer plug: turns segments (messages or summaries) into summaries.

Two implementations: :class:`~.extractive.ExtractiveSummarizer` (offline, no LLM) and
:class:`~.llm.LLMSummarizer` (any bruno-llm ``LLMInterface``). A summarizer gets a batch
of segments at once, so it can spread the work (the LLM one runs calls concurrently, the
extractive one does the whole batch in one worker thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Passage", "Segment", "Summarizer", "Summary"]


@dataclass(frozen=True, slots=True)
class Passage:
    """One source of a summary: a message (``speaker``: its role or name) or a summary."""

    id: str
    text: str
    speaker: str = ""

    def line(self) -> str:
        return f"{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass(frozen=True, slots=True)
class Segment:
    """What one summary covers; ``level`` 0 is messages, higher levels are summaries."""

    passages: tuple[Passage, ...]
    level: int = 0


@dataclass(frozen=True, slots=True)
class Summary:
    """A summarizer's answer for one segment, with what it cost."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    source_ids: tuple[str, ...] = ()  # the passages it drew on (extractive: those picked)


@runtime_checkable
class Summarizer(Protocol):
    """Summarises segments; one ``Summary`` per segment, in order."""

    model: str

    async def summarize(self, segments: Sequence[Segment]) -> list[Summary]:
        """The summaries of ``segments``."""
        ...
