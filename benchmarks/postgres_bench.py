"""The postgres tier against raw asyncpg, in one run; prints JSON.

Measures (medians of interleaved repetitions, so machine load hits both sides alike):

- ``store_messages``: a stack (postgres alone, from ``build_memory``) storing 1,000
  messages, against raw asyncpg ``executemany`` INSERT and ``COPY`` of the same messages
  into an identical table (the raw side serializes each message to JSON too);
- ``store_message``: one message through the stack against one raw autocommit INSERT;
- ``pool``: ``SELECT 1`` on a direct connection, through asyncpg's pool (with its reset
  query on release, and without it, as the tier runs it), and the tier's ``ping`` (the
  same pool plus the tier's error translation and retry wrapper);
- ``search``: ``search_messages`` p50/p95 over ``--messages`` stored messages (synthetic
  Zipf-distributed text), scoped to one user and unscoped.

Usage: ``python benchmarks/postgres_bench.py [--dsn URL] [--messages 100000]``
(``--dsn`` defaults to ``$BRUNO_MEMORY_TEST_POSTGRES_DSN``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import asyncpg
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.core import codec
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.text import STOPWORDS
from bruno_memory.tiers.sql import postgres_schema
from bruno_memory.tiers.sql import text as _sql

Conn: TypeAlias = asyncpg.Connection
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
COLUMNS = [c.strip() for c in _sql.MESSAGE_COLUMNS.split(",")]
INSERT = f"INSERT INTO messages ({_sql.MESSAGE_COLUMNS}) VALUES " + "({})".format(
    ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
)
# English-like text: Zipf-distributed ranks whose head is real stop words (dropped by the
# 'english' search config and by text.terms, as in real messages), then 30,000 content words.
VOCAB = sorted(STOPWORDS) + [f"w{i}" for i in range(30_000)]
WEIGHTS = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCAB))))


def words(rng: random.Random, n: int) -> list[str]:
    """``n`` words drawn by Zipf's law over ``VOCAB``."""
    return rng.choices(VOCAB, cum_weights=WEIGHTS, k=n)


def text(rng: random.Random, n: int = 14) -> str:
    return " ".join(words(rng, n))


def messages(rng: random.Random, n: int, start: int = 0) -> list[Message]:
    at = [T0 + timedelta(seconds=start + i) for i in range(n)]
    return [Message(role=MessageRole.USER, content=text(rng), timestamp=ts) for ts in at]


def raw_row(m: Message, conversation: str, user: str) -> tuple[Any, ...]:
    """What a hand-written client would send: the columns, the message's JSON and a version
    (the stack versions every write; an unversioned row would skip the tombstone check)."""
    ts = m.timestamp.timestamp()
    return (str(m.id), conversation, user, m.role.value, ts, m.content, m.model_dump_json(),
            time.time_ns())


async def raw_executemany(raw: Conn, batch: list[Message], conversation: str) -> None:
    await raw.executemany(INSERT, [raw_row(m, conversation, "batch-user") for m in batch])


async def raw_copy(raw: Conn, batch: list[Message], conversation: str) -> None:
    rows = [raw_row(m, conversation, "batch-user") for m in batch]
    await raw.copy_records_to_table("messages", records=rows, columns=COLUMNS)


async def raw_insert(raw: Conn, m: Message, conversation: str) -> None:
    await raw.execute(INSERT, *raw_row(m, conversation, "single-user"))


async def timed(fn: Callable[..., Awaitable[Any]], *args: Any) -> float:
    started = time.perf_counter()
    await fn(*args)
    return time.perf_counter() - started


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000, 3)


async def bench_batches(memory: Any, raw: Conn, rng: random.Random, reps: int) -> dict[str, Any]:
    """store_messages(1000) through the stack vs raw executemany and COPY."""
    out: dict[str, list[float]] = {"stack": [], "raw_executemany": [], "raw_copy": []}
    for rep in range(reps):
        conv = (await memory.create_session("batch-user")).conversation_id
        out["stack"].append(await timed(memory.store_messages, messages(rng, 1000), conv))
        batch = messages(rng, 1000)
        out["raw_executemany"].append(await timed(raw_executemany, raw, batch, f"many-{rep}"))
        out["raw_copy"].append(await timed(raw_copy, raw, messages(rng, 1000), f"copy-{rep}"))
    med = {k: statistics.median(v[1:]) for k, v in out.items()}  # the first run warms up
    rate = {k: round(1000 / v) for k, v in med.items()}
    return {
        "rows_per_s": rate,
        "ms": {k: round(v * 1000, 2) for k, v in med.items()},
        "stack_vs_raw_executemany": round(rate["stack"] / rate["raw_executemany"], 3),
        "stack_vs_raw_copy": round(rate["stack"] / rate["raw_copy"], 3),
    }


