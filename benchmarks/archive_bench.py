"""Export and import throughput and memory on the laptop stack (LRU -> SQLite); prints JSON.

    python benchmarks/archive_bench.py [--messages 1000000] [--postgres DSN]

Target (issue 13): at least 50,000 messages/s export and 20,000/s import, with flat memory
(the resident set stays level while millions of records stream through).

``parse_only`` reads and validates the file without storing it: what the import costs on
the Python side before the store's own work. Per phase: wall-clock rate, and the rate per
CPU second of the whole process (its threads included: SQLite works in aiosqlite's), which
is what a loaded machine cannot hide; the load average is printed so the two can be read
together. ``rss_mb`` is sampled at every
tenth of the records: flat means the last tenth is no higher than the first.

``import_cli`` runs ``bruno-memory import`` on the same file in a process of its own,
start-up included (interpreter, imports, opening the store).

``--postgres DSN`` also imports the same file into LRU -> PostgreSQL (``import_postgres``),
in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.managers.archive import Header, export, import_file
from bruno_memory.managers.archive.format import numbered, open_read
from bruno_memory.managers.archive.importer import CHUNK
from bruno_memory.managers.archive.parsing import items
from bruno_memory.stack.restore import check

PAGE = os.sysconf("SC_PAGE_SIZE")


def laptop(path: Path) -> dict[str, Any]:
    return {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(path)}]}


def single_node(dsn: str) -> dict[str, Any]:
    return {"namespace": f"bench_import_{os.getpid()}",
            "tiers": [{"kind": "lru"}, {"kind": "postgres", "dsn": dsn}]}


def rss_mb() -> float:
    """The resident set now (Linux), in MB."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return round(int(f.read().split()[1]) * PAGE / 2**20, 1)


class Sampler:
    """Progress callback: the resident set at every tenth of ``total`` records."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.samples = total, 0, [rss_mb()]

    def __call__(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if self.done * 10 // self.total > before * 10 // self.total:
            self.samples.append(rss_mb())


async def phase(
    messages: int, records: int, run: Callable[[Sampler], Awaitable[Any]]
) -> dict[str, Any]:
    sampler = Sampler(records)
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    await run(sampler)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "seconds": round(wall, 1),
        "messages_per_s": round(messages / wall),
        "messages_per_cpu_s": round(messages / cpu),
        "load_average_at_start": round(load, 1),
        "rss_mb_by_tenth": sampler.samples,
        "rss_growth_mb": round(sampler.samples[-1] - sampler.samples[1], 1)
        if len(sampler.samples) > 2
        else 0.0,
    }


def parse(path: Path, progress: Sampler) -> None:
    """Read, validate and check every line into records as the import does, storing
    nothing: the import's floor on the Python side (the rest is the store's work)."""
    with open_read(path) as stream:
        lines = numbered(stream)
        next(lines)  # the header
        while chunk := list(itertools.islice(lines, CHUNK)):
            for _, kind, item in items(chunk):
                if kind != "tombstone":
                    check(item)
                    progress(1)


def cli_import(messages: int, root: Path) -> dict[str, Any]:
    """``bruno-memory import`` of the file into a new SQLite file, in its own process (the
    command issue 13 names): its wall clock from start to exit, and CPU seconds."""
    config = root / "cli.yaml"
    config.write_text(orjson.dumps(laptop(root / "cli.db")).decode())  # JSON is YAML
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bruno_memory.cli", "import", str(config),
                    str(root / "a.jsonl")], check=True, capture_output=True)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": round(wall, 1), "messages_per_s": round(messages / wall),
            "messages_per_cpu_s": round(messages / cpu),
            "peak_rss_mb": round(after.ru_maxrss / 1024)}


async def populate(path: Path, messages: int, per_conversation: int) -> None:
    async with await build_memory(laptop(path)) as src:
        for c in range(0, messages, per_conversation):
            ctx = await src.get_context(f"user-{c % 7}", f"chat-{c}")
            batch = [
                Message(role=MessageRole.USER, content=f"message {c + i} about bread and tea")
                for i in range(min(per_conversation, messages - c))
            ]
            await src.store_messages(batch, ctx.conversation_id)


async def run(
    messages: int, per_conversation: int = 1000, postgres: str | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        await populate(root / "src.db", messages, per_conversation)
        populated = time.perf_counter() - started
        records = 0
        async with await build_memory(laptop(root / "src.db")) as src:

            async def do_export(sampler: Sampler) -> None:
                nonlocal records
                done = await export(src, root / "a.jsonl", header=Header("bruno"), progress=sampler)
                records = done.records

            # the sampler's total is the message count: the few users and sessions are noise
            exported = await phase(messages, messages, do_export)
        async def do_parse(sampler: Sampler) -> None:
            await asyncio.to_thread(parse, root / "a.jsonl", sampler)

        parsed = await phase(messages, messages, do_parse)
        async with await build_memory(laptop(root / "dst.db")) as dst:

            async def do_import(sampler: Sampler) -> None:
                await import_file(dst, root / "a.jsonl", progress=sampler)

            imported = await phase(messages, messages, do_import)
        from_cli = await asyncio.to_thread(cli_import, messages, root)
        into_postgres = None
        if postgres is not None:
            async with await build_memory(single_node(postgres)) as pg:

                async def do_import_pg(sampler: Sampler) -> None:
                    await import_file(pg, root / "a.jsonl", progress=sampler)

                try:
                    into_postgres = await phase(messages, messages, do_import_pg)
                finally:
                    await pg.drop()
        return {
            "messages": messages,
            "records": records,
            "populate_seconds": round(populated, 1),
            "file_mb": round((root / "a.jsonl").stat().st_size / 2**20, 1),
            "export": exported,
            "parse_only": parsed,
            "import": imported,
            "import_cli": from_cli,
            "import_postgres": into_postgres,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cpus": os.cpu_count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="DSN", help="also import into PostgreSQL")
    args = parser.parse_args()
    result = asyncio.run(run(args.messages, postgres=args.postgres))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
