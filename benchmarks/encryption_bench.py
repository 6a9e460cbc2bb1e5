"""Encryption overhead: each stack with and without ``encryption:``, in one run; prints JSON.

    python benchmarks/encryption_bench.py [--messages 1000] [--rounds 5]
        [--redis URL] [--dsn URL]   (single-node; default: the test service variables)

Target: ``store_message`` and ``retrieve_messages(20)`` with encryption at most 1.3x
without, on laptop (LRU -> SQLite) and single-node (LRU -> Redis -> PostgreSQL).
Both stacks are open at once and each operation is called on one then the other in
turns, so drift in the machine's load hits both sides alike; each ratio is the median of
the rounds' p50 ratios. ``*_durable`` rows
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
from _timing import measure_turns, ratio

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


async def cached(pair: dict[bool, Any], conv: str, n: int) -> dict[bool, dict[str, Any]]:
    """Writes and reads of the whole stack (the LRU answers repeated windows)."""
    for memory in pair.values():
        for start in range(0, n, 500):
            await memory.store_messages([message(i) for i in range(start, start + 500)], conv)
    counters = {e: itertools.count(n) for e in pair}
    ops = {
        "store_message": (lambda m, e: m.store_message(message(next(counters[e])), conv), 400),
        "retrieve_messages_20": (lambda m, e: m.retrieve_messages(conv, limit=20), 2000),
        "search_messages": (lambda m, e: m.search_messages("garden coffee", "bench-user", 10),
                            200),
    }
    return await turns(pair, ops)


async def durable(pair: dict[bool, Any], conv: str) -> dict[bool, dict[str, Any]]:
    """Windows read past the LRU: every one is read and unsealed."""
    ops = {"retrieve_messages_20_durable": (
        lambda m, e: m.retrieve_messages(conv, limit=20), 500)}
    return await turns(pair, ops)


async def turns(pair: dict[bool, Any], ops: dict[str, Any]) -> dict[bool, dict[str, Any]]:
    """Each op on the plain and the encrypted stack in turns (``measure_turns``)."""
    out: dict[bool, dict[str, Any]] = {e: {} for e in pair}
    for op, (call, n) in ops.items():
        fns = {str(e): (lambda m=m, e=e, call=call: call(m, e)) for e, m in pair.items()}
        for e, stats in (await measure_turns(fns, n)).items():
            out[e == "True"][op] = stats
    return out


async def one_round(tiers: list[dict[str, Any]], tmp: Path,
                    n: int) -> tuple[dict[bool, dict[str, Any]], list[str]]:
    """The plain and the encrypted stack, both open, measured in turns."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    names = {e: f"encbench_{uuid.uuid4().hex[:10]}" for e in (False, True)}
    results: dict[bool, dict[str, Any]] = {False: {}, True: {}}
    conv = "c-bench"
    for lru in (True, False):
        pair = {e: await build_memory(config(tiers, names[e], tmp, key if e else None, lru))
                for e in (False, True)}
        try:
            for memory in pair.values():
                await memory.get_context("bench-user", conv)
            found = await cached(pair, conv, n) if lru else await durable(pair, conv)
            for e in pair:
                results[e].update(found[e])
        finally:
            for memory in pair.values():
                await memory.close()
    return results, list(names.values())


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
                    result, used = await one_round(tiers, Path(tmp), args.messages)
                    for encrypt in (False, True):
                        rounds[encrypt].append(result[encrypt])
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
