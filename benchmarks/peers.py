"""bruno-memory against the stores a user would pick instead, the same jobs on both; JSON.

    python benchmarks/peers.py [--writes 5000] [--rounds 3] [--dsn URL] [--redis URL]
        [--pairs laptop,postgres,single-node,production] [--legacy-python PATH]

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

``--legacy-python PATH`` adds a third side, the PyPI bruno-memory 0.1.5 (its SQLite backend
in ``laptop``, its PostgreSQL backend, pool of 10, in a schema of its own in the others),
run by ``_legacy_peer.py`` in that interpreter (a virtualenv with ``bruno-memory==0.1.5``
installed: its import name is this package's), one JSON line per round over a pipe; its
module doc says how each job maps to 0.1.5's calls. Without the option ``legacy`` is null.

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
round runs every job on every side, the order rotating; JSON lines give the medians of
``--rounds`` rounds, ``ratio`` = bruno / peer and ``legacy_ratio`` = bruno / legacy ops/s
(above 1: bruno faster); ``<side>_note`` says where a side answers a job differently or
not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from _peer_jobs import T0, TYPES, Side, Workload, round_jobs, text
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory


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
    unsupported = frozenset({"keyword_search"})
    notes = {
        "keyword_search": "no keyword search: asearch(query=) ignores the words without an "
        "embedding index"
    }

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


# -- the legacy side -----------------------------------------------------------------------


LEGACY_SCRIPT = Path(__file__).resolve().parent / "_legacy_peer.py"


class Legacy:
    """The PyPI bruno-memory 0.1.5 in its own interpreter (``_legacy_peer.py``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.kind = "bruno-memory 0.1.5"
        self.notes: dict[str, str] = {}

    @classmethod
    async def open(cls, python: str, store: dict[str, Any]) -> Legacy:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-I",
            str(LEGACY_SCRIPT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 24,
        )
        legacy = cls(proc)
        await legacy._send(store)
        return legacy

    async def _send(self, line: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(line) + "\n").encode())
        await self.proc.stdin.drain()

    async def round(self, writes: int, rnd: int) -> dict[str, dict[str, Any]]:
        await self._send({"writes": writes, "round": rnd, "tag": f"legacy{uuid.uuid4().hex[:6]}"})
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the legacy side exited ({await self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the legacy side failed: {answer['error']}")
        self.kind, self.notes = answer["kind"], answer["notes"]
        jobs: dict[str, dict[str, Any]] = answer["jobs"]
        return jobs

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def open_legacy(args: argparse.Namespace, store: dict[str, Any]) -> Legacy | None:
    if not args.legacy_python:
        return None
    return await Legacy.open(args.legacy_python, store)


# -- pairs --------------------------------------------------------------------------------

Sides = tuple[Side, Side | None, Legacy | None]


@contextlib.asynccontextmanager
async def laptop_pair(args: argparse.Namespace) -> AsyncIterator[Sides]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "bruno.db")
        os.environ["BRUNO_MEMORY_NAMESPACE"] = f"peers_{uuid.uuid4().hex[:8]}"
        bruno = await Bruno.open("bruno-memory laptop", "laptop")
        peer = await langgraph_sqlite(Path(tmp) / "langgraph.db")
        legacy = await open_legacy(args, {"backend": "sqlite", "path": str(Path(tmp) / "0.1.5.db")})
        try:
            yield bruno, peer, legacy
        finally:
            await bruno.close()
            if peer:
                await peer.close()
            if legacy:
                await legacy.close()


@contextlib.asynccontextmanager
async def server_pair(args: argparse.Namespace, stack: str) -> AsyncIterator[Sides]:
    import asyncpg

    ns = f"peers_{uuid.uuid4().hex[:8]}"
    lg_schema, legacy_schema = f"{ns}_langgraph", f"{ns}_legacy"
    conn = await asyncpg.connect(args.dsn)
    try:
        for schema in (lg_schema, legacy_schema):
            await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    bruno: Side | None = None
    peer: Side | None = None
    legacy: Legacy | None = None
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
        legacy = await open_legacy(
            args, {"backend": "postgres", "dsn": args.dsn, "schema": legacy_schema, "pool": 10}
        )
        yield bruno, peer, legacy
    finally:
        for side in (bruno, peer, legacy):
            if side:
                await side.close()
        conn = await asyncpg.connect(args.dsn)
        try:
            for schema in (ns, lg_schema, legacy_schema):
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


Results = dict[str, list[dict[str, dict[str, Any]]]]


async def one_round(side: Side | Legacy, writes: int, rnd: int) -> dict[str, dict[str, Any]]:
    if isinstance(side, Legacy):
        return await side.round(writes, rnd)
    work = Workload(writes, f"{side.kind.split()[0]}{uuid.uuid4().hex[:6]}")
    return await round_jobs(side, work, rnd)


def job_row(job: str, sides: dict[str, Side | Legacy | None], rounds: Results) -> dict[str, Any]:
    """One job's medians per side, what each side got wrong, and the ratios."""
    row: dict[str, Any] = {}
    for role, side in sides.items():
        runs = [r[job] for r in rounds.get(role, []) if job in r]
        if side is None or not runs:
            row[role] = None
            note = side.notes.get(job) if side is not None else None
            if note:
                row[f"{role}_note"] = note
            continue
        row[role] = round(statistics.median(r["ops_per_s"] for r in runs), 1)
        wrong = [w for r in runs for w in r.get("wrong", [])]
        if wrong:
            row[f"{role}_correct"] = False
            row[f"{role}_wrong"] = wrong[:3]
        if role == "legacy" and job in side.notes:
            row["legacy_note"] = side.notes[job]
    for role, key in (("peer", "ratio"), ("legacy", "legacy_ratio")):
        if row.get("bruno") and row.get(role):
            row[key] = round(row["bruno"] / row[role], 2)
    return row


async def run_pair(name: str, args: argparse.Namespace) -> dict[str, Any]:
    pair = laptop_pair(args) if name == "laptop" else server_pair(args, name)
    async with pair as (bruno, peer, legacy):
        sides: dict[str, Side | Legacy | None] = {"bruno": bruno, "peer": peer, "legacy": legacy}
        present = [role for role, side in sides.items() if side is not None]
        rounds: Results = {role: [] for role in present}
        for rnd in range(args.rounds):
            shift = rnd % len(present)
            for role in present[shift:] + present[:shift]:
                side = sides[role]
                assert side is not None
                rounds[role].append(await one_round(side, args.writes, rnd))
        out: dict[str, Any] = {
            "pair": name,
            "bruno": bruno.kind,
            "peer": peer.kind if peer else None,
            "legacy": legacy.kind if legacy else None,
            "jobs": {job: job_row(job, sides, rounds) for job in rounds["bruno"][0]},
        }
        if peer is not None and out["jobs"]["newest_20"].get("peer_correct") is False:
            out["note"] = (
                f"{peer.kind} orders by updated_at, a CURRENT_TIMESTAMP of one "
                "second: writes sharing a second come back in arbitrary order, "
                "so its 'newest 20' is wrong"
            )
        return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", default="laptop,postgres,single-node,production")
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    parser.add_argument("--redis", default=os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL"))
    parser.add_argument(
        "--legacy-python",
        default=None,
        help="an interpreter with bruno-memory==0.1.5 installed: adds it as a third side",
    )
    args = parser.parse_args(argv)
    if args.legacy_python and not Path(args.legacy_python).exists():
        parser.error(f"--legacy-python {args.legacy_python!r}: no such interpreter")
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for name in args.pairs.split(","):
        needs_redis = name in ("single-node", "production")
        if (name != "laptop" and not args.dsn) or (needs_redis and not args.redis):
            print(json.dumps({"pair": name, "skipped": "needs --dsn (and --redis)"}))
            continue
        print(json.dumps(await run_pair(name, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
