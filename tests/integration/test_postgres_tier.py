"""What only the postgres tier does: migrations, schemas, errors, reconnects, limits."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import shutil
import socket
import string
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import asyncpg.exceptions
import pytest
from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import MessageRole

from bruno_memory.build import create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import (
    BrunoMemoryConfigError,
    CorruptRecord,
    TierError,
    TierUnavailable,
)
from bruno_memory.core.ops import ClearHistory, Delete, Key, PurgeUser, Put
from bruno_memory.core.queries import LatestSession, QueryMemories, SearchText, Statistics
from bruno_memory.core.records import MessageRecord
from bruno_memory.testing.tier_contract import msg, put
from bruno_memory.tiers.base import TierContext
from bruno_memory.tiers.sql import postgres
from bruno_memory.tiers.sql.postgres import PostgresTier, masked, winners
from bruno_memory.tiers.sql.postgres_schema import MIGRATIONS
from tests.factories.postgres import drop_schema

pytestmark = pytest.mark.postgres
SECRET = "s3cr3t-Pa55"


def with_password(dsn: str, password: str = SECRET, **parts: Any) -> str:
    """``dsn`` with a password (and optionally another port, host, user or database)."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(dsn)
    user = parts.get("user", u.username or "postgres")
    host = parts.get("host", u.hostname or "127.0.0.1")
    port = parts.get("port", u.port or 5432)
    path = "/" + parts["database"] if "database" in parts else u.path
    return urlunsplit((u.scheme, f"{user}:{password}@{host}:{port}", path, u.query, ""))


def make(dsn: str, namespace: str, **cfg: Any) -> PostgresTier:
    raw = {"kind": "postgres", "dsn": dsn, "connect_timeout": "3s", **cfg}
    config = load_config({"namespace": namespace, "tiers": [raw]}).tiers[0]
    tier = create_tier(config, TierContext(namespace=namespace))
    assert isinstance(tier, PostgresTier)
    return tier


@contextlib.asynccontextmanager
async def opened(dsn: str, namespace: str, **cfg: Any) -> AsyncIterator[PostgresTier]:
    tier = make(dsn, namespace, **cfg)
    await tier.open()
    try:
        yield tier
    finally:
        await tier.aclose()
        await drop_schema(dsn, tier.schema)


class Pg(NamedTuple):
    dsn: str
    ns: str


@pytest.fixture
def pg(postgres_dsn: str, namespace: str) -> Pg:
    """The test server's DSN and a schema name of this test's own."""
    return Pg(postgres_dsn, namespace)


