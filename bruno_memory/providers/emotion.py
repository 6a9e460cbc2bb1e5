"""Emotional charge of a text: VADER's |compound| in [0, 1] (``vaderSentiment`` ships its
lexicon, so this works offline). Strongly charged statements ("I hate...", "terrified
of...") weigh more in a memory's importance."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache

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


_KNOWN: LRUCache[str, float] = LRUCache(maxsize=50_000)


def charge(text: str) -> float:
    """|compound| of ``text`` (0: neutral, 1: as charged as it gets). ~0.2 ms, CPU;
    remembered per text."""
    found = _KNOWN.get(text)
    if found is None:
        found = _KNOWN[text] = abs(float(_analyzer().polarity_scores(text)["compound"]))
    return found


def known(texts: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """The charges already computed, and the texts still to compute (cheap, no CPU)."""
    done: dict[str, float] = {}
    missing: list[str] = []
    for t in texts:
        found = _KNOWN.get(t)
        if found is None:
            missing.append(t)
        else:
            done[t] = found
    return done, missing


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
