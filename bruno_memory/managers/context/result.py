"""What a build returns: the messages, their cost, and why each one is in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bruno_core.models import Message

from bruno_memory.managers.context.budget import Section

__all__ = ["BuiltContext", "ContextItem"]


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One entry of the context.

    Attributes:
        section: the section it belongs to.
        id: the message id in ``BuiltContext.messages``; for a memory, the memory's id
            (memories share one rendered message).
        role: the role it is given to the LLM with.
        score: its relevance score when ranked (search, memories), else ``None``.
        tokens: what it costs by the builder's counter (a memory: its line).
        reason: why it is in, in words.
    """

    section: Section
    id: str
    role: str
    score: float | None
    tokens: int
    reason: str


@dataclass(frozen=True, slots=True)
class BuiltContext:
    """A built context.

    Attributes:
        messages: the LLM's input, in order (copies; retrieved and recent messages are the
            stored messages, id and content unchanged).
        tokens: what ``messages`` cost by the builder's counter.
        max_tokens: the budget it was built for.
        query: the query relevance was judged against (``None``: nothing to search with).
        items: one entry per message or memory, in the order of ``messages``.
        notes: decisions taken for the whole build (shares lent, sections skipped).
    """

    messages: list[Message]
    tokens: int
    max_tokens: int
    query: str | None
    items: tuple[ContextItem, ...]
    notes: tuple[str, ...] = field(default=())

    def sections(self) -> dict[str, int]:
        """Tokens spent per section."""
        out: dict[str, int] = {}
        for item in self.items:
            out[item.section] = out.get(item.section, 0) + item.tokens
        return out

    def explain(self) -> str:
        """A table, one line per item: section, score, tokens, id and why it is in."""
        lines = [
            f"context: {self.tokens}/{self.max_tokens} tokens, {len(self.messages)} messages, "
            f"query {self.query!r}",
            *(f"note: {n}" for n in self.notes),
            f"{'section':<9} {'score':>6} {'tokens':>6}  {'role':<9} {'id':<36}  why",
        ]
        for it in self.items:
            score = "" if it.score is None else f"{it.score:.3f}"
            lines.append(
                f"{it.section:<9} {score:>6} {it.tokens:>6}  {it.role:<9} {it.id:<36}  {it.reason}"
            )
        return "\n".join(lines)

    def as_dicts(self) -> list[dict[str, Any]]:
        """The items as plain dicts (for JSON logs)."""
        return [
            {
                "section": i.section,
                "id": i.id,
                "role": i.role,
                "score": i.score,
                "tokens": i.tokens,
                "reason": i.reason,
            }
            for i in self.items
        ]
