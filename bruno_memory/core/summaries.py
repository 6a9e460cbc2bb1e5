"""The categories the lifecycle keeps its own records under (pure): memory reads and the
statistics leave them out.

The lifecycle's summaries are episodic memories of category ``SUMMARY_CATEGORY``; its
bookkeeping (cursors) has category ``INTERNAL_CATEGORY``. ``retrieve_memories`` and
``search_memories`` skip both unless the query names the category
(``MemoryQuery(categories=[SUMMARY_CATEGORY])``), so they never crowd the facts and
preferences a caller ranks, and ``get_statistics`` does not count them; time-range reads and
scans (export) still hold them.
"""

from __future__ import annotations

SUMMARY_CATEGORY = "bruno-summary"
INTERNAL_CATEGORY = "bruno.internal"
HIDDEN = (SUMMARY_CATEGORY, INTERNAL_CATEGORY)


def hidden(category: str | None, asked: list[str] | tuple[str, ...]) -> bool:
    """Whether a memory of ``category`` is left out of a read asking for ``asked``."""
    return category in HIDDEN and category not in asked
