"""The token-budgeted context builder.

``ContextBuilder(memory).build(user_id, conversation_id, query=..., max_tokens=...)`` reads
through the facade only (:class:`~bruno_memory.managers.context.source.ContextSource`) and
returns a :class:`~bruno_memory.managers.context.result.BuiltContext` whose messages never
cost more than ``max_tokens`` by its counter.

The steps (sections and shares: :mod:`~bruno_memory.managers.context.budget`):

1. **pinned**: the system prompt and pinned items; if they alone exceed the budget the
   build fails with ``InvalidInput`` (nothing is silently dropped).
2. **latest turns**: the newest ``min_recent`` messages of the conversation, as many as fit.
3. one round trip for the rest, concurrently: the past-messages search
   (``managers.context.searching``: the ``search`` door when there is one, a branch's
   inherited history included),
   ``retrieve_memories(MemoryQuery(query_text=query))`` and the summary provider.
   ``query`` defaults to the latest user message of the conversation.
4. strategy ``adaptive`` (the default): the share of the top 5 search hits that lie before
   the fetched recent messages is how much the query is about the past; that fraction of
   the recent window's share is lent to the search section. ``fixed`` keeps the shares as
   configured; ``recent`` uses no retrieval at all (pinned, summary, recent window).
5. **summary**, **memories**, **search**, then the rest of the **recent** window, each
   within its share of what is left (unused tokens pass on). Search hits are packed in
   rank order, skipping one that does not fit (``density`` can favour score per token).
   A search hit that the recent window reaches moves into the window at no cost: a
   message is paid for once.
6. what the window leaves (a short conversation) goes back to more search hits; then a
   question-aware summary provider (``managers.context.summary``), asked last instead of
   in step 3, may fill what is still left with what is relevant to the query.
7. the whole list is counted once more with the counter's own ``count_messages_tokens``;
   if a counter adds anything per list, the least relevant items go until it fits.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from bruno_core.models import Message
from bruno_llm.base.token_counter import TokenCounter

from bruno_memory.core import guards
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.salience import Weights
from bruno_memory.managers.context.assembly import Build, Scope, Strategy
from bruno_memory.managers.context.budget import Shares
from bruno_memory.managers.context.result import BuiltContext
from bruno_memory.managers.context.source import ContextSource
from bruno_memory.managers.context.summary import NoSummary, SummaryProvider
from bruno_memory.managers.context.tokens import MessageCosts, default_counter
from bruno_memory.stack.fusion import Fusion

if TYPE_CHECKING:
    from bruno_memory.config.models import ContextConfig

__all__ = ["ContextBuilder", "Scope", "Strategy", "budgeted_context"]

log = logging.getLogger(__name__)


_COSTS: weakref.WeakKeyDictionary[TokenCounter, MessageCosts] = weakref.WeakKeyDictionary()


def costs_for(counter: TokenCounter) -> MessageCosts:
    """One cost cache per counter, shared by the builders using it."""
    try:
        found = _COSTS.get(counter)
        if found is None:
            found = _COSTS[counter] = MessageCosts(counter)
        return found
    except TypeError:  # a counter that cannot be weakly referenced
        return MessageCosts(counter)


class ContextBuilder:
    """Builds the best context that fits a token budget.

    Args:
        memory: the ``MemoryStack`` (or anything with the facade's ``retrieve_messages``,
            ``search_messages`` and ``retrieve_memories``).
        counter: a bruno-llm ``TokenCounter``; default exact ``cl100k_base``, offline.
        system_prompt: the system prompt, pinned first in every context.
        pinned: messages the application pins after it (never dropped).
        summaries: where the summary of older history comes from (default: none).
        min_recent: the latest turns always in (when they fit after the pinned items).
        shares: the sections' shares of what is left after pinned and latest turns.
        strategy: ``adaptive``, ``fixed`` or ``recent`` (see the module doc).
        scope: ``conversation`` searches this conversation's past, ``user`` all of the
            user's conversations.
        density: 0 (the default) packs search hits in rank order, skipping one that does
            not fit; up to 1 favours score per token. On LoCoMo evidence turns are longer
            than the average hit (58 against 44 tokens), so favouring short ones lost
            recall (density 0.5: -0.03 at 1,024 tokens); keep 0 unless measured otherwise.
        search_limit: hits asked of ``search_messages``; default ``max_tokens // 24``
            (20 to 200): enough to fill the budget with turns of ~45 tokens, and no more
            (the hybrid search's time grows with its limit).
        fusion: how the search door fuses words and meaning for this builder (default:
            ``stack.fusion.DEFAULT``); only a source with a ``search`` door uses it.
        expand: seeds of a second, words-only search (pseudo-relevance feedback,
            ``managers.context.searching``); 0 (the default) is off.
        memory_limit: memories asked of ``retrieve_memories``.
        clock: ``now`` for memory recency (tests).
        weights: the memory score's weights (``core.salience.Weights``; the YAML
            ``lifecycle.importance``).
    """

    def __init__(
        self,
        memory: ContextSource,
        counter: TokenCounter | None = None,
        *,
        system_prompt: str | None = None,
        pinned: Sequence[Message] = (),
        summaries: SummaryProvider | None = None,
        min_recent: int = 6,
        shares: Shares | None = None,
        strategy: Strategy = "adaptive",
        scope: Scope = "conversation",
        density: float = 0.0,
        search_limit: int | None = None,
        fusion: Fusion | None = None,
        expand: int = 0,
        memory_limit: int = 20,
        clock: Callable[[], datetime] | None = None,
        weights: Weights | None = None,
    ) -> None:
        if not isinstance(min_recent, int) or isinstance(min_recent, bool) or min_recent < 0:
            raise InvalidInput(f"min_recent must be a non-negative integer, got {min_recent!r}")
        if strategy not in ("adaptive", "fixed", "recent"):
            raise InvalidInput(f"strategy must be adaptive, fixed or recent, got {strategy!r}")
        if scope not in ("conversation", "user"):
            raise InvalidInput(f"scope must be conversation or user, got {scope!r}")
        if not isinstance(expand, int) or isinstance(expand, bool) or expand < 0:
            raise InvalidInput(f"expand must be a non-negative integer, got {expand!r}")
        if not 0.0 <= density <= 1.0:
            raise InvalidInput(f"density must be between 0 and 1, got {density!r}")
        self.memory = memory
        self.counter = counter if counter is not None else default_counter()
        self.costs = costs_for(self.counter)
        self.system_prompt = system_prompt
        self.pinned = list(pinned)
        self.summaries: SummaryProvider = summaries if summaries is not None else NoSummary()
        self.min_recent = min_recent
        self.shares = shares if shares is not None else Shares()
        self.strategy: Strategy = strategy
        self.scope: Scope = scope
        self.density = density
        self.search_limit = search_limit
        self.fusion = fusion
        self.expand = expand
        self.memory_limit = memory_limit
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.weights = weights or Weights()
        self.max_tokens = 2048

    @classmethod
    def from_config(
        cls, memory: ContextSource, config: ContextConfig, counter: TokenCounter | None = None
    ) -> ContextBuilder:
        """A builder for a YAML ``context:`` section."""
        s = config.shares
        builder = cls(
            memory,
            counter,
            min_recent=config.min_recent,
            shares=Shares(summary=s.summary, memories=s.memories, search=s.search, recent=s.recent),
            strategy=config.strategy,
            scope=config.scope,
        )
        builder.max_tokens = config.max_tokens
        return builder

    async def build(
        self,
        user_id: str,
        conversation_id: str,
        query: str | None = None,
        max_tokens: int | None = None,
        *,
        system_prompt: str | None = None,
        pinned: Sequence[Message] = (),
    ) -> BuiltContext:
        """The context of ``conversation_id`` for ``query`` within ``max_tokens``.

        Args:
            user_id: whose memories and messages are searched.
            conversation_id: the conversation the recent window comes from.
            query: what relevance is judged against; default the latest user message.
            max_tokens: the budget (default the builder's, 2,048 unless configured).
            system_prompt: overrides the builder's system prompt for this call.
            pinned: pinned for this call, after the builder's pinned items.

        Raises:
            InvalidInput: a bad argument, or pinned items that alone exceed the budget.
        """
        guards.identifier(user_id, "user_id")
        guards.conversation_id(conversation_id)
        budget = self.max_tokens if max_tokens is None else max_tokens
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise InvalidInput(f"max_tokens must be a positive integer, got {budget!r}")
        if query is not None and not isinstance(query, str):
            raise InvalidInput(f"query must be a string or None, got {type(query).__name__}")
        return await Build(self, user_id, conversation_id, budget).run(query, system_prompt, pinned)


async def budgeted_context(
    memory: ContextSource,
    user_id: str,
    conversation_id: str,
    config: ContextConfig,
    counter: TokenCounter | None = None,
) -> BuiltContext:
    """The context a YAML ``context:`` section asks for (what ``get_context`` uses).

    The query is the latest user message of the conversation.
    """
    builder = ContextBuilder.from_config(memory, config, counter)
    return await builder.build(user_id, conversation_id, max_tokens=config.max_tokens)
