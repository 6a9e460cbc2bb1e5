"""Encryption overhead: each stack with and without ``encryption:``, in one run; prints JSON.

    python benchmarks/encryption_bench.py [--messages 1000] [--rounds 5]
        [--redis URL] [--dsn URL]   (single-node; default: the test service variables)

Target: ``store_message`` and ``retrieve_messages(20)`` with encryption at most 1.3x
without, on laptop (LRU -> SQLite) and single-node (LRU -> Redis -> PostgreSQL).
Measured in alternating rounds (plain, encrypted, plain, ...), each ratio the median of
the rounds' p50 ratios, so load on the machine hits both sides alike. ``*_durable`` rows
read past the LRU (the same stack without it): every window is unsealed there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

sys.path.insert(0, str(Path(__file__).parent))
from _timing import measure, ratio

from bruno_memory import build_memory

WORDS = ("cat dog garden music travel coffee river mountain book movie friend dinner "
         "morning sister holiday recipe weather office train concert").split()
TARGET = 1.3


def message(i: int) -> Message:
    words = " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 31))
    return Message(role=MessageRole.USER, content=f"{words} note {i}",
                   metadata={"source": "bench", "turn": i})


def stacks(args: argparse.Namespace, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    out = {
        "laptop": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp / "{ns}.db")}],
    }
    if args.redis and args.dsn:
        out["single-node"] = [
            {"kind": "lru"},
            {"kind": "redis", "url": args.redis, "ttl": "1h"},
            {"kind": "postgres", "dsn": args.dsn, "max_size": 4},
        ]
    return out


def config(tiers: list[dict[str, Any]], ns: str, tmp: Path, key: str | None, lru: bool) -> Any:
    filled = [{k: v.replace("{ns}", ns) if isinstance(v, str) else v for k, v in t.items()}
              for t in tiers if lru or t["kind"] != "lru"]
    cfg: dict[str, Any] = {"namespace": ns, "tiers": filled}
    if key is not None:
        cfg["encryption"] = {"key": key, "keystore": str(tmp / f"{ns}-keys.db")}
    return cfg


async def cached(memory: Any, conv: str, n: int) -> dict[str, Any]:
    """Writes and reads of the whole stack (the LRU answers repeated windows)."""
    for start in range(0, n, 500):
        await memory.store_messages([message(i) for i in range(start, start + 500)], conv)
    counter = itertools.count(n)
    return {
        "store_message": await measure(
            lambda: memory.store_message(message(next(counter)), conv), 400),
        "retrieve_messages_20": await measure(
            lambda: memory.retrieve_messages(conv, limit=20), 2000),
        "search_messages": await measure(
            lambda: memory.search_messages("garden coffee", "bench-user", 10), 200),
    }


async def durable(memory: Any, conv: str) -> dict[str, Any]:
    """Windows read past the LRU: every one is read and unsealed."""
    return {"retrieve_messages_20_durable": await measure(
        lambda: memory.retrieve_messages(conv, limit=20), 500)}


async def one_round(tiers: list[dict[str, Any]], tmp: Path, encrypt: bool,
                    n: int) -> tuple[dict[str, Any], list[str]]:
    ns = f"encbench_{uuid.uuid4().hex[:10]}"
    key = base64.urlsafe_b64encode(os.urandom(32)).decode() if encrypt else None
    results: dict[str, Any] = {}
    conv = f"c-{ns}"
    for lru in (True, False):
        memory = await build_memory(config(tiers, ns, tmp, key, lru))
        try:
            await memory.get_context("bench-user", conv)
            results.update(await cached(memory, conv, n) if lru else await durable(memory, conv))
        finally:
            await memory.close()
    return results, [ns]


async def cleanup(args: argparse.Namespace, namespaces: list[str]) -> None:
    if not (args.redis and args.dsn):
        return
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(args.dsn)
    client = Redis.from_url(args.redis)
    try:
        for ns in namespaces:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{ns}" CASCADE')
            keys = [k async for k in client.scan_iter(match=f"*{ns}*", count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await conn.close()
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default=os.environ.get("BRUNO_MEMORY_TEST_REDIS_URL"))
    parser.add_argument("--dsn", default=os.environ.get("BRUNO_MEMORY_TEST_POSTGRES_DSN"))
    args = parser.parse_args()
    report: dict[str, Any] = {"target": TARGET, "rounds": args.rounds, "stacks": {}}
    namespaces: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name, tiers in stacks(args, Path(tmp)).items():
                rounds: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
                for _ in range(args.rounds):
                    for encrypt in (False, True):
                        result, used = await one_round(tiers, Path(tmp), encrypt, args.messages)
                        rounds[encrypt].append(result)
                        namespaces += used
                report["stacks"][name] = summary(rounds)
        finally:
            await cleanup(args, namespaces)
    report["target_met"] = all(
        s["ratio"][op] <= TARGET for s in report["stacks"].values()
        for op in ("store_message", "retrieve_messages_20"))
    print(json.dumps(report, indent=2))


def summary(rounds: dict[bool, list[dict[str, Any]]]) -> dict[str, Any]:
    ops = list(rounds[False][0])
    return {
        "plain_p50_us": {op: statistics.median(r[op]["p50_us"] for r in rounds[False])
                         for op in ops},
        "encrypted_p50_us": {op: statistics.median(r[op]["p50_us"] for r in rounds[True])
                             for op in ops},
        "ratio": {op: round(statistics.median(ratio(e[op], p[op]) for p, e in
                                              zip(rounds[False], rounds[True], strict=True)), 3)
                  for op in ops},
    }


if __name__ == "__main__":
    asyncio.run(main())
