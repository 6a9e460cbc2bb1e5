"""Sequential write latency of the server stacks, side by side in one run; JSON lines.

    python benchmarks/write_latency.py [--writes 2000] [--dsn URL] [--redis URL]

Four stacks open at once, each in a namespace of its own (removed afterwards): the
PostgreSQL tier alone (pool of 10), ``single-node`` (LRU -> Redis -> PostgreSQL, write
through), ``production`` (LRU -> Redis -> PostgreSQL written behind, journaled in a
Redis Stream) and ``one-process``: ``production``'s tiers for one process, its LRU
without pub/sub invalidation (what keeping other processes' LRUs coherent costs a
writer). Each job writes ``--writes`` records one after the other on every stack in turns
(``_timing.measure_turns``: load drift hits them alike):

- ``message_minted`` / ``memory_minted``: ``store_message`` / ``store_memory`` of a record
  whose id its model made (``Message(role=..., content=...)``, the usual call);
- ``message_chosen`` / ``memory_chosen``: the same with an id the caller gave
  (``Message(id=...)``): a write-behind stack looks it up before acknowledging (an
  upsert must not take another owner's record), a write-through one checks it in its
  upsert;
- ``message_sessionless``: ``message_minted`` into a conversation that has no session
  (``store_message(m, "conv_123")``, bruno-core's own example): each write asks who owns
  the conversation, which the local cache answers once it remembers there is none.

Each line: per stack ``p50_us``/``p99_us``; ``single_node_vs_postgres``,
``production_vs_single_node`` and ``one_process_vs_production``, ratios of p50s (below 1:
the first is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from _timing import measure_turns, ratio
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

STACKS = ("postgres", "single-node", "production", "one-process")
JOBS = ("message_minted", "message_chosen", "message_sessionless", "memory_minted",
        "memory_chosen")


async def open_stack(name: str, args: argparse.Namespace, ns: str) -> Any:
    if name == "postgres":
        tier = {"kind": "postgres", "dsn": args.dsn, "schema": ns, "max_size": 10}
        return await build_memory({"namespace": ns, "tiers": [tier]})
    if name == "one-process":
        return await build_memory({"namespace": ns, "tiers": [
            {"name": "local", "kind": "lru", "max_bytes": "128MB", "window": 50},
            {"name": "hot", "kind": "redis", "url": args.redis, "window": 100,
             "policy": "cache-skip-on-error"},
            {"name": "durable", "kind": "postgres", "dsn": args.dsn, "max_size": 10,
             "policy": "batched-journaled", "write_behind": {"flushers": 2},
             "journal": {"kind": "redis", "url": args.redis}},
        ]})
    os.environ.update(DATABASE_URL=args.dsn, REDIS_URL=args.redis, BRUNO_MEMORY_NAMESPACE=ns)
    return await build_memory(name)


def writer(memory: Any, conversation: str, job: str) -> Callable[[], Awaitable[None]]:
    """One write of ``job`` to ``memory`` per call, each a new record."""
    n = count()

    async def message() -> None:
        i = next(n)
        given = {"id": uuid.uuid4()} if job.endswith("chosen") else {}
        await memory.store_message(
            Message(role=MessageRole.USER, content=f"note {i} about the garden", **given),
            conversation)

    async def memory_() -> None:
        i = next(n)
        given = {"id": uuid.uuid4()} if job.endswith("chosen") else {}
        await memory.store_memory(MemoryEntry(
            content=f"fact {i}: likes tea", memory_type=MemoryType.FACT, user_id="u1", **given))

    return message if job.startswith("message") else memory_


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--dsn", default=os.environ.get(
        "BRUNO_MEMORY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get(
        "BRUNO_MEMORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    opened: dict[str, Any] = {}
    try:
        for name in STACKS:
            opened[name] = await open_stack(name, args, f"lat_{uuid.uuid4().hex[:8]}")
        conversations = {name: str((await m.create_session("u1")).conversation_id)
                         for name, m in opened.items()}
        for job in JOBS:
            fns = {name: writer(m, conversations[name] if job != "message_sessionless"
                                else f"bare-{uuid.uuid4().hex}", job)
                   for name, m in opened.items()}
            stats = await measure_turns(fns, args.writes)
            print(json.dumps({
                "job": job,
                **{name: {k: stats[name][k] for k in ("p50_us", "p99_us")} for name in STACKS},
                "single_node_vs_postgres": ratio(stats["single-node"], stats["postgres"]),
                "production_vs_single_node": ratio(stats["production"], stats["single-node"]),
                "one_process_vs_production": ratio(stats["one-process"], stats["production"]),
            }), flush=True)
    finally:
        for memory in opened.values():
            await memory.drop()
            await memory.close()


if __name__ == "__main__":
    asyncio.run(main())
