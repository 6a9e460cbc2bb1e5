"""What the SQL tiers share: column lists and the ``MemoryQuery`` filter (pure).

Queries use ``?`` placeholders; PostgreSQL numbers them with ``numbered``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bruno_core.models.memory import MemoryQuery

from bruno_memory.core.ops import Key, Namespace
from bruno_memory.core.summaries import HIDDEN

MESSAGE_COLUMNS = "id, conversation_id, user_id, role, ts, content, payload, version"
SESSION_COLUMNS = "session_id, user_id, conversation_id, is_active, started, payload, version"
USER_COLUMNS = "user_id, payload, version"
MEMORY_COLUMNS = (
    "id, user_id, conversation_id, memory_type, category, tags, confidence, importance, "
    "created, updated, expires, content, payload, version"
)


UPSERT_TARGETS: dict[str, tuple[str, str, str]] = {
    "message": ("messages", MESSAGE_COLUMNS, "id"),
    "session": ("sessions", SESSION_COLUMNS, "session_id"),
    "user": ("users", USER_COLUMNS, "user_id"),
    "memory": ("memories", MEMORY_COLUMNS, "id"),
}
"""Record namespace -> (table, columns, key column) of its upsert."""


TOMBSTONES = [
    "CREATE TABLE tombstones (scope TEXT NOT NULL, id TEXT NOT NULL, version BIGINT NOT NULL, "
    "PRIMARY KEY (scope, id))",
    "CREATE INDEX tombstones_version ON tombstones (version)",
]
"""Versioned deletes leave a tombstone, so an older put replayed later cannot resurrect.

