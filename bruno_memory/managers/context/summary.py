"""The summary section's plug: a provider of a summary of the history before the window.

The lifecycle manager writes summaries next to the originals and reads them back with
``managers.lifecycle.StoredSummaries`` (what a YAML with ``context:`` and ``lifecycle:``
uses); the default provider has none and the section passes its budget on.

A provider whose ``summary`` takes a ``query`` keyword is *question-aware*: it gets the
build's query and gives only what is relevant to it (or nothing). The builder then lets
the summary have only the budget the verbatim sections could not use, so a summary never
takes the place of a relevant original turn. A provider without ``query`` keeps its share.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Protocol, runtime_checkable

from bruno_core.models import Message

__all__ = ["NoSummary", "SummaryProvider", "takes_query"]


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

        A provider may also accept ``query: str | None = None`` (see the module doc)."""
        ...


class NoSummary:
    """The default: no summary."""

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None,
        query: str | None = None,
    ) -> Message | None:
        return None


def takes_query(provider: SummaryProvider) -> bool:
    """Whether ``provider.summary`` accepts the ``query`` keyword (is question-aware)."""
    try:
        params = inspect.signature(provider.summary).parameters
    except (TypeError, ValueError):
        return False
    return "query" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
