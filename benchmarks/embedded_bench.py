"""The embedded stacks against raw aiosqlite running the same SQL, in one run; prints JSON.

    python benchmarks/embedded_bench.py [--messages 20000]

Targets: stack store_message on sqlite within 1.3x raw aiosqlite; an LRU hit on
retrieve_messages(limit=20) at least 10x faster than the sqlite-only read;
store_messages(1000) at least 20,000 messages/s on sqlite.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

sys.path.insert(0, str(Path(__file__).parent))
from _timing import measure, ratio

from bruno_memory import build_memory
from bruno_memory.core.codec import message_row
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.sql import text as _sql

WORDS = "cat dog garden music travel coffee river mountain book movie friend dinner".split()
UPSERT = _sql.upsert("messages", _sql.MESSAGE_COLUMNS, "id")


def text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5, 7, 11)) + f" note {i}"


def message(i: int) -> Message:
    return Message(role=MessageRole.USER, content=text(i))


async def stack_case(name: str, tiers: list[dict[str, Any]], n: int) -> dict[str, Any]:
    memory = await build_memory({"tiers": tiers})
    session = await memory.create_session("bench-user")
    conv = session.conversation_id
    for start in range(0, n, 1000):
        await memory.store_messages([message(i) for i in range(start, start + 1000)], conv)
    for i in range(200):
        await memory.store_memory(
            MemoryEntry(content=text(i), memory_type=MemoryType.FACT, user_id="bench-user")
        )
    counter = itertools.count(n)
    results = {
        "store_message": await measure(
            lambda: memory.store_message(message(next(counter)), conv), 2000
        ),
        "store_messages_1000": await measure(
            lambda: memory.store_messages([message(next(counter)) for _ in range(1000)], conv),
            30,
            per_call=1000,
            warmup=2,
        ),
        "retrieve_messages_20": await measure(
            lambda: memory.retrieve_messages(conv, limit=20), 3000
        ),
        "search_messages": await measure(
            lambda: memory.search_messages("garden coffee", user_id="bench-user", limit=10), 500
        ),
        "retrieve_memories": await measure(
            lambda: memory.retrieve_memories(MemoryQuery(user_id="bench-user", limit=10)), 1000
        ),
    }
    await memory.close()
    return {"stack": name, **results}


async def raw_case(path: str, n: int) -> dict[str, Any]:
    """The same SQL through aiosqlite directly, on a database the tier created."""
    memory = await build_memory({"tiers": [{"kind": "sqlite", "path": path}]})
    await memory.close()
    db = await aiosqlite.connect(path)
    # the tier's triggers call it (a forgotten user's tombstone is a keyed hash of her id)
    await db.create_function("bruno_pseudonym", 2, _sql.pseudonym, deterministic=True)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 5000"):
        await db.execute(f"PRAGMA {pragma}")
    counter = itertools.count()

    def row(i: int) -> tuple[Any, ...]:  # versioned like the stack's writes
        return (*message_row(MessageRecord(message(i), "raw-conv", "bench-user")), time.time_ns())

    async def store_one() -> None:
        await db.execute(UPSERT, row(next(counter)))
        await db.commit()

    async def store_many() -> None:
        await db.executemany(UPSERT, [row(next(counter)) for _ in range(1000)])
        await db.commit()

    for _ in range(n // 1000):
        await store_many()

    async def window() -> list[Message]:
        async with db.execute(_sql.WINDOW, ("raw-conv", 20)) as cur:
            return [Message.model_validate_json(p) for _, _, p in await cur.fetchall()]

    async def search() -> list[Message]:
        sql = (
            "SELECT m.payload FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.user_id = ? ORDER BY bm25(messages_fts) LIMIT 10"
        )
        async with db.execute(sql, ('"garden" OR "coffee"', "bench-user")) as cur:
            return [Message.model_validate_json(p) for (p,) in await cur.fetchall()]

    results = {
        "store_message": await measure(store_one, 2000),
        "store_messages_1000": await measure(store_many, 30, per_call=1000, warmup=2),
        "retrieve_messages_20": await measure(window, 3000),
        "search_messages": await measure(search, 500),
    }
    await db.close()
    return {"stack": "raw aiosqlite", **results}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = await raw_case(str(Path(tmp) / "raw.db"), args.messages)
        sqlite = await stack_case(
            "sqlite", [{"kind": "sqlite", "path": str(Path(tmp) / "a.db")}], args.messages
        )
        lru = await stack_case(
            "lru->sqlite",
            [
                {"kind": "lru", "maxsize": 100_000},
                {"kind": "sqlite", "path": str(Path(tmp) / "b.db")},
            ],
            args.messages,
        )
    for case in (raw, sqlite, lru):
        print(json.dumps(case))
    print(
        json.dumps(
            {
                "summary": True,
                "store_message_p50_sqlite_vs_raw": ratio(
                    sqlite["store_message"], raw["store_message"]
                ),
                "retrieve20_p50_sqlite_vs_lru_hit": ratio(
                    sqlite["retrieve_messages_20"], lru["retrieve_messages_20"]
                ),
                "retrieve20_p50_sqlite_vs_raw": ratio(
                    sqlite["retrieve_messages_20"], raw["retrieve_messages_20"]
                ),
                "store_messages_1000_msgs_per_s_sqlite": sqlite["store_messages_1000"]["ops_per_s"],
                "store_messages_1000_sqlite_vs_raw_throughput": round(
                    sqlite["store_messages_1000"]["ops_per_s"]
                    / raw["store_messages_1000"]["ops_per_s"],
                    3,
                ),
                "targets": {
                    "store_message_within": 1.3,
                    "lru_hit_speedup_at_least": 10,
                    "batch_msgs_per_s_at_least": 20000,
                },
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
