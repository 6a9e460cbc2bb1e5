"""Export and import throughput on the laptop stack (LRU -> SQLite); prints JSON.

    python benchmarks/archive_bench.py [--messages 100000]

Target (issue 13): at least 50,000 messages/s export and 20,000/s import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.managers.archive import Header, export, import_file


def laptop(path: Path) -> dict[str, Any]:
    return {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(path)}]}


async def run(messages: int, per_conversation: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with await build_memory(laptop(root / "src.db")) as src:
            for c in range(0, messages, per_conversation):
                ctx = await src.get_context(f"user-{c % 7}", f"chat-{c}")
                batch = [
                    Message(role=MessageRole.USER, content=f"message {c + i} about bread")
                    for i in range(min(per_conversation, messages - c))
                ]
                await src.store_messages(batch, ctx.conversation_id)
            t0 = time.perf_counter()
            done = await export(src, root / "a.jsonl", header=Header("bruno"))
            exported = time.perf_counter() - t0
        async with await build_memory(laptop(root / "dst.db")) as dst:
            t0 = time.perf_counter()
            await import_file(dst, root / "a.jsonl")
            imported = time.perf_counter() - t0
        return {
            "messages": messages,
            "records": done.records,
            "export_messages_per_s": round(messages / exported),
            "import_messages_per_s": round(messages / imported),
            "file_bytes": (root / "a.jsonl").stat().st_size,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    print(json.dumps(asyncio.run(run(parser.parse_args().messages)), indent=2))


if __name__ == "__main__":
    main()
