"""Hybrid ranking (pure): fuse full-text and vector result lists into one ranking.

Full-text (bm25) and embeddings fail differently: bm25 finds the rare word the question
repeats, embeddings find the paraphrase. Plain reciprocal rank fusion (k=60, equal weights)
loses to bm25 alone on LoCoMo, because a vector list's tail is noise that RRF rewards as
much as bm25's confident head. ``fuse`` is a *weighted* RRF with a small ``k``; each top
full-text hit lends part of its rank to the messages next to it in its conversation (read
from the authoritative tier by ``(ts, seq)`` position, so every application gets them, no
``parent_id`` needed: an answer rarely repeats the words of the question it answers); and
the fused head is re-scored with each candidate's cosine similarity. Tuned on locomo-dev
with ``benchmarks/locomo.py`` (evidence recall, categories 1-4, all-MiniLM-L6-v2, turns
stored as plain messages):

=================================================================  =====  =====
ranking                                                            R@5    R@10
=================================================================  =====  =====
full-text only (FTS5 bm25)                                         0.555  0.647
vector only (cosine)                                               0.426  0.505
plain RRF, k=60, equal weights                                     0.520  0.604
weighted RRF, k=5, vector 0.85                                     0.592  0.680
weighted RRF, k=1.5, vector 0.5, cosine re-scoring of the top 30   0.583  0.681
+ the message after each top-20 full-text hit (0.8), before (0.4)  0.645  0.731
+ the second one after (0.4) and before (0.2): the defaults        0.657  0.750
=================================================================  =====  =====

A message next to several hits takes the best score one of them lends, not the sum: the
sum measured the same here (0.656 / 0.752) but ranks an unrelated message between two
hits above a weaker hit. Tried and left out: three neighbours a side (0.655 / 0.753), other
weights and ``k`` (all within +-0.005 R@10, i.e. noise), the neighbours of the top vector
hits too (-0.003 to -0.013 R@10), and replies found through ``Message.parent_id`` on top
of the neighbours (0.729 R@10: the same turns counted twice).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from bruno_memory.core.text import STOPWORDS

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Fusion:
    """How lists are fused; the defaults are the ones tuned on locomo-dev.

    Args:
        k: the RRF constant: score of rank r is ``weight / (k + r)``.
        text_weight: weight of the full-text list.
        vector_weight: weight of each vector list.
        next_weight: weight of the message just after each top full-text hit in its
            conversation (at the hit's rank): an answer rarely repeats the words of the
            question it answers.
        previous_weight: weight of the message just before each top full-text hit.
        before: how many messages before each top hit are read (``previous_weight`` for
            the nearest, times ``decay`` per further step).
        after: how many messages after each top hit are read (likewise).
        decay: weight factor per step away from the hit.
        neighbours: how many top full-text hits lend their rank to their neighbours.
        rerank: how many fused candidates are re-scored with their cosine similarity.
        rerank_weight: weight of the (min-max scaled) cosine against the fused score.
        depth: candidates asked of each list, as a multiple of the requested limit.
        min_depth: at least this many candidates per list.
    """

    k: float = 1.5
    text_weight: float = 1.0
    vector_weight: float = 0.5
    next_weight: float = 0.8
    previous_weight: float = 0.4
    before: int = 2
    after: int = 2
    decay: float = 0.5
    neighbours: int = 20
    rerank: int = 30
    rerank_weight: float = 0.25
    depth: int = 3
    min_depth: int = 50

    def candidates(self, limit: int) -> int:
        """How many hits to ask of each list for a final ``limit``."""
        return max(limit * self.depth, self.min_depth)

    def neighbour_weight(self, offset: int) -> float:
        """The weight of a neighbour ``offset`` steps from its hit (-1: just before)."""
        side = self.next_weight if offset > 0 else self.previous_weight
        return side * self.decay ** (abs(offset) - 1)


DEFAULT = Fusion()


def neighbour_scores(
    ranked: Sequence[K], near: Iterable[tuple[K, int, K]], fusion: Fusion = DEFAULT
) -> dict[K, float]:
    """What ranked items lend the items next to them: ``neighbour_weight(offset) / (k + rank)``
    of the item a neighbour is next to, the best one when it is next to several (a message
    between two hits counts once, not twice).

    Args:
        ranked: the items lending, best first.
        near: (item, offset, neighbour) triples; items not in ``ranked`` lend nothing.
        fusion: the weights and ``k``.
    """
    rank = {key: r for r, key in enumerate(ranked, start=1)}
    out: dict[K, float] = {}
    for of, offset, key in near:
        if of in rank:
            score = fusion.neighbour_weight(offset) / (fusion.k + rank[of])
            out[key] = max(out.get(key, 0.0), score)
    return out


def fuse(
    lists: Sequence[tuple[Sequence[K], float]],
    k: float = DEFAULT.k,
    start: Mapping[K, float] | None = None,
) -> list[tuple[K, float]]:
    """Weighted reciprocal rank fusion of ranked lists, best first.

    Args:
        lists: (keys best first, weight) per list; a key appearing twice in one list
            counts at its best rank.
        k: the rank constant.
        start: scores the keys have before the lists add theirs.
    """
    scores: dict[K, float] = dict(start or {})
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
