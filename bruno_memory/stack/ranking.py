"""``retrieve_memories``' ranking: a pool of candidates re-ranked by salience
(``core.salience``: relevance to the query, importance, recency, strength)."""

from __future__ import annotations

import asyncio

from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.core import lifetimes, summaries
from bruno_memory.core.queries import Scored
from bruno_memory.core.salience import Weights, salience
from bruno_memory.providers import emotion

POOL = 3
"""Candidates read per result asked (at most ``MAX_POOL``), re-ranked, cut to the limit."""
MAX_POOL = 1000


def pool(query: MemoryQuery) -> MemoryQuery:
    """``query`` asking for the candidate pool instead of ``limit`` results."""
    deeper = min(max(query.limit * POOL, query.limit + 10), MAX_POOL)
    return query.model_copy(update={"limit": max(deeper, query.limit)})


async def ranked(
    hits: list[Scored[MemoryEntry]], query: MemoryQuery, weights: Weights, now: float
) -> list[Scored[MemoryEntry]]:
    """The hits best first by salience at ``now``, cut to ``query.limit``; a hit's score
    becomes its salience. Relevance comes from the rank in the retrieval's order
    (``rank_relevance``): fused scores compare within one list only. Emotion is VADER's,
    computed off the loop where the memory's metadata holds none (0 without
    ``vaderSentiment``). The lifecycle's own records (``core.summaries.HIDDEN``) are left
    out unless ``query.categories`` names their category."""
    hits = [h for h in hits if not summaries.hidden(h.item.metadata.category, query.categories)]
    if not hits:
        return []
    ranked_ = bool(query.query_text)
    texts = [h.item.content for h in hits if lifetimes.EMOTION not in h.item.metadata.custom_fields]
    felt, missing = emotion.known(texts)
    if missing and emotion.available():
        computed = await asyncio.to_thread(emotion.charges, missing)
        felt.update(zip(missing, computed, strict=True))
    at = float(now)
    scored = []
    for i, h in enumerate(hits):
        rel = rank_relevance(i) if ranked_ else None
        s = salience(h.item, at, weights, relevance=rel, emotion=felt.get(h.item.content)).score
        scored.append((-s, i, Scored(h.item, s)))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [s for _, _, s in scored[: query.limit]]



def rank_relevance(rank: int) -> float:
    """``1 / (1 + rank / 2)``: 1 for the best hit, 0.5 for the third."""
    return 1.0 / (1.0 + rank / 2.0)
