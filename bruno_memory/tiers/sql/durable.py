"""What the SQL tiers share beyond SQL text: write ops -> statements, rows -> records,
and every read, over a tier's ``_fetch``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import audit_pending, codec, cursors
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.ops import (
    EMPTY,
    ClaimConversation,
    ClearHistory,
    Delete,
    Empty,
    Key,
    Namespace,
    PurgeUser,
    Put,
    Value,
    WriteOp,
    is_fill,
)
from bruno_memory.core.queries import (
    Count,
    LatestSession,
    ListSessions,
    MemoriesBetween,
    MessageAt,
    MessagePage,
    MessagesBetween,
    Neighbour,
    Neighbours,
    Page,
    QueryMemories,
    Scan,
    ScanPayloads,
    Scored,
    SearchPhrase,
    SearchText,
    Statistics,
    StoredPayload,
    Tombstone,
    Tombstones,
    Watermark,
)
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.summaries import HIDDEN
from bruno_memory.core.text import terms
from bruno_memory.tiers.base import answers
from bruno_memory.tiers.sql import audit, changes
from bruno_memory.tiers.sql import text as _sql

Statement = tuple[str, list[tuple[Any, ...]]]

CAPABILITIES = frozenset({
    Capability.MESSAGES, Capability.WINDOWS, Capability.SESSIONS, Capability.USERS,
    Capability.MEMORIES, Capability.MEMORY_QUERY, Capability.TEXT_SEARCH, Capability.STATS,
    Capability.DURABLE, Capability.SCAN, Capability.AUDIT, Capability.DROP,
})
"""What an authoritative SQL tier does: holds and answers everything but vectors."""

UPSERTS = {ns: _sql.upsert(*target) for ns, target in _sql.UPSERT_TARGETS.items()}
_DELETE = {
    "message": "DELETE FROM messages WHERE id = ?",
    "session": "DELETE FROM sessions WHERE session_id = ?",
    "conversation": "DELETE FROM sessions WHERE conversation_id = ?",
    "user": "DELETE FROM users WHERE user_id = ?",
    "memory": "DELETE FROM memories WHERE id = ?",
}
CLAIM = "UPDATE messages SET user_id = ? WHERE conversation_id = ?"
"""A conversation's messages become its owner's (see ``ops.ClaimConversation``)."""
CLEAR_ALL = "DELETE FROM messages WHERE conversation_id = ?"
CLEAR_KEEP_SYSTEM = "DELETE FROM messages WHERE conversation_id = ? AND role <> 'system'"
PURGE = [
    "DELETE FROM messages WHERE user_id = ? OR conversation_id IN "
    "(SELECT conversation_id FROM sessions WHERE user_id = ?)",
    "DELETE FROM sessions WHERE user_id = ?",
    "DELETE FROM memories WHERE user_id = ?",
    "DELETE FROM users WHERE user_id = ?",
]
_PURGE_ARITY = [2, 1, 1, 1]


TOMBSTONE = (
    "INSERT INTO tombstones AS t (scope, id, version) VALUES (?, ?, ?) ON CONFLICT (scope, id) "
    "DO UPDATE SET version = excluded.version WHERE excluded.version > t.version"
)
PRUNE_TOMBSTONES = "DELETE FROM tombstones WHERE version < ?"
TOMBSTONE_HORIZON = 7 * 86400 * 10**9
"""Tombstones older than this (in version nanoseconds) than a newer one are pruned: a
replayed write older than a week could resurrect what it predates."""
_NEWER = " AND version <= ?"
PURGE_VERSIONED = [
    "DELETE FROM messages WHERE (user_id = ? OR conversation_id IN "
    "(SELECT conversation_id FROM sessions WHERE user_id = ?)) AND version <= ?",
    *(sql + _NEWER for sql in PURGE[1:]),
]


def plan(ops: Sequence[WriteOp], tags: Any) -> list[Statement]:
    """Statements for ``ops``, consecutive ones with the same SQL batched together.

    Versioned deletes (``version > 0``) remove only rows not newer than themselves and
    leave a tombstone (see ``_sql.TOMBSTONES``).

    Args:
        ops: the writes, in order.
        tags: turns a tag list into the driver's parameter (JSON text or an array).
    """
    out: list[Statement] = []
    for sql, row in _rows(ops, tags):
        if out and out[-1][0] == sql:
            out[-1][1].append(row)
        else:
            out.append((sql, [row]))
    newest = max((_version(op) for op in ops if not isinstance(op, Put) and not is_fill(op)),
                 default=0)
    if newest:
        out.append((PRUNE_TOMBSTONES, [(newest - TOMBSTONE_HORIZON,)]))
    return out


def _version(op: WriteOp) -> int:
    return 0 if is_fill(op) else op.version


def _rows(ops: Sequence[WriteOp], tags: Any) -> Any:
    for op in ops:
        if isinstance(op, Put):
            yield UPSERTS[op.key.ns], (*_row(op.value, tags), op.version)
        elif isinstance(op, (Delete, ClearHistory, PurgeUser)) and op.version:
            yield from _versioned(op)
        elif isinstance(op, Delete):
            yield _DELETE[op.key.ns], (op.key.id,)
        elif isinstance(op, ClearHistory):
            yield (CLEAR_KEEP_SYSTEM if op.keep_system else CLEAR_ALL), (op.conversation_id,)
        elif isinstance(op, PurgeUser):
            for sql, arity in zip(PURGE, _PURGE_ARITY, strict=True):
                yield sql, (op.user_id,) * arity
        elif isinstance(op, ClaimConversation):
            yield CLAIM, (op.user_id, op.conversation_id)
        elif not is_fill(op):  # caches' fills: nothing to store here
            raise TypeError(f"unknown write op {op!r}")


def _versioned(op: Delete | ClearHistory | PurgeUser) -> Any:
    """A delete that spares newer rows, and its tombstone."""
    v = op.version
    if isinstance(op, Delete):
        yield _DELETE[op.key.ns] + _NEWER, (op.key.id, v)
        yield TOMBSTONE, (op.key.ns, op.key.id, v)
    elif isinstance(op, ClearHistory):
        sql = CLEAR_KEEP_SYSTEM if op.keep_system else CLEAR_ALL
        yield sql + _NEWER, (op.conversation_id, v)
        yield TOMBSTONE, ("clear" if op.keep_system else "clear-all", op.conversation_id, v)
    else:
        for sql, arity in zip(PURGE_VERSIONED, _PURGE_ARITY, strict=True):
            yield sql, (*(op.user_id,) * arity, v)
        yield _sql.PURGE_TOMBSTONE, (op.user_id, v)  # keyed hash, never the raw id


def _row(value: Value, tags: Any) -> tuple[Any, ...]:
    if isinstance(value, MessageRecord):
        return codec.message_row(value)
    if isinstance(value, SessionContext):
        return codec.session_row(value)
    if isinstance(value, UserContext):
        return codec.user_row(value)
    row = codec.memory_row(value)
    return (*row[:5], tags(row[5]), *row[6:])


def merged(writes: Sequence[Sequence[Statement]]) -> list[Statement]:
    """The statements of many writes, in order, consecutive ones with the same SQL joined
    (so a batch of single-message writes is one statement of many rows). The writes' audit
    appends come last, as one statement chaining their events in order: they commit with
    the data all the same, and neither split the data statements nor hold the trail's lock
    for longer than the end of the transaction."""
    out: list[Statement] = []
    events: list[Any] = []
    for statements in writes:
        for sql, rows in statements:
            if sql == audit.APPEND:
                events.extend(rows)
            elif out and out[-1][0] == sql:
                out[-1][1].extend(rows)
            else:
                out.append((sql, list(rows)))
    if events:
        out.append((audit.APPEND, events))
    return out


class DurableWrites:
    """Mixin: ``write`` plans statements and submits them to the tier's group commit,
    which applies concurrent writes together through the tier's ``_apply``.

    The tier makes ``_group`` in ``open`` (``_open_group``) and drains it in ``aclose``
    before closing its connections.
    """

    name: str
    capabilities: frozenset[Capability]
    _group: GroupCommit[list[Statement]] | None = None

    async def _apply(self, writes: Sequence[list[Statement]]) -> None:
        """Apply the statements of ``writes`` in order, in one transaction."""
        raise NotImplementedError

    def _tags_param(self, tags: list[str]) -> Any:
        raise NotImplementedError

    def _open_group(self) -> None:
        # the next batch goes before the last one's callers go on where the round trip
        # leaves the event loop free (a server's: ``Capability.PIPELINES``)
        self._group = GroupCommit(self._apply, tier=self.name,
                                  pipelined=Capability.PIPELINES in self.capabilities)

    async def _close_group(self) -> None:
        if self._group is not None:
            await self._group.aclose()

    def group_commit_metrics(self) -> dict[str, int]:
        """How writes were gathered into transactions: ``batches`` well below ``writes``
        under concurrency (see ``group_commit.GroupCommitStats``); empty before ``open``."""
        return self._group.metrics() if self._group else {}

    async def write(self, ops: Sequence[WriteOp]) -> None:
        statements = plan(ops, self._tags_param)  # encoding errors stay the caller's own
        if not statements:
            return
        if self._group is None:
            raise TierUnavailable("the tier is not open (call open())", tier=self.name, op="write")
        events = audit_pending.take()  # the write's audit events: in its own transaction
        if events:
            statements.append((audit.APPEND, [e.row() for e in events]))
        await self._group.submit(statements)



def decode_row(key: Key, row: Sequence[Any]) -> Value:
    """The record of a ``_sql.by_key`` row."""
    if key.ns == "message":
        conversation_id, user_id, text = row
        return codec.message_from_row(text, conversation_id, user_id)
    value: Value = codec.from_payload(key.ns, row[0])
    return value


def scored_messages(rows: Sequence[Sequence[Any]]) -> list[Scored[MessageRecord]]:
    """``(conversation_id, user_id, payload, score)`` rows as scored message records."""
    records = codec.message_rows(rows)
    return [Scored(r, row[3]) for r, row in zip(records, rows, strict=True)]


def neighbours_of_rows(rows: Iterable[Sequence[Any]]) -> list[Neighbour]:
    """``_sql.neighbours`` rows as neighbours, numbered outwards from their message."""
    nearest_first = sorted(rows, key=lambda r: (r[0], r[1], r[1] * r[2], r[1] * r[3]))
    seen: dict[tuple[str, int], int] = {}
    out: list[Neighbour] = []
    for of, side, _, _, conversation_id, user_id, payload in nearest_first:
        n = seen[of, side] = seen.get((of, side), 0) + 1
        record = codec.message_from_row(payload, conversation_id, user_id)
        out.append(Neighbour(of, side * n, record))
    return out


class DurableReads:
    """Mixin: every read of a SQL tier, over its ``_fetch`` and ``_errors`` and its ``dialect``."""

    dialect: _sql.Dialect
    ids_per_query: int = _sql.MESSAGES_BY_ID_CHUNK
    """Ids read by one ``get`` query at most (a driver's bound-parameter limit)."""

    async def _fetch(self, sql: str, params: Iterable[Any], op: str) -> list[Any]:
        raise NotImplementedError

    def _errors(self, op: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        out: dict[Key, Value | Empty] = {}
        for ns, by_ids in _sql.BY_IDS.items():
            ids = [k.id for k in keys if k.ns == ns]
            if len(ids) > 1:  # a batch's ids (the façade checks them): one query a chunk
                await self._get_many(ns, by_ids, ids, out)
                keys = [k for k in keys if k.ns != ns]
        for key in keys:
            rows = await self._fetch(*_sql.by_key(key), "get")
            with self._errors("get"):
                out[key] = decode_row(key, rows[0]) if rows else EMPTY
        return out

    async def _get_many(
        self, ns: Namespace, by_ids: _sql.ByIds, ids: list[str], out: dict[Key, Value | Empty]
    ) -> None:
        step = self.ids_per_query
        for at in range(0, len(ids), step):
            chunk = ids[at : at + step]
            rows = await self._fetch(*by_ids(chunk), "get")
            with self._errors("get"):
                held = {str(r[0]): r[1:] for r in rows}
                for id_ in chunk:
                    row, key = held.get(id_), Key(ns, id_)
                    out[key] = EMPTY if row is None else decode_row(key, row)

    async def window(self, conversation_id: str, limit: int | None) -> Sequence[MessageRecord]:
        n = self.dialect.no_limit if limit is None else limit
        rows = await self._fetch(_sql.WINDOW, (conversation_id, n), "window")
        with self._errors("window"):
            return codec.message_rows(reversed(rows))

    async def _bounded(self, words: list[str]) -> list[str]:
        """The words a message search scores (a tier may drop the commonest: ``postings``)."""
        return words

    async def _search_rows(self, words: list[str], q: SearchText) -> list[Any]:
        """The message search's rows (conversation_id, user_id, payload, score), best first;
        a tier may answer by a shortcut, and ask this exact statement when it falls short."""
        sql = _sql.search_messages(
            self.dialect, words, q.user_id, q.conversation_id, q.limit, q.include_archived
        )
        return await self._fetch(*sql, "search")

    @answers(SearchText)
    async def _search_text(self, q: SearchText) -> list[Scored[MessageRecord]]:
        words = terms(q.text)
        if not words or q.limit <= 0:
            return []
        rows = await self._search_rows(await self._bounded(words), q)
        with self._errors("search"):
            return scored_messages(rows)

    @answers(QueryMemories)
    async def _query_memories(self, q: QueryMemories) -> list[Scored[MemoryEntry]]:
        query = q.query
        sql = _sql.query_memories(self.dialect, query, terms(query.query_text or ""), q.now)
        rows = await self._fetch(*sql, "query_memories")
        scores = _sql.relative_scores([float(s) for _, s in rows])
        with self._errors("query_memories"):
            entries = codec.from_payloads("memory", [p for p, _ in rows])
        return [Scored(e, s) for e, s in zip(entries, scores, strict=True)]

    @answers(Neighbours)
    async def _neighbours(self, q: Neighbours) -> list[Neighbour]:
        """In one query; unknown ids have none."""
        if not q.ids or (q.before <= 0 and q.after <= 0):
            return []
        rows = await self._fetch(*_sql.neighbours(q.ids, q.before, q.after), "neighbours")
        with self._errors("neighbours"):
            return neighbours_of_rows(rows)

    @answers(LatestSession)
    async def _latest_session(self, q: LatestSession) -> SessionContext | None:
        rows = await self._fetch(_sql.LATEST_SESSION, (q.user_id,), "latest_session")
        with self._errors("latest_session"):
            return codec.from_payload("session", rows[0][0]) if rows else None

    @answers(Statistics)
    async def _statistics(self, q: Statistics) -> dict[str, Any]:
        now = time.time() if q.now is None else q.now
        hidden = list(q.hidden[: len(HIDDEN)])  # the statement has one mark per HIDDEN
        hidden += [hidden[-1] if hidden else ""] * (len(HIDDEN) - len(hidden))
        rows = await self._fetch(
            _sql.STATISTICS, [*[q.user_id] * 5, now, *hidden], "statistics"
        )
        by_type = await self._fetch(
            _sql.MEMORIES_BY_TYPE, (q.user_id, now, *hidden), "statistics"
        )
        turns = await self._fetch(_sql.TURNS, (q.user_id,), "statistics")
        return _sql.statistics(rows[0], by_type, turns[0])

    @answers(Scan)
    async def _scan(self, q: Scan) -> Page[Value]:
        sql = _sql.scan(q.kind, q.user_id, q.after, q.limit, q.since)
        rows = await self._fetch(*sql, "scan")
        with self._errors("scan"):
            items = [decode_row(Key(q.kind, str(row[0])), row[1:]) for row in rows]
        done = len(rows) < q.limit or q.limit <= 0
        return Page(items, None if done else str(rows[-1][0]))

    @answers(ScanPayloads)
    async def _scan_payloads(self, q: ScanPayloads) -> Page[StoredPayload]:
        sql = _sql.scan(q.kind, q.user_id, q.after, q.limit, q.since)
        rows = await self._fetch(*sql, "scan")
        if q.kind == "message":
            items = [StoredPayload(r[3], r[1], r[2]) for r in rows]
        else:
            items = [StoredPayload(r[1]) for r in rows]
        done = len(rows) < q.limit or q.limit <= 0
        return Page(items, None if done else str(rows[-1][0]))

    @answers(Tombstones)
    async def _tombstones(self, q: Tombstones) -> Page[Tombstone]:
        rows = await self._fetch(*changes.tombstones(q.since, q.after, q.limit), "tombstones")
        done = len(rows) < q.limit or q.limit <= 0
        items = [Tombstone(str(s), str(i), int(v)) for s, i, v in rows]
        return Page(items, None if done else changes.cursor(items[-1]))

    @answers(Count)
    async def _count(self, q: Count) -> int:
        rows = await self._fetch(*_sql.count(q.kind, q.user_id), "count")
        return int(rows[0][0])

    @answers(Watermark)
    async def _watermark(self, q: Watermark) -> int:
        rows = await self._fetch(_sql.WATERMARK, (), "watermark")
        return int(rows[0][0] or 0)

    @answers(MessagesBetween)
    async def _messages_between(self, q: MessagesBetween) -> list[MessageRecord]:
        if q.limit <= 0 or q.start >= q.end:
            return []
        sql = _sql.messages_between(q.start, q.end, q.user_id, q.conversation_id, q.limit)
        rows = await self._fetch(*sql, "messages_between")
        with self._errors("messages_between"):
            return codec.message_rows(rows)

    @answers(MemoriesBetween)
    async def _memories_between(self, q: MemoriesBetween) -> list[MemoryEntry]:
        if q.limit <= 0 or q.start >= q.end:
            return []
        sql = _sql.memories_between(q.user_id, q.start, q.end, q.by, q.conversation_id, q.limit)
        rows = await self._fetch(*sql, "memories_between")
        with self._errors("memories_between"):
            return codec.from_payloads("memory", [p for (p,) in rows])

    @answers(SearchPhrase)
    async def _search_phrase(self, q: SearchPhrase) -> list[Scored[MessageRecord]]:
        if not terms(q.phrase, keep_stopwords=True) or q.limit <= 0:
            return []
        sql = _sql.search_phrase(self.dialect, q.phrase, q.user_id, q.conversation_id, q.limit,
                                 q.include_archived)
        rows = await self._fetch(*sql, "search_phrase")
        with self._errors("search_phrase"):
            return scored_messages(rows)

    @answers(ListSessions)
    async def _list_sessions(self, q: ListSessions) -> Page[SessionContext]:
        if q.limit <= 0:
            return Page([], None)
        sql = _sql.list_sessions(q.user_id, q.before, q.limit, q.conversations)
        rows = await self._fetch(*sql, "list_sessions")
        with self._errors("list_sessions"):
            items = [codec.from_payload("session", p) for _, _, p in rows[: q.limit]]
        last = rows[q.limit - 1] if len(rows) > q.limit else None
        return Page(items, None if last is None else cursors.encode(float(last[0]), last[1]))

    @answers(MessageAt)
    async def _message_at(self, q: MessageAt) -> cursors.MessagePosition | None:
        rows = await self._fetch(_sql.MESSAGE_AT, (q.conversation_id, q.message_id), "message_at")
        return (float(rows[0][0]), int(rows[0][1])) if rows else None

    @answers(MessagePage)
    async def _message_page(self, q: MessagePage) -> Page[MessageRecord]:
        if q.limit <= 0:
            return Page([], None)
        sql = _sql.message_page(q.conversation_id, q.cursor, q.forward, q.limit, q.until)
        rows = await self._fetch(*sql, "message_page")
        page = rows[: q.limit]  # nearest first
        with self._errors("message_page"):
            items = codec.message_rows(row[2:] for row in page)
        far = cursors.encode(float(page[-1][0]), int(page[-1][1])) if page else None
        near = cursors.encode(float(page[0][0]), int(page[0][1])) if page else None
        if not q.forward:
            items.reverse()
        return Page(items, far if len(rows) > q.limit else None, near)
