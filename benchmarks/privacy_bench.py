"""The cost of the audit trail and of redact-on-write on ``store_message``; prints JSON.

    python benchmarks/privacy_bench.py [--writes 400] [--dsn postgresql://...]

For the laptop stack (LRU -> SQLite) and, with a DSN (default
``$BRUNO_MEMORY_TEST_POSTGRES_DSN``), LRU -> PostgreSQL: one writer's ``store_message``
latency (p50, p99) and 16 concurrent writers' throughput (median of 5 bursts), plain,
with an ``audit:`` section, and with a ``redact:`` section, measured in turns in one run;
``*_ratio`` is with / plain (latency) or plain / with (throughput): 1.0 means free.
``laptop_erasure``: how long ``forget_user`` takes among ``--erase`` other messages (it
merges the full-text indexes).
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
from pathlib import Path
from typing import Any

import asyncpg
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

TEXT = "we talked about the picnic, mail me at ada@example.com or call +44 20 7946 0958"
MODES = ("plain", "audit", "redact")


def say(i: int) -> Message:
    return Message(role=MessageRole.USER, content=f"{TEXT} ({i})")


def variant(base: dict[str, Any], mode: str) -> dict[str, Any]:
    extra = {"audit": {"audit": {}}, "redact": {"redact": {}}}.get(mode, {})
    return {**base, **extra}


def stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_us": round(statistics.median(samples) * 1e6, 1),
            "p99_us": round(samples[int(len(samples) * 0.99)] * 1e6, 1)}


async def compare(base_of: Any, writes: int, rounds: int = 5) -> dict[str, Any]:
    """Every mode's stack open at once, measured in turns (one write each, then a burst
    of 16 concurrent writers each), so the machine's drift hits them alike."""
    stacks = {m: await build_memory(variant(base_of(m), m)) for m in MODES}
    try:
        single: dict[str, list[float]] = {m: [] for m in MODES}
        burst: dict[str, list[float]] = {m: [] for m in MODES}
        convs = {m: (await s.get_context("ada", f"c-{m}")).conversation_id
                 for m, s in stacks.items()}
        for i in range(writes + 20):
            for m, memory in stacks.items():
                t = time.perf_counter()
                await memory.store_message(say(i), convs[m])
                if i >= 20:  # warmed up
                    single[m].append(time.perf_counter() - t)
        for r in range(rounds):
            for m, memory in stacks.items():
                others = [(await memory.get_context(f"u{k}", f"b{r}-{k}")).conversation_id
                          for k in range(16)]

                async def writer(memory: Any, conversation: str) -> None:
                    for i in range(writes // 16):
                        await memory.store_message(say(i), conversation)

                t = time.perf_counter()
                await asyncio.gather(*(writer(memory, c) for c in others))
                burst[m].append(16 * (writes // 16) / (time.perf_counter() - t))
        assert (await stacks["audit"].verify_audit()).ok
    finally:
        for memory in stacks.values():
            await memory.close()
    out: dict[str, Any] = {
        m: {**stats(single[m]), "concurrent_writes_per_s": round(statistics.median(burst[m]))}
        for m in MODES}
    for m in MODES[1:]:
        out[f"{m}_p50_ratio"] = round(out[m]["p50_us"] / out["plain"]["p50_us"], 3)
        out[f"{m}_concurrent_ratio"] = round(
            out["plain"]["concurrent_writes_per_s"] / out[m]["concurrent_writes_per_s"], 3)
    return out


async def erase(folder: Path, messages: int) -> dict[str, Any]:
    """``forget_user`` of one user among ``messages`` others on the laptop stack: its
    erasure merges the full-text indexes, so it takes time with their size."""
    config = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(folder / "e.db")}]}
    async with await build_memory(config) as memory:
        for c in range(0, messages, 1000):
            ctx = await memory.get_context(f"u{c % 50}", f"e{c}")
            await memory.store_messages([say(c + i) for i in range(1000)], ctx.conversation_id)
        ctx = await memory.get_context("gone", "gone-c")
        await memory.store_messages([say(i) for i in range(100)], ctx.conversation_id)
        t = time.perf_counter()
        await memory.forget_user("gone")
        took = time.perf_counter() - t
    return {"messages": messages, "forget_user_ms": round(took * 1000, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--erase", type=int, default=50_000,
                        help="messages of other users when one is forgotten (0: skip)")
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    args = parser.parse_args()
    result: dict[str, Any] = {"writes": args.writes}
    with tempfile.TemporaryDirectory() as tmp:
        def laptop(mode: str) -> dict[str, Any]:
            path = Path(tmp) / f"{mode}.db"
            return {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(path)}]}

        result["laptop"] = await compare(laptop, args.writes)
        if args.erase:
            result["laptop_erasure"] = await erase(Path(tmp), args.erase)
    if args.dsn:
        schemas: list[str] = []

        def postgres(mode: str) -> dict[str, Any]:
            schemas.append(f"bench_privacy_{mode}_{uuid.uuid4().hex[:8]}")
            return {"namespace": schemas[-1], "tiers": [
                {"kind": "lru"}, {"kind": "postgres", "dsn": args.dsn}]}

        try:
            result["postgres"] = await compare(postgres, args.writes)
        finally:
            conn = await asyncpg.connect(args.dsn)
            try:
                for schema in schemas:
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
