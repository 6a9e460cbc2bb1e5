"""Hybrid search over a stack's routes: full-text from the authoritative tier, vectors from
the semantic tiers, fused by ``search.fuse`` and re-read from the authoritative tier, so a
deleted or forgotten record never comes back from a stale vector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.core.ops import EMPTY, Key
from bruno_memory.core.records import MessageRecord, timestamp_key
from bruno_memory.stack import fusion as search
from bruno_memory.stack.routing import Routes
from bruno_memory.tiers.base import Scored, VectorSearch
from bruno_memory.tiers.vector.base import VectorFilter

Mode = Literal["hybrid", "text", "vector"]


def semantic(routes: Routes) -> list[Any]:
    """The stack's tiers answering ``search_vector``."""
    return [t for t in routes.others if isinstance(t, VectorSearch)]


async def search_messages(
    routes: Routes,
    query: str,
    user_id: str | None,
    limit: int,
    *,
    conversation_id: str | None = None,
    mode: Mode = "hybrid",
    fusion: search.Fusion = search.DEFAULT,
) -> list[MessageRecord]:
    """The ``limit`` messages most relevant to ``query``, only ``user_id``'s when given."""
    durable: Any = routes.durable
    vectors = semantic(routes) if mode != "text" else []
    if limit == 0 or (mode == "vector" and not vectors):
        return []
    if not vectors:
        hits = await durable.search_messages(query, user_id, limit, conversation_id)
        return [h.item for h in hits]
    n = fusion.candidates(limit)
    where = VectorFilter.messages(user_id, conversation_id)
    text_hits, vector_lists = await _gather(
        _text(durable, search.keyword_query(query), user_id, n, conversation_id, mode),
        [t.search_vector(query, where, n) for t in vectors],
    )
    known = {Key("message", h.item.id): h.item for h in text_hits}
    lists: list[tuple[Sequence[Key], float]] = [(list(known), fusion.text_weight)]
    lists += [([h.item for h in hits], fusion.vector_weight) for hits in vector_lists]
    lent, near = await _neighbours(durable, list(known), user_id, conversation_id, fusion)
    known = {**near, **known}
    ranked = await _reranked(vectors[0], query, search.fuse(lists, fusion.k, lent), where, fusion)
    found = await _authoritative(durable, ranked, known, limit)
    return [
        r for r in found if isinstance(r, MessageRecord) and _owned(r, user_id, conversation_id)
    ][:limit]


async def _reranked(
    vectors: Any,
    query: str,
    ranked: list[tuple[Key, float]],
    where: VectorFilter,
    fusion: search.Fusion,
) -> list[tuple[Key, float]]:
    """The fused head re-scored with each candidate's cosine similarity to ``query``."""
    head, tail = ranked[: fusion.rerank], ranked[fusion.rerank :]
    if not head or fusion.rerank_weight <= 0 or not hasattr(vectors, "similarities"):
        return ranked
    cosine = await vectors.similarities(query, [k for k, _ in head], where)
    return [*search.rerank(head, cosine, fusion.rerank_weight), *tail]


async def _neighbours(
    durable: Any,
    hits: list[Key],
    user_id: str | None,
    conversation_id: str | None,
    fusion: search.Fusion,
) -> tuple[dict[Key, float], dict[Key, MessageRecord]]:
    """The messages around the top full-text hits in their conversations, read from the
    authoritative tier: the scores the hits lend them, and their records. Messages
    ``user_id`` (or ``conversation_id``) does not own are left out."""
    top = [k.id for k in hits[: fusion.neighbours]]
    if not top or (fusion.before <= 0 and fusion.after <= 0):
        return {}, {}
    found = await durable.neighbours(top, fusion.before, fusion.after)
    owned = [n for n in found if _owned(n.record, user_id, conversation_id)]
    near = [(n.of, n.offset, Key("message", n.record.id)) for n in owned]
    records = {Key("message", n.record.id): n.record for n in owned}
    return search.neighbour_scores(top, near, fusion), records


async def query_memories(
    routes: Routes, query: MemoryQuery, now: float, *, fusion: search.Fusion = search.DEFAULT
) -> list[Scored[MemoryEntry]]:
    """``retrieve_memories``: every filter of ``query``; ranked by meaning and words when a
    semantic tier exists and ``query_text`` is given. ``similarity_threshold`` is then a
    minimum cosine similarity (without a semantic tier: a minimum relative bm25 score)."""
    durable: Any = routes.durable
    vectors = semantic(routes)
    threshold = query.similarity_threshold
    if not query.query_text or not vectors or query.limit == 0:
        hits = await durable.query_memories(query, now)
        return [h for h in hits if h.score >= threshold]
    n = fusion.candidates(query.limit)
    where = VectorFilter.memories(query, now)
    deeper = query.model_copy(update={"limit": n})
    text_hits, vector_lists = await _gather(
        durable.query_memories(deeper, now),
        [t.search_vector(query.query_text, where, n) for t in vectors],
    )
    vector_lists = [[h for h in hits if h.score >= threshold] for hits in vector_lists]
    if threshold > 0:  # the similarity is the cosine: words alone cannot pass it
        similar = {h.item for hits in vector_lists for h in hits}
        text_hits = [h for h in text_hits if Key("memory", str(h.item.id)) in similar]
    known = {Key("memory", str(h.item.id)): h.item for h in text_hits}
    ranked = _fused(list(known), vector_lists, fusion)
    found = await _authoritative(durable, ranked, known, query.limit)
    scores = dict(ranked)
    return [
        Scored(e, scores[Key("memory", str(e.id))])
        for e in found
        if isinstance(e, MemoryEntry) and memory_matches(query, e, now)
    ][: query.limit]


async def _text(
    durable: Any, query: str, user_id: str | None, n: int, conversation_id: str | None, mode: Mode
) -> list[Scored[MessageRecord]]:
    if mode == "vector":
        return []
    hits: list[Scored[MessageRecord]] = await durable.search_messages(
        query, user_id, n, conversation_id
    )
    return hits


async def _gather(text: Any, vector_calls: Sequence[Any]) -> tuple[Any, list[list[Scored[Key]]]]:
    text_hits, *vector_lists = await asyncio.gather(text, *vector_calls)
    return text_hits, list(vector_lists)


def _fused(
    text_keys: list[Key], vector_lists: list[list[Scored[Key]]], fusion: search.Fusion
) -> list[tuple[Key, float]]:
    lists: list[tuple[Sequence[Key], float]] = [(text_keys, fusion.text_weight)]
    lists += [([h.item for h in hits], fusion.vector_weight) for hits in vector_lists]
    return search.fuse(lists, fusion.k)


async def _authoritative(
    durable: Any, ranked: list[tuple[Key, float]], known: dict[Key, Any], limit: int
) -> list[Any]:
    """The top ranked records as the authoritative tier has them now (gone ones dropped)."""
    out: list[Any] = []
    start = 0
    while len(out) < limit and start < len(ranked):
        window = [key for key, _ in ranked[start : start + limit - len(out)]]
        start += len(window)
        missing = [k for k in window if k not in known]
        fetched = await durable.get(missing) if missing else {}
        for key in window:
            value = known.get(key, fetched.get(key, EMPTY))
            if value is not EMPTY:
                out.append(value)
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
        and (not q.tags or bool(set(q.tags) & set(md.tags)))
        and md.confidence >= q.min_confidence
        and md.importance >= q.min_importance
        and (q.include_expired or e.expires_at is None or timestamp_key(e.expires_at) > now)
    )
