"""Topics: keywords per user and period, extracted offline by YAKE off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bruno_memory.core.errors import MissingDependency
from bruno_memory.core.records import MessageRecord
from bruno_memory.managers.analytics.tally import utc

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")


def period_of(instant: datetime, period: Period) -> str:
    """The UTC period holding ``instant``: ``2026-11-27``, ``2026-W48`` or ``2026-11``."""
    moment = utc(instant)
    if period == "day":
        return moment.date().isoformat()
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{moment.year}-{moment.month:02d}"


@dataclass
class TextSample:
    """The first ``limit`` characters of one user's messages per period (bounded memory)."""

    period: Period
    limit: int = 30_000
    texts: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, record: MessageRecord) -> None:
        role = getattr(record.message.role, "value", record.message.role)
        if role not in ("user", "assistant"):
            return
        key = period_of(record.message.timestamp, self.period)
        size = self.sizes.get(key, 0)
        if size >= self.limit:
            return
        text = record.message.content[: self.limit - size]
        self.texts.setdefault(key, []).append(text)
        self.sizes[key] = size + len(text) + 1


def extractor(top: int) -> Callable[[str], list[tuple[str, float]]]:
    """YAKE's keyword extractor (``pip install yake``): lower scores are better."""
    try:
        import yake
    except ImportError as exc:
        raise MissingDependency(
            "topics need the yake package: pip install 'bruno-memory[analytics]'",
            path="analytics.topics",
        ) from exc
    found = yake.KeywordExtractor(lan="en", n=2, top=top)

    def extract(text: str) -> list[tuple[str, float]]:
        return [(str(k), float(s)) for k, s in found.extract_keywords(text)]

    return extract


def _keywords(sample: TextSample, top: int, last: int) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` keywords of each of the ``last`` periods of ``sample`` (CPU-bound)."""
    extract = extractor(top)
    out: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(sample.texts)[-last:]:
        pairs = extract("\n".join(sample.texts[key]))
        out[key] = [{"keyword": k, "score": round(s, 6)} for k, s in pairs]
    return out


async def keywords(sample: TextSample, top: int = 10, last: int = 6) -> dict[str, Any]:
    """Keywords per period, best first, computed in a worker thread."""
    return await asyncio.to_thread(_keywords, sample, top, last)
