"""A token-budgeted context builder: the best LLM input that fits a token budget.

::

    from bruno_memory.managers.context import ContextBuilder

    builder = ContextBuilder(memory)          # counter: exact cl100k_base, offline
    ctx = await builder.build(user_id, conversation_id, query="...", max_tokens=2048)
    ctx.messages    # the LLM's input, in order
    ctx.tokens      # what they cost (never more than max_tokens)
    ctx.explain()   # per item: section, score, tokens, why it is in

Modules: ``budget`` (sections, shares), ``packing``, ``scoring``, ``render`` (how
sections become messages), ``summary`` (the summary plug), ``source`` (the facade methods
used), ``tokens`` (counting), ``result`` (``BuiltContext.explain``), ``builder``.
"""

from bruno_memory.managers.context.budget import SECTIONS, Section, Shares
from bruno_memory.managers.context.builder import (
    ContextBuilder,
    Scope,
    Strategy,
    budgeted_context,
)
from bruno_memory.managers.context.result import BuiltContext, ContextItem
from bruno_memory.managers.context.source import ContextSource
from bruno_memory.managers.context.summary import NoSummary, SummaryProvider
from bruno_memory.managers.context.tokens import (
    BundledTikTokenCounter,
    MessageCosts,
    default_counter,
)

__all__ = [
    "SECTIONS",
    "BuiltContext",
    "BundledTikTokenCounter",
    "ContextBuilder",
    "ContextItem",
    "ContextSource",
    "MessageCosts",
    "NoSummary",
    "Scope",
    "Section",
    "Shares",
    "Strategy",
    "SummaryProvider",
    "budgeted_context",
    "default_counter",
]
