"""The PostgreSQL schema as versioned migrations (applied by ``postgres_migrator``).

Each migration is a list of statements run in one transaction; ``{config}`` is the text
search configuration (a quoted literal) the ``tsv`` columns are generated with. The
``schema_version`` table records each applied version and that configuration.
"""

from __future__ import annotations

import re

from bruno_memory.tiers.sql import audit
from bruno_memory.tiers.sql import migration_text as _migration_text
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.migration import Migration

INDEXED_CHARS = 100_000
"""Full text is indexed up to this many characters: a tsvector holds at most 1 MB, and
the tsvector of 1 MB of distinct words is larger than that."""

GIN = "USING GIN (tsv) WITH (gin_pending_list_limit = 256)"
"""Full-text indexes keep a small pending list: a search scans the whole list, so the 4 MB
default made searches over 100k messages ~6x slower (p50 ~6 ms vs ~1 ms) until a vacuum;
``fastupdate = off`` halves search time again but doubles the cost of a 1,000-row batch."""

_TSV = (
    f"TSVECTOR GENERATED ALWAYS AS (to_tsvector({{config}}, left(content, {INDEXED_CHARS}))) "
    "STORED"
)

V1 = [
    f"""CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        conversation_id TEXT NOT NULL,
        user_id TEXT,
        role TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        content TEXT NOT NULL,
        payload TEXT NOT NULL,
        version BIGINT NOT NULL DEFAULT 0,
        tsv {_TSV})""",
    "CREATE INDEX messages_conversation ON messages (conversation_id, ts, seq)",
    "CREATE INDEX messages_user ON messages (user_id, conversation_id)",
    f"CREATE INDEX messages_tsv ON messages {GIN}",
    """CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        is_active BOOLEAN NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        payload TEXT NOT NULL,
        version BIGINT NOT NULL DEFAULT 0)""",
    "CREATE INDEX sessions_user ON sessions (user_id, is_active, started)",
    "CREATE INDEX sessions_conversation ON sessions (conversation_id, started)",
    """CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        version BIGINT NOT NULL DEFAULT 0)""",
    f"""CREATE TABLE memories (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        conversation_id TEXT,
        memory_type TEXT NOT NULL,
        category TEXT,
        tags TEXT[] NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        importance DOUBLE PRECISION NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION,
        content TEXT NOT NULL,
        payload TEXT NOT NULL,
        version BIGINT NOT NULL DEFAULT 0,
        tsv {_TSV})""",
    "CREATE INDEX memories_user ON memories (user_id, importance DESC, updated DESC)",
    "CREATE INDEX memories_user_type ON memories (user_id, memory_type)",
    f"CREATE INDEX memories_tsv ON memories {GIN}",
]

_KEYS = {"messages": "id", "sessions": "session_id", "users": "user_id", "memories": "id"}


def _guard(table: str, replace: bool = False, hashed: bool = True) -> list[str]:
    """After each insert statement, remove the inserted rows a newer tombstone covers (see
    _sql.TOMBSTONES); one query per statement, skipped while there are no tombstones.
    Before schema 3 a purge tombstone held the user id itself (``hashed=False``)."""
    key = _KEYS[table]
    create = "CREATE OR REPLACE" if replace else "CREATE"
    covered = _sql.tombstoned(table, "i")
    body = [
        f"{create} FUNCTION {table}_tombstoned() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN IF EXISTS (SELECT 1 FROM tombstones) THEN "
        f"DELETE FROM {table} x USING inserted i WHERE x.{key} = i.{key} "
        f"AND x.version = i.version AND "
        f"{covered if hashed else _migration_text.raw_purge(covered, 'i')}; "
        f"END IF; RETURN NULL; END $$",
    ]
    if replace:
        return body
    return [*body, f"CREATE TRIGGER {table}_tombstoned AFTER INSERT ON {table} "
                   f"REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION {table}_tombstoned()"]


V2 = [*_sql.TOMBSTONES, *(s for t in _sql.GUARDED_TABLES for s in _guard(t, hashed=False))]
V2_DOWN = [
    *(s for t in _sql.GUARDED_TABLES for s in (
        f"DROP TRIGGER {t}_tombstoned ON {t}",
        f"DROP FUNCTION {t}_tombstoned()",
    )),
    "DROP TABLE tombstones",
]

PSEUDONYM_FUNCTION = (
    "CREATE FUNCTION bruno_pseudonym(k text, m text) RETURNS text LANGUAGE sql IMMUTABLE "
    "AS $$ SELECT encode(sha256(decode(k, 'hex') || sha256(decode(k, 'hex') || "
    "convert_to(m, 'UTF8'))), 'hex') $$"
)
"""``_sql.PSEUDONYM``'s keyed hash, with the built-in ``sha256`` (PostgreSQL 11+)."""

