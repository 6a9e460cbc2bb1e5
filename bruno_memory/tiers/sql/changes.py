"""What changed after a version: the transferable tombstones, a page at a time (pure SQL
text; the records themselves are ``text.scan`` with ``since``)."""

from __future__ import annotations

from typing import Any

from bruno_memory.core.queries import TOMBSTONE_SCOPES, Tombstone

_SCOPES = ", ".join(f"'{s}'" for s in TOMBSTONE_SCOPES)


def cursor(tombstone: Tombstone) -> str:
    """The paging cursor after ``tombstone`` (scopes hold no colon)."""
    return f"{tombstone.scope}:{tombstone.id}"


def tombstones(since: int, after: str | None, limit: int) -> tuple[str, list[Any]]:
    """One page of the tombstones newer than ``since`` in (scope, id) order."""
    where, params = [f"scope IN ({_SCOPES})", "version > ?"], list[Any]([since])
    if after is not None:
        scope, _, id_ = after.partition(":")
        where.append("(scope > ? OR (scope = ? AND id > ?))")
        params += [scope, scope, id_]
    sql = (
        f"SELECT scope, id, version FROM tombstones WHERE {' AND '.join(where)} "
        "ORDER BY scope, id LIMIT ?"
    )
    return sql, [*params, max(limit, 0)]
