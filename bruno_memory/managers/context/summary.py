"""The summary section's plug: a provider of a summary of the history before the window.

The lifecycle manager writes summaries next to the originals and reads them back with
``managers.lifecycle.StoredSummaries`` (what a YAML with ``context:`` and ``lifecycle:``
uses); the default provider has none and the section passes its budget on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from bruno_core.models import Message

__all__ = ["NoSummary", "SummaryProvider"]


@runtime_checkable
class SummaryProvider(Protocol):
    """Gives a summary of a conversation's history older than ``before``.

    The returned message goes in as is (a system message is the usual choice) if it fits
    the summary section's budget; it is counted by the builder's counter.
    """

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None
    ) -> Message | None:
        """The summary of what came before ``before`` (``None``: nothing to summarise)."""
        ...


class NoSummary:
    """The default: no summary."""

    async def summary(
        self, user_id: str, conversation_id: str, before: datetime | None
    ) -> Message | None:
        return None
