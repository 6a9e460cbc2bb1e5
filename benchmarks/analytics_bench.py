"""Analytics over a large store: ``analyze`` throughput and peak memory on the laptop stack
(LRU -> SQLite), with and without topics, and the cost of the per-operation latency
histograms on the hot path; prints JSON.

    python benchmarks/analytics_bench.py [--messages 100000]

``rss_growth_mb`` is the peak resident memory gained during ``analyze``: it stays flat as
the store grows (``scan`` pages, aggregates only); compare two ``--messages`` sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.managers.analytics import Options, analyze
from bruno_memory.stack.latency import Latency

WORDS = "picnic bread lake coffee project deadline garden tomato train hotel dinner".split()
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fill(memory: Any, messages: int, per_conversation: int = 1000) -> None:
    rng = random.Random(1)
    for c in range(0, messages, per_conversation):
        session = await memory.create_session(f"user-{c // per_conversation % 20}")
        batch = [Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                         content=" ".join(rng.choice(WORDS) for _ in range(10)),
                         timestamp=START + timedelta(minutes=c + i))
                 for i in range(min(per_conversation, messages - c))]
        await memory.store_messages(batch, session.conversation_id)


def hot_path_cost(n: int = 200_000) -> dict[str, float]:
    """Nanoseconds one timed call adds: two clock reads and a histogram update."""
    h = Latency()
    clock = time.perf_counter
    started = clock()
    for _ in range(n):
        t = clock()
        h.observe(clock() - t)
    return {"ns_per_timed_call": round((clock() - started) / n * 1e9, 1)}


async def run(messages: int) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": messages}
    with tempfile.TemporaryDirectory() as tmp:
        config = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(Path(tmp) / "a.db")}]}
        async with await build_memory(config) as memory:
            await fill(memory, messages)
            for name, options in (("counts", Options(topics=False)),
                                  ("with_topics", Options(top_users=5))):
                before = rss_mb()
                t0 = time.perf_counter()
                found = await analyze(memory, options=options)
                seconds = time.perf_counter() - t0
                assert found["totals"]["messages"] == messages
                out[name] = {"seconds": round(seconds, 3),
                             "messages_per_s": round(messages / seconds),
                             "rss_growth_mb": round(rss_mb() - before, 1)}
    out["peak_rss_mb"] = round(rss_mb(), 1)
    out["hot_path"] = hot_path_cost()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    print(json.dumps(asyncio.run(run(parser.parse_args().messages)), indent=2))


if __name__ == "__main__":
    main()
