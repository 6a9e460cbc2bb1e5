"""``postgres``: the server durable tier (asyncpg, tsvector/GIN search, migrations)."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from pydantic import Field, SecretStr, field_validator, model_validator

from bruno_memory.config.models import Duration, PositiveInt, TierConfig
from bruno_memory.core import codec
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.deadline import deadline
from bruno_memory.core.errors import CorruptRecord, TierError, TierUnavailable, translate_errors
from bruno_memory.core.logs import get_logger
from bruno_memory.core.queries import SearchText
from bruno_memory.tiers.base import BaseTier, TierContext
from bruno_memory.tiers.sql import audit, postgres_migrator, postgres_schema, user_first
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.audit import DurableAudit
from bruno_memory.tiers.sql.durable import (
    CAPABILITIES,
    UPSERTS,
    DurableReads,
    DurableWrites,
    Statement,
    merged,
)
from bruno_memory.tiers.sql.migration import SchemaMismatch

T = TypeVar("T")
log = get_logger(__name__)

ERRORS: dict[type[BaseException], type[TierError]] = {
    codec.DecodeError: CorruptRecord,
    SchemaMismatch: TierError,
    asyncpg.InvalidAuthorizationSpecificationError: TierError,  # bad password, unknown role
    asyncpg.InvalidCatalogNameError: TierError,  # no such database
    asyncpg.PostgresConnectionError: TierUnavailable,  # dropped or refused connection (08xxx)
    asyncpg.OperatorInterventionError: TierUnavailable,  # statement timeout, shutdown (57xxx)
    asyncpg.InsufficientResourcesError: TierUnavailable,  # too many connections, disk full
    asyncpg.PostgresError: TierError,  # data and SQL errors
    asyncpg.InterfaceError: TierUnavailable,  # connection or pool closed under us
    asyncpg.InternalClientError: TierUnavailable,  # protocol state broken, stale statement cache
    OSError: TierUnavailable,  # refused, unknown host, reset (ConnectionError is one)
    TimeoutError: TierUnavailable,  # connect_timeout, client-side command timeout
}

DROPPED: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,  # "connection was closed in the middle of operation"
    asyncpg.AdminShutdownError,  # pg_terminate_backend, server shutdown
    asyncpg.InternalClientError,  # a FATAL error read while idle broke the protocol state
    ConnectionResetError,
    BrokenPipeError,
)
"""Driver errors meaning the connection died mid-operation: retried once on a fresh one."""


class PostgresDsn(SecretStr):
    """A ``postgresql://`` URL shown with its password masked."""

    def _display(self) -> str:
        return masked(self.get_secret_value())


def _check_ports(dsn: str) -> None:
    """Every ``host:port`` of a DSN (asyncpg takes ``h1:5432,h2:5433``) has a valid port."""
    hosts = urlsplit(dsn).netloc.rpartition("@")[2]
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _, colon, port = port.rpartition(":")
        if colon and port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(
                f"expected a port from 1 to 65535 in the DSN, got {port[:20]!r} in {masked(dsn)!r}"
            )


