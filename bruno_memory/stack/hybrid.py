"""Hybrid search through the engine: full-text from the authoritative tier, vectors from
the semantic tiers, fused by ``search.fuse`` and re-read from the authoritative tier, so a
deleted or forgotten record never comes back from a stale vector."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.core import summaries
from bruno_memory.core.archived import is_archived
from bruno_memory.core.ops import EMPTY, Key
from bruno_memory.core.queries import (
    Neighbours,
    QueryMemories,
    Scored,
    SearchText,
    SearchVector,
    Similarities,
    VectorFilter,
)
from bruno_memory.core.records import MessageRecord, timestamp_key
from bruno_memory.stack import fusion as search
from bruno_memory.stack.engine import Engine

Mode = Literal["hybrid", "text", "vector"]


async def search_messages(
    engine: Engine,
    query: str,
    user_id: str | None,
    limit: int,
    *,
    conversation_id: str | None = None,
    mode: Mode = "hybrid",
    fusion: search.Fusion = search.DEFAULT,
    include_archived: bool = False,
) -> list[Scored[MessageRecord]]:
    """The ``limit`` messages most relevant to ``query``, only ``user_id``'s when given,
    archived ones only when asked for, best first; scores compare within one answer."""
    semantic = mode != "text" and engine.can(SearchVector)
    if limit == 0 or (mode == "vector" and not semantic):
        return []
    if not semantic:
        return await engine.ask(
            SearchText(query, user_id, limit, conversation_id, include_archived)
        )
    n = fusion.candidates(limit)
    where = VectorFilter.messages(user_id, conversation_id)
    text_hits, vector_lists = await asyncio.gather(
        _text(engine, search.keyword_query(query), user_id, n, conversation_id, mode,
              include_archived),
        engine.fan_out(SearchVector(query, where, n)),
    )
    known = {Key("message", h.item.id): h.item for h in text_hits}
    lists: list[tuple[Sequence[Key], float]] = [(list(known), fusion.text_weight)]
    lists += [([h.item for h in hits], fusion.vector_weight) for hits in vector_lists]
    lent, near = await _neighbours(engine, list(known), user_id, conversation_id, fusion)
    known = {**near, **known}
    fused = search.fuse(lists, fusion.k, lent)
    ranked = await _reranked(engine, query, fused, where, fusion)
    found = await _authoritative(engine, ranked, known, limit)
    return [
        s for s in found
        if isinstance(s.item, MessageRecord) and _owned(s.item, user_id, conversation_id)
        and (include_archived or not is_archived(s.item))  # vectors and neighbours
    ][:limit]


async def _reranked(
    engine: Engine,
    query: str,
    ranked: list[tuple[Key, float]],
    where: VectorFilter,
    fusion: search.Fusion,
) -> list[tuple[Key, float]]:
    """The fused head re-scored with each candidate's cosine similarity to ``query``."""
    head, tail = ranked[: fusion.rerank], ranked[fusion.rerank :]
    if not head or fusion.rerank_weight <= 0:
        return ranked
    cosine = await engine.ask(Similarities(query, tuple(k for k, _ in head), where))
    return [*search.rerank(head, cosine, fusion.rerank_weight), *tail]


async def _neighbours(
    engine: Engine,
    hits: list[Key],
    user_id: str | None,
    conversation_id: str | None,
    fusion: search.Fusion,
) -> tuple[dict[Key, float], dict[Key, MessageRecord]]:
    """The messages around the top full-text hits in their conversations, read from the
    authoritative tier: the scores the hits lend them, and their records. Messages
    ``user_id`` (or ``conversation_id``) does not own are left out."""
    top = tuple(k.id for k in hits[: fusion.neighbours])
    if not top or (fusion.before <= 0 and fusion.after <= 0):
        return {}, {}
    found = await engine.ask(Neighbours(top, fusion.before, fusion.after))
    owned = [n for n in found if _owned(n.record, user_id, conversation_id)]
    near: list[tuple[Any, int, Any]] = [
        (n.of, n.offset, Key("message", n.record.id)) for n in owned
    ]
    records = {Key("message", n.record.id): n.record for n in owned}
    ranked: list[Any] = list(top)  # hits by id lend to neighbours by key
    return search.neighbour_scores(ranked, near, fusion), records