@pytest.fixture
async def admin(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside any tier."""
    conn = await asyncpg.connect(postgres_dsn)
    yield conn
    await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clear(exc: BaseException, address_part: str) -> None:
    text = str(exc)
    assert isinstance(exc, TierError) and exc.tier == "postgres" and exc.op == "open"
    assert address_part in text and SECRET not in text and "***" in text


# -- migrations and schemas ------------------------------------------------------------


async def test_concurrent_opens_migrate_a_fresh_schema_exactly_once(pg: Pg, admin: Any) -> None:
    """Six tiers opening one fresh schema at once all succeed and record one migration."""
    tiers = [make(pg.dsn, pg.ns) for _ in range(6)]
    try:
        await asyncio.gather(*(t.open() for t in tiers))
        rows = await admin.fetch(f'SELECT version FROM "{pg.ns}".schema_version')
        assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
        record = msg("c", 1)
        await tiers[0].write([put(record)])
        assert [r.id for r in await tiers[5].window("c", None)] == [record.id]
    finally:
        for t in tiers:
            await t.aclose()
        await drop_schema(pg.dsn, pg.ns)


async def test_schema_defaults_to_namespace_and_isolates_stacks(pg: Pg, admin: Any) -> None:
    """Two schemas hold the same ids independently; the default schema is the namespace."""
    record = msg("c", 1, text="in the first schema")
    other = MessageRecord(record.message.model_copy(update={"content": "in the second"}), "c", "u1")
    async with opened(pg.dsn, pg.ns) as first, opened(pg.dsn, f"{pg.ns}_b") as second:
        assert first.schema == pg.ns
        await first.write([put(record)])
        await second.write([put(other)])
        assert (await first.get([Key("message", record.id)]))[Key("message", record.id)] == record
        assert [r.message.content for r in await second.window("c", None)] == ["in the second"]
        tables = await admin.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", pg.ns
        )
        expected = {"messages", "sessions", "users", "memories", "schema_version"}
        assert expected <= {r[0] for r in tables}


async def test_reopening_with_another_search_config_is_refused_clearly(pg: Pg) -> None:
    """A schema indexed with 'english' cannot silently be searched as 'simple'."""
    async with opened(pg.dsn, pg.ns):
        tier = make(pg.dsn, pg.ns, search_config="simple")
        with pytest.raises(TierError, match=r"indexed with search_config 'english'.*'simple'"):
            await tier.open()


async def test_unknown_search_config_fails_without_a_half_made_schema(pg: Pg, admin: Any) -> None:
    """An unknown text search configuration fails the open and leaves nothing behind."""
    tier = make(pg.dsn, pg.ns, search_config="klingon")
    with pytest.raises(TierError, match='text search configuration "klingon" does not exist'):
        await tier.open()
    assert await admin.fetchval("SELECT to_regnamespace($1)", pg.ns) is None


async def test_schema_newer_than_the_code_is_refused(pg: Pg, admin: Any) -> None:
    """A schema migrated by a newer bruno-memory is not used by an older one."""
    async with opened(pg.dsn, pg.ns):
        await admin.execute(
            f'INSERT INTO "{pg.ns}".schema_version (version, search_config) '
            "VALUES (99, 'english')"
        )
        with pytest.raises(TierError, match="version 99, newer than this bruno-memory"):
            await make(pg.dsn, pg.ns).open()


# -- configuration and errors ----------------------------------------------------------


def test_password_never_shows_in_repr_or_config_errors() -> None:
    """repr, masked() and config errors show the address with the password as ***."""
    dsn = f"postgresql://bruno:{SECRET}@db.example:5433/mem?sslmode=require&password={SECRET}"
    tier = make(dsn, "ns")
    assert SECRET not in repr(tier) and SECRET not in repr(tier.config)
    assert "db.example:5433" in repr(tier) and "***" in repr(tier)
    assert masked(dsn) == "postgresql://bruno:***@db.example:5433/mem?sslmode=require&password=***"
    expected = r"tiers\[0\]\.dsn: expected a postgresql://"
    with pytest.raises(BrunoMemoryConfigError, match=expected) as err:
        make(f"mysql://bruno:{SECRET}@db/x", "ns")
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"schema": "pg_catalog"}, r"tiers\[0\]\.schema: expected a schema name"),
        ({"schema": 'x"; DROP'}, r"tiers\[0\]\.schema: expected a schema name"),
        ({"search_config": "english'--"}, r"tiers\[0\]\.search_config: expected a text search"),
        ({"min_size": 5, "max_size": 2}, r"min_size \(5\) exceeds max_size \(2\)"),
        ({"statement_timeout": "soon"}, r"tiers\[0\]\.statement_timeout: expected a duration"),
    ],
)
def test_bad_config_names_the_key_to_fix(cfg: dict[str, Any], message: str) -> None:
    """Each bad setting fails at load, naming the key and what is expected."""
    with pytest.raises(BrunoMemoryConfigError, match=message):
        make("postgresql://postgres@127.0.0.1/test", "ns", **cfg)


async def test_connection_refused_names_the_address_not_the_password(pg: Pg) -> None:
    """Nothing listening on the port: TierUnavailable naming host and port, password masked."""
    port = free_port()
    with pytest.raises(TierUnavailable) as err:
        await make(with_password(pg.dsn, port=port), pg.ns).open()
    assert_clear(err.value, f"127.0.0.1:{port}")


async def test_wrong_host_names_the_host(pg: Pg) -> None:
    """A host where no server listens (another loopback address) is TierUnavailable."""
    with pytest.raises(TierUnavailable) as err:
        await make(with_password(pg.dsn, host="127.0.0.2"), pg.ns).open()
    assert_clear(err.value, "127.0.0.2")


async def test_missing_database_is_a_tier_error_naming_it(pg: Pg) -> None:
    """A database that does not exist is a (non-retryable) TierError saying so."""
    with pytest.raises(TierError) as err:
        await make(with_password(pg.dsn, database="no_such_db_x"), pg.ns).open()
    assert not isinstance(err.value, TierUnavailable)
    assert_clear(err.value, "/no_such_db_x")
    assert 'database "no_such_db_x" does not exist' in str(err.value)


async def test_unknown_role_is_a_tier_error_naming_it(pg: Pg) -> None:
    """A role that does not exist fails authentication with a clear, non-retryable error."""
    with pytest.raises(TierError) as err:
        await make(with_password(pg.dsn, user="nobody_x"), pg.ns).open()
    assert not isinstance(err.value, TierUnavailable)
    assert_clear(err.value, "nobody_x:***@")
    assert 'role "nobody_x" does not exist' in str(err.value)


async def test_bad_password_is_a_tier_error_without_it(password_server: str, pg: Pg) -> None:
    """A wrong password (on a server that checks passwords) says authentication failed."""
    with pytest.raises(TierError) as err:
        await make(with_password(password_server, password=SECRET), pg.ns).open()
    assert not isinstance(err.value, TierUnavailable)
    assert_clear(err.value, "postgres:***@127.0.0.1")
    assert "password authentication failed" in str(err.value)


async def test_right_password_opens_the_same_server(password_server: str, pg: Pg) -> None:
    """The same server accepts the right password, so the failure above is the password."""
    dsn = with_password(password_server, password=SERVER_PASSWORD)
    async with opened(dsn, pg.ns) as tier:
        await tier.ping()


RETRYABLE = (
    asyncpg.ConnectionDoesNotExistError, asyncpg.QueryCanceledError, asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError, asyncpg.InternalClientError,
    ConnectionResetError, ConnectionRefusedError, TimeoutError,
)


def test_error_map_covers_every_driver_exception() -> None:
    """Every asyncpg exception, OSError and timeout leaves the tier as one of our errors."""
    tier = make("postgresql://postgres@127.0.0.1/test", "ns")
    driver = [c for _, c in inspect.getmembers(asyncpg.exceptions, inspect.isclass)
              if issubclass(c, Exception) and not issubclass(c, Warning)
              and not issubclass(c, asyncpg.exceptions.PostgresLogMessage)]
    assert len(driver) > 200
    for cls in [*driver, OSError]:
        with pytest.raises(TierError), tier._errors("probe"):
            raise cls("boom")
    for cls in RETRYABLE:
        with pytest.raises(TierUnavailable), tier._errors("probe"):
            raise cls("boom")
    with pytest.raises(CorruptRecord), tier._errors("probe"):
        from bruno_memory.core.codec import DecodeError

        raise DecodeError("bad payload")


# -- dropped connections ---------------------------------------------------------------


async def _waiting_backend(admin: Any, blocker: int, exclude: set[int]) -> int:
    """The pid of a backend blocked by ``blocker`` (a tier's statement waiting on a lock)."""
    for _ in range(500):
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blocker
        )
        found = [r[0] for r in pids if r[0] not in exclude]
        if found:
            return int(found[0])
        await asyncio.sleep(0.01)
    raise AssertionError("no tier statement ever waited on the lock")


@contextlib.asynccontextmanager
async def locked(dsn: str, schema: str, table: str = "messages") -> AsyncIterator[Any]:
    """Hold an exclusive lock on ``table`` from a connection of the test's own."""
    conn = await asyncpg.connect(dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute(f'LOCK TABLE "{schema}".{table} IN ACCESS EXCLUSIVE MODE')
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def test_connection_dropped_mid_write_is_retried_once(pg: Pg, admin: Any) -> None:
    """A write whose backend is terminated mid-statement succeeds on a fresh connection."""
    record = msg("c", 1, text="survives a dropped connection")
    async with opened(pg.dsn, pg.ns) as tier:
        async with locked(pg.dsn, pg.ns) as lock:
            blocker = lock.get_server_pid()
            writing = asyncio.ensure_future(tier.write([Put(Key("message", record.id), record, 3)]))
            first = await _waiting_backend(admin, blocker, set())
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            await _waiting_backend(admin, blocker, {first})  # the retry, on another backend
        await writing
        assert tier.retries == 1
        query = f'SELECT version FROM "{pg.ns}".messages WHERE id = $1'
        rows = await admin.fetch(query, record.id)
        assert [r[0] for r in rows] == [3]
        assert [r.message.content for r in await tier.window("c", None)] == [record.message.content]


async def test_a_second_drop_is_not_retried_again(pg: Pg, admin: Any) -> None:
    """The retry happens once: a second drop surfaces as TierUnavailable."""
    async with opened(pg.dsn, pg.ns) as tier:
        async with locked(pg.dsn, pg.ns) as lock:
            blocker = lock.get_server_pid()
            writing = asyncio.ensure_future(tier.write([put(msg("c", 1))]))
            first = await _waiting_backend(admin, blocker, set())
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            second = await _waiting_backend(admin, blocker, {first})
            await admin.execute("SELECT pg_terminate_backend($1)", second)
            with pytest.raises(TierUnavailable, match=r"127\.0\.0\.1"):
                await writing
        assert tier.retries == 1
        await tier.write([put(msg("c", 2))])  # and the tier works again afterwards
        assert len(await tier.window("c", None)) == 1


async def test_idle_connections_killed_by_the_server_are_replaced(pg: Pg, admin: Any) -> None:
    """After every pooled backend is terminated, the next reads and writes still work."""
    record = msg("c", 1)
    async with opened(pg.dsn, pg.ns, min_size=2) as tier:
        await tier.write([put(record)])
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            f"bruno-memory:{pg.ns}",
        )
        assert len(killed) == 2
        assert [r.id for r in await tier.window("c", None)] == [record.id]
        await tier.write([put(msg("c", 2))])
        await tier.ping()


async def test_replaying_a_committed_write_changes_nothing(pg: Pg, admin: Any) -> None:
    """Re-running a committed write (what a retry does) leaves every row as it was."""
    ops = [Put(Key("message", r.id), r, 5) for r in (msg("c", i) for i in range(50))]
    session = SessionContext(user_id="u1")
    ops_all: list[Any] = [*ops, put(session), put(UserContext(user_id="u1"))]
    async with opened(pg.dsn, pg.ns) as tier:
        await tier.write(ops_all)
        rows = f'SELECT id, seq, version, payload FROM "{pg.ns}".messages ORDER BY seq'
        before = await admin.fetch(rows)
        await tier.write(ops_all)
        after = await admin.fetch(rows)
        assert before == after and len(after) == 50


# -- batches, content and limits -------------------------------------------------------


def test_winners_keep_the_newest_version_at_the_first_position() -> None:
    """Deduplicating a batch keeps what applying it row by row would leave."""
    rows = [("a", "v1", 1), ("b", "x", 0), ("a", "v2", 2), ("a", "old", 1), ("a", "v2 again", 2)]
    assert winners(rows) == [("a", "v2 again", 2), ("b", "x", 0)]


async def test_batch_with_repeated_keys_keeps_the_newest_version(pg: Pg) -> None:
    """One write carrying several versions of a message and a session keeps the newest."""
    r = msg("c", 1, text="newest")
    older = MessageRecord(r.message.model_copy(update={"content": "older"}), "c", "u1")
    sessions = [SessionContext(user_id="u1") for _ in range(5)]
    ended = sessions[0].model_copy(update={"is_active": False})
    async with opened(pg.dsn, pg.ns) as tier:
        await tier.write([
            Put(Key("message", r.id), r, 2), Put(Key("message", r.id), older, 1),
            *[put(s) for s in sessions], Put(Key("session", ended.session_id), ended, 1),
        ])
        assert [x.message.content for x in await tier.window("c", None)] == ["newest"]
        got = await tier.get([Key("session", s.session_id) for s in sessions])
        assert got[Key("session", ended.session_id)] == ended
        assert [got[Key("session", s.session_id)] for s in sessions[1:]] == sessions[1:]


def distinct_words(chars: int) -> str:
    rng = random.Random(3)
    words = ("".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(chars // 7 + 1))
    return " ".join(words)[:chars]


async def test_nul_bytes_and_a_megabyte_of_distinct_words_round_trip(pg: Pg) -> None:
    """Content PostgreSQL cannot index or hold as text is still stored verbatim and found."""
    huge = "needle " + distinct_words(1 << 20)  # its tsvector would exceed PostgreSQL's 1 MB
    records = [msg("c", 1, text="nul\x00inside and a needle"), msg("c", 2, text=huge)]
    memory = MemoryEntry(content="keep\x00this needle", memory_type=MemoryType.FACT, user_id="u1")
    async with opened(pg.dsn, pg.ns) as tier:
        await tier.write([*(put(r) for r in records), put(memory)])
        keys = [Key("message", r.id) for r in records] + [Key("memory", str(memory.id))]
        got = await tier.get(keys)
        assert [got[Key("message", r.id)] for r in records] == records
        assert got[Key("memory", str(memory.id))] == memory
        hits = await tier.query(SearchText("needle", "u1", 10))
        assert {h.item.id for h in hits} == {r.id for r in records}
        found = await tier.query(QueryMemories(MemoryQuery(user_id="u1", query_text="needle"), 0.0))
        assert [h.item for h in found] == [memory]


async def test_statement_timeout_cancels_a_stuck_statement(pg: Pg) -> None:
    """A statement stuck past statement_timeout fails as TierUnavailable, not retried."""
    async with opened(pg.dsn, pg.ns, statement_timeout="200ms") as tier:
        async with locked(pg.dsn, pg.ns):
            with pytest.raises(TierUnavailable, match="statement timeout"):
                await tier.write([put(msg("c", 1))])
        assert tier.retries == 0
        await tier.write([put(msg("c", 2))])
        assert len(await tier.window("c", None)) == 1


async def test_metrics_show_the_pool_and_retries(pg: Pg) -> None:
    """metrics() reports pool occupancy and the retry count for health reports."""
    async with opened(pg.dsn, pg.ns, min_size=2, max_size=3) as tier:
        assert tier.metrics() == {"pool_size": 2, "pool_idle": 2, "retries": 0}


# -- the connection pool (asyncpg's) -----------------------------------------------------

SESSION_STATE = r"""
SELECT pg_backend_pid() AS pid,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,  -- '': this query
       (SELECT count(*) FROM pg_locks
         WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory_locks,
       pg_my_temp_schema()::int AS temp_schema,
       (SELECT count(*) FROM pg_settings  -- what RESET ALL would undo
         WHERE source = 'session' AND setting IS DISTINCT FROM reset_val) AS session_sets,
       (SELECT count(*) FROM pg_prepared_statements
         WHERE name NOT LIKE '\_\_asyncpg\_%') AS own_statements,
       current_setting('search_path') AS search_path,
       current_setting('statement_timeout') AS statement_timeout,
       current_setting('application_name') AS application_name
"""


async def backends(admin: Any, ns: str) -> set[int]:
    """The pids of the server backends a tier on schema ``ns`` holds."""
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", f"bruno-memory:{ns}"
    )
    return {r[0] for r in rows}


async def test_used_connections_carry_no_session_state(pg: Pg) -> None:
    """After migrations, writes, deletes and reads, the pooled connection is as it connected."""
    memory = MemoryEntry(content="a fact", memory_type=MemoryType.FACT, user_id="u1")
    session = SessionContext(user_id="u1")
    async with opened(pg.dsn, pg.ns, min_size=1, max_size=1, statement_timeout="7s") as tier:
        first = await tier._call("probe", lambda c: c.fetchrow(SESSION_STATE))
        await tier.write([put(msg("c", 1)), put(msg("c", 2, role=MessageRole.SYSTEM)),
                          put(memory), put(session), put(UserContext(user_id="u1"))])
        await tier.write([put(msg("c", i)) for i in range(3, 8)])  # one batched upsert
        await tier.get([Key("memory", str(memory.id)), Key("session", session.session_id)])
        await tier.window("c", 3)
        await tier.query(SearchText("hello world", "u1", 5))
        await tier.query(QueryMemories(MemoryQuery(user_id="u1", query_text="fact"), 0.0))
        await tier.query(LatestSession("u1"))
        await tier.query(Statistics("u1"))
        await tier.write([Delete(Key("memory", str(memory.id)), 10), ClearHistory("c", True, 11),
                          PurgeUser("u1", 12)])  # a transaction, with tombstones
        state = dict(await tier._call("probe", lambda c: c.fetchrow(SESSION_STATE)))
    assert state["pid"] == first["pid"]  # every call above ran on this one connection
    assert {k: state[k] for k in ("listening", "cursors", "advisory_locks", "temp_schema",
                                  "session_sets", "own_statements")} == dict.fromkeys(
        ("listening", "cursors", "advisory_locks", "temp_schema", "session_sets",
         "own_statements"), 0)
    assert (state["search_path"], state["statement_timeout"]) == (f'"{pg.ns}"', "7s")
    assert state["application_name"] == f"bruno-memory:{pg.ns}"


async def test_a_cancelled_write_stops_on_the_server_and_lands_nowhere(pg: Pg, admin: Any) -> None:
    """Cancelling a write stuck on a lock cancels its statement; the tier then works on."""
    async with opened(pg.dsn, pg.ns, min_size=1, max_size=1) as tier:
        async with locked(pg.dsn, pg.ns) as lock:
            writing = asyncio.ensure_future(tier.write([put(msg("c", 1))]))
            await _waiting_backend(admin, lock.get_server_pid(), set())
            writing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writing
            blocked = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
            assert await admin.fetchval(blocked, lock.get_server_pid()) == 0
        assert await admin.fetchval(f'SELECT count(*) FROM "{pg.ns}".messages') == 0
        await tier.write([put(msg("c", 2))])
        assert len(await tier.window("c", None)) == 1
        assert tier.retries == 0 and tier.metrics()["pool_size"] == 1


async def test_concurrent_writes_hold_at_most_max_size_connections(pg: Pg, admin: Any) -> None:
    """Six writes stuck on a lock are one group commit on one backend; reads stuck behind
    it take the rest of the pool and no more."""
    async with opened(pg.dsn, pg.ns, min_size=0, max_size=2) as tier:
        async with locked(pg.dsn, pg.ns) as lock:
            writes = [asyncio.ensure_future(tier.write([put(msg("c", i))])) for i in range(6)]
            reads = [asyncio.ensure_future(tier.window("c", None)) for _ in range(3)]
            first = await _waiting_backend(admin, lock.get_server_pid(), set())
            await _waiting_backend(admin, lock.get_server_pid(), {first})
            await asyncio.sleep(0.1)  # room for a third connection, were the pool to open one
            assert len(await backends(admin, pg.ns)) == 2
            assert tier.metrics()["pool_size"] == 2
        await asyncio.gather(*reads)
        await asyncio.gather(*writes)
        assert len(await tier.window("c", None)) == 6


async def test_a_dropped_connection_retires_every_older_one(pg: Pg, admin: Any) -> None:
    """After one connection drops, the retry and later calls use only connections made since."""
    async with opened(pg.dsn, pg.ns, min_size=2, max_size=2) as tier:
        before = await backends(admin, pg.ns)
        assert len(before) == 2
        async with locked(pg.dsn, pg.ns) as lock:
            writing = asyncio.ensure_future(tier.write([put(msg("c", 1))]))
            first = await _waiting_backend(admin, lock.get_server_pid(), set())
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            retry = await _waiting_backend(admin, lock.get_server_pid(), {first})
        await writing
        async with locked(pg.dsn, pg.ns) as lock:  # a stuck write and read show both
            writes = [asyncio.ensure_future(tier.write([put(msg("c", 2))])),
                      asyncio.ensure_future(tier.window("c", None))]
            a = await _waiting_backend(admin, lock.get_server_pid(), set())
            b = await _waiting_backend(admin, lock.get_server_pid(), {a})
        await asyncio.gather(*writes)
        assert not {retry, a, b} & before
        assert tier.retries == 1


async def test_close_terminates_calls_still_running_after_the_timeout(
    pg: Pg, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aclose() waits CLOSE_TIMEOUT for busy connections, then terminates them."""
    monkeypatch.setattr(postgres, "CLOSE_TIMEOUT", 0.2)
    tier = make(pg.dsn, pg.ns)
    await tier.open()
    try:
        async with locked(pg.dsn, pg.ns) as lock:
            writing = asyncio.ensure_future(tier.write([put(msg("c", 1))]))
            await _waiting_backend(admin, lock.get_server_pid(), set())
            await tier.aclose()
            with pytest.raises(TierUnavailable):
                await writing
            assert tier.metrics()["pool_size"] == 0
    finally:
        await tier.aclose()
        await drop_schema(pg.dsn, pg.ns)


async def test_a_closed_tier_refuses_work_clearly(pg: Pg) -> None:
    """After aclose(), calls fail with TierUnavailable saying the tier is not open."""
    async with opened(pg.dsn, pg.ns) as tier:
        await tier.aclose()
        with pytest.raises(TierUnavailable, match="not open"):
            await tier.ping()


# -- a server of the test's own that checks passwords ----------------------------------

SERVER_PASSWORD = "right-password"


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster with scram-sha-256 auth on a free loopback port.

    The shared test server trusts every local connection, so a wrong password can only
    be refused by a server of our own. Skipped where ``initdb`` cannot run.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    runuser = shutil.which("runuser")
    if not (initdb and pg_ctl) or (as_root and not runuser):
        pytest.skip("initdb/pg_ctl not found (or running as root without runuser)")
    base = Path(tempfile.mkdtemp(prefix="bruno-pgauth-"))  # not under pytest's 0700 root
    (base / "pw").write_text(SERVER_PASSWORD)
    prefix = [runuser, "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pw", "postgres")
    data, port = base / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60)

    try:
        run(initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
            f"--pwfile={base / 'pw'}", "-N")
        run(pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "start", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off")
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"could not start a password-checking PostgreSQL: {exc} {detail.decode()}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


async def test_a_user_with_few_messages_is_searched_through_their_rows_first(
    pg: Pg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user-scoped search reads the user's rows first while the user has fewer than
    ``user_first.FEW`` messages, and through the full-text index past it: the same hits
    and scores both ways, never another user's."""
    from bruno_memory.tiers.sql import user_first

    words = ["apple", "banana", "cherry", "grape"]
    mine = [msg("c1", i, text=f"{words[i % 4]} {words[i % 3]} day {i}") for i in range(40)]
    theirs = [msg("c2", i, user="u2", text="apple banana cherry") for i in range(10)]
    async with opened(pg.dsn, pg.ns) as tier:
        await tier.write([put(r) for r in (*mine, *theirs)])
        asked: list[str] = []
        fetch = tier._fetch

        async def counted(sql: str, params: Any, op: str) -> list[Any]:
            asked.append(sql)
            return await fetch(sql, params, op)

        monkeypatch.setattr(tier, "_fetch", counted)
        first = await tier.query(SearchText("apple cherry", "u1", 40))
        assert len(asked) == 1 and "count(*)" in asked[0]  # counted and searched at once
        assert tier._sizes.get("u1") == 40
        again = await tier.query(SearchText("apple cherry", "u1", 40))
        assert len(asked) == 2 and "IS TRUE" in asked[1] and "count" not in asked[1]
        assert [(h.item.id, h.score) for h in again] == [(h.item.id, h.score) for h in first]
        monkeypatch.setattr(user_first, "FEW", 40)
        tier._sizes = user_first.Sizes()
        counted_past = await tier.query(SearchText("apple cherry", "u1", 40))
        assert tier._sizes.get("u1") == 40
        through_index = await tier.query(SearchText("apple cherry", "u1", 40))
        assert "IS TRUE" not in asked[-1]
        assert [(h.item.id, h.score) for h in counted_past] == [
            (h.item.id, h.score) for h in through_index
        ]
        assert {(h.item.id, h.score) for h in first} == {
            (h.item.id, h.score) for h in through_index
        }
        expected = {r.id for r in mine if {"apple", "cherry"} & set(r.message.content.split())}
        assert {h.item.id for h in first} == expected and len(expected) > 10


# -- the write connection ------------------------------------------------------------


def _writer_pid(tier: PostgresTier) -> int:
    assert tier._writer is not None
    return int(tier._writer.get_server_pid())


async def test_writes_stay_on_one_held_connection(pg: Pg, admin: Any) -> None:
    """Group-committed writes reuse the write connection; reads use the rest of the pool."""
    async with opened(pg.dsn, pg.ns, min_size=1, max_size=2) as tier:
        await tier.write([put(msg("c", 0))])
        pid = _writer_pid(tier)
        await asyncio.gather(*(tier.write([put(msg("c", i))]) for i in range(1, 30)),
                             *(tier.window("c", None) for _ in range(5)))
        assert _writer_pid(tier) == pid
        assert len(await tier.window("c", None)) == 30
        assert pid in await backends(admin, pg.ns)
        assert tier.metrics()["pool_size"] == 2


async def test_writes_go_on_after_the_write_connection_is_terminated(
    pg: Pg, admin: Any
) -> None:
    """pg_terminate_backend of the write connection's backend: the next writes take a new
    one (no error, nothing lost), and so do writes after a second termination."""
    async with opened(pg.dsn, pg.ns, max_size=3) as tier:
        await tier.write([put(msg("c", 0))])
        seen = set()
        for round_ in range(2):
            pid = _writer_pid(tier)
            seen.add(pid)
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
            writes = range(1 + round_ * 20, 21 + round_ * 20)
            await asyncio.gather(*(tier.write([put(msg("c", i))]) for i in writes))
            assert _writer_pid(tier) not in seen
        assert len(await tier.window("c", None)) == 41
        assert pid not in await backends(admin, pg.ns)


async def test_a_failed_write_gives_the_write_connection_back(pg: Pg, admin: Any) -> None:
    """A write that fails (here: its backend terminated twice) returns the write connection
    to the pool; the next write takes a fresh one and succeeds."""
    async with opened(pg.dsn, pg.ns, max_size=2) as tier:
        await tier.write([put(msg("c", 0))])
        async with locked(pg.dsn, pg.ns) as lock:
            writing = asyncio.ensure_future(tier.write([put(msg("c", 1))]))
            first = await _waiting_backend(admin, lock.get_server_pid(), set())
            await admin.execute("SELECT pg_terminate_backend($1)", first)
            second = await _waiting_backend(admin, lock.get_server_pid(), {first})
            await admin.execute("SELECT pg_terminate_backend($1)", second)
            with pytest.raises(TierUnavailable):
                await writing
        assert tier._writer is None
        await tier.write([put(msg("c", 2))])
        assert _writer_pid(tier) not in {first, second}
        assert len(await tier.window("c", None)) == 2


async def test_the_write_connection_goes_back_to_the_pool_now_and_then(
    pg: Pg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``WRITER_TURNS`` batches the write connection is released to the pool (whose
    release applies ``max_queries``), and the next write takes one again."""
    monkeypatch.setattr(postgres, "WRITER_TURNS", 5)
    async with opened(pg.dsn, pg.ns, min_size=1, max_size=3) as tier:
        released: list[Any] = []
        release = asyncpg.pool.Pool.release

        async def counted(pool: Any, conn: Any, *, timeout: float | None = None) -> None:
            if pool is tier._pool:  # only writes run meanwhile
                released.append(conn)
            await release(pool, conn, timeout=timeout)

        monkeypatch.setattr(asyncpg.pool.Pool, "release", counted)
        for i in range(12):
            await tier.write([put(msg("c", i))])
        assert len(released) == 2  # after the 5th and the 10th batch
        assert tier._writer is not None and tier._writer_turns == 2
        assert len(await tier.window("c", None)) == 12


async def test_one_connection_pool_holds_no_write_connection(pg: Pg) -> None:
    """With max_size 1 writes share the one pooled connection with reads."""
    async with opened(pg.dsn, pg.ns, min_size=1, max_size=1) as tier:
        await asyncio.gather(*(tier.write([put(msg("c", i))]) for i in range(20)),
                             *(tier.window("c", None) for _ in range(5)))
        assert tier._writer is None
        assert len(await tier.window("c", None)) == 20
