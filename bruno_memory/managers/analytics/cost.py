"""LLM cost from bruno-llm ``CostTracker`` records (summaries, extraction, embeddings)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol


class Usage(Protocol):
    """What a bruno-llm ``UsageRecord`` holds that the report reads."""

    timestamp: float
    model: str
    input_tokens: int
    output_tokens: int
    total_cost: float
    metadata: dict[str, str]


class Tracker(Protocol):
    """A bruno-llm ``CostTracker`` (``usage_history``, ``currency``)."""

    usage_history: list[Any]
    currency: str


PURPOSE_KEYS = ("purpose", "task", "operation")
"""``metadata`` keys read, in order, for what a request was for (``summary``...)."""


def llm_cost(trackers: Iterable[Tracker]) -> dict[str, Any]:
    """Requests, tokens and cost in total, per model, per purpose and per UTC day."""
    total = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0}
    groups: dict[str, dict[str, dict[str, float]]] = {
        "by_model": defaultdict(_zero), "by_purpose": defaultdict(_zero),
        "by_day": defaultdict(_zero),
    }
    currencies: set[str] = set()
    for tracker in trackers:
        currencies.add(tracker.currency)
        for usage in tracker.usage_history:
            for bucket in (total, *(groups[g][k] for g, k in _keys(usage).items())):
                _add(bucket, usage)
    out: dict[str, Any] = {**total, "cost": round(total["cost"], 6)}
    out["currency"] = ", ".join(sorted(currencies)) or None
    for name, group in groups.items():
        out[name] = {k: {**v, "cost": round(v["cost"], 6)} for k, v in sorted(group.items())}
    return out


def _zero() -> dict[str, float]:
    return {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0}


def _keys(usage: Usage) -> dict[str, str]:
    metadata = usage.metadata or {}
    purpose = next((str(metadata[k]) for k in PURPOSE_KEYS if k in metadata), "other")
    day = datetime.fromtimestamp(usage.timestamp, timezone.utc).date().isoformat()
    return {"by_model": usage.model, "by_purpose": purpose, "by_day": day}


def _add(bucket: dict[str, Any], usage: Usage) -> None:
    bucket["requests"] += 1
    bucket["input_tokens"] += usage.input_tokens
    bucket["output_tokens"] += usage.output_tokens
    bucket["cost"] += usage.total_cost