async def query_memories(
    engine: Engine, query: MemoryQuery, now: float, *, fusion: search.Fusion = search.DEFAULT
) -> list[Scored[MemoryEntry]]:
    """``retrieve_memories``: every filter of ``query``; ranked by meaning and words when a
    semantic tier exists and ``query_text`` is given. ``similarity_threshold`` is then a
    minimum cosine similarity (without a semantic tier: a minimum relative bm25 score)."""
    threshold = query.similarity_threshold
    where = VectorFilter.memories(query, now)
    semantic = bool(query.query_text) and engine.can(SearchVector)
    if not semantic or query.limit == 0:
        hits = await engine.ask(QueryMemories(query, now))
        return [h for h in hits if h.score >= threshold]
    n = fusion.candidates(query.limit)
    deeper = query.model_copy(update={"limit": n})
    text_hits, vector_lists = await asyncio.gather(
        engine.ask(QueryMemories(deeper, now)),
        engine.fan_out(SearchVector(query.query_text or "", where, n)),
    )
    vector_lists = [[h for h in hits if h.score >= threshold] for hits in vector_lists]
    if threshold > 0:  # the similarity is the cosine: words alone cannot pass it
        similar = {h.item for hits in vector_lists for h in hits}
        text_hits = [h for h in text_hits if Key("memory", str(h.item.id)) in similar]
    known: dict[Key, Any] = {Key("memory", str(h.item.id)): h.item for h in text_hits}
    ranked = _fused(list(known), vector_lists, fusion)
    found = await _authoritative(engine, ranked, known, query.limit)
    return [
        s for s in found if isinstance(s.item, MemoryEntry) and memory_matches(query, s.item, now)
    ][: query.limit]


async def _text(
    engine: Engine, query: str, user_id: str | None, n: int, conversation_id: str | None,
    mode: Mode,
    include_archived: bool,
) -> list[Scored[MessageRecord]]:
    if mode == "vector":
        return []
    return await engine.ask(SearchText(query, user_id, n, conversation_id, include_archived))


def _fused(
    text_keys: list[Key], vector_lists: list[list[Scored[Key]]], fusion: search.Fusion
) -> list[tuple[Key, float]]:
    lists: list[tuple[Sequence[Key], float]] = [(text_keys, fusion.text_weight)]
    lists += [([h.item for h in hits], fusion.vector_weight) for hits in vector_lists]
    return search.fuse(lists, fusion.k)


async def _authoritative(
    engine: Engine, ranked: list[tuple[Key, float]], known: Mapping[Key, Any], limit: int
) -> list[Scored[Any]]:
    """The top ranked records as the authoritative tier has them now (gone ones dropped),
    with their fused scores."""
    out: list[Scored[Any]] = []
    start = 0
    while len(out) < limit and start < len(ranked):
        window = ranked[start : start + limit - len(out)]
        start += len(window)
        fetched = await engine.authoritative([k for k, _ in window if k not in known])
        for key, score in window:
            value = known.get(key, fetched.get(key, EMPTY))
            if value is not EMPTY:
                out.append(Scored(value, score))
    return out


def _owned(rec: MessageRecord, user_id: str | None, conversation_id: str | None) -> bool:
    if user_id is not None and rec.user_id != user_id:
        return False
    return conversation_id is None or rec.conversation_id == conversation_id


def memory_matches(q: MemoryQuery, e: MemoryEntry, now: float) -> bool:
    """Whether ``e`` passes every filter of ``q`` (the authoritative re-check)."""
    md = e.metadata
    return (
        e.user_id == q.user_id
        and (not q.memory_types or e.memory_type in q.memory_types)
        and (not q.categories or md.category in q.categories)
        and not summaries.hidden(md.category, q.categories)
        and (not q.tags or bool(set(q.tags) & set(md.tags)))
        and md.confidence >= q.min_confidence
        and md.importance >= q.min_importance
        and (q.include_expired or e.expires_at is None or timestamp_key(e.expires_at) > now)
    )
