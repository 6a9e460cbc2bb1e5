"""SQL text both engines' migrations share: schema 3's keyed purge tombstones, and how its
down migration keeps them (and their key) so that going down and up again loses nothing.

Down from 3, the key moves into a ``pseudonym-key`` tombstone (version 0: no watermark
sees it) and the hashed purge tombstones become ``purge-hashed`` (schema 2 reads raw ids in
``purge`` ones, and would never match a hash); up to 3 takes both back.
"""

from __future__ import annotations

from bruno_memory.tiers.sql import text as _sql


def raw_purge(sql: str, row: str = "NEW") -> str:
    """A guard predicate (``_sql.tombstoned``) as schema 2 had it: a purge tombstone holds
    the user id itself."""
    return sql.replace(_sql.PSEUDONYM.format(x=f"{row}.user_id"), f"{row}.user_id")


def keep_key(fresh: str) -> str:
    """Store the pseudonym key: the one a down migration kept, else ``fresh`` (SQL)."""
    return (
        "INSERT INTO bruno_meta (name, value) VALUES ('pseudonym_key', COALESCE("
        f"(SELECT id FROM tombstones WHERE scope = 'pseudonym-key'), {fresh}))"
    )


PSEUDONYMIZE = [
    _sql.PSEUDONYMIZE_TOMBSTONES,  # the raw ids schema 2 wrote
    "DELETE FROM tombstones WHERE scope = 'purge-hashed' "
    "AND id IN (SELECT id FROM tombstones WHERE scope = 'purge')",
    "UPDATE tombstones SET scope = 'purge' WHERE scope = 'purge-hashed'",
    "DELETE FROM tombstones WHERE scope = 'pseudonym-key'",
]
"""Up to schema 3: purge tombstones hashed, those a down migration kept taken back."""

STASH_KEY = [
    "INSERT INTO tombstones (scope, id, version) "
    "SELECT 'pseudonym-key', value, 0 FROM bruno_meta WHERE name = 'pseudonym_key'",
    "UPDATE tombstones SET scope = 'purge-hashed' WHERE scope = 'purge'",
]
"""Down from schema 3: the key and the hashed purge tombstones kept aside."""