V3 = [  # purge tombstones keep a keyed hash of the user id, never the id (_sql.PSEUDONYM)
    *_sql.META,
    _migration_text.keep_key(
        "encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || "
        "clock_timestamp()::text, 'UTF8')), 'hex')"
    ),
    PSEUDONYM_FUNCTION,
    *_migration_text.PSEUDONYMIZE,
    *(s for t in _sql.GUARDED_TABLES for s in _guard(t, replace=True)),
    *(s for t, check in _sql.MOVED_CHECKS.items() for s in (
        f"CREATE FUNCTION {t}_moved() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN IF {check} THEN RAISE EXCEPTION '{_sql.MOVED}' "
        f"USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$",
        f"CREATE TRIGGER {t}_moved BEFORE UPDATE OF {_sql.MOVED_COLUMN[t]} ON {t} "
        f"FOR EACH ROW EXECUTE FUNCTION {t}_moved()",
    )),
]
V3_DOWN = [
    *_migration_text.STASH_KEY,
    *(s for t in _sql.MOVED_CHECKS for s in (
        f"DROP TRIGGER {t}_moved ON {t}",
        f"DROP FUNCTION {t}_moved()",
    )),
    *(s for t in _sql.GUARDED_TABLES for s in _guard(t, replace=True, hashed=False)),
    "DROP FUNCTION bruno_pseudonym(text, text)",
    "DROP TABLE bruno_meta",
]

V1_DOWN = ["DROP TABLE memories", "DROP TABLE users", "DROP TABLE sessions",
           "DROP TABLE messages"]

ARCHIVED = [  # archival (core.archived): an archived message leaves windows and search.
    # Only a payload naming the key is parsed; jsonb refuses \u0000 (a NUL in a message),
    # so those escapes are dropped first, escaped backslashes kept ("\\u0000" is text).
    "ALTER TABLE messages ADD COLUMN archived BOOLEAN GENERATED ALWAYS AS ("
    "CASE WHEN strpos(payload, '\"bruno_archived\"') = 0 THEN false ELSE "
    "coalesce(regexp_replace(payload, '(\\\\\\\\)|\\\\u0000', '\\1', 'g')::jsonb "
    "#> '{metadata,bruno_archived}', 'null'::jsonb) <> 'null'::jsonb END) STORED",
]
ARCHIVED_DOWN = ["ALTER TABLE messages DROP COLUMN archived"]

AUDIT = [  # the hash-chained audit trail (tiers.sql.audit); edits are refused
    *audit.table("BIGINT", "DOUBLE PRECISION"),
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"RAISE EXCEPTION '{audit.REFUSED}' USING ERRCODE = 'integrity_constraint_violation'; "
    "END $$",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    audit.PG_APPEND_FUNCTION,
]

MIGRATIONS: list[Migration] = [
    Migration(V1, V1_DOWN),
    Migration(V2, V2_DOWN),
    Migration(V3, V3_DOWN),
    Migration(ARCHIVED, ARCHIVED_DOWN),
    Migration(AUDIT, ["DROP FUNCTION audit_append", "DROP TABLE audit",
                      "DROP FUNCTION audit_append_only()"]),
]

ARRAY_TYPES: dict[str, tuple[str, ...]] = {
    "messages": ("text", "text", "text", "text", "float8", "text", "text", "int8"),
    "sessions": ("text", "text", "text", "bool", "float8", "text", "int8"),
    "users": ("text", "text", "int8"),
    "memories": ("text", "text", "text", "text", "text", "text", "float8", "float8", "float8",
                 "float8", "float8", "text", "text", "int8"),
}
"""Per table, the array type of each upserted column (``_sql`` column order), for batch
upserts through ``unnest``. An array column (``JSON_COLUMNS``) goes as JSON text, which
``unnest`` would otherwise flatten, and is rebuilt as an array in the statement."""

JSON_COLUMNS: dict[str, tuple[str, ...]] = {"memories": ("tags",)}
"""Per table, the ``text[]`` columns a batch upsert sends as JSON text."""

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    search_config TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""

_IDENT = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_REGCONFIG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def check_schema_name(name: str) -> str:
    """A schema name we can always quote: letters, digits, underscores; not ``pg_*``."""
    if not _IDENT.match(name) or name.lower().startswith("pg_"):
        raise ValueError(
            f"expected a schema name of 1-63 letters, digits or underscores not starting "
            f"with pg_, got {name!r}"
        )
    return name


def check_search_config(name: str) -> str:
    """A text search configuration name, optionally schema-qualified (``english``)."""
    if not _REGCONFIG.match(name):
        raise ValueError(f"expected a text search configuration name like 'english', got {name!r}")
    return name


def quoted(schema: str) -> str:
    """The schema as a quoted identifier (names are checked, so no quote can occur)."""
    return f'"{schema}"'


def lock_key(schema: str) -> str:
    """What the migration advisory lock is taken on (hashed by the server)."""
    return f"bruno_memory.migrate:{schema}"
