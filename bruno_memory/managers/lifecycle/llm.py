"""A summarizer through any bruno-llm ``LLMInterface``, its token use kept in a ``CostTracker``.

Each segment is one call: the system prompt, then the user prompt with the segment's lines.
A segment whose prompt would exceed ``max_input_tokens`` is summarised in chunks first and
the chunks' summaries are then summarised together (map, then reduce). Calls run at most
``concurrency`` at a time. Prompts are ``string.Template`` texts users can replace
(``$lines``: the segment, one ``speaker: text`` per line; ``$kind``: "conversation" at
level 0, "summaries" above).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

from bruno_core.interfaces.llm import LLMInterface
from bruno_core.models.message import Message, MessageRole
from bruno_llm.base.cost_tracker import CostTracker

from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.lifecycle.summarizer import Passage, Segment, Summary

__all__ = ["LLMSummarizer", "Prompts"]


@dataclass(frozen=True, slots=True)
class Prompts:
    """The prompt templates (``string.Template``: ``$lines``, ``$kind``)."""

    system: str = (
        "You write faithful, compact summaries of a $kind for an assistant's long-term "
        "memory. Keep names, dates, numbers, decisions, preferences and open questions. "
        "Never invent anything."
    )
    user: str = "Summarise this $kind in a few sentences:\n\n$lines"

    def render(self, segment: Segment, lines: Sequence[str]) -> tuple[str, str]:
        kind = "conversation" if segment.level == 0 else "set of summaries"
        values = {"kind": kind, "lines": "\n".join(lines)}
        try:
            return Template(self.system).substitute(values), Template(self.user).substitute(values)
        except (KeyError, ValueError) as exc:
            raise InvalidInput(
                f"a summary prompt template is not valid ({exc}): use only $lines and $kind"
            ) from exc


class LLMSummarizer:
    """Abstractive summaries by an LLM.

    Args:
        llm: any bruno-llm provider (``LLMInterface``).
        prompts: the templates (default :class:`Prompts`).
        tracker: where token use and cost are recorded (default: a tracker with no prices).
        model: the model name recorded with each summary and usage record (default: the
            provider's ``get_model_info()["name"]``).
        max_input_tokens: the largest prompt sent in one call (by the provider's counter).
        max_output_tokens: passed to ``generate`` as ``max_tokens``.
        concurrency: calls in flight at once.
    """

    def __init__(
        self,
        llm: LLMInterface,
        *,
        prompts: Prompts | None = None,
        tracker: CostTracker | None = None,
        model: str | None = None,
        max_input_tokens: int = 6000,
        max_output_tokens: int = 300,
        concurrency: int = 4,
    ) -> None:
        if max_input_tokens < 100 or max_output_tokens < 1 or concurrency < 1:
            raise InvalidInput(
                "max_input_tokens must be at least 100, max_output_tokens and concurrency "
                f"at least 1 (got {max_input_tokens}, {max_output_tokens}, {concurrency})"
            )
        self.llm = llm
        self.prompts = prompts or Prompts()
        self.model = model or str(llm.get_model_info().get("name", "llm"))
        self.tracker = tracker or CostTracker(provider_name=self.model, pricing={})
        self.max_input_tokens = max_input_tokens
        self.max_output_tokens = max_output_tokens
        self._gate = asyncio.Semaphore(concurrency)

    def __repr__(self) -> str:
        return f"LLMSummarizer(model={self.model!r}, max_input_tokens={self.max_input_tokens})"

    async def summarize(self, segments: Sequence[Segment]) -> list[Summary]:
        """One summary per segment (calls run concurrently, ``concurrency`` at a time)."""
        return list(await asyncio.gather(*(self._segment(s) for s in segments)))

    async def _segment(self, segment: Segment, *, merged: bool = False) -> Summary:
        chunks = self._chunks(segment)
        if merged and len(chunks) > 1 and len(chunks) == len(segment.passages):
            share = self._room(segment) // len(chunks)  # no progress: shorten each part
            chunks = [[self._cut(p, share) for p in segment.passages]]
        if len(chunks) == 1:
            return await self._call(segment, chunks[0])
        parts = await asyncio.gather(*(self._call(segment, c) for c in chunks))
        joined = Segment(
            tuple(Passage(f"part-{i}", p.text) for i, p in enumerate(parts)), segment.level + 1
        )
        final = await self._segment(joined, merged=True)
        return Summary(
            final.text,
            self.model,
            final.input_tokens + sum(p.input_tokens for p in parts),
            final.output_tokens + sum(p.output_tokens for p in parts),
        )

    def _room(self, segment: Segment) -> int:
        """Tokens left for the lines once the templates are filled."""
        empty = self.prompts.render(segment, [])
        used: int = sum(self.llm.get_token_count(p) for p in empty)
        return max(1, self.max_input_tokens - used)

    def _cut(self, passage: Passage, tokens: int) -> Passage:
        """``passage`` shortened (by words) to about ``tokens`` tokens of its line."""
        cost = self.llm.get_token_count(passage.line()) + 1
        if cost <= tokens:
            return passage
        words = passage.text.split()
        keep = max(1, len(words) * max(1, tokens - 8) // cost)
        return Passage(passage.id, " ".join(words[:keep]), passage.speaker)

    def _chunks(self, segment: Segment) -> list[list[Passage]]:
        """The passages in runs whose prompt fits ``max_input_tokens``; a passage too long
        on its own is shortened to fit."""
        room = self._room(segment)
        chunks: list[list[Passage]] = [[]]
        used = 0
        for p in segment.passages:
            p = self._cut(p, room)
            cost = self.llm.get_token_count(p.line()) + 1
            if chunks[-1] and used + cost > room:
                chunks.append([])
                used = 0
            chunks[-1].append(p)
            used += cost
        return chunks

    async def _call(self, segment: Segment, passages: list[Passage]) -> Summary:
        system, user = self.prompts.render(segment, [p.line() for p in passages])
        messages = [
            Message(role=MessageRole.SYSTEM, content=system),
            Message(role=MessageRole.USER, content=user),
        ]
        async with self._gate:
            text = await self.llm.generate(messages, max_tokens=self.max_output_tokens)
        tokens_in = self.llm.get_token_count(system) + self.llm.get_token_count(user)
        tokens_out = self.llm.get_token_count(text)
        self.tracker.track_request(self.model, tokens_in, tokens_out, {"level": str(segment.level)})
        return Summary(text.strip(), self.model, tokens_in, tokens_out)
