"""The jobs of ``peers.py``, on any store behind the ``Side`` interface; stdlib and
bruno-core only, so a side can run them in another interpreter (``_legacy_peer.py``: the
PyPI bruno-memory 0.1.5, whose import name is this package's)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from bruno_core.models.memory import MemoryType

TASKS = 50
READS = 1000
WORDS = "cat dog garden music travel coffee river mountain book movie friend dinner".split()
TYPES = [MemoryType.FACT, MemoryType.EPISODIC, MemoryType.LONG_TERM, MemoryType.SEMANTIC]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def text(i: int) -> str:
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5, 7)) + f" note {i}"


class Side:
    """One store under the jobs; ``kind`` names it in the JSON."""

    kind = ""
    unsupported: frozenset[str] = frozenset()
    """Jobs this store has no call for (no figure, ``<job>_note`` says why)."""
    notes: dict[str, str] = {}
    """Per job: how this side answers it, where that differs from the others."""

    async def conversation(self, user: str) -> str: ...
    async def put_message(self, user: str, conv: str, mid: str, i: int) -> None: ...
    async def put_memory(self, user: str, mid: str, i: int) -> None: ...
    async def newest(self, user: str, conv: str, n: int) -> list[str]: ...
    async def get_memory(self, user: str, mid: str) -> str | None: ...
    async def memories_of_type(self, user: str, kind: MemoryType, n: int) -> list[str]: ...
    async def search(self, user: str, query: str, n: int) -> list[tuple[str, str]]: ...
    async def close(self) -> None: ...


class Workload:
    """The ids each round writes and reads, and what the reads must return."""

    def __init__(self, writes: int, tag: str) -> None:
        self.writes, self.tag = writes, tag
        self.counter = 0

    def ids(self, n: int) -> list[tuple[int, str]]:
        out = [(self.counter + k, str(uuid.uuid4())) for k in range(n)]
        self.counter += n
        return out


async def timed(n: int, fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return n / (time.perf_counter() - start)


async def round_jobs(side: Side, work: Workload, rnd: int) -> dict[str, dict[str, Any]]:
    """Every job once on ``side``; per job: ops/s and whether every answer was right."""
    out: dict[str, dict[str, Any]] = {}
    n = work.writes
    users = [f"{work.tag}-r{rnd}-u{t}" for t in range(TASKS)]
    convs = [await side.conversation(u) for u in users]
    written: dict[str, list[str]] = {c: [] for c in convs}
    mems: dict[str, list[tuple[str, int]]] = {u: [] for u in users}

    seq = work.ids(n // 5)

    async def messages_seq() -> None:
        for i, mid in seq:
            await side.put_message(users[0], convs[0], mid, i)
            written[convs[0]].append(mid)

    out["messages_sequential"] = {"ops_per_s": await timed(len(seq), messages_seq)}

    per_task = [work.ids(n // TASKS) for _ in range(TASKS)]

    async def messages_task(t: int) -> None:
        for i, mid in per_task[t]:
            await side.put_message(users[t], convs[t], mid, i)
            written[convs[t]].append(mid)

    async def messages_c50() -> None:
        await asyncio.gather(*(messages_task(t) for t in range(TASKS)))

    out["messages_concurrent_50"] = {"ops_per_s": await timed(n, messages_c50)}

    mseq = work.ids(n // 5)

    async def memories_seq() -> None:
        for i, mid in mseq:
            await side.put_memory(users[0], mid, i)
            mems[users[0]].append((mid, i))

    out["memories_sequential"] = {"ops_per_s": await timed(len(mseq), memories_seq)}

    mper = [work.ids(n // TASKS) for _ in range(TASKS)]

    async def memories_task(t: int) -> None:
        for i, mid in mper[t]:
            await side.put_memory(users[t], mid, i)
            mems[users[t]].append((mid, i))

    async def memories_c50() -> None:
        await asyncio.gather(*(memories_task(t) for t in range(TASKS)))

    out["memories_concurrent_50"] = {"ops_per_s": await timed(n, memories_c50)}

    rng = random.Random(rnd)  # reseeded per job: a job one side skips moves no other's
    wrong: list[str] = []

    async def newest_20() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            got = await side.newest(users[t], convs[t], 20)
            if got != written[convs[t]][::-1][:20] and len(wrong) < 3:
                wrong.append(
                    f"{users[t]}: {sum(g in written[convs[t]][-20:] for g in got)}/20 "
                    "of the newest 20"
                )

    out["newest_20"] = {"ops_per_s": await timed(READS, newest_20), "wrong": wrong}

    wrong_gets: list[str] = []
    rng.seed(rnd)

    async def point_get() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            mid, i = rng.choice(mems[users[t]])
            if await side.get_memory(users[t], mid) != text(i) and len(wrong_gets) < 3:
                wrong_gets.append(mid)

    if "point_get" not in side.unsupported:
        out["point_get"] = {"ops_per_s": await timed(READS, point_get), "wrong": wrong_gets}

    wrong_q: list[str] = []
    rng.seed(rnd)

    async def filtered() -> None:
        for _ in range(READS):
            t = rng.randrange(TASKS)
            kind = TYPES[rng.randrange(len(TYPES))]
            got = await side.memories_of_type(users[t], kind, 10)
            expect = min(10, sum(1 for _, i in mems[users[t]] if TYPES[i % len(TYPES)] is kind))
            ok = len(got) == expect and all(g == f"{users[t]}|{kind.value}" for g in got)
            if not ok and len(wrong_q) < 3:
                wrong_q.append(f"{users[t]} {kind.value}: {len(got)} of {expect}")

    out["filtered_memories"] = {"ops_per_s": await timed(READS, filtered), "wrong": wrong_q}

    if "keyword_search" not in side.unsupported:
        wrong_s: list[str] = []
        rng.seed(rnd)

        async def search() -> None:
            for _ in range(READS):
                t = rng.randrange(TASKS)
                word = rng.choice(WORDS)
                hits = await side.search(users[t], f"{word} please", 10)
                bad = [h for h in hits if h[0] != convs[t] or word not in h[1]]
                if (bad or not hits) and len(wrong_s) < 3:
                    wrong_s.append(f"{users[t]} {word!r}: {len(hits)} hits, {len(bad)} wrong")

        out["keyword_search"] = {"ops_per_s": await timed(READS, search), "wrong": wrong_s}
    return out
