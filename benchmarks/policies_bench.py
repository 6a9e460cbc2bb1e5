"""Write-behind with a Redis Stream journal against write-through, to PostgreSQL, in one run.

Prints JSON with, for each side:

- ``store_message`` latency p50/p99 (ms): one writer, blocks of calls interleaved between
  the two stacks so machine load hits both alike;
- sustained throughput (messages/s): ``--writers`` concurrent writers, each on its own
  conversation, for ``--seconds``, in ``--rounds`` rounds alternating between the stacks;
  "sustained" counts the time until everything written is in PostgreSQL (write-behind:
  plus its final flush), so a queue that only absorbs a burst does not count;
  ``accepted_per_s`` is the rate writes were acknowledged;
- for write-behind, the flush lag under that load (enqueue -> applied, p50/p99/max ms,
  recent samples of the last round), flush latency and the queue depth left at the end
  of the window;

and the ratios the issue targets: p50 at most 0.5x write-through, throughput at least 3x.

Usage: ``python benchmarks/policies_bench.py [--dsn URL] [--redis URL]``; defaults:
``$BRUNO_MEMORY_TEST_POSTGRES_DSN`` / ``$DATABASE_URL``, ``$BRUNO_MEMORY_TEST_REDIS_URL`` /
``$REDIS_URL``. Everything it creates (two schemas, one stream) is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from bruno_core.models.message import Message, MessageRole
from redis.asyncio import Redis

from bruno_memory import build_memory

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MAX_RATE = 40_000  # messages/s prepared per round; more than either stack can take here
TEXT = ("I went kayaking on the lake this morning and saw a heron fishing by the reeds; "
        "the water was calm, the air cold, and we talked about the trip next summer")


def message(i: int) -> Message:
    return Message(role=MessageRole.USER, content=f"{TEXT} #{i}",
                   timestamp=T0 + timedelta(milliseconds=i))


def stacks(dsn: str, redis_url: str, ns: str) -> dict[str, dict[str, Any]]:
    pg = {"name": "durable", "kind": "postgres", "dsn": dsn, "max_size": 10}
    return {
        "write_through": {"namespace": f"{ns}_wt", "tiers": [pg]},
        "write_behind": {"namespace": f"{ns}_wb", "tiers": [{
            **pg, "write": "write-behind", "on_error": "queue",
            "journal": {"kind": "redis", "url": redis_url},
            "write_behind": {"batch_size": 1000, "interval": "50ms", "max_pending": 20000,
                             "flushers": 2},
        }]},
    }


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


async def latency(memories: dict[str, Any], calls: int, block: int) -> dict[str, Any]:
    """Sequential store_message, alternating blocks between the stacks."""
    samples: dict[str, list[float]] = {name: [] for name in memories}
    for name, memory in memories.items():  # warm-up: pools, prepared statements, scripts
        await memory.get_context("ann", "latency")  # a session owns the conversation
        for i in range(100):
            await memory.store_message(message(i), f"warm-{name}")
    for start in range(0, calls, block):
        for name, memory in memories.items():
            for i in range(start, start + block):
                began = time.perf_counter()
                await memory.store_message(message(i), "latency")
                samples[name].append(time.perf_counter() - began)
    for memory in memories.values():
        await memory.flush()
    return {name: {"p50_ms": pct(s, 0.5), "p99_ms": pct(s, 0.99), "calls": len(s)}
            for name, s in samples.items()}


async def throughput(memory: Any, writers: int, seconds: float, round_: int,
                     ready: list[list[Message]]) -> dict[str, Any]:
    """``writers`` concurrent writers for ``seconds``, then everything flushed.

    Messages are built beforehand (``ready``: one list per writer): a caller has its
    message already, and building it would load the CPU both stacks share."""
    done = 0
    stop = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        nonlocal done
        for m in ready[w]:
            if time.perf_counter() >= stop:
                return
            await memory.store_message(m, f"load-{round_}-{w}")
            done += 1

    for w in range(writers):
        await memory.get_context(f"user-{w}", f"load-{round_}-{w}")
    began = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    window = time.perf_counter() - began
    metrics = (await memory.health())["durable"].get("metrics", {}).get("write_behind")
    await memory.flush()
    return {"messages": done, "window_s": window, "total_s": time.perf_counter() - began,
            "metrics": metrics}


async def sustained(memories: dict[str, Any], writers: int, seconds: float,
                    rounds: int) -> dict[str, Any]:
    """Rounds alternating between the stacks; rates over all rounds of each."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in memories}
    per_writer = int(seconds * MAX_RATE / writers)
    for r in range(rounds):
        for name, memory in memories.items():
            ready = [[message(i) for i in range(per_writer)] for _ in range(writers)]
            gc.collect()  # the prepared inputs (100k+ models) are the benchmark's, not the
            gc.freeze()   # stack's: keep them out of the collections the stack's work triggers
            try:
                runs[name].append(await throughput(memory, writers, seconds, r, ready))
            finally:
                gc.unfreeze()
                del ready
            if all(x["messages"] >= per_writer * writers for x in runs[name][-1:]):
                raise RuntimeError("raise MAX_RATE: the writers ran out of messages")
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        n = sum(x["messages"] for x in rs)
        window, total = sum(x["window_s"] for x in rs), sum(x["total_s"] for x in rs)
        out[name] = {"messages": n, "accepted_per_s": round(n / window),
                     "sustained_per_s": round(n / total),
                     "per_round_sustained_per_s": [round(x["messages"] / x["total_s"]) for x in rs],
                     "final_flush_s": round(total - window, 3)}
        last = rs[-1]["metrics"]
        if last:
            out[name].update(queue_depth_at_end_of_window=last["queue_depth"],
                             flush_lag_ms=last["flush_lag_ms"],
                             flush_latency_ms=last["flush_latency_ms"])
    return out


async def cleanup(dsn: str, redis_url: str, memories: dict[str, Any], ns: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for schema in (f"{ns}_wt", f"{ns}_wb"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    client = Redis.from_url(redis_url)
    stream = f"journal:{{{ns}_wb:durable}}"
    await client.delete(stream, f"{stream}:dead")
    await client.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ns = f"bench_{uuid.uuid4().hex[:8]}"
    configs = stacks(args.dsn, args.redis, ns)
    memories = {name: await build_memory(cfg) for name, cfg in configs.items()}
    try:
        lat = await latency(memories, args.calls, args.block)
        thr = await sustained(memories, args.writers, args.seconds, args.rounds)
    finally:
        for memory in memories.values():
            await memory.close()
        await cleanup(args.dsn, args.redis, memories, ns)
    wt, wb = "write_through", "write_behind"
    return {
        "store_message_latency": lat,
        "sustained_throughput": thr,
        "ratios": {
            "p50_write_behind_over_write_through": round(lat[wb]["p50_ms"] / lat[wt]["p50_ms"], 3),
            "p99_write_behind_over_write_through": round(lat[wb]["p99_ms"] / lat[wt]["p99_ms"], 3),
            "throughput_write_behind_over_write_through": round(
                thr[wb]["sustained_per_s"] / thr[wt]["sustained_per_s"], 2),
        },
        "targets": {"p50_ratio_at_most": 0.5, "throughput_ratio_at_least": 3.0},
        "setup": {"writers": args.writers, "seconds_per_round": args.seconds,
                  "rounds": args.rounds, "calls": args.calls,
                  "journal": "redis stream", "durable": "postgres"},
    }


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN")
                   or os.environ.get("DATABASE_URL")
                   or "postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--redis", default=os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL")
                   or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--writers", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    return p.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse())), indent=2))
