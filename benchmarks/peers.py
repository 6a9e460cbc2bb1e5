"""bruno-memory against the stores a user would pick instead, the same jobs on both; JSON.

    python benchmarks/peers.py [--writes 5000] [--rounds 3] [--dsn URL] [--redis URL]
        [--pairs laptop,postgres,single-node,production]

Pairs (bruno-memory stack / peer), each store fresh, with unique names, removed afterwards:

- ``laptop``: ``build_memory("laptop")`` (an LRU over SQLite, WAL, synchronous=NORMAL) in a
  temporary folder / LangGraph's ``AsyncSqliteStore`` on a file with the same WAL and
  synchronous settings.
- ``postgres``: the PostgreSQL tier alone (pool of 10) / LangGraph's ``AsyncPostgresStore``
  (pool of 10), both in schemas of their own on ``--dsn``.
- ``single-node``: ``build_memory("single-node")`` (LRU -> Redis -> PostgreSQL) on ``--dsn``
  and ``--redis`` / the same ``AsyncPostgresStore``.
- ``production``: ``build_memory("production")`` (LRU with pub/sub invalidation -> Redis ->
  PostgreSQL written behind, journaled in a Redis Stream) / the same ``AsyncPostgresStore``.

The peers come with the ``bench`` extra (``pip install bruno-memory[bench]``); without it,
or without a server, the bruno-memory side runs alone and ``peer`` is null.

Jobs (ops/s; LangGraph's equivalents in brackets): ``messages_sequential`` (``--writes``/5
``store_message`` one after the other [``aput``]); ``messages_concurrent_50`` (``--writes``
``store_message`` from 50 tasks, each on its own conversation); ``memories_sequential`` and
``memories_concurrent_50`` (``store_memory`` [``aput``]); ``newest_20`` (``retrieve_messages(c,
20)`` [``asearch`` of the conversation's namespace, newest first]); ``point_get``
(``get_memory`` [``aget``]); ``filtered_memories`` (``retrieve_memories`` of one user's memories
of one type, 10 [``asearch(filter=)``]); ``keyword_search`` (``search_messages(q, user_id=)``;
LangGraph's ``asearch(query=)`` ignores the words without an embedding index: no peer figure).

Every answer is checked on both sides (the newest 20 exactly, in order; gets by content;
filtered queries by owner, type and count; search hits by owner and word). A side that
answers wrong is reported with ``correct: false`` and what was wrong, not hidden. Each
round runs every job on both sides, alternating which goes first; JSON lines give the
medians of ``--rounds`` rounds and ``ratio`` = bruno / peer ops/s (above 1: bruno faster).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

TASKS = 50
READS = 1000
WORDS = "cat dog garden music travel coffee river mountain book movie friend dinner".split()
TYPES = [MemoryType.FACT, MemoryType.EPISODIC, MemoryType.LONG_TERM, MemoryType.SEMANTIC]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5, 7)) + f" note {i}"


class Wrong(Exception):
    """A side answered a read wrong."""


class Side:
    """One store under the jobs; ``kind`` names it in the JSON."""

    kind = ""
    search_supported = True

    async def conversation(self, user: str) -> str: ...
    async def put_message(self, user: str, conv: str, mid: str, i: int) -> None: ...
    async def put_memory(self, user: str, mid: str, i: int) -> None: ...
    async def newest(self, user: str, conv: str, n: int) -> list[str]: ...
    async def get_memory(self, user: str, mid: str) -> str | None: ...
    async def memories_of_type(self, user: str, kind: MemoryType, n: int) -> list[str]: ...
    async def search(self, user: str, query: str, n: int) -> list[tuple[str, str]]: ...
    async def close(self) -> None: ...


class Bruno(Side):
    def __init__(self, kind: str, memory: Any) -> None:
        self.kind, self.memory = kind, memory
        self.owners: dict[str, str] = {}

    @classmethod
    async def open(cls, kind: str, config: Any) -> Bruno:
        return cls(kind, await build_memory(config))

    async def conversation(self, user: str) -> str:
        session = await self.memory.create_session(user)
        return str(session.conversation_id)

    async def put_message(self, user: str, conv: str, mid: str, i: int) -> None:
        m = Message(
            id=uuid.UUID(mid),
            role=MessageRole.USER,
            content=text(i),
            timestamp=T0 + timedelta(milliseconds=i),
        )
        await self.memory.store_message(m, conv)

    async def put_memory(self, user: str, mid: str, i: int) -> None:
        entry = MemoryEntry(
            id=uuid.UUID(mid), content=text(i), memory_type=TYPES[i % len(TYPES)], user_id=user
        )
        await self.memory.store_memory(entry)

    async def newest(self, user: str, conv: str, n: int) -> list[str]:
        return [str(m.id) for m in await self.memory.retrieve_messages(conv, n)]

    async def get_memory(self, user: str, mid: str) -> str | None:
        found = await self.memory.get_memory(mid)
        return None if found is None else str(found.content)

    async def memories_of_type(self, user: str, kind: MemoryType, n: int) -> list[str]:
        q = MemoryQuery(user_id=user, memory_types=[kind], limit=n)
        found = await self.memory.retrieve_memories(q)
        return [f"{m.user_id}|{m.memory_type.value}" for m in found]

    async def search(self, user: str, query: str, n: int) -> list[tuple[str, str]]:
        found = await self.memory.search_messages(query, user_id=user, limit=n)
        return [(str(m.conversation_id), m.content) for m in found]

    async def close(self) -> None:
        await self.memory.close()


class LangGraph(Side):
    search_supported = False

    def __init__(self, kind: str, store: Any, closer: contextlib.AsyncExitStack) -> None:
        self.kind, self.store, self.closer = kind, store, closer

    async def conversation(self, user: str) -> str:
        return uuid.uuid4().hex

    async def put_message(self, user: str, conv: str, mid: str, i: int) -> None:
        value = {"role": "user", "content": text(i), "ts": i}
        await self.store.aput(("messages", user, conv), mid, value, index=False)

    async def put_memory(self, user: str, mid: str, i: int) -> None:
        value = {"content": text(i), "type": TYPES[i % len(TYPES)].value, "user": user}
        await self.store.aput(("memories", user), mid, value, index=False)

    async def newest(self, user: str, conv: str, n: int) -> list[str]:
        return [it.key for it in await self.store.asearch(("messages", user, conv), limit=n)]

    async def get_memory(self, user: str, mid: str) -> str | None:
        item = await self.store.aget(("memories", user), mid)
        return None if item is None else str(item.value["content"])

    async def memories_of_type(self, user: str, kind: MemoryType, n: int) -> list[str]:
        found = await self.store.asearch(("memories", user), filter={"type": kind.value}, limit=n)
        return [f"{it.value['user']}|{it.value['type']}" for it in found]

    async def close(self) -> None:
        await self.closer.aclose()


async def langgraph_sqlite(path: Path) -> LangGraph | None:
    try:
        import aiosqlite
        from langgraph.store.sqlite.aio import AsyncSqliteStore
    except ImportError:
        return None
    closer = contextlib.AsyncExitStack()
    conn = await closer.enter_async_context(aiosqlite.connect(path, isolation_level=None))
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
        await conn.execute(f"PRAGMA {pragma}")
    store = AsyncSqliteStore(conn)
    await store.setup()
    return LangGraph("langgraph AsyncSqliteStore", store, closer)


async def langgraph_postgres(dsn: str, schema: str) -> LangGraph | None:
    try:
        from langgraph.store.postgres.aio import AsyncPostgresStore
        from langgraph.store.postgres.base import PoolConfig
    except ImportError:
        return None
    sep = "&" if "?" in dsn else "?"
    url = f"{dsn}{sep}options=-csearch_path%3D{schema}"
    closer = contextlib.AsyncExitStack()
    store = await closer.enter_async_context(
        AsyncPostgresStore.from_conn_string(url, pool_config=PoolConfig(min_size=10, max_size=10))
    )
    await store.setup()
    return LangGraph("langgraph AsyncPostgresStore", store, closer)


# -- jobs ---------------------------------------------------------------------------------


class Workload:
    """The ids each round writes and reads, and what the reads must return."""

    def __init__(self, writes: int, tag: str) -> None:
        self.writes, self.tag = writes, tag
        self.counter = 0

    def ids(self, n: int) -> list[tuple[int, str]]:
        out = [(self.counter + k, str(uuid.uuid4())) for k in range(n)]
        self.counter += n
        return out


Job = Callable[[Side], Awaitable[dict[str, Any]]]


async def timed(n: int, fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return n / (time.perf_counter() - start)


async def round_jobs(side: Side, work: Workload, rnd: int) -> dict[str, dict[str, Any]]:
    """Every job once on ``side``; per job: ops/s and whether every answer was right."""
    out: dict[str, dict[str, Any]] = {}
    n = work.writes
    users = [f"{work.tag}-r{rnd}-u{t}" for t in range(TASKS)]
    convs = [await side.conversation(u) for u in users]
    written: dict[str, list[str]] = {c: [] for c in convs}
    mems: dict[str, list[tuple[str, int]]] = {u: [] for u in users}

    seq = work.ids(n // 5)

    async def messages_seq() -> None:
        for i, mid in seq:
            await side.put_message(users[0], convs[0], mid, i)
            written[convs[0]].append(mid)

    out["messages_sequential"] = {"ops_per_s": await timed(len(seq), messages_seq)}

    per_task = [work.ids(n // TASKS) for _ in range(TASKS)]

    async def messages_task(t: int) -> None:
        for i, mid in per_task[t]:
            await side.put_message(users[t], convs[t], mid, i)
            written[convs[t]].append(mid)

    async def messages_c50() -> None:
        await asyncio.gather(*(messages_task(t) for t in range(TASKS)))

    out["messages_concurrent_50"] = {"ops_per_s": await timed(n, messages_c50)}

    mseq = work.ids(n // 5)

    async def memories_seq() -> None:
        for i, mid in mseq:
            await side.put_memory(users[0], mid, i)
            mems[users[0]].append((mid, i))

    out["memories_sequential"] = {"ops_per_s": await timed(len(mseq), memories_seq)}

    mper = [work.ids(n // TASKS) for _ in range(TASKS)]

    async def memories_task(t: int) -> None:
        for i, mid in mper[t]:
            await side.put_memory(users[t], mid, i)
            mems[users[t]].append((mid, i))

    async def memories_c50() -> None:
        await asyncio.gather(*(memories_task(t) for t in range(TASKS)))

    out["memories_concurrent_50"] = {"ops_per_s": await timed(n, memories_c50)}

    rng = random.Random(rnd)
    wrong: list[str] = []

    async def newest_20() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            got = await side.newest(users[t], convs[t], 20)
            if got != written[convs[t]][::-1][:20] and len(wrong) < 3:
                wrong.append(
                    f"{users[t]}: {sum(g in written[convs[t]][-20:] for g in got)}/20 "
                    "of the newest 20"
                )

    out["newest_20"] = {"ops_per_s": await timed(READS, newest_20), "wrong": wrong}

    wrong_gets: list[str] = []

    async def point_get() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            mid, i = rng.choice(mems[users[t]])
            if await side.get_memory(users[t], mid) != text(i) and len(wrong_gets) < 3:
                wrong_gets.append(mid)

    out["point_get"] = {"ops_per_s": await timed(READS, point_get), "wrong": wrong_gets}

    wrong_q: list[str] = []

    async def filtered() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            kind = TYPES[rng.randrange(len(TYPES))]
            got = await side.memories_of_type(users[t], kind, 10)
            expect = min(10, sum(1 for _, i in mems[users[t]] if TYPES[i % len(TYPES)] is kind))
            ok = len(got) == expect and all(g == f"{users[t]}|{kind.value}" for g in got)
            if not ok and len(wrong_q) < 3:
                wrong_q.append(f"{users[t]} {kind.value}: {len(got)} of {expect}")

    out["filtered_memories"] = {"ops_per_s": await timed(READS, filtered), "wrong": wrong_q}

    if side.search_supported:
        wrong_s: list[str] = []

        async def search() -> None:
            for _ in range(READS):
                t = rng.randrange(TASKS)
                word = rng.choice(WORDS)
                hits = await side.search(users[t], f"{word} please", 10)
                bad = [h for h in hits if h[0] != convs[t] or word not in h[1]]
                if (bad or not hits) and len(wrong_s) < 3:
                    wrong_s.append(f"{users[t]} {word!r}: {len(hits)} hits, {len(bad)} wrong")

        out["keyword_search"] = {"ops_per_s": await timed(READS, search), "wrong": wrong_s}
    return out


# -- pairs --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def laptop_pair(args: argparse.Namespace) -> AsyncIterator[tuple[Side, Side | None]]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "bruno.db")
        os.environ["BRUNO_MEMORY_NAMESPACE"] = f"peers_{uuid.uuid4().hex[:8]}"
        bruno = await Bruno.open("bruno-memory laptop", "laptop")
        peer = await langgraph_sqlite(Path(tmp) / "langgraph.db")
        try:
            yield bruno, peer
        finally:
            await bruno.close()
            if peer:
                await peer.close()


@contextlib.asynccontextmanager
async def server_pair(
    args: argparse.Namespace, stack: str
) -> AsyncIterator[tuple[Side, Side | None]]:
    import asyncpg

    ns = f"peers_{uuid.uuid4().hex[:8]}"
    lg_schema = f"{ns}_langgraph"
    conn = await asyncpg.connect(args.dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{lg_schema}"')
    finally:
        await conn.close()
    bruno: Side | None = None
    peer: Side | None = None
    try:
        if stack == "postgres":
            tier = {"kind": "postgres", "dsn": args.dsn, "schema": ns, "max_size": 10}
            bruno = await Bruno.open(
                "bruno-memory postgres tier", {"namespace": ns, "tiers": [tier]}
            )
        else:
            os.environ["DATABASE_URL"] = args.dsn
            os.environ["REDIS_URL"] = args.redis
            os.environ["BRUNO_MEMORY_NAMESPACE"] = ns
            bruno = await Bruno.open(f"bruno-memory {stack}", stack)
        peer = await langgraph_postgres(args.dsn, lg_schema)
        yield bruno, peer
    finally:
        if bruno:
            await bruno.close()
        if peer:
            await peer.close()
        conn = await asyncpg.connect(args.dsn)
        try:
            for schema in (ns, lg_schema):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
        if stack != "postgres":
            await drop_redis_keys(args.redis, ns)


async def drop_redis_keys(url: str, ns: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{ns}*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
    finally:
        await client.aclose()


async def run_pair(name: str, args: argparse.Namespace) -> dict[str, Any]:
    pair = laptop_pair(args) if name == "laptop" else server_pair(args, name)
    async with pair as (bruno, peer):
        sides = [s for s in (bruno, peer) if s is not None]
        rounds: dict[str, list[dict[str, dict[str, Any]]]] = {s.kind: [] for s in sides}
        for rnd in range(args.rounds):
            for side in sides if rnd % 2 == 0 else sides[::-1]:
                work = Workload(args.writes, f"{side.kind.split()[0]}{uuid.uuid4().hex[:6]}")
                rounds[side.kind].append(await round_jobs(side, work, rnd))
        out: dict[str, Any] = {
            "pair": name,
            "bruno": bruno.kind,
            "peer": peer.kind if peer else None,
            "jobs": {},
        }
        for job in rounds[bruno.kind][0]:
            row: dict[str, Any] = {}
            for role, side in (("bruno", bruno), ("peer", peer)):
                if side is None or job not in rounds[side.kind][0]:
                    row[role] = None
                    continue
                runs = [r[job] for r in rounds[side.kind]]
                row[role] = round(statistics.median(r["ops_per_s"] for r in runs), 1)
                wrong = [w for r in runs for w in r.get("wrong", [])]
                if wrong:
                    row[f"{role}_correct"] = False
                    row[f"{role}_wrong"] = wrong[:3]
            if row.get("bruno") and row.get("peer"):
                row["ratio"] = round(row["bruno"] / row["peer"], 2)
            elif job == "keyword_search" and peer is not None:
                row["peer_note"] = (
                    "no keyword search: asearch(query=) ignores the words "
                    "without an embedding index"
                )
            out["jobs"][job] = row
        if peer is not None and out["jobs"]["newest_20"].get("peer_correct") is False:
            out["note"] = (
                f"{peer.kind} orders by updated_at, a CURRENT_TIMESTAMP of one "
                "second: writes sharing a second come back in arbitrary order, "
                "so its 'newest 20' is wrong"
            )
        return out


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", default="laptop,postgres,single-node,production")
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    parser.add_argument("--redis", default=os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL"))
    args = parser.parse_args(argv)
    for name in args.pairs.split(","):
        needs_redis = name in ("single-node", "production")
        if (name != "laptop" and not args.dsn) or (needs_redis and not args.redis):
            print(json.dumps({"pair": name, "skipped": "needs --dsn (and --redis)"}))
            continue
        print(json.dumps(await run_pair(name, args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
