"""Write-through throughput of the durable tiers against their raw drivers, in one run;
prints JSON.

    python benchmarks/group_commit_bench.py [--dsn URL] [--writes 5000] [--skip-postgres]

Jobs, each on a stack from ``build_memory`` and on the raw driver writing the same rows
(the message's JSON serialized by hand, a version per row, the same versioned upsert)
into a schema the stack created:

- ``concurrent_50``: ``--writes`` ``store_message`` calls from 50 tasks at once, each
  task on a conversation of its own. The raw side does what a hand-batching client
  would: each round of 50 rows (one per task) in one transaction (aiosqlite
  ``executemany`` + ``COMMIT``; asyncpg ``executemany``, which is one implicit
  transaction).
- ``sequential``: ``store_message`` one after the other; raw: one row per transaction.
- ``store_messages_1000`` (SQLite only): 1,000 messages per call; raw: ``executemany``
  of 1,000 rows and one ``COMMIT``; on the laptop stack and on the SQLite tier alone.

The stacks are the shipped ``laptop`` stack (an LRU over SQLite, ``tiers/laptop.yaml``)
and a PostgreSQL tier alone in a schema of its own, dropped afterwards. Each job runs
``--rounds`` times, raw and stack interleaved; medians are reported, and
``*_vs_raw`` is stack throughput / raw throughput (1.0: as fast as the raw driver).
``--dsn`` defaults to ``$BRUNO_MEMORY_TEST_POSTGRES_DSN``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.tiers.sql.text import pseudonym

LAPTOP = "laptop"  # the shipped stack of that name (tiers/laptop.yaml)
TASKS = 50
COLUMNS = "id, conversation_id, user_id, role, ts, content, payload, version"
UPDATES = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS.split(", ")[1:])
UPSERT = (
    f"INSERT INTO messages AS t ({COLUMNS}) VALUES ({', '.join('?' * 8)}) "
    f"ON CONFLICT (id) DO UPDATE SET {UPDATES} WHERE excluded.version >= t.version"
)
PG_UPSERT = UPSERT.replace(", ".join("?" * 8), ", ".join(f"${i}" for i in range(1, 9)))
WORDS = "cat dog garden music travel coffee river mountain book movie friend dinner".split()
Job = Callable[[], Awaitable[None]]


def text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5, 7, 11)) + f" note {i}"


def message(i: int) -> Message:
    return Message(role=MessageRole.USER, content=text(i))


def raw_row(i: int, conversation: str, user: str) -> tuple[Any, ...]:
    """What a hand-written client sends: the columns, the message's JSON, a version."""
    m = message(i)
    return (
        str(m.id),
        conversation,
        user,
        m.role.value,
        m.timestamp.timestamp(),
        m.content,
        m.model_dump_json(),
        time.time_ns(),
    )


async def timed(job: Job, ops: int) -> float:
    """Ops per second of one run of ``job``."""
    started = time.perf_counter()
    await job()
    return ops / (time.perf_counter() - started)


# -- the stack side -----------------------------------------------------------------------


