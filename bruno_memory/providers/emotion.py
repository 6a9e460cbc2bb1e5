"""Emotional charge of a text: VADER's |compound| in [0, 1] (``vaderSentiment`` ships its
lexicon, so this works offline). Strongly charged statements ("I hate...", "terrified
of...") weigh more in a memory's importance."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from bruno_memory.core.errors import MissingDependency

__all__ = ["charge", "charges"]


@functools.cache
def _analyzer() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise MissingDependency(
            "the emotional signal of memory importance needs vaderSentiment: "
            "pip install 'bruno-memory[lifecycle]'"
        ) from exc
    return SentimentIntensityAnalyzer()


@functools.lru_cache(maxsize=50_000)
def charge(text: str) -> float:
    """|compound| of ``text`` (0: neutral, 1: as charged as it gets). ~0.2 ms, CPU."""
    return abs(float(_analyzer().polarity_scores(text)["compound"]))


def charges(texts: Sequence[str]) -> list[float]:
    """``charge`` of each text (run it with ``asyncio.to_thread`` for many)."""
    return [charge(t) for t in texts]


def available() -> bool:
    """Whether ``vaderSentiment`` is installed."""
    try:
        _analyzer()
    except MissingDependency:
        return False
    return True
