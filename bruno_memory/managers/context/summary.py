"""The summary section's plug: a provider of a summary of the history before the window.

The lifecycle manager writes summaries next to the originals and reads them back with
``managers.lifecycle.StoredSummaries`` (what a YAML with ``context:`` and ``lifecycle:``
uses); the default provider has none and the section passes its budget on.

A provider whose ``summary`` takes ``query`` and ``max_tokens`` keywords is
*question-aware*: the builder asks it last, with the build's query and the tokens the
verbatim sections (search hits, recent window) could not use, and it gives what is most
relevant to the query within them (or nothing). A summary then never takes the place of
an original turn. A provider without those keywords keeps its share of the budget.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Protocol, runtime_checkable

from bruno_core.models import Message

__all__ = ["NoSummary", "SummaryProvider", "question_aware"]


@runtime_checkable
class SummaryProvider(Protocol):
    """Gives a summary of a conversation's history older than ``before``.

    The returned message goes in as is (a system message is the usual choice) if it fits
    the summary section's budget; it is counted by the builder's counter.
    """

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None
    ) -> Message | None:
        """The summary of what came before ``before`` (``None``: nothing to summarise).

        A provider may also accept ``query: str | None = None`` and
        ``max_tokens: int | None = None`` (see the module doc)."""
        ...


class NoSummary:
    """The default: no summary."""

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None,
        query: str | None = None, max_tokens: int | None = None,
    ) -> Message | None:
        return None


def question_aware(provider: SummaryProvider) -> bool:
    """Whether ``provider.summary`` accepts the ``query`` and ``max_tokens`` keywords."""
    try:
        params = inspect.signature(provider.summary).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    return "query" in params and "max_tokens" in params
