"""The archive flag: an archived message left the hot path but is kept (pure).

Archival marks a message in its own metadata (``metadata["bruno_archived"]``: when it was
archived, ISO 8601), so the flag travels with the message through every tier, journal and
export, and unarchiving is removing the key. Durable tiers index it (a generated
``archived`` column) and leave archived messages out of windows and default search; caches
drop a window that an archived message would enter, so it refills from the durable tier.
"""

from __future__ import annotations

from typing import Any

ARCHIVED = "bruno_archived"
"""The metadata key marking an archived message."""


def is_archived(message: Any) -> bool:
    """Whether a ``Message`` (or a record holding one as ``.message``) is archived."""
    held = getattr(message, "message", message)
    metadata = getattr(held, "metadata", None)
    return isinstance(metadata, dict) and metadata.get(ARCHIVED) is not None
