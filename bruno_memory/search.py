"""Hybrid ranking (pure): fuse full-text and vector result lists into one ranking.

Full-text (bm25) and embeddings fail differently: bm25 finds the rare word the question
repeats, embeddings find the paraphrase. Plain reciprocal rank fusion with equal weights
loses to bm25 alone on LoCoMo, because a vector list's tail is noise that RRF rewards as
much as bm25's confident head. ``fuse`` is therefore a *weighted* RRF with per-list
weights and a small ``k`` (rank 1 counts much more than rank 10), tuned on locomo-dev
(see benchmarks/locomo.py and the table in its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bruno_memory.text import STOPWORDS

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Fusion:
    """How lists are fused; the defaults are the ones tuned on locomo-dev.

    Args:
        k: the RRF constant: score of rank r is ``weight / (k + r)``.
        text_weight: weight of the full-text list.
        vector_weight: weight of each vector list.
        depth: candidates asked of each list, as a multiple of the requested limit.
        min_depth: at least this many candidates per list.
    """

    k: float = 5.0
    text_weight: float = 1.0
    vector_weight: float = 0.85
    depth: int = 3
    min_depth: int = 50

    def candidates(self, limit: int) -> int:
        """How many hits to ask of each list for a final ``limit``."""
        return max(limit * self.depth, self.min_depth)


DEFAULT = Fusion()


def fuse(
    lists: Sequence[tuple[Sequence[K], float]], k: float = DEFAULT.k
) -> list[tuple[K, float]]:
    """Weighted reciprocal rank fusion of ranked lists, best first.

    Args:
        lists: (keys best first, weight) per list; a key appearing twice in one list
            counts at its best rank.
        k: the rank constant.
    """
    scores: dict[K, float] = {}
    for keys, weight in lists:
        seen: set[K] = set()
        for rank, key in enumerate(keys, start=1):
            if key in seen:
                continue
            seen.add(key)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


_QUESTION = re.compile(r"\w+", re.UNICODE)
QUESTION_WORDS = frozenset(
    "what when where which who whom whose why how kind type sort ever likely would".split()
)


def keyword_query(question: str) -> str:
    """The content words of a question, for full-text search (stopwords and question
    words dropped; at least one word kept)."""
    words = _QUESTION.findall(question)
    kept = [w for w in words if w.lower() not in STOPWORDS and w.lower() not in QUESTION_WORDS]
    return " ".join(kept or words)
