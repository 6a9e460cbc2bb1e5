"""The sections of a context and how the token budget is shared between them (pure).

A context is built from five sections, always in this order in the LLM's input:

================  ======================================================================
``pinned``        the system prompt and the items the application pins: never dropped;
                  if they alone exceed the budget the build fails (``InvalidInput``)
``summary``       a summary of the history older than the recent window, from a
                  pluggable :class:`~bruno_memory.managers.context.summary.SummaryProvider`
``memories``      relevant long-term memories, one system message
``search``        relevant past messages of the user, verbatim, oldest first
``recent``        the recent window: a chronological suffix of the conversation, ending
                  with the latest turn
================  ======================================================================

Budget: the pinned items take what they cost; the latest ``min_recent`` turns come next (as
many as fit); what is left is shared. Each of summary, memories, search and the rest of the
recent window gets its *share of what is left for it and the sections after it*, so a
section that uses less passes the rest on; what the last one leaves goes back to search
and memories.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["SECTIONS", "Ledger", "Section", "Shares", "split"]

Section = Literal["pinned", "summary", "memories", "search", "recent"]
SECTIONS: tuple[Section, ...] = ("pinned", "summary", "memories", "search", "recent")


@dataclass(frozen=True, slots=True)
class Shares:
    """Relative shares of the shared budget; any non-negative numbers (they are normalised
    over the sections still to be served)."""

    summary: float = 0.10
    memories: float = 0.15
    search: float = 0.50
    recent: float = 0.25

    def __post_init__(self) -> None:
        for name in ("summary", "memories", "search", "recent"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"share {name} must be a non-negative number, got {value!r}")

    def of(self, section: Section) -> float:
        return 0.0 if section == "pinned" else float(getattr(self, section))

    def lend(self, source: Section, target: Section, fraction: float) -> Shares:
        """``fraction`` of ``source``'s share moved to ``target``."""
        moved = self.of(source) * min(max(fraction, 0.0), 1.0)
        return replace(self, **{source: self.of(source) - moved, target: self.of(target) + moved})


def split(left: int, shares: Shares, section: Section, after: tuple[Section, ...]) -> int:
    """Tokens for ``section`` out of ``left``: its share among itself and ``after``."""
    mine = shares.of(section)
    total = mine + sum(shares.of(s) for s in after)
    if left <= 0 or mine <= 0:
        return 0
    return left if total <= 0 else int(left * mine / total)


class Ledger:
    """Tokens spent against one budget."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.spent = 0

    @property
    def left(self) -> int:
        return self.max_tokens - self.spent

    def take(self, tokens: int) -> None:
        self.spent += tokens

    def give_back(self, tokens: int) -> None:
        self.spent -= tokens