async def bench_single(memory: Any, raw: Conn, rng: random.Random, reps: int) -> dict[str, Any]:
    """One store_message through the stack vs one raw autocommit INSERT."""
    conv = (await memory.create_session("single-user")).conversation_id
    stack_t: list[float] = []
    raw_t: list[float] = []
    for i in range(reps):
        m, r = messages(rng, 2, start=i * 2)
        stack_t.append(await timed(memory.store_message, m, conv))
        raw_t.append(await timed(raw_insert, raw, r, "raw-single"))
    return {"p50_ms": {"stack": ms(stack_t), "raw_insert": ms(raw_t)},
            "stack_over_raw": round(ms(stack_t) / ms(raw_t), 3)}


async def _no_reset(conn: Any) -> None:
    """An asyncpg pool reset that skips the reset query (what the tier passes)."""


async def bench_pool(dsn: str, tier: Any, reps: int) -> dict[str, Any]:
    """What getting a connection costs: SELECT 1 on a direct connection, through asyncpg's
    pool (default reset query on release, and no reset), and through the tier's ``ping``."""
    direct = await asyncpg.connect(dsn)
    default = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    no_reset = await asyncpg.create_pool(dsn, min_size=1, max_size=1, reset=_no_reset)

    async def via(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    t: dict[str, list[float]] = {"direct": [], "asyncpg_pool": [], "asyncpg_pool_no_reset": [],
                                 "tier_ping": []}
    for _ in range(reps):
        t["direct"].append(await timed(direct.fetchval, "SELECT 1"))
        t["asyncpg_pool"].append(await timed(via, default))
        t["asyncpg_pool_no_reset"].append(await timed(via, no_reset))
        t["tier_ping"].append(await timed(tier.ping))
    await direct.close()
    await default.close()
    await no_reset.close()
    return {"select_1_p50_ms": {k: ms(v) for k, v in t.items()}}


async def load(raw: Conn, schema: str, n: int, users: int, rng: random.Random) -> None:
    """``n`` messages over ``users`` users and 50 conversations each, by COPY."""
    await raw.execute(f"SET search_path TO {postgres_schema.quoted(schema)}")
    done = 0
    while done < n:
        size = min(20_000, n - done)
        rows = []
        for i, m in enumerate(messages(rng, size, start=done)):
            user = (done + i) % users
            rec = MessageRecord(m, f"u{user}-c{(done + i) // users % 50}", f"u{user}")
            rows.append((*codec.message_row(rec), 0))
        await raw.copy_records_to_table("messages", records=rows, columns=COLUMNS)
        done += size
    await raw.execute("ANALYZE messages")


async def bench_search(memory: Any, users: int, rng: random.Random, reps: int) -> dict[str, Any]:
    """search_messages latency, user-scoped and unscoped, for 2-4 word queries."""
    scoped: list[float] = []
    unscoped: list[float] = []
    hits = 0
    for _ in range(reps):
        query = text(rng, rng.randint(3, 6))  # stop words included, as people type
        user = f"u{rng.randrange(users)}"
        started = time.perf_counter()
        hits += len(await memory.search_messages(query, user_id=user, limit=10))
        scoped.append(time.perf_counter() - started)
        unscoped.append(await timed(memory.search_messages, query, None, 10))
    return {"p50_ms": {"user_scoped": ms(scoped), "unscoped": ms(unscoped)},
            "p95_ms": {"user_scoped": ms(scoped, 0.95), "unscoped": ms(unscoped, 0.95)},
            "mean_hits": round(hits / reps, 2), "queries": reps}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--batches", type=int, default=9)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set BRUNO_MEMORY_TEST_POSTGRES_DSN")
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:8]
    schemas = [f"bench_{k}_{tag}" for k in ("stack", "raw", "search")]
    stack_schema, raw_schema, search_schema = schemas

    def config(schema: str) -> dict[str, Any]:
        tier = {"name": "durable", "kind": "postgres", "dsn": args.dsn}
        return {"namespace": schema, "tiers": [tier]}

    memory = await build_memory(config(stack_schema))
    searching = await build_memory(config(search_schema))
    raw = await asyncpg.connect(args.dsn)
    try:
        await postgres_schema.migrate(raw, raw_schema, "english")
        await raw.execute(f"SET search_path TO {postgres_schema.quoted(raw_schema)}")
        report: dict[str, Any] = {"postgres": await raw.fetchval("SHOW server_version")}
        report["store_messages_1000"] = await bench_batches(memory, raw, rng, args.batches)
        report["store_message"] = await bench_single(memory, raw, rng, args.singles)
        report["pool"] = await bench_pool(args.dsn, memory.tiers[0], args.singles)
        started = time.perf_counter()
        await load(raw, search_schema, args.messages, args.users, rng)
        report["search"] = {"messages": args.messages, "users": args.users,
                            "load_s": round(time.perf_counter() - started, 2),
                            **await bench_search(searching, args.users, rng, args.queries)}
        print(json.dumps(report, indent=2))
    finally:
        await memory.close()
        await searching.close()
        for schema in schemas:
            await raw.execute(f"DROP SCHEMA IF EXISTS {postgres_schema.quoted(schema)} CASCADE")
        await raw.close()


if __name__ == "__main__":
    asyncio.run(main())
