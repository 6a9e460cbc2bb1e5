"""The redis tier against raw redis-py, in one run; prints JSON.

Measures ``retrieve_messages(conversation, limit=20)`` answered from a Redis window
through a stack (redis -> sqlite, ``build_memory``), against raw redis-py (same client
settings, hiredis) doing the same ``LRANGE`` of 20 message payloads and decoding them into
bruno-core ``Message`` models, newest first. Also the tier's ``window()`` alone.
Calls are interleaved so machine load hits every side alike; p50/p99 in microseconds.

Usage: ``python benchmarks/redis_bench.py [--url redis://127.0.0.1:6379/0] [--rounds 3000]``
(``--url`` defaults to ``$BRUNO_MEMORY_TEST_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole
from redis.asyncio import Redis

from bruno_memory import build_memory
from bruno_memory.tiers.redis.tier import RedisTier

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LIMIT = 20


def message(i: int, conversation: str) -> Message:
    """A ~1 KB message, as in PERF-NOTES."""
    words = " ".join(f"word{(i * 7 + j) % 997}" for j in range(120))
    return Message(
        role=MessageRole.USER,
        content=words[:1000],
        timestamp=T0 + timedelta(seconds=i),
        metadata={"intent": "chat", "turn": i},
        conversation_id=conversation,
    )


async def raw_read(client: Redis, key: str) -> list[Message]:
    items = await client.lrange(key, -LIMIT, -1)
    return [Message.model_validate_json(x) for x in reversed(items)]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_us": round(statistics.median(ordered) * 1e6, 1), "p99_us": round(p99 * 1e6, 1)}


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def run(url: str, rounds: int, folder: Path) -> dict[str, Any]:
    prefix = f"bench_{uuid.uuid4().hex[:8]}"
    memory = await build_memory(
        {
            "namespace": prefix,
            "tiers": [
                {"name": "hot", "kind": "redis", "url": url},
                {"name": "durable", "kind": "sqlite", "path": str(folder / "bench.db")},
            ],
        }
    )
    tier = memory.tiers[0]
    assert isinstance(tier, RedisTier)
    raw = Redis.from_url(url, socket_timeout=5.0)
    raw_key = f"{prefix}:raw"
    try:
        conv = (await memory.create_session("bench-user")).conversation_id
        batch = [message(i, conv) for i in range(200)]
        await memory.store_messages(batch, conv)
        await raw.rpush(raw_key, *(m.model_dump_json() for m in batch))
        via_stack = await memory.retrieve_messages(conv, limit=LIMIT)  # fills the redis window
        assert via_stack == await raw_read(raw, raw_key) == batch[::-1][:LIMIT]
        hits_before = (await memory.health())["hot"]["hits"]

        sides: dict[str, Callable[[], Awaitable[Any]]] = {
            "stack": lambda: memory.retrieve_messages(conv, limit=LIMIT),
            "raw": lambda: raw_read(raw, raw_key),
            "tier_window": lambda: tier.window(conv, LIMIT),
        }
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(200):  # warm-up
            for call in sides.values():
                await call()
        for i in range(rounds):
            order = list(sides.items())
            if i % 2:
                order.reverse()
            for name, call in order:
                samples[name].append(await timed(call))
        hits = (await memory.health())["hot"]["hits"] - hits_before
    finally:
        await tier.clear()
        await raw.delete(raw_key)
        await raw.aclose()
        await memory.close()

    result = {name: percentiles(s) for name, s in samples.items()}
    stack, rawp = result["stack"], result["raw"]
    return {
        "benchmark": "redis-hit retrieve_messages(limit=20) vs raw redis-py LRANGE + decode",
        "rounds": rounds,
        "message_bytes": len(batch[0].model_dump_json()),
        "redis_hits_during_run": hits,
        **result,
        "ratio_p50": round(stack["p50_us"] / rawp["p50_us"], 3),
        "ratio_p99": round(stack["p99_us"] / rawp["p99_us"], 3),
        "target_ratio": 1.5,
        "within_target": stack["p50_us"] / rawp["p50_us"] <= 1.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(asyncio.run(run(args.url, args.rounds, Path(folder))), indent=2))


if __name__ == "__main__":
    main()
