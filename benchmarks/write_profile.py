"""Where a concurrent write's time goes on ``laptop``: the event loop's Python vs the
SQLite driver's thread, per write; text.

    python benchmarks/write_profile.py [--writes 2000] [--tasks 50]
        [--profile messages|memories] [--top 25]

Runs the writes of ``peers.py``'s ``messages_concurrent_50`` and ``memories_concurrent_50``
on ``build_memory("laptop")`` in a temporary folder and prints, per job, ops/s
and per write: wall time, CPU of the event loop's thread (``time.thread_time``) and CPU of
every other thread (process CPU minus the loop's: the driver's), and the part of the
loop's that went to Python's cyclic garbage collector (collections counted by
``gc.callbacks``; they follow the objects a write allocates). A job the loop's CPU
bounds shows the loop's figure near the wall time: a faster driver or leaner SQL then
gains little.
``--profile JOB`` runs that job under cProfile and prints the loop's own time by module
(cProfile's overhead about doubles the loop's CPU; the shares are what to read).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from _peer_jobs import T0, TYPES, text
from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory


class GcClock:
    """Time spent in the cyclic garbage collector while ``running`` (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._start = 0.0, 0, 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1

    def reset(self) -> None:
        self.seconds, self.collections = 0.0, 0


def by_module(profile: cProfile.Profile, top: int) -> list[str]:
    """The profile's own time summed per source file, largest first, as percentages."""
    totals: dict[str, float] = {}
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (path, _, func), (_, _, own, _, _) in stats.items():
        where = path.rsplit("/bruno_memory/", 1)[-1] if "/bruno_memory/" in path else path
        where = where.split("site-packages/")[-1].split("python3.11/")[-1] if "/" in path else func
        totals[where] = totals.get(where, 0.0) + own
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [f"  {own / whole * 100:5.1f}%  {where}" for where, own in ranked]


async def run(args: argparse.Namespace) -> None:
    source: str | dict[str, Any] = args.stack
    if args.stack == "postgres":  # the durable tier of single-node and production, alone
        tier = {"kind": "postgres", "dsn": os.environ["DATABASE_URL"], "max_size": 10}
        source = {"namespace": os.environ["BRUNO_MEMORY_NAMESPACE"], "tiers": [tier]}
    memory = await build_memory(source)
    users = [f"profile-{uuid.uuid4().hex[:8]}-u{t}" for t in range(args.tasks)]
    convs = [str((await memory.create_session(u)).conversation_id) for u in users]
    each = args.writes // args.tasks

    async def messages(t: int) -> None:
        for j in range(each):
            i = t * each + j
            stamp = T0 + timedelta(milliseconds=i)
            m = Message(id=uuid.uuid4(), role=MessageRole.USER, content=text(i), timestamp=stamp)
            await memory.store_message(m, convs[t])

    async def memories(t: int) -> None:
        for j in range(each):
            i = t * each + j
            kind = TYPES[i % len(TYPES)]
            entry = MemoryEntry(
                id=uuid.uuid4(), content=text(i), memory_type=kind, user_id=users[t]
            )
            await memory.store_memory(entry)

    jobs: dict[str, Callable[[int], Awaitable[None]]] = {
        "messages": messages, "memories": memories,
    }
    collector = GcClock()
    try:
        for name, job in jobs.items():
            profile = cProfile.Profile() if args.profile == name else None
            collector.reset()
            wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
            if profile:
                profile.enable()
            await asyncio.gather(*(job(t) for t in range(args.tasks)))
            if profile:
                profile.disable()
            n = each * args.tasks
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            loop = time.thread_time() - loop
            print(f"{name}: {n / wall:.0f} ops/s; per write: wall {wall / n * 1e6:.0f} us, "
                  f"event loop CPU {loop / n * 1e6:.0f} us "
                  f"(of which garbage collection {collector.seconds / n * 1e6:.0f} us, "
                  f"{collector.collections} collections), "
                  f"other threads CPU {(cpu - loop) / n * 1e6:.0f} us")
            if profile:
                print("\n".join(by_module(profile, args.top)))
    finally:
        await (memory.close() if args.stack == "laptop" else memory.drop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--profile", choices=["messages", "memories"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--stack", default="laptop", choices=["laptop", "postgres", "single-node", "production"],
        help="a preset, or postgres: a PostgreSQL tier alone; the server stacks read "
        "DATABASE_URL (and REDIS_URL) and are dropped after",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "bruno.db")
        os.environ["BRUNO_MEMORY_NAMESPACE"] = f"profile_{uuid.uuid4().hex[:8]}"
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
