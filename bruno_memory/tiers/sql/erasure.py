"""What makes an SQLite erasure leave no plaintext in the files (pure SQL text).

With ``secure_delete`` on, SQLite zeroes the content of deleted rows and freed pages. An
FTS5 index is an append-only set of segments, though: deleting a row adds a delete marker
(which itself holds the row's terms) and leaves the old segment in place until a merge.
``optimize`` merges every segment into one, dropping deleted entries and their markers;
the pages the old segments held are freed, so zeroed. The WAL is checkpointed with
``TRUNCATE`` when the tier closes (see ``SQLiteTier.aclose``).
"""

from __future__ import annotations

FTS_TABLES = ("messages_fts", "memories_fts")

MERGE_FTS = [f"INSERT INTO {t}({t}) VALUES ('optimize')" for t in FTS_TABLES]
"""Rewrite each full-text index as one segment without the erased rows' terms."""
