"""The SQLite schema, as versioned migrations (pure data)."""

from __future__ import annotations

from bruno_memory.tiers.sql import audit
from bruno_memory.tiers.sql import migration_text as _migration_text
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.migration import Migration


def _fts(t: str) -> list[str]:
    """An external-content FTS5 index of ``t.content`` kept in step by triggers."""
    return [
        f"CREATE VIRTUAL TABLE {t}_fts USING fts5(content, content='{t}', content_rowid='seq', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {t}_ai AFTER INSERT ON {t} BEGIN "
        f"INSERT INTO {t}_fts(rowid, content) VALUES (new.seq, new.content); END",
        f"CREATE TRIGGER {t}_ad AFTER DELETE ON {t} BEGIN "
        f"INSERT INTO {t}_fts({t}_fts, rowid, content) "
        "VALUES ('delete', old.seq, old.content); END",
        f"CREATE TRIGGER {t}_au AFTER UPDATE OF content ON {t} BEGIN "
        f"INSERT INTO {t}_fts({t}_fts, rowid, content) VALUES ('delete', old.seq, old.content); "
        f"INSERT INTO {t}_fts(rowid, content) VALUES (new.seq, new.content); END",
    ]


V1 = [
    """CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL,
        user_id TEXT,
        role TEXT NOT NULL,
        ts REAL NOT NULL,
        content TEXT NOT NULL,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX messages_conversation ON messages (conversation_id, ts, seq)",
    "CREATE INDEX messages_user ON messages (user_id, conversation_id)",
    """CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        is_active INTEGER NOT NULL,
        started REAL NOT NULL,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX sessions_user ON sessions (user_id, is_active, started)",
    "CREATE INDEX sessions_conversation ON sessions (conversation_id, started)",
    """CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE memories (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        conversation_id TEXT,
        memory_type TEXT NOT NULL,
        category TEXT,
        tags TEXT NOT NULL,
        confidence REAL NOT NULL,
        importance REAL NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        expires REAL,
        content TEXT NOT NULL,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX memories_user ON memories (user_id, importance DESC, updated DESC)",
    "CREATE INDEX memories_user_type ON memories (user_id, memory_type)",
    *_fts("messages"),
    *_fts("memories"),
]

def _guards(hashed: bool) -> list[str]:
    """Triggers dropping an insert a newer tombstone covers; before schema 3 a purge
    tombstone held the user id itself (``hashed=False``), since then its pseudonym."""
    return [
        f"CREATE TRIGGER {t}_tombstoned BEFORE INSERT ON {t} WHEN "
        f"{_sql.tombstoned(t) if hashed else _migration_text.raw_purge(_sql.tombstoned(t))} "
        "BEGIN SELECT RAISE(IGNORE); END"
        for t in _sql.GUARDED_TABLES
    ]


V2 = [*_sql.TOMBSTONES, *_guards(hashed=False)]  # tombstones: versioned deletes
V2_DOWN = [*(f"DROP TRIGGER {t}_tombstoned" for t in _sql.GUARDED_TABLES), "DROP TABLE tombstones"]

_MOVED = [
    f"CREATE TRIGGER {t}_moved BEFORE UPDATE OF {_sql.MOVED_COLUMN[t]} ON {t} "
    f"WHEN {check.replace('IS DISTINCT FROM', 'IS NOT')} "
    f"BEGIN SELECT RAISE(ABORT, '{_sql.MOVED}'); END"
    for t, check in _sql.MOVED_CHECKS.items()
]

V3 = [  # purge tombstones keep a keyed hash of the user id, never the id (_sql.PSEUDONYM)
    *_sql.META,
    _migration_text.keep_key("lower(hex(randomblob(32)))"),
    *_migration_text.PSEUDONYMIZE,
    *(f"DROP TRIGGER {t}_tombstoned" for t in _sql.GUARDED_TABLES),
    *_guards(hashed=True),
    *_MOVED,
]
V3_DOWN = [
    *_migration_text.STASH_KEY,
    *(f"DROP TRIGGER {t}_moved" for t in _sql.MOVED_CHECKS),
    *(f"DROP TRIGGER {t}_tombstoned" for t in _sql.GUARDED_TABLES),
    *_guards(hashed=False),
    "DROP TABLE bruno_meta",
]


def _owned_fts(t: str) -> list[str]:
    """A contentless FTS5 index of ``t.content`` with its owner (``_sql.OWNER_TOKEN``) as a
    second column, so a user-scoped ``MATCH`` reads only that user's postings; kept in step
    by triggers, also when a claim sets the owner."""
    owner = _sql.OWNER_TOKEN.format(x="new.user_id")
    old_owner = _sql.OWNER_TOKEN.format(x="old.user_id")
    delete = (
        f"INSERT INTO {t}_fts({t}_fts, rowid, content, owner) "
        f"VALUES ('delete', old.seq, old.content, {old_owner});"
    )
    insert = f"INSERT INTO {t}_fts(rowid, content, owner) VALUES (new.seq, new.content, {owner});"
    return [
        f"CREATE VIRTUAL TABLE {t}_fts USING fts5(content, owner, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {t}_ai AFTER INSERT ON {t} BEGIN {insert} END",
        f"CREATE TRIGGER {t}_ad AFTER DELETE ON {t} BEGIN {delete} END",
        f"CREATE TRIGGER {t}_au AFTER UPDATE OF content, user_id ON {t} "
        f"BEGIN {delete} {insert} END",
    ]


V4 = [  # full-text search scoped in the index: the owner is a column of the FTS5 table
    *(s for t in ("messages", "memories") for s in (
        f"DROP TRIGGER {t}_ai",
        f"DROP TRIGGER {t}_ad",
        f"DROP TRIGGER {t}_au",
        f"DROP TABLE {t}_fts",
        *_owned_fts(t),
        f"INSERT INTO {t}_fts(rowid, content, owner) "
        f"SELECT seq, content, {_sql.OWNER_TOKEN.format(x='user_id')} FROM {t} ORDER BY seq",
    )),
]
V4_DOWN = [  # back to external-content indexes of the content alone, rebuilt from the tables
    *(s for t in ("memories", "messages") for s in (
        f"DROP TRIGGER {t}_ai",
        f"DROP TRIGGER {t}_ad",
        f"DROP TRIGGER {t}_au",
        f"DROP TABLE {t}_fts",
        *_fts(t),
        f"INSERT INTO {t}_fts({t}_fts) VALUES ('rebuild')",
    )),
]

V1_DOWN = [
    f"DROP TABLE {t}" for t in ("memories_fts", "messages_fts", "memories", "users", "sessions",
                                "messages")
]

ARCHIVED = [  # archival (core.archived): an archived message leaves windows and search
    "ALTER TABLE messages ADD COLUMN archived INTEGER GENERATED ALWAYS AS ("
    "instr(payload, '\"bruno_archived\"') > 0 "  # only a payload naming the key is parsed
    "AND json_extract(payload, '$.metadata.bruno_archived') IS NOT NULL) VIRTUAL",
]
ARCHIVED_DOWN = ["ALTER TABLE messages DROP COLUMN archived"]

AUDIT = [  # the hash-chained audit trail (tiers.sql.audit); edits are refused
    *audit.table("INTEGER", "REAL"),
    *(f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
      f"BEGIN SELECT RAISE(ABORT, '{audit.REFUSED}'); END" for verb in ("UPDATE", "DELETE")),
]


def _newest_first_guards() -> list[str]:
    """Schema 7's guards: the full predicate (``_sql.tombstoned``: a lookup per scope, one
    of them hashing the owner in Python, ``bruno_pseudonym``) only when some tombstone is at
    least as new as the row; an upsert newer than every tombstone (every write made now,
    an import) pays one index seek (``tombstones_version``) and no Python call."""
    return [
        f"CREATE TRIGGER {t}_tombstoned BEFORE INSERT ON {t} WHEN "
        f"NEW.version <= (SELECT max(version) FROM tombstones) AND {_sql.tombstoned(t)} "
        "BEGIN SELECT RAISE(IGNORE); END"
        for t in _sql.GUARDED_TABLES
    ]


_DROP_GUARDS = [f"DROP TRIGGER {t}_tombstoned" for t in _sql.GUARDED_TABLES]
NEWEST_FIRST = [*_DROP_GUARDS, *_newest_first_guards()]
NEWEST_FIRST_DOWN = [*_DROP_GUARDS, *_guards(hashed=True)]

LEANER_WRITES = [  # each index costs a written row about a B-tree page (SQLite CPU per memory
    # at 20,000: 59 -> 41 us without this one); the plans that chose it (purge, statistics,
    # ``MEMORIES_BY_TYPE``) seek ``memories_user`` by the same user prefix instead
    "DROP INDEX memories_user_type",
]
LEANER_WRITES_DOWN = ["CREATE INDEX memories_user_type ON memories (user_id, memory_type)"]

MIGRATIONS: list[Migration] = [
    Migration(V1, V1_DOWN),
    Migration(V2, V2_DOWN),
    Migration(V3, V3_DOWN),
    Migration(V4, V4_DOWN),
    Migration(ARCHIVED, ARCHIVED_DOWN),
    Migration(AUDIT, ["DROP TABLE audit"]),
    Migration(NEWEST_FIRST, NEWEST_FIRST_DOWN),
    Migration(LEANER_WRITES, LEANER_WRITES_DOWN),
]
