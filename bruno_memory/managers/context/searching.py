"""The past-messages search of one build: which messages a query may bring in.

- Through the facade's ``search`` door when the source has one (``MemoryStack`` and its
  scoped handles): scoped to the conversation in the store, so another conversation's hits
  never take the limit's places, and with the builder's own ``Fusion`` (its packing reads
  deeper than the ten hits the default fusion is tuned for). Any other source: its
  ``search_messages``, filtered here.
- A branch (``branch_of`` gives its lineage) also searches the history it inherits: each
  shared part's messages up to the fork, never what the parent said after it. A message
  at the fork's very instant counts only when it is the fork message itself (the public
  message has no sequence number to order same-instant messages by).
- ``expand`` (pseudo-relevance feedback, off by default): the words of the query and of
  the top hits, searched again by words alone, fused below the first search's head. On
  locomo-dev (3 seeds) it lifts multi-hop and open-domain recall (+0.011 overall at 1,024
  tokens, +0.002 at 2,048) but costs a second full-text search (build p50 +7 to +15 ms)
  and some temporal recall at 2,048 (-0.023): opt in where multi-hop questions matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from bruno_core.models import Message

from bruno_memory.core.branches import Lineage
from bruno_memory.core.records import timestamp_key
from bruno_memory.managers.context.source import ContextSource
from bruno_memory.stack.fusion import Fusion, fuse, keyword_query

__all__ = ["search_past"]

Scope = Literal["conversation", "user"]


async def search_past(
    source: ContextSource,
    query: str,
    user_id: str,
    conversation_id: str,
    scope: Scope,
    limit: int,
    fusion: Fusion | None,
    expand: int = 0,
) -> list[Message]:
    """The ``limit`` messages best for ``query`` that the build may use, best first; with
    ``expand`` seeds, a second, words-only search for the query and the text of the first
    ``expand`` hits re-ranks all but the first ``EXPAND_KEEP``."""
    door = getattr(source, "search", None)
    keep = await _scope_filter(source, conversation_id) if scope == "conversation" else None
    only = conversation_id if scope == "conversation" and keep is None else None
    if keep is None and only is not None:
        keep = lambda m: m.conversation_id == only  # noqa: E731
    if not callable(door):
        found = await source.search_messages(query, user_id=user_id, limit=limit)
        return found if keep is None else [m for m in found if keep(m)]
    kwargs: dict[str, Any] = {"user_id": user_id, "conversation_id": only, "limit": limit}
    if fusion is not None:
        kwargs["fusion"] = fusion
    found = [h.item for h in await door(query, **kwargs)]
    if keep is not None:
        found = [m for m in found if keep(m)]
    if expand <= 0 or not found:
        return found
    seeded = keyword_query(" ".join([query, *(m.content for m in found[:expand])]))
    words = " ".join(dict.fromkeys(seeded.split()))
    more = [h.item for h in await door(words, **{**kwargs, "mode": "text"})]
    if keep is not None:
        more = [m for m in more if keep(m)]
    head = found[:EXPAND_KEEP]
    by_id = {m.id: m for m in more}
    by_id.update((m.id, m) for m in found)
    lists = [([m.id for m in found], 1.0), ([m.id for m in more], EXPAND_WEIGHT)]
    fused = [i for i, _ in fuse(lists, k=EXPAND_K)]
    taken = {m.id for m in head}
    return [*head, *(by_id[i] for i in fused if i not in taken)][:limit]


EXPAND_KEEP = 10
"""Hits of the first search kept at the head when a second search re-ranks the rest."""
EXPAND_WEIGHT = 0.5
"""Weight of the second (words-only, seeded) list against the first in the fusion."""
EXPAND_K = 10.0
"""The rank constant of that fusion."""


async def _scope_filter(
    source: ContextSource, conversation_id: str
) -> Callable[[Message], bool] | None:
    """For a branch: whether a message is its own or of the history it inherits; ``None``
    for a conversation that is no branch."""
    branch_of = getattr(source, "branch_of", None)
    lineage: Lineage | None = await branch_of(conversation_id) if callable(branch_of) else None
    if lineage is None:
        return None
    limits: dict[str, tuple[float, str]] = {
        p.conversation_id: (p.through[0], p.message_id) for p in lineage.prefix
    }

    def keep(m: Message) -> bool:
        if m.conversation_id == conversation_id:
            return True
        through = limits.get(m.conversation_id or "")
        if through is None:
            return False
        ts = timestamp_key(m.timestamp)
        return ts < through[0] or (ts == through[0] and str(m.id) == through[1])

    return keep