class StackJobs:
    """The jobs on one opened stack; ``conversations`` are owned by one user each."""

    def __init__(self, memory: Any, conversations: list[str]) -> None:
        self.memory = memory
        self.conversations = conversations
        self.counter = itertools.count()

    @classmethod
    async def open(cls, source: Any) -> StackJobs:
        memory = await build_memory(source)
        sessions = [await memory.create_session(f"user-{t}") for t in range(TASKS)]
        return cls(memory, [s.conversation_id for s in sessions])

    async def concurrent(self, writes: int) -> None:
        async def task(conversation: str) -> None:
            for _ in range(writes // TASKS):
                await self.memory.store_message(message(next(self.counter)), conversation)

        await asyncio.gather(*(task(c) for c in self.conversations))

    async def sequential(self, writes: int) -> None:
        conversation = self.conversations[0]
        for _ in range(writes):
            await self.memory.store_message(message(next(self.counter)), conversation)

    async def batches(self, calls: int) -> None:
        conversation = self.conversations[0]
        for _ in range(calls):
            batch = [message(next(self.counter)) for _ in range(1000)]
            await self.memory.store_messages(batch, conversation)


# -- the raw side --------------------------------------------------------------------------


class RawSqlite:
    """aiosqlite on a file the stack created, with the tier's pragmas."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.counter = itertools.count()

    @classmethod
    async def open(cls, path: str) -> RawSqlite:
        db = await aiosqlite.connect(path)
        await db.create_function("bruno_pseudonym", 2, pseudonym, deterministic=True)  # triggers
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
            await db.execute(f"PRAGMA {pragma}")
        return cls(db)

    def rows(self, n: int, conversations: list[str]) -> list[tuple[Any, ...]]:
        return [raw_row(next(self.counter), c, "raw-user") for c in conversations[:n]]

    async def concurrent(self, writes: int) -> None:
        conversations = [f"raw-{t}" for t in range(TASKS)]
        for _ in range(writes // TASKS):
            await self.db.executemany(UPSERT, self.rows(TASKS, conversations))
            await self.db.commit()

    async def sequential(self, writes: int) -> None:
        for _ in range(writes):
            await self.db.execute(UPSERT, raw_row(next(self.counter), "raw-seq", "raw-user"))
            await self.db.commit()

    async def batches(self, calls: int) -> None:
        for _ in range(calls):
            rows = [raw_row(next(self.counter), "raw-batch", "raw-user") for _ in range(1000)]
            await self.db.executemany(UPSERT, rows)
            await self.db.commit()


class RawPostgres:
    """asyncpg on a pool of 10 connections into a schema the stack created."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.counter = itertools.count()

    async def concurrent(self, writes: int) -> None:
        async with self.pool.acquire() as conn:
            for _ in range(writes // TASKS):
                rows = [raw_row(next(self.counter), f"raw-{t}", "raw-user") for t in range(TASKS)]
                await conn.executemany(PG_UPSERT, rows)

    async def sequential(self, writes: int) -> None:
        for _ in range(writes):
            async with self.pool.acquire() as conn:
                await conn.execute(PG_UPSERT, *raw_row(next(self.counter), "raw-seq", "raw-user"))


# -- running -------------------------------------------------------------------------------


async def compare(
    jobs: Mapping[str, tuple[Job, Job, int]], rounds: int
) -> dict[str, dict[str, Any]]:
    """Per job: raw and stack throughput (medians of ``rounds`` interleaved runs)."""
    samples: dict[str, dict[str, list[float]]] = {j: {"raw": [], "stack": []} for j in jobs}
    for _ in range(rounds):
        for name, (raw_job, stack_job, ops) in jobs.items():
            samples[name]["raw"].append(await timed(raw_job, ops))
            samples[name]["stack"].append(await timed(stack_job, ops))
    out: dict[str, dict[str, Any]] = {}
    for name, got in samples.items():
        raw, stack = statistics.median(got["raw"]), statistics.median(got["stack"])
        out[name] = {
            "raw_ops_per_s": round(raw),
            "stack_ops_per_s": round(stack),
            "stack_vs_raw": round(stack / raw, 3),
        }
    return out


@contextlib.contextmanager
def environ(**values: str) -> Any:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def sqlite_case(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        with environ(BRUNO_MEMORY_DB=str(Path(tmp) / "laptop.db")):
            stack = await StackJobs.open(LAPTOP)
        raw_path = str(Path(tmp) / "raw.db")
        await (await build_memory({"tiers": [{"kind": "sqlite", "path": raw_path}]})).close()
        alone = await StackJobs.open({"tiers": [{"kind": "sqlite", "path": f"{tmp}/alone.db"}]})
        raw = await RawSqlite.open(raw_path)
        n = args.writes
        try:
            jobs = {
                "concurrent_50": (lambda: raw.concurrent(n), lambda: stack.concurrent(n), n),
                "sequential": (
                    lambda: raw.sequential(n // 5),
                    lambda: stack.sequential(n // 5),
                    n // 5,
                ),
                "store_messages_1000": (lambda: raw.batches(5), lambda: stack.batches(5), 5000),
                "store_messages_1000_sqlite_alone": (
                    lambda: raw.batches(5),
                    lambda: alone.batches(5),
                    5000,
                ),
            }
            for warm in (raw, stack, alone):
                await warm.batches(2)
            result = await compare(jobs, args.rounds)
        finally:
            await raw.db.close()
            await stack.memory.close()
            await alone.memory.close()
    return {"stack": "laptop (lru -> sqlite); *_sqlite_alone: the sqlite tier alone", **result}


@contextlib.asynccontextmanager
async def postgres_schemas(dsn: str, names: list[str]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            for name in names:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()


async def postgres_case(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    stack_schema, raw_schema = f"bench_gc_stack_{tag}", f"bench_gc_raw_{tag}"

    def config(schema: str) -> dict[str, Any]:
        tier = {"kind": "postgres", "dsn": args.dsn, "schema": schema, "max_size": 10}
        return {"namespace": schema, "tiers": [tier]}

    async with postgres_schemas(args.dsn, [stack_schema, raw_schema]):
        await (await build_memory(config(raw_schema))).close()
        stack = await StackJobs.open(config(stack_schema))
        pool = await asyncpg.create_pool(
            args.dsn, min_size=10, max_size=10, server_settings={"search_path": f'"{raw_schema}"'}
        )
        raw = RawPostgres(pool)
        n = args.writes
        try:
            jobs = {
                "concurrent_50": (lambda: raw.concurrent(n), lambda: stack.concurrent(n), n),
                "sequential": (
                    lambda: raw.sequential(n // 5),
                    lambda: stack.sequential(n // 5),
                    n // 5,
                ),
            }
            result = await compare(jobs, args.rounds)
        finally:
            await pool.close()
            await stack.memory.close()
    return {"stack": "postgres tier alone", **result}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"sqlite": await sqlite_case(args)}
    if args.dsn and not args.skip_postgres:
        out["postgres"] = await postgres_case(args)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