``scope`` is a record namespace (a deleted record), ``clear`` / ``clear-all`` (a cleared
conversation, system messages kept or not) or ``purge`` (a forgotten user). A forgotten
user's tombstone never holds her id: its ``id`` is her ``PSEUDONYM``.
"""

META = [
    "CREATE TABLE bruno_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
"""The store's own settings; ``pseudonym_key`` is the secret of ``PSEUDONYM`` (64 hex
digits, made once per store by its first migration to schema 3)."""

PSEUDONYM = (
    "bruno_pseudonym((SELECT value FROM bruno_meta WHERE name = 'pseudonym_key'), {x})"
)
"""SQL computing the keyed hash that stands for a user id in a tombstone:
``hex(sha256(k || sha256(k || utf8(user_id))))`` with ``k`` the store's 32-byte secret
(``bruno_meta.pseudonym_key``), i.e. a PRF keyed per store: without the secret the id
cannot be recovered or confirmed by hashing guesses. Each engine defines
``bruno_pseudonym(key_hex, text)``: SQLite as a function of the connection (``pseudonym``),
PostgreSQL as an SQL function (pgcrypto is not needed). SQLite has no hash function of its
own, so a connection inserting rows into a store's file must register it first, as the tier
does (``conn.create_function("bruno_pseudonym", 2, pseudonym, deterministic=True)``): the
tombstone triggers call it. Reading needs nothing."""

PURGE_TOMBSTONE = (
    "INSERT INTO tombstones AS t (scope, id, version) VALUES ('purge', "
    + PSEUDONYM.format(x="?")
    + ", ?) ON CONFLICT (scope, id) DO UPDATE SET version = excluded.version "
    "WHERE excluded.version > t.version"
)
PSEUDONYMIZE_TOMBSTONES = (
    "UPDATE tombstones SET id = " + PSEUDONYM.format(x="id") + " WHERE scope = 'purge'"
)
"""Migration 3: the raw user ids earlier versions kept in purge tombstones, hashed."""


def pseudonym(key_hex: str | None, user_id: str | None) -> str | None:
    """``PSEUDONYM`` in Python (SQLite's ``bruno_pseudonym``; tests check stores with it)."""
    if key_hex is None or user_id is None:
        return None
    key = bytes.fromhex(key_hex)
    inner = hashlib.sha256(key + user_id.encode("utf-8", "surrogatepass")).digest()
    return hashlib.sha256(key + inner).hexdigest()

_HASHED_USER = PSEUDONYM.format(x="{r}.user_id")
_GUARDS: dict[str, list[tuple[str, str]]] = {
    "messages": [("message", "{r}.id"), ("clear-all", "{r}.conversation_id"),
                 ("clear", "CASE WHEN {r}.role <> 'system' THEN {r}.conversation_id END"),
                 ("purge", _HASHED_USER)],
    "sessions": [("session", "{r}.session_id"), ("conversation", "{r}.conversation_id"),
                 ("purge", _HASHED_USER)],
    "users": [("user", "{r}.user_id"), ("purge", _HASHED_USER)],
    "memories": [("memory", "{r}.id"), ("purge", _HASHED_USER)],
}


def tombstoned(table: str, row: str = "NEW") -> str:
    """The predicate true when a tombstone at least as new as ``row`` (a row of ``table``)
    covers it: an upsert older than a delete, a clear or a purge of its record.

    SQLite drops such a row in a ``BEFORE INSERT`` trigger; PostgreSQL deletes the rows a
    statement inserted that match it, once per statement.
    """
    scopes = " OR ".join(f"(t.scope = '{s}' AND t.id = {col.format(r=row)})"
                         for s, col in _GUARDS[table])
    return (f"{row}.version > 0 AND EXISTS (SELECT 1 FROM tombstones t "
            f"WHERE t.version >= {row}.version AND ({scopes}))")


GUARDED_TABLES = tuple(_GUARDS)


OWNED: dict[str, str] = {"sessions": " AND t.user_id = excluded.user_id"}
"""What an upsert must not change, silently: a session never changes its user."""

MOVED = "bruno-memory: this id belongs to a record of another conversation or owner"
"""The error an upsert moving a message to another conversation or owner, or a memory to
another user, raises (``MOVED_CHECKS``): the write is refused whole, nothing moves."""
MOVED_CHECKS: dict[str, str] = {
    "messages": "NEW.conversation_id <> OLD.conversation_id "
                "OR (OLD.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id)",
    "memories": "NEW.user_id <> OLD.user_id",
}
"""Per table, when an update by an upsert (it sets ``conversation_id``/``user_id``; a claim
sets ``user_id`` alone) moves the record: a ``BEFORE UPDATE OF`` trigger raises ``MOVED``."""
MOVED_COLUMN = {"messages": "conversation_id", "memories": "user_id"}


def upsert(table: str, columns: str, key: str, source: str | None = None) -> str:
    """An upsert that never lets an older version overwrite a newer one, nor changes a
    session's user (``OWNED``); moving a message or a memory raises (``MOVED``).

    ``source`` replaces the ``VALUES (?, ...)`` row, e.g. with a ``SELECT`` of many rows.
    """
    cols = [c.strip() for c in columns.split(",")]
    rows = source or f"VALUES ({', '.join('?' for _ in cols)})"
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    return (
        f"INSERT INTO {table} AS t ({columns}) {rows} ON CONFLICT ({key}) "
        f"DO UPDATE SET {sets} WHERE excluded.version >= t.version{OWNED.get(table, '')}"
    )


def memory_filters(
    q: MemoryQuery, now: float, tags_any: Callable[[list[str]], tuple[str, list[Any]]]
) -> tuple[str, list[Any]]:
    """The WHERE clause (alias ``m``) for every filter field of a ``MemoryQuery``."""
    clauses = ["m.user_id = ?", "m.confidence >= ?", "m.importance >= ?"]
    params: list[Any] = [q.user_id, q.min_confidence, q.min_importance]
    if q.memory_types:
        clauses.append(f"m.memory_type IN ({_marks(q.memory_types)})")
        params += [t.value for t in q.memory_types]
    if q.categories:
        clauses.append(f"m.category IN ({_marks(q.categories)})")
        params += list(q.categories)
    hide = [c for c in HIDDEN if c not in q.categories]  # only when asked (core.summaries)
    if hide:
        clauses.append(f"(m.category IS NULL OR m.category NOT IN ({_marks(hide)}))")
        params += hide
    if q.tags:
        sql, tag_params = tags_any(list(q.tags))
        clauses.append(sql)
        params += tag_params
    if not q.include_expired:
        clauses.append("(m.expires IS NULL OR m.expires > ?)")
        params.append(now)
    return " AND ".join(clauses), params


OWNER_TOKEN = "'u' || lower(hex({x}))"
"""SQL: the token an FTS index stores for the owner ``{x}`` (NULL for none): the hex of its
UTF-8 bytes, one tokenizer token whatever the id holds (see ``owner_token``)."""


def owner_token(user_id: str) -> str:
    """``OWNER_TOKEN`` computed here: safe to quote in a ``MATCH`` phrase (``[0-9a-f]``)."""
    return "u" + user_id.encode("utf-8", "surrogatepass").hex()


DEFAULT_MEMORY_ORDER = "m.importance DESC, m.updated DESC, m.id"


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines in the shared read queries.

    ``{t}`` in the full-text pieces stands for the table (``messages`` or ``memories``);
    ``fts_source`` is the FROM clause (alias ``m``), ``fts_match`` the predicate taking
    one ``?`` (the joined terms), ``fts_score`` the rank (higher is better).
    """

    fts_source: str
    fts_match: str
    fts_score: str
    join_terms: Callable[[list[str]], str]
    tags_any: Callable[[list[str]], tuple[str, list[Any]]]
    no_limit: Any  # the LIMIT parameter meaning "every row"
    fts_scope: Callable[[str, str], str] | None = None
    """(joined terms, user id) -> the match parameter restricted to that user's rows in the
    index itself, if the engine's index holds the owner; the ``user_id`` filter stays."""

    def fts_terms(self, words: list[str], user_id: str | None) -> str:
        """The match parameter for ``words``, scoped to ``user_id`` when the index can be."""
        joined = self.join_terms(words)
        if user_id is None or self.fts_scope is None:
            return joined
        return self.fts_scope(joined, user_id)

    phrase_source: str = ""
    """The FROM clause of a phrase search (``{t}``, alias ``m``, taking the phrase parameter
    where ``fts_source`` takes the terms); empty: ``fts_source``."""
    join_phrase: Callable[[str], str] = str
    """A phrase -> the match parameter of ``phrase_source`` / ``fts_match``."""
    contains: str = "instr(lower({col}), lower(?)) > 0"
    """SQL true when ``{col}`` holds the parameter, case-insensitively."""

    def fts(self, table: str) -> tuple[str, str, str]:
        """(FROM, match predicate, score) for ``table``."""
        return tuple(  # type: ignore[return-value]
            part.replace("{t}", table) for part in (self.fts_source, self.fts_match, self.fts_score)
        )


def search_messages(
    d: Dialect, words: list[str], user_id: str | None, conversation_id: str | None, limit: int,
    include_archived: bool = False, gate: str | None = None,
) -> tuple[str, list[Any]]:
    """Ranked full-text search of messages matching any of ``words``, optionally scoped;
    equal scores oldest first (not left to the plan: the same words rank the same way
    whatever the index holds, plain or blind). ``gate``: a further condition without
    parameters (one that holds for every row or none picks between statements)."""
    source, match, score = d.fts("messages")
    where, params = [match], [d.fts_terms(words, user_id)]
    if gate is not None:
        where.append(gate)
    return _ranked_messages(source, score, where, params, user_id, conversation_id, limit,
                            "m.seq", include_archived=include_archived)


def query_memories(
    d: Dialect, q: MemoryQuery, words: list[str], now: float
) -> tuple[str, list[Any]]:
    """Memories passing every filter of ``q``: ranked by ``words`` if any, else by importance."""
    where, params = memory_filters(q, now, d.tags_any)
    if words:
        source, match, score = d.fts("memories")
        sql = (
            f"SELECT m.payload, {score} AS score FROM {source} "
            f"WHERE {match} AND {where} ORDER BY score DESC LIMIT ?"
        )
        params = [d.fts_terms(words, q.user_id), *params]
    else:
        sql = (
            f"SELECT m.payload, 1.0 FROM memories m WHERE {where} "
            f"ORDER BY {DEFAULT_MEMORY_ORDER} LIMIT ?"
        )
    return sql, [*params, q.limit]


def relative_scores(raw: list[float]) -> list[float]:
    """Scores in [0, 1] relative to the best hit (higher is better)."""
    best = max(raw, default=0.0)
    return [r / best if best > 0 else 1.0 for r in raw]


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


_MARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders -> ``$1, $2, ...`` (the SQL here has no literal question marks)."""
    counter = iter(range(1, 10_000))
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


WINDOW = (
    "SELECT conversation_id, user_id, payload FROM messages WHERE conversation_id = ? "
    "AND NOT archived ORDER BY ts DESC, seq DESC LIMIT ?"
)
_AT = "(SELECT {col} FROM messages WHERE id = ?)"
_NEIGHBOURS = (
    "SELECT * FROM (SELECT CAST(? AS TEXT), {side}, ts, seq, conversation_id, user_id, payload "
    f"FROM messages WHERE conversation_id = {_AT.format(col='conversation_id')} "
    f"AND (ts, seq) {{cmp}} ({_AT.format(col='ts')}, {_AT.format(col='seq')}) "
    "ORDER BY ts {order}, seq {order} LIMIT {limit}) AS n{i}"
)


@functools.lru_cache(maxsize=64)
def _neighbours_sql(count: int, before: int, after: int) -> str:
    sides = [(-1, "<", "DESC", before), (1, ">", "ASC", after)]
    parts = [
        _NEIGHBOURS.format(side=side, cmp=cmp, order=order, limit=int(limit), i=i)
        for i, (side, cmp, order, limit) in enumerate(
            s for _ in range(count) for s in sides if s[3] > 0
        )
    ]
    return " UNION ALL ".join(parts)


def neighbours(ids: Sequence[str], before: int, after: int) -> tuple[str, list[Any]]:
    """The ``before`` messages just before and ``after`` just after each of ``ids`` in its
    conversation, in ``(ts, seq)`` order (the order of ``WINDOW``).

    One ``UNION ALL`` of an ordered, ``LIMIT``-ed scan of the conversation index per id and
    side, starting at the id's position: the cost does not grow with the conversation.
    The position is read by scalar subqueries (PostgreSQL runs them first, as parameters
    of the index scan; a join would be planned as a scan and sort of the whole
    conversation). Rows: (of id, side -1 or 1, ts, seq, conversation_id, user_id,
    payload); ``ids`` must not be empty.
    """
    sides = (before > 0) + (after > 0)
    return _neighbours_sql(len(ids), before, after), [id_ for id_ in ids for _ in range(4 * sides)]


LATEST_SESSION = (
    "SELECT payload FROM sessions WHERE user_id = ? AND is_active = TRUE "
    "ORDER BY started DESC LIMIT 1"
)
_COUNTED = f"(category IS NULL OR category NOT IN ({', '.join('?' for _ in HIDDEN)}))"
"""Memories counted: not of a hidden category (``Statistics.hidden``: one value each)."""
STATISTICS = (
    "SELECT (SELECT COUNT(*) FROM messages WHERE user_id = ?),"
    " (SELECT COUNT(DISTINCT conversation_id) FROM messages WHERE user_id = ?),"
    " (SELECT COUNT(*) FROM sessions WHERE user_id = ?),"
    " (SELECT COUNT(*) FROM sessions WHERE user_id = ? AND is_active = TRUE),"
    " (SELECT COUNT(*) FROM memories WHERE user_id = ? AND (expires IS NULL OR expires > ?)"
    f" AND {_COUNTED})"
)
"""Parameters: the user id five times, now, then the hidden categories (expired memories
are not counted, nor the lifecycle's own records: ``Statistics.hidden``)."""
TURNS = (
    "SELECT SUM(CASE WHEN role = 'user' THEN 1 ELSE 0 END),"
    " COUNT(answered), AVG(answered), MAX(answered) FROM ("
    " SELECT role, CASE WHEN role = 'assistant' AND LAG(role) OVER w = 'user'"
    " THEN ts - LAG(ts) OVER w END AS answered FROM messages WHERE user_id = ?"
    " WINDOW w AS (PARTITION BY conversation_id ORDER BY ts, seq)) t"
)
"""Turns (the user's messages) and response times: for each assistant message right after
a user message in its conversation, the seconds between them."""
MEMORIES_BY_TYPE = (
    "SELECT memory_type, COUNT(*) FROM memories WHERE user_id = ? "
    f"AND (expires IS NULL OR expires > ?) AND {_COUNTED} GROUP BY memory_type"
)

_BY_KEY = {
    "message": "SELECT conversation_id, user_id, payload FROM messages WHERE id = ?",
    "session": "SELECT payload FROM sessions WHERE session_id = ?",
    "conversation": (
        "SELECT payload FROM sessions WHERE conversation_id = ? ORDER BY started DESC LIMIT 1"
    ),
    "user": "SELECT payload FROM users WHERE user_id = ?",
    "memory": "SELECT payload FROM memories WHERE id = ?",
}


_SCAN: dict[str, tuple[str, str, str]] = {
    "message": ("messages", "id", "conversation_id, user_id, payload"),
    "session": ("sessions", "session_id", "payload"),
    "user": ("users", "user_id", "payload"),
    "memory": ("memories", "id", "payload"),
}


def scan(
    kind: str, user_id: str | None, after: str | None, limit: int, since: int | None = None
) -> tuple[str, list[Any]]:
    """One page of every record of ``kind`` (written after version ``since``) in key order;
    rows: (key, *the ``by_key`` row)."""
    table, key, columns = _SCAN[kind]
    where, params = [], list[Any]()
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if since is not None:
        where.append("version > ?")
        params.append(since)
    if after is not None:
        where.append(f"{key} > ?")
        params.append(after)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"SELECT {key}, {columns} FROM {table}{clause} ORDER BY {key} LIMIT ?"
    return sql, [*params, max(limit, 0)]


def count(kind: str, user_id: str | None) -> tuple[str, list[Any]]:
    """How many records of ``kind`` (only ``user_id``'s when given)."""
    table = _SCAN[kind][0]
    if user_id is None:
        return f"SELECT COUNT(*) FROM {table}", []
    return f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", [user_id]


WATERMARK = (
    "SELECT MAX(v) FROM (SELECT MAX(version) AS v FROM messages UNION ALL "
    "SELECT MAX(version) FROM sessions UNION ALL SELECT MAX(version) FROM users UNION ALL "
    "SELECT MAX(version) FROM memories UNION ALL SELECT MAX(version) FROM tombstones) AS w"
)
"""The highest version held, records and tombstones (``queries.Watermark``)."""


def messages_between(
    start: float, end: float, user_id: str | None, conversation_id: str | None, limit: int
) -> tuple[str, list[Any]]:
    """Messages with ``start <= ts < end`` of a user and/or conversation, in ``(ts, seq)``
    order; rows as ``WINDOW``'s."""
    where, params = ["ts >= ?", "ts < ?"], list[Any]([start, end])
    for column, value in (("user_id", user_id), ("conversation_id", conversation_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = (
        "SELECT conversation_id, user_id, payload FROM messages "
        f"WHERE {' AND '.join(where)} ORDER BY ts, seq LIMIT ?"
    )
    return sql, [*params, limit]


_MEMORY_TIMES = {"created": "created", "updated": "updated"}


def memories_between(
    user_id: str, start: float, end: float, by: str, conversation_id: str | None, limit: int
) -> tuple[str, list[Any]]:
    """A user's memories whose ``by`` column is in ``[start, end)``, oldest first; rows:
    (payload,)."""
    col = _MEMORY_TIMES[by]
    where, params = ["user_id = ?", f"{col} >= ?", f"{col} < ?"], list[Any]([user_id, start, end])
    if conversation_id is not None:
        where.append("conversation_id = ?")
        params.append(conversation_id)
    sql = f"SELECT payload FROM memories WHERE {' AND '.join(where)} ORDER BY {col}, id LIMIT ?"
    return sql, [*params, limit]


def search_phrase(
    d: Dialect, phrase: str, user_id: str | None, conversation_id: str | None, limit: int,
    include_archived: bool = False,
) -> tuple[str, list[Any]]:
    """Messages holding ``phrase`` (the engine's phrase match narrows, a case-insensitive
    substring test of the content decides), ranked; rows as ``search_messages``'."""
    source, match, score = d.fts("messages")
    if d.phrase_source:
        source = d.phrase_source.replace("{t}", "messages")
    where = [match, d.contains.replace("{col}", "m.content")]
    params: list[Any] = [d.join_phrase(phrase), phrase]
    return _ranked_messages(source, score, where, params, user_id, conversation_id, limit,
                            then="m.ts DESC", include_archived=include_archived)


def _ranked_messages(
    source: str, score: str, where: list[str], params: list[Any], user_id: str | None,
    conversation_id: str | None, limit: int, then: str = "", include_archived: bool = False,
) -> tuple[str, list[Any]]:
    """A full-text search of messages (alias ``m``), scoped to a user and a conversation
    when given, archived ones left out unless asked for, best ``score`` first (ties by
    ``then``)."""
    if not include_archived:
        where.append("NOT m.archived")
    for column, value in (("m.user_id", user_id), ("m.conversation_id", conversation_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    order = f"score DESC, {then}" if then else "score DESC"
    sql = (
        f"SELECT m.conversation_id, m.user_id, m.payload, {score} AS score FROM {source} "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
    )
    return sql, [*params, limit]


def list_sessions(
    user_id: str, before: tuple[float, str] | None, limit: int, conversations: bool
) -> tuple[str, list[Any]]:
    """A page of a user's sessions, newest first (``limit`` + 1 rows: the extra one says
    a next page exists); ``conversations``: only the latest session of each conversation.
    Rows: (started, session_id, payload)."""
    where, params = ["s.user_id = ?"], list[Any]([user_id])
    if before is not None:
        where.append("(s.started, s.session_id) < (?, ?)")  # row values: an index range
        params += [before[0], before[1]]
    if conversations:
        where.append(
            "NOT EXISTS (SELECT 1 FROM sessions l WHERE l.conversation_id = s.conversation_id "
            "AND (l.started, l.session_id) > (s.started, s.session_id))"
        )
    sql = (
        f"SELECT s.started, s.session_id, s.payload FROM sessions s WHERE {' AND '.join(where)} "
        "ORDER BY s.started DESC, s.session_id DESC LIMIT ?"
    )
    return sql, [*params, limit + 1]


def message_page(
    conversation_id: str, cursor: tuple[float, int] | None, forward: bool, limit: int,
    until: tuple[float, int] | None = None,
) -> tuple[str, list[Any]]:
    """``limit`` + 1 messages of a conversation just before (or after, ``forward``) a
    position, and at or before ``until``, nearest first. Rows: (ts, seq, conversation_id,
    user_id, payload)."""
    where, params = ["conversation_id = ?"], list[Any]([conversation_id])
    cmp, order = (">", "ASC") if forward else ("<", "DESC")
    if cursor is not None:
        where.append(f"(ts, seq) {cmp} (?, ?)")  # row values: a range of the index
        params += [cursor[0], cursor[1]]
    if until is not None:
        where.append("(ts, seq) <= (?, ?)")
        params += [until[0], until[1]]
    sql = (
        "SELECT ts, seq, conversation_id, user_id, payload FROM messages "
        f"WHERE {' AND '.join(where)} ORDER BY ts {order}, seq {order} LIMIT ?"
    )
    return sql, [*params, limit + 1]


MESSAGE_AT = "SELECT ts, seq FROM messages WHERE conversation_id = ? AND id = ?"
"""Where a message stands in its conversation."""

MESSAGES_BY_ID_CHUNK = 500


def messages_by_id(ids: Sequence[str]) -> tuple[str, list[Any]]:
    """Many messages by id at once; rows: (id, *the ``by_key`` row)."""
    return (f"SELECT id, conversation_id, user_id, payload FROM messages "
            f"WHERE id IN ({_marks(list(ids))})", list(ids))


def memories_by_id(ids: Sequence[str]) -> tuple[str, list[Any]]:
    """Many memories by id at once; rows: (id, payload)."""
    return f"SELECT id, payload FROM memories WHERE id IN ({_marks(list(ids))})", list(ids)


ByIds = Callable[[Sequence[str]], tuple[str, list[Any]]]
BY_IDS: dict[Namespace, ByIds] = {"message": messages_by_id, "memory": memories_by_id}
"""Namespaces read many records a query (batches of ids, ``MESSAGES_BY_ID_CHUNK`` each)."""


def by_key(key: Key) -> tuple[str, list[Any]]:
    """The query reading one record."""
    return _BY_KEY[key.ns], [key.id]


def statistics(
    counts: Sequence[Any], by_type: Iterable[Sequence[Any]], turns: Sequence[Any]
) -> dict[str, Any]:
    """The ``get_statistics`` answer from the three statistics queries."""
    messages, conversations, sessions, active, memories = (int(c) for c in counts)
    user_turns, responses, mean, longest = turns
    return {
        "total_messages": messages,
        "conversations": conversations,
        "sessions": sessions,
        "active_sessions": active,
        "memories": memories,
        "memories_by_type": {str(t): int(n) for t, n in by_type},
        "turns": int(user_turns or 0),
        "responses": int(responses or 0),  # assistant replies right after a user turn
        "mean_response_seconds": round(float(mean), 3) if mean is not None else None,
        "max_response_seconds": round(float(longest), 3) if longest is not None else None,
    }
