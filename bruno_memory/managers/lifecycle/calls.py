"""The lifecycle's LLM calls through any bruno-llm ``LLMInterface``: prompt templates users
can override, token use and cost recorded with bruno-llm's ``CostTracker``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bruno_core.interfaces.llm import LLMInterface
from bruno_core.models.message import Message, MessageRole
from bruno_llm.base.cost_tracker import CostTracker

from bruno_memory.core.logs import get_logger
from bruno_memory.managers.lifecycle.dedup import Match, Verdict

__all__ = ["EXTRACT_PROMPT", "JUDGE_PROMPT", "LLMCalls", "LLMJudge", "parse_facts"]

log = get_logger(__name__)

EXTRACT_PROMPT = (
    "You extract long-term memories about the user from a conversation: stable facts and "
    "preferences worth remembering in later conversations. Answer with a JSON array only; "
    'each item: {{"content": "<one short statement about the user>", "kind": "fact" or '
    '"preference", "importance": <0 to 1>, "sources": [<numbers of the messages it comes '
    'from>]}}. Answer [] if there is nothing to remember.\n\nConversation:\n{transcript}'
)
"""``{transcript}``: the numbered messages (``[3] user: ...``)."""
JUDGE_PROMPT = (
    "A memory store already holds: \"{existing}\". A new statement arrives: \"{new}\". "
    "Answer with one word: DUPLICATE if it says the same thing, UPDATE if it replaces a value "
    "or changes the old statement (the old one is then no longer true), NEW if both can be "
    "true at once."
)
"""``{existing}``, ``{new}``: the two statements."""


@dataclass
class LLMCalls:
    """An LLM with its templates and a ``CostTracker`` of every call made through it."""

    llm: LLMInterface
    model: str = "default"
    pricing: dict[str, dict[str, float]] = field(default_factory=dict)
    tracker: CostTracker | None = None

    def __post_init__(self) -> None:
        if self.tracker is None:
            info = self.llm.get_model_info() or {}
            self.model = str(info.get("name") or self.model)
            self.tracker = CostTracker(
                str(info.get("provider") or "llm"),
                self.pricing or {self.model: {"input": 0.0, "output": 0.0}},
            )

    async def ask(self, prompt: str, purpose: str) -> str:
        """One call; its tokens and cost recorded."""
        answer: str = await self.llm.generate([Message(role=MessageRole.USER, content=prompt)],
                                         temperature=0.0)
        assert self.tracker is not None
        self.tracker.track_request(
            self.model, self.llm.get_token_count(prompt), self.llm.get_token_count(answer),
            {"purpose": purpose},
        )
        return answer


_ARRAY = re.compile(r"\[.*\]", re.DOTALL)


def parse_facts(answer: str, count: int) -> list[dict[str, Any]] | None:
    """The extracted items of an answer (``None``: not a JSON array of them); source
    numbers outside ``1..count`` are dropped."""
    found = _ARRAY.search(answer)
    try:
        items = json.loads(found.group(0)) if found else None
    except ValueError:
        items = None
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("content") or "").strip():
            continue
        sources = [s for s in item.get("sources") or [] if isinstance(s, int) and 1 <= s <= count]
        importance = item.get("importance")
        out.append({
            "content": str(item["content"]).strip(),
            "kind": "preference" if item.get("kind") == "preference" else "fact",
            "importance": min(max(float(importance), 0.0), 1.0)
            if isinstance(importance, (int, float)) else None,
            "sources": sources,
        })
    return out


class LLMJudge:
    """The last dedup stage: asks the LLM whether a statement repeats, updates or adds to
    the memory it resembles; an answer it cannot read keeps the earlier stages' verdict."""

    def __init__(self, calls: LLMCalls, template: str = JUDGE_PROMPT) -> None:
        self.calls = calls
        self.template = template

    async def __call__(self, new: str, match: Match) -> Verdict:
        assert match.existing is not None
        prompt = self.template.format(existing=match.existing.content, new=new)
        answer = (await self.calls.ask(prompt, "dedup")).strip().upper()
        for word, verdict in (("DUPLICATE", "duplicate"), ("UPDATE", "update"), ("NEW", "new")):
            if word in answer:
                return verdict  # type: ignore[return-value]
        log.warning("llm judge answer unreadable", answer=answer[:80])
        return match.verdict