def masked(dsn: str) -> str:
    """``dsn`` with any password (in the user part or the query) replaced by ``***``."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, sep, _ = user.partition(":")
        netloc = f"{name}{':***' if sep else ''}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


with warnings.catch_warnings():  # "schema" shadows BaseModel.schema(), a deprecated classmethod
    warnings.filterwarnings("ignore", message='Field name "schema"')

    class PostgresConfig(TierConfig):
        """A PostgreSQL database; each stack keeps its tables in its own schema.

        ``schema`` defaults to the stack's namespace. ``search_config`` is the text search
        configuration the full-text columns are built with (``english``: stemming and
        stop words, like the SQLite tier's porter tokenizer; ``simple`` for mixed
        languages); changing it later needs a new schema.

        ``max_size`` bounds every connection the tier opens. With ``max_size`` 2 or more,
        one of them is the write connection: taken from the pool by the first write and
        held for the group-committed writes (no acquire/release per batch) until a write
        on it fails or the tier closes, so reads and other work share ``max_size - 1``.
        With ``max_size: 1`` writes take the one connection from the pool per batch.
        """

        kind: Literal["postgres"] = "postgres"
        dsn: PostgresDsn
        schema: str | None = None  # type: ignore[assignment]
        min_size: int = Field(default=1, ge=0)
        max_size: PositiveInt = 10
        statement_timeout: Duration = 30.0
        connect_timeout: Duration = 10.0
        search_config: str = "english"

        @field_validator("dsn", mode="before")
        @classmethod
        def _scheme(cls, value: Any) -> Any:
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if isinstance(text, str) and urlsplit(text).scheme not in ("postgresql", "postgres"):
                raise ValueError(f"expected a postgresql:// URL, got {masked(text)!r}")
            if isinstance(text, str):
                _check_ports(text)
            return text

        def check_namespace(self, namespace: str) -> None:
            if self.schema is None:  # the namespace names the schema
                postgres_schema.check_schema_name(namespace)

        @field_validator("schema")
        @classmethod
        def _schema(cls, value: str | None) -> str | None:
            return None if value is None else postgres_schema.check_schema_name(value)

        @field_validator("search_config")
        @classmethod
        def _search_config(cls, value: str) -> str:
            return postgres_schema.check_search_config(value)

        @model_validator(mode="after")
        def _sizes(self) -> PostgresConfig:
            if self.min_size > self.max_size:
                raise ValueError(f"min_size ({self.min_size}) exceeds max_size ({self.max_size})")
            return self


def _tags_any(tags: list[str]) -> tuple[str, list[Any]]:
    return "m.tags && ?::text[]", [tags]


def dialect(search_config: str) -> _sql.Dialect:
    """The PostgreSQL side of the shared queries: tsvector @@ OR-ed terms, ts_rank_cd."""
    return _sql.Dialect(
        fts_source=f"{{t}} m CROSS JOIN to_tsquery('{search_config}', ?) AS q",
        fts_match="m.tsv @@ q",
        fts_score="ts_rank_cd(m.tsv, q)",
        join_terms=lambda words: " | ".join(f"'{w}'" for w in words),  # \w+ words: no quotes
        tags_any=_tags_any,
        no_limit=None,
        phrase_source=f"{{t}} m CROSS JOIN phraseto_tsquery('{search_config}', ?) AS q",
        contains="strpos(lower({col}), lower(?)) > 0",
    )


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``_sql.numbered``, once per distinct statement."""
    return _sql.numbered(sql)


