"""``sqlite``: the embedded durable tier (aiosqlite, WAL, FTS5 bm25)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import orjson

from bruno_memory.config.models import Duration, PositiveInt, TierConfig
from bruno_memory.core import audit as core_audit
from bruno_memory.core import codec
from bruno_memory.core.errors import (
    BrunoMemoryConfigError,
    CorruptRecord,
    TierError,
    TierUnavailable,
    translate_errors,
)
from bruno_memory.core.queries import SearchText
from bruno_memory.tiers.base import BaseTier
from bruno_memory.tiers.sql import audit, erasure, postings, sqlite_migrator
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.audit import DurableAudit
from bruno_memory.tiers.sql.durable import (
    CAPABILITIES,
    PURGE,
    PURGE_VERSIONED,
    UPSERTS,
    DurableReads,
    DurableWrites,
    Statement,
    merged,
)
from bruno_memory.tiers.sql.migration import SchemaMismatch

ERRORS: dict[type[BaseException], type[TierError]] = {
    codec.DecodeError: CorruptRecord,
    SchemaMismatch: TierError,
    sqlite3.OperationalError: TierUnavailable,  # locked, busy, cannot open, disk I/O
    sqlite3.DatabaseError: TierError,  # integrity, interface, corrupt file
    ValueError: TierError,  # closed connection
}


def _tags_any(tags: list[str]) -> tuple[str, list[Any]]:
    marks = ", ".join("?" for _ in tags)
    return f"EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value IN ({marks}))", tags


DIALECT = _sql.Dialect(
    fts_source="{t}_fts JOIN {t} m ON m.seq = {t}_fts.rowid",
    fts_match="{t}_fts MATCH ?",
    fts_score="-bm25({t}_fts, 1.0, 0.0)",  # the owner column weighs nothing: same ranking
    # terms match the content column only; the owner column is for the scope
    join_terms=lambda words: "content : (" + " OR ".join(f'"{w}"' for w in words) + ")",
    tags_any=_tags_any,
    no_limit=-1,
    join_phrase=lambda phrase: 'content : "' + phrase.replace('"', '""') + '"',  # FTS5 phrase
    fts_scope=lambda terms, user_id: f'owner : "{_sql.owner_token(user_id)}" AND {terms}',
)


class SQLiteConfig(TierConfig):
    """``path`` is relative to the working directory; ``:memory:`` for a private database.
    ``wal_autocheckpoint``: WAL pages (4 KiB) after which a commit copies them back into
    the file. SQLite's 1,000 checkpointed every few batches of concurrent writes (each
    dirties an index page per conversation), and a checkpoint syncs twice: 10,000 measured
    SQLite CPU per message written in batches of 50, at 20,000 messages, 54 -> 35 us."""

    kind: Literal["sqlite"] = "sqlite"
    path: str = "bruno-memory.db"
    busy_timeout: Duration = 5.0
    synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    wal_autocheckpoint: PositiveInt = 10_000


def _max_variables() -> int:
    with contextlib.closing(sqlite3.connect(":memory:")) as probe:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


MAX_VARIABLES = _max_variables()
"""Bound parameters per statement at most, as the linked SQLite allows (999 before 3.32,
32,766 since): a batch's lookup by ids is then one statement, one trip to the driver's
thread (a trip waits for the GIL while the event loop's thread is busy)."""
UPSERT_VARIABLES = min(999, MAX_VARIABLES)
"""Bound parameters of a multi-row upsert at most: larger ones measured no faster, and each
remainder size is another compiled statement the driver caches (memory)."""


class SQLiteTier(DurableAudit, DurableReads, DurableWrites, BaseTier[SQLiteConfig]):
    """Everything, authoritative, in one SQLite file."""

    config_model = SQLiteConfig
    capabilities = CAPABILITIES
    ids_per_query = MAX_VARIABLES
    placeholder = "?"
    dialect = DIALECT
    max_postings = postings.MAX_POSTINGS  # postings one message search scores at most

    async def open(self) -> None:
        cfg = self.config
        self._closed = False
        self._lock = asyncio.Lock()
        with self._errors("open"):
            if cfg.path != ":memory:":
                _make_folder(Path(cfg.path))
            self._writer = await self._connect(autocommit=True)
            await self._migrate()
            self._reader = self._writer if cfg.path == ":memory:" else await self._connect()
            await self._reader.execute(postings.VOCABULARY.format(t="messages"))
            self._stems = postings.Stems(postings.TOKENIZE)
            self._frequencies = postings.Frequencies()
            if self._reader is not self._writer:
                await self._reader.execute("PRAGMA query_only = 1")
        self._open_group()

    async def _connect(self, *, autocommit: bool = False) -> aiosqlite.Connection:
        """A connection; ``autocommit`` (the writer's): no implicit ``BEGIN``, so a lone
        statement commits by itself and a batch opens its transaction explicitly."""
        cfg = self.config
        modes: dict[str, Any] = {"isolation_level": None} if autocommit else {}
        conn = aiosqlite.connect(cfg.path, timeout=cfg.busy_timeout, **modes)
        # aiosqlite's worker thread is not a daemon: a stack never closed would hang the
        # interpreter at exit. Committed data is safe either way (WAL).
        thread = getattr(conn, "_thread", None)
        if thread is not None:
            thread.daemon = True
        await conn
        await conn.create_function("bruno_pseudonym", 2, _sql.pseudonym, deterministic=True)
        await conn.create_function("bruno_audit_link", 3, core_audit.link, deterministic=True)
        await _enable_wal(conn, cfg.busy_timeout)
        for pragma in (
            f"synchronous = {cfg.synchronous}",
            f"busy_timeout = {int(cfg.busy_timeout * 1000)}",
            "temp_store = MEMORY",
            f"wal_autocheckpoint = {cfg.wal_autocheckpoint}",
            "secure_delete = ON",  # freed pages are zeroed: erased text leaves no remnant
        ):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def _migrate(self) -> None:
        await sqlite_migrator.migrate(self._writer, f"the SQLite file {self.config.path!r}")

    async def aclose(self) -> None:
        if getattr(self, "_closed", False):
            return  # closed already (``drop`` closes first)
        self._closed = True
        await self._close_group()  # queued writes land before the connections close
        reader, writer = getattr(self, "_reader", None), getattr(self, "_writer", None)
        if reader is not None and reader is not writer:
            await reader.close()
        if writer is not None:
            with self._errors("close"), contextlib.suppress(sqlite3.OperationalError):
                # the WAL's frames go back into the file and the WAL is emptied, so text
                # erased before close leaves no copy there (busy: another process reads)
                await writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await writer.close()
        if getattr(self, "_stems", None) is not None:
            self._stems.close()

    async def drop(self) -> None:
        """Close, then delete the database file with its WAL and shared-memory files
        (``Droppable``); a process still holding it open keeps its copy until it closes.
        ``aclose`` afterwards does nothing."""
        await self.aclose()
        path = self.config.path
        if path == ":memory:":
            return

        def remove() -> None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(path + suffix).unlink(missing_ok=True)

        with self._errors("drop"):
            await asyncio.to_thread(remove)

    async def ping(self) -> None:
        with self._errors("ping"):
            await self._reader.execute("SELECT 1")

    def _errors(self, op: str) -> Any:
        return translate_errors(self.name, op, ERRORS)

    # -- writes -------------------------------------------------------------------------

    async def _apply(self, writes: Sequence[list[Statement]]) -> None:
        """One transaction for a group commit's batch; upserts of many rows as multi-row
        ``INSERT``s (about twice as fast as ``executemany``). A batch that is one
        statement commits by itself: one trip to SQLite's thread instead of three."""
        statements = merged(writes)
        calls = [c for sql, rows in statements for c in _calls(sql, rows)]
        if any(sql in ERASING for sql, _ in statements):
            calls += [(statement, (), False) for statement in erasure.MERGE_FTS]
        writer = self._writer
        async with self._lock:
            with self._errors("write"):
                if len(calls) == 1 and not calls[0][2]:
                    await writer.execute(calls[0][0], calls[0][1])
                    return
                await writer.execute("BEGIN")
                try:
                    for sql, params, many in calls:
                        await (writer.executemany if many else writer.execute)(sql, params)
                    await writer.commit()
                except BaseException:
                    await writer.rollback()
                    raise

    def _tags_param(self, tags: list[str]) -> Any:
        return orjson.dumps(tags).decode()

    # -- reads (the queries live in _durable.DurableReads) ---------------------------------

    async def _bounded(self, words: list[str]) -> list[str]:
        """The rarest words whose postings fit ``max_postings`` (``postings``)."""
        if len(words) < 2:
            return words
        tokens = self._stems.of(words)
        every = sorted({t for ts in tokens.values() for t in ts})
        frequency, missing = self._frequencies.known(every)  # read lately: a posting walk less
        if missing:
            marks = ", ".join("?" for _ in missing)
            sql = f"SELECT term, doc FROM temp.messages_terms WHERE term IN ({marks})"
            rows = await self._fetch(sql, missing, "search")
            self._frequencies.learn(missing, dict(rows))
            frequency.update(rows)
        return postings.within_postings(words, tokens, frequency, self.max_postings)

    async def _search_rows(self, words: list[str], q: SearchText) -> list[Any]:
        """A user's search ranked in the index first (``postings.index_first``); the exact
        statement only when the index's candidates were cut short and too few were kept."""
        if q.user_id is None or q.conversation_id is not None:
            return await super()._search_rows(words, q)
        _, _, score = self.dialect.fts("messages")
        match = self.dialect.fts_terms(words, q.user_id)
        sql, params, depth = postings.index_first(
            match, score, q.user_id, q.limit, q.include_archived
        )
        candidates = await self._fetch(sql, params, "search")
        kept = [row[:4] for row in candidates if row[4]][: q.limit]
        if len(kept) < q.limit and len(candidates) >= depth:  # more may lie deeper
            return await super()._search_rows(words, q)
        return kept

    async def _fetch(self, sql: str, params: Iterable[Any], op: str) -> list[Any]:
        with self._errors(op):
            return list(await self._reader.execute_fetchall(sql, tuple(params)))  # one trip


ERASING = frozenset(PURGE + PURGE_VERSIONED)
"""A user's erasure: after it, the full-text indexes are merged (``erasure.MERGE_FTS``)."""


MULTIROW = {sql: ns for ns, sql in UPSERTS.items()}
"""Row upsert -> its namespace: the statements sent as multi-row ``INSERT``s."""


@functools.lru_cache(maxsize=256)
def _multirow(ns: str, count: int) -> str:
    """The upsert of namespace ``ns`` with ``count`` rows in its ``VALUES``."""
    table, columns, key = _sql.UPSERT_TARGETS[ns]
    row = f"({', '.join('?' for _ in columns.split(','))})"
    return _sql.upsert(table, columns, key, "VALUES " + ", ".join([row] * count))


def most_rows(width: int) -> int:
    """Rows per multi-row statement at most, for rows of ``width`` columns."""
    return max(1, UPSERT_VARIABLES // width)


Call = tuple[str, Any, bool]
"""(SQL, its parameters, whether they are many rows for ``executemany``)."""


def _calls(sql: str, rows: list[tuple[Any, ...]]) -> list[Call]:
    """The driver calls writing ``rows`` through ``sql``: an upsert of many rows as
    multi-row statements (measured about twice as fast as ``executemany``), the full ones
    in one ``executemany``.

    SQLite applies the rows of one ``INSERT`` in order, each against what the ones before
    it left, so a key written twice ends as two upserts in a row would leave it.
    """
    ns = MULTIROW.get(sql)
    if sql == audit.APPEND:  # numbered and chained by the statement itself
        return [(audit.SQLITE_APPEND, audit.sqlite_rows(rows), True)]
    if len(rows) == 1:
        return [(sql, rows[0], False)]
    if ns is None:
        return [(sql, rows, True)]
    most = most_rows(len(rows[0]))
    full, rest = divmod(len(rows), most)
    flat = [tuple(chain.from_iterable(rows[i : i + most])) for i in range(0, len(rows), most)]
    out: list[Call] = []
    if full > 1:
        out.append((_multirow(ns, most), flat[:full], True))
    elif full:
        out.append((_multirow(ns, most), flat[0], False))
    if rest:
        out.append((_multirow(ns, rest), flat[-1], False))
    return out


def _make_folder(path: Path) -> None:
    """Create the folder of the database file; one that cannot be is a config error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrunoMemoryConfigError(
            f"cannot create the folder of the SQLite file {str(path)!r}: "
            f"{exc.strerror or exc}; choose a path in a writable folder",
            path="path",
        ) from exc


async def _enable_wal(conn: aiosqlite.Connection, patience: float) -> None:
    """Switch to WAL; the switch takes no busy handler, so wait out a concurrent opener."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)

