"""A memory's life in its metadata (pure): when it was valid, what superseded it, whether
it is archived or pinned, where it came from.

bruno-core's models stay as they are: everything lives in ``metadata.custom_fields``
under the names below (ISO 8601 instants, ids as strings). Superseding or archiving a
memory also sets its ``expires_at`` to that instant (the one it had before is kept in
``EXPIRES_BEFORE``), so it leaves default retrieval, statistics and semantic search in
every tier at once, and stays stored: ``include_expired=True`` or an ``as_of`` instant
finds it again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry

from bruno_memory.core.records import timestamp_key
from bruno_memory.core.summaries import INTERNAL_CATEGORY

VALID_FROM = "valid_from"
VALID_TO = "valid_to"
SUPERSEDED_BY = "superseded_by"
SUPERSEDES = "supersedes"
ARCHIVED_AT = "archived_at"
ARCHIVE_REASON = "archive_reason"
EXPIRES_BEFORE = "expires_before"
"""The ``expires_at`` a memory had before it was superseded or archived (ISO or ``None``)."""
PINNED = "pinned"
SOURCES = "source_message_ids"
CONTENT_HASH = "content_hash"
EMOTION = "emotion"
"""|VADER compound| of the content, in [0, 1], cached by whoever computed it."""
INTERNAL = INTERNAL_CATEGORY
"""The category of the lifecycle's own bookkeeping records (never ranked, merged or pruned)."""
MERGED = "merged_from"
"""How many duplicate additions were merged into this memory (never a deletion)."""


def _custom(e: MemoryEntry) -> dict[str, Any]:
    custom: dict[str, Any] = e.metadata.custom_fields
    return custom


def aware(when: datetime) -> datetime:
    """``when`` with UTC assumed for a naive datetime (bruno-core uses ``utcnow``)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def iso(when: datetime) -> str:
    return aware(when).isoformat()


def instant(value: Any) -> datetime | None:
    """An ISO string (or datetime) from the metadata as an aware datetime; junk -> ``None``."""
    if isinstance(value, datetime):
        return aware(value)
    if not isinstance(value, str):
        return None
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def is_pinned(e: MemoryEntry) -> bool:
    return _custom(e).get(PINNED) is True


def is_superseded(e: MemoryEntry) -> bool:
    return bool(_custom(e).get(SUPERSEDED_BY))


def is_archived(e: MemoryEntry) -> bool:
    return _custom(e).get(ARCHIVED_AT) is not None


def valid_from(e: MemoryEntry) -> datetime:
    return instant(_custom(e).get(VALID_FROM)) or aware(e.created_at)


def own_expiry(e: MemoryEntry) -> datetime | None:
    """When the memory itself expires, superseding and archival set aside."""
    custom = _custom(e)
    if EXPIRES_BEFORE in custom:
        return instant(custom[EXPIRES_BEFORE])
    return aware(e.expires_at) if e.expires_at is not None else None


def valid_at(e: MemoryEntry, when: datetime) -> bool:
    """Whether ``e`` held at ``when``: valid from then, not yet superseded, not expired of
    itself (archival does not end validity: an archived memory was true when it was)."""
    at = timestamp_key(when)
    if timestamp_key(valid_from(e)) > at:
        return False
    ended = instant(_custom(e).get(VALID_TO))
    if ended is not None and timestamp_key(ended) <= at:
        return False
    expiry = own_expiry(e)
    return expiry is None or timestamp_key(expiry) > at


def ended(e: MemoryEntry, when: datetime, marks: dict[str, Any]) -> MemoryEntry:
    """A copy of ``e`` that leaves default retrieval at ``when``: ``marks`` added to its
    custom fields, ``expires_at`` brought forward to ``when`` (the old one kept once)."""
    out = e.model_copy(deep=True)
    custom = out.metadata.custom_fields
    if EXPIRES_BEFORE not in custom:
        custom[EXPIRES_BEFORE] = iso(e.expires_at) if e.expires_at is not None else None
    custom.update(marks)
    if out.expires_at is None or aware(out.expires_at) > aware(when):
        out.expires_at = aware(when)
    return out


def restored(e: MemoryEntry) -> MemoryEntry:
    """A copy of an archived ``e`` back in default retrieval (its own expiry restored,
    unless it is superseded, which only a newer memory can undo)."""
    out = e.model_copy(deep=True)
    custom = out.metadata.custom_fields
    custom.pop(ARCHIVED_AT, None)
    custom.pop(ARCHIVE_REASON, None)
    if not is_superseded(out) and EXPIRES_BEFORE in custom:
        out.expires_at = instant(custom.pop(EXPIRES_BEFORE))
    return out