def _alive(conn: Any) -> bool:
    """Whether a held pooled connection can still be used: not closed, and not taken back
    by the pool (which detaches a connection the server closed while it was idle)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # "connection has been released back to the pool"
        return False


WRITER_TURNS = 10_000
"""Batches the write connection carries before it goes back to the pool: its release there
applies the pool's rules (asyncpg closes a connection past ``max_queries``), which a
connection held for good would never meet."""

CLOSE_TIMEOUT = 5.0
"""Seconds ``aclose`` waits for busy connections to come back before terminating them."""


async def _keep_session(conn: Any) -> None:
    """Pool reset: nothing to undo, so skip asyncpg's reset query (a round trip per release).

    asyncpg still rolls back a transaction left open before calling this. Nothing else
    outlives one unit of work: settings are fixed at connect (``server_settings``), the
    migration's advisory lock and ``SET LOCAL``s are transaction-scoped, and the tier never
    LISTENs, declares cursors, creates temporary tables or holds session locks. Prepared
    statements are asyncpg's statement cache, which the reset query leaves alone anyway.
    tests/integration/test_postgres_tier.py checks a used connection for each of these.
    """


class PostgresTier(DurableAudit, DurableReads, DurableWrites, BaseTier[PostgresConfig]):
    """Everything, authoritative, in one PostgreSQL schema, through an asyncpg pool."""

    config_model = PostgresConfig
    capabilities = CAPABILITIES | {Capability.PIPELINES}

    def __init__(self, config: PostgresConfig, context: TierContext | None = None) -> None:
        super().__init__(config, context)
        self.schema = config.schema or postgres_schema.check_schema_name(self.context.namespace)
        self.address = masked(config.dsn.get_secret_value())
        self.dialect = dialect(config.search_config)
        self._user_first = user_first.dialect(self.dialect)
        self._sizes = user_first.Sizes()
        self.retries = 0
        c = config  # one bound per call, retry and wait for a pooled connection included
        self._bound = c.statement_timeout + c.connect_timeout if c.statement_timeout else None
        self._pool: asyncpg.Pool | None = None
        self._writer: Any = None  # the write connection, out of the pool while held
        self._hold_writer = config.max_size > 1
        self._writing = False  # a batch is on the write connection
        self._writer_turns = 0  # batches on it since it was taken from the pool

    async def open(self) -> None:
        cfg = self.config
        with self._errors("open"):
            # On a failed connect, create_pool closes what it opened and raises the error.
            self._pool = await asyncpg.create_pool(
                cfg.dsn.get_secret_value(),
                min_size=cfg.min_size,
                max_size=cfg.max_size,
                reset=_keep_session,
                timeout=cfg.connect_timeout,
                command_timeout=cfg.statement_timeout + cfg.connect_timeout
                if cfg.statement_timeout
                else None,
                server_settings=self._settings(),  # in the startup packet: no init round trip
            )
            try:
                async with self._pool.acquire() as conn:
                    await postgres_migrator.upgrade(conn, self.schema, cfg.search_config)
            except BaseException:
                await self.aclose()
                raise
        self._open_group()

    def _settings(self) -> dict[str, str]:
        return {
            "search_path": postgres_schema.quoted(self.schema),
            "statement_timeout": str(int(self.config.statement_timeout * 1000)),
            "application_name": f"bruno-memory:{self.schema}"[:63],
        }

    async def aclose(self) -> None:
        """Close the pool once busy connections come back; terminate them after a while."""
        await self._close_group()  # queued writes land before the pool closes
        await self._give_back_writer()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except Exception as exc:  # timed out, or a connection failed to close cleanly
            log.warning("postgres pool did not close cleanly; terminating it", tier=self.name,
                        address=self.address, error=type(exc).__name__)
            pool.terminate()

    async def ping(self) -> None:
        await self._call("ping", lambda conn: conn.fetchval("SELECT 1"))

    async def drop(self) -> None:
        """Land queued writes, ``DROP SCHEMA ... CASCADE`` (every table, the schema's
        version and keys with it) (``Droppable``)."""
        await self._close_group()
        statement = f"DROP SCHEMA IF EXISTS {postgres_schema.quoted(self.schema)} CASCADE"
        await self._call("drop", lambda conn: conn.execute(statement))

    def metrics(self) -> dict[str, Any]:
        """Pool occupancy (the held write connection counted in ``pool_size``, never idle)
        and how many dropped connections were retried."""
        pool = self._pool
        size, idle = (pool.get_size(), pool.get_idle_size()) if pool else (0, 0)
        return {"pool_size": size, "pool_idle": idle, "retries": self.retries}

    # -- the driver boundary ------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """Translate driver errors; connection failures name the address (never a password)."""
        try:
            with translate_errors(self.name, op, ERRORS):
                yield
        except TierError as exc:
            cause = exc.__cause__
            if not isinstance(cause, (OSError, TimeoutError, asyncpg.PostgresError)) or isinstance(
                exc, CorruptRecord
            ):
                raise
            detail = str(cause).replace(self.config.dsn.get_secret_value(), self.address)
            raise type(exc)(
                f"{self.address}: {type(cause).__name__}: {detail or 'no detail'}",
                tier=self.name,
                op=op,
                cause=cause,
            ) from cause

    async def _call(
        self, op: str, work: Callable[[Any], Awaitable[T]], *, write: bool = False
    ) -> T:
        """Run ``work(conn)``; a connection dropped mid-way is retried once on a fresh one.

        The retry repeats the whole unit: writes are versioned upserts and idempotent
        deletes, so a unit that did commit before the drop is not applied twice.
        ``write``: on the held write connection (``_write_attempt``) when there is one.
        """
        attempt = self._write_attempt if write and self._hold_writer else self._attempt
        with self._errors(op):
            async with deadline(self._bound):  # the whole call, its wait for a connection too
                return await self._retried(op, work, attempt)

    async def _retried(
        self,
        op: str,
        work: Callable[[Any], Awaitable[T]],
        attempt: Callable[[Callable[[Any], Awaitable[T]]], Awaitable[T]],
    ) -> T:
        try:
            return await attempt(work)
        except DROPPED as exc:
            self.retries += 1
            log.warning("postgres connection dropped; retrying once", tier=self.name, op=op,
                        address=self.address, error=type(exc).__name__)
            if self._pool is not None:  # its siblings likely died too: replace them all
                await self._pool.expire_connections()
                if not self._writing:  # the write connection with them (if not busy)
                    await self._give_back_writer()
            return await attempt(work)

    async def _attempt(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` on a pooled connection; asyncpg's release survives a cancelled caller.

        Waiting for a connection, and the reset when it goes back (which cancels a statement
        cut short), take ``connect_timeout`` at most: past that, asyncpg terminates the
        connection instead of waiting on a server that stopped answering.
        """
        if self._pool is None:
            raise TierUnavailable("the tier is not open (call open())", tier=self.name, op="use")
        async with self._pool.acquire(timeout=self.config.connect_timeout) as conn:
            return await work(conn)

    async def _write_attempt(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` on the held write connection, taken from the pool first if none is held
        (or the held one was closed while idle, e.g. terminated by the server).

        On any error or cancellation the connection goes back to the pool, whose release
        does what ``_attempt``'s would (waits for a cancelled statement, rolls back an open
        transaction, terminates a connection that does not answer in time); the next write
        takes a fresh one. So it does after ``WRITER_TURNS`` batches.
        """
        if self._writing or self._pool is None:  # not one batch at a time: share the pool
            return await self._attempt(work)
        self._writing = True
        try:
            conn = self._writer
            if conn is not None and not _alive(conn):
                await self._give_back_writer()
                conn = None
            if conn is None:
                conn = await self._pool.acquire(timeout=self.config.connect_timeout)
                self._writer, self._writer_turns = conn, 0
            try:
                done = await work(conn)
            except BaseException:
                await self._give_back_writer()
                raise
            self._writer_turns += 1
            if self._writer_turns >= WRITER_TURNS:  # the pool's turn to look at it
                await self._give_back_writer()
            return done
        finally:
            self._writing = False

    async def _give_back_writer(self) -> None:
        """Return the write connection (if held) to the pool; the pool terminates it if
        it cannot be reset, and that is only logged (the caller's own error, if any, is
        the one raised)."""
        conn, self._writer = self._writer, None
        if conn is None or self._pool is None:
            return
        try:
            await self._pool.release(conn, timeout=self.config.connect_timeout)
        except Exception as exc:
            log.warning("postgres write connection terminated", tier=self.name,
                        address=self.address, error=type(exc).__name__)

    # -- writes and reads ---------------------------------------------------------------

    async def _apply(self, writes: Sequence[list[Statement]]) -> None:
        """One transaction for a group commit's batch; message, session and user upserts
        of many rows as one ``unnest`` statement each."""
        statements = merged(writes)
        batches = [(numbered(sql), rows) for sql, rows in statements]

        async def work(conn: Any) -> None:
            if len(batches) == 1:  # one statement is atomic on its own: no BEGIN/COMMIT trips
                await _execute(conn, *batches[0])
                return
            if (audited := _with_audit(statements)) is not None:
                await conn.execute(*audited)  # a write and its audit records: one statement
                return
            async with conn.transaction():
                for sql, rows in batches:
                    await _execute(conn, sql, rows)

        await self._call("write", work, write=True)

    def _tags_param(self, tags: list[str]) -> Any:
        return tags

    async def _search_rows(self, words: list[str], q: SearchText) -> list[Any]:
        """A user's search reads the user's rows first while they are few
        (``user_first``), in one statement that counts them when their count is not kept;
        other searches as the shared statement has them."""
        if q.user_id is None or q.conversation_id is not None:
            return await super()._search_rows(words, q)
        count = self._sizes.get(q.user_id)
        if count is None:
            sql = user_first.search(self.dialect, words, q.user_id, q.limit, q.include_archived)
            rows = await self._fetch(*sql, "search")
            if rows:
                self._sizes.put(q.user_id, int(rows[0][4]))
            return [tuple(r)[:4] for r in rows]
        if count >= user_first.FEW:
            return await super()._search_rows(words, q)
        sql = _sql.search_messages(
            self._user_first, words, q.user_id, None, q.limit, q.include_archived
        )
        return await self._fetch(*sql, "search")

    async def _fetch(self, sql: str, params: Iterable[Any], op: str) -> list[Any]:
        args = tuple(params)
        rows: list[Any] = await self._call(op, lambda conn: conn.fetch(numbered(sql), *args))
        return rows


PG_APPEND = numbered(audit.PG_APPEND)


def _batch_upsert(ns: str) -> tuple[str, tuple[str, tuple[int, ...]]]:
    """(row upsert, (the same upsert of a whole batch from one array per column, the
    positions of the columns sent as JSON text))."""
    table, columns, key = _sql.UPSERT_TARGETS[ns]
    names = [c.strip() for c in columns.split(",")]
    arrays = ", ".join(f"?::{t}[]" for t in postgres_schema.ARRAY_TYPES[table])
    as_json = postgres_schema.JSON_COLUMNS.get(table, ())
    picked = ", ".join(
        f"ARRAY(SELECT jsonb_array_elements_text(u.{c}::jsonb))" if c in as_json else c
        for c in names
    )
    source = (
        f"SELECT {picked} FROM unnest({arrays}) WITH ORDINALITY AS u({columns}, ord) "
        "ORDER BY ord"
    )
    positions = tuple(i for i, c in enumerate(names) if c in as_json)
    return numbered(UPSERTS[ns]), (numbered(_sql.upsert(table, columns, key, source)), positions)


BATCHED = dict(_batch_upsert(ns) for ns in ("message", "session", "user", "memory"))
"""Row upsert -> batch upsert: one statement instead of one execution per row (measured
~20% faster than executemany for 1,000 messages; see benchmarks/postgres_bench.py)."""


def winners(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per key (first column): what applying the upserts in order would leave.

    The newest version wins (the later row on a tie), at the key's first position, so
    one statement never updates a row twice and sequence numbers keep the batch order.
    """
    best: dict[Any, tuple[Any, ...]] = {}
    for row in rows:
        held = best.get(row[0])
        if held is None or row[-1] >= held[-1]:
            best[row[0]] = row
    return list(best.values())


def _with_audit(statements: list[tuple[str, list[Any]]]) -> tuple[Any, ...] | None:
    """One row's write and its audit appends as one statement (one round trip, atomic by
    itself, no BEGIN/COMMIT), the write in a ``WITH``; ``None`` for anything else."""
    if len(statements) != 2 or statements[1][0] != audit.APPEND:
        return None
    (sql, rows), (_, events) = statements
    if len(rows) != 1 or not sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
        return None
    return (_audited(sql), *rows[0], *audit.pg_columns(events))


@lru_cache(maxsize=64)
def _audited(sql: str) -> str:
    return numbered(f"WITH written AS ({sql}) {audit.PG_APPEND}")


async def _execute(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    batched = BATCHED.get(sql)
    if sql == audit.APPEND:  # numbered and chained by the server, in one statement
        await conn.execute(PG_APPEND, *audit.pg_columns(rows))
    elif len(rows) == 1:
        await conn.execute(sql, *rows[0])
    elif batched is not None:
        statement, as_json = batched
        columns = [list(column) for column in zip(*winners(rows), strict=True)]
        for at in as_json:
            columns[at] = [orjson.dumps(v).decode() for v in columns[at]]
        await conn.execute(statement, *columns)
    else:
        await conn.executemany(sql, rows)
