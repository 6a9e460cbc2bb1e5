"""User-scoped full-text search latency as the store grows; prints JSON.

    python benchmarks/search_scale.py [--sizes 10000,100000,1000000] [--users 1000]
        [--queries 500] [--backends sqlite,postgres] [--dsn URL]

Each backend is a durable tier alone built by ``build_memory`` (SQLite in a temporary
folder; PostgreSQL in a schema of its own, dropped afterwards; pool of 10). ``--users``
users each own one conversation (``create_session``); messages are added through
``store_messages`` in batches of up to 1,000 per conversation until the store holds each
of ``--sizes`` messages, spread evenly over the users. Texts are 12 words drawn from a
Zipf-distributed vocabulary of 20,000 pseudo-words (deterministic), so a few words are in
most messages and most words are rare, as in chat.

At each size, ``--queries`` searches (after 20 warm-up ones) of 3 words drawn from the same
distribution (ranks 10 and up) by a random user: ``search_messages(q, user_id=u,
limit=10)``, one at a time. Every hit is checked to be the user's own. One JSON line per
backend and size: seeding time and rate, and search p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

VOCABULARY = 20_000
WORDS_PER_MESSAGE = 12
BATCH = 1_000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def vocabulary(n: int) -> list[str]:
    """``n`` distinct pseudo-words of 2-4 syllables (deterministic)."""
    rng = random.Random(15)
    words: dict[str, None] = {}
    while len(words) < n:
        words["".join(rng.choices(SYLLABLES, k=rng.choice((2, 3, 3, 4))))] = None
    return list(words)


class Texts:
    """Zipf-distributed words: ``message()`` texts, ``query()`` strings."""

    def __init__(self, seed: int) -> None:
        self.words = vocabulary(VOCABULARY)
        self.cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(VOCABULARY)))
        self.rng = random.Random(seed)

    def message(self) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum, k=WORDS_PER_MESSAGE))

    def query(self) -> str:
        lo = self.cum[9]
        picks = (bisect.bisect_left(self.cum, self.rng.uniform(lo, self.cum[-1])) for _ in range(3))
        return " ".join(self.words[min(i, VOCABULARY - 1)] for i in picks)


async def seed(memory: Any, conversations: list[str], have: int, want: int, texts: Texts) -> None:
    """Add messages round-robin over the conversations until the store holds ``want``."""
    per, extra = divmod(want - have, len(conversations))
    for i, conversation in enumerate(conversations):
        count = per + (1 if i < extra else 0)
        for start in range(0, count, BATCH):
            batch = [
                Message(role=MessageRole.USER, content=texts.message())
                for _ in range(min(BATCH, count - start))
            ]
            await memory.store_messages(batch, conversation)


async def searches(memory: Any, owners: dict[str, str], n: int, texts: Texts) -> dict[str, Any]:
    """p50/p99 of ``n`` user-scoped searches; every hit checked to be the user's."""
    users = list(owners)
    latencies: list[float] = []
    hits = 0
    for i in range(n + 20):
        user = texts.rng.choice(users)
        query = texts.query()
        start = time.perf_counter()
        found = await memory.search_messages(query, user_id=user, limit=10)
        took = time.perf_counter() - start
        if any(m.conversation_id != owners[user] for m in found):
            raise AssertionError(f"search for {user} returned another user's message")
        if i >= 20:
            latencies.append(took * 1000)
            hits += len(found)
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        "mean_hits": round(hits / n, 2),
    }


async def run(backend: str, config: dict[str, Any], args: argparse.Namespace) -> None:
    memory = await build_memory(config)
    try:
        texts = Texts(seed=1)
        owners: dict[str, str] = {}
        for u in range(args.users):
            session = await memory.create_session(f"user-{u}")
            owners[f"user-{u}"] = session.conversation_id
        have, seeded = 0, 0.0
        for size in args.sizes:
            start = time.perf_counter()
            await seed(memory, list(owners.values()), have, size, texts)
            await memory.flush()
            took = time.perf_counter() - start
            seeded += took
            added, have = size - have, size
            row = {
                "backend": backend,
                "messages": size,
                "users": args.users,
                "seed_s": round(took, 1),
                "seed_msgs_per_s": round(added / took) if took else None,
                **await searches(memory, owners, args.queries, texts),
            }
            print(json.dumps(row), flush=True)
    finally:
        await memory.close()


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: sorted(int(x) for x in s.split(",")),
        default=[10_000, 100_000, 1_000_000],
    )
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    args = parser.parse_args(argv)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                tier = {"kind": "sqlite", "path": str(Path(tmp) / "scale.db")}
                await run(backend, {"namespace": "scale", "tiers": [tier]}, args)
        elif backend == "postgres":
            if not args.dsn:
                print(json.dumps({"backend": backend, "skipped": "no --dsn"}))
                continue
            schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
            tier = {"kind": "postgres", "dsn": args.dsn, "schema": schema, "max_size": 10}
            try:
                await run(backend, {"namespace": schema, "tiers": [tier]}, args)
            finally:
                await drop_schema(args.dsn, schema)
        else:
            parser.error(f"unknown backend {backend!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
