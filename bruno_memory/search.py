"""Hybrid ranking (pure): fuse full-text and vector result lists into one ranking.

Full-text (bm25) and embeddings fail differently: bm25 finds the rare word the question
repeats, embeddings find the paraphrase. Plain reciprocal rank fusion (k=60, equal weights)
loses to bm25 alone on LoCoMo, because a vector list's tail is noise that RRF rewards as
much as bm25's confident head. ``fuse`` is a *weighted* RRF with a small ``k``, plus two
lists built from ``Message.parent_id`` (the replies to the top full-text hits, and what
those hits reply to: answers rarely repeat the question's words), and the fused head is
re-scored with each candidate's cosine similarity. Tuned on locomo-dev with
``benchmarks/locomo.py`` (evidence recall, categories 1-4, all-MiniLM-L6-v2):

==========================================================  =====  =====
ranking                                                      R@5    R@10
==========================================================  =====  =====
full-text only (FTS5 bm25)                                   0.555  0.647
vector only (cosine)                                         0.426  0.505
plain RRF, k=60, equal weights                               0.520  0.604
weighted RRF, k=5, vector 0.85                               0.592  0.680
+ replies to the top 20 full-text hits (weight 0.8), k=2      0.626  0.714
+ the messages they reply to (weight 0.4)                    0.636  0.734
+ cosine re-scoring of the fused top 30 (k=1.5, vector 0.5)  0.641  0.733
==========================================================  =====  =====
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
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
        reply_weight: weight of the replies to the top full-text hits (ranked as their
            parents), found through ``Message.parent_id``: an answer rarely repeats the
            words of the question it answers.
        parent_weight: weight of the messages the top full-text hits reply to.
        neighbours: how many top full-text hits lend their rank to replies and parents.
        rerank: how many fused candidates are re-scored with their cosine similarity.
        rerank_weight: weight of the (min-max scaled) cosine against the fused score.
        depth: candidates asked of each list, as a multiple of the requested limit.
        min_depth: at least this many candidates per list.
    """

    k: float = 1.5
    text_weight: float = 1.0
    vector_weight: float = 0.5
    reply_weight: float = 0.8
    parent_weight: float = 0.4
    neighbours: int = 20
    rerank: int = 30
    rerank_weight: float = 0.25
    depth: int = 3
    min_depth: int = 50

    def candidates(self, limit: int) -> int:
        """How many hits to ask of each list for a final ``limit``."""
        return max(limit * self.depth, self.min_depth)


DEFAULT = Fusion()


def fuse(lists: Sequence[tuple[Sequence[K], float]], k: float = DEFAULT.k) -> list[tuple[K, float]]:
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


def rerank(
    ranked: Sequence[tuple[K, float]], cosine: Mapping[K, float], weight: float
) -> list[tuple[K, float]]:
    """Re-score a fused head: fused score (relative to the best) plus ``weight`` times the
    cosine similarity scaled to [0, 1] over the head; keys without a cosine count as the
    lowest."""
    if not ranked or not cosine or weight <= 0:
        return list(ranked)
    low, high = min(cosine.values()), max(cosine.values())
    span = (high - low) or 1.0
    best = ranked[0][1] or 1.0
    scored = [(k, s / best + weight * (cosine.get(k, low) - low) / span) for k, s in ranked]
    return sorted(scored, key=lambda kv: kv[1], reverse=True)


def replies_ranked(ranked: Sequence[K], replies: Mapping[K, Sequence[K]]) -> list[K]:
    """The replies of ``ranked`` items, each at the rank of the item it replies to."""
    return [r for key in ranked for r in replies.get(key, ())]


def parents_ranked(ranked: Sequence[K], parent: Mapping[K, K | None]) -> list[K]:
    """The items ``ranked`` items reply to, each at the rank of its reply."""
    return [p for key in ranked if (p := parent.get(key)) is not None]


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
