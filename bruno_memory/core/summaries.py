"""The category marking a summary memory (pure): memory reads leave summaries out.

The lifecycle's summaries are episodic memories of category ``SUMMARY_CATEGORY``.
``retrieve_memories``/``search_memories`` skip them unless the query asks for that
category (``MemoryQuery(categories=[SUMMARY_CATEGORY])``), so they never crowd the facts
and preferences a caller ranks; time-range reads and scans (export) still hold them.
"""

from __future__ import annotations

SUMMARY_CATEGORY = "bruno-summary"


def hidden(category: str | None, asked: list[str] | tuple[str, ...]) -> bool:
    """Whether a memory of ``category`` is left out of a read asking for ``asked``."""
    return category == SUMMARY_CATEGORY and SUMMARY_CATEGORY not in asked
