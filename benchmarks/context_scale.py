"""Context building and paging on one very long conversation (laptop stack); prints JSON.

    python benchmarks/context_scale.py [--messages 100000] [--config tiers/laptop.yaml]
        [--builds 300] [--pages 300] [--budget 2048]

One user's conversation gets ``--messages`` messages (alternating user and assistant,
12 Zipf-distributed pseudo-words each, as ``benchmarks/search_scale.py`` writes them)
through ``store_messages`` in batches of 1,000. Then, one at a time, after warm-up calls:

- ``build``: ``ContextBuilder(memory).build(user, conversation, query=q, max_tokens=budget)``
  with a 3-word query drawn from the same words (half the builds), or none (the latest
  user message is the query); p50/p95/p99 in ms, and how many went over the budget;
- ``search``: the search each build makes (``search_messages(q, user_id=user,
  limit=budget // 24)``, the same queries), alone: the floor a build stands on;
- ``page``: one screen of 50 messages with ``page_messages``: scrolling up from the newest
  with ``before=`` cursors, and down from the first with ``after=START`` then ``after=``;
  p50/p95/p99 in ms per screen.

One JSON line per measurement, and a first line with the seeding time. Only the public API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bruno_core.models.message import Message, MessageRole
from search_scale import Texts

from bruno_memory import build_memory
from bruno_memory.config.loader import load_config
from bruno_memory.core.cursors import START
from bruno_memory.managers.context import ContextBuilder, default_counter

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1_000
SCREEN = 50


def stats(name: str, samples: list[float], **extra: Any) -> dict[str, Any]:
    samples = sorted(samples)

    def at(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(len(samples) * q))], 3)

    return {"measure": name, "p50_ms": round(statistics.median(samples), 3),
            "p95_ms": at(0.95), "p99_ms": at(0.99), "calls": len(samples), **extra}


async def timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = await fn()
    return (time.perf_counter() - start) * 1000, value


async def seed(memory: Any, conversation: str, n: int, texts: Texts) -> float:
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        batch = [
            Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                    content=texts.message())
            for i in range(first, min(n, first + BATCH))
        ]
        await memory.store_messages(batch, conversation)
    await memory.flush()
    return time.perf_counter() - start


async def builds(memory: Any, user: str, conversation: str, args: argparse.Namespace,
                 texts: Texts) -> list[dict[str, Any]]:
    builder = ContextBuilder(memory, system_prompt="You are a helpful assistant.")
    counter = default_counter()
    latest = next(m.content for m in await memory.retrieve_messages(conversation, limit=2)
                  if m.role == MessageRole.USER)
    samples: list[float] = []
    searches: list[float] = []
    over = 0
    for i in range(args.builds + 10):
        query = texts.query() if i % 2 else None
        took, ctx = await timed(lambda q=query: builder.build(  # type: ignore[misc]
            user, conversation, query=q, max_tokens=args.budget))
        if counter.count_messages_tokens(ctx.messages) > args.budget:
            over += 1
        alone, _ = await timed(lambda q=query or latest: memory.search_messages(  # type: ignore[misc]
            q, user_id=user, limit=args.budget // 24))
        if i >= 10:
            samples.append(took)
            searches.append(alone)
    return [stats("build", samples, budget=args.budget, over_budget=over),
            stats("search", searches, limit=args.budget // 24)]


async def pages(memory: Any, conversation: str, n: int, *, up: bool) -> dict[str, Any]:
    samples: list[float] = []
    cursor: str | None = None if up else START
    for i in range(n + 5):
        if up:
            took, page = await timed(lambda c=cursor: memory.page_messages(  # type: ignore[misc]
                conversation, before=c, limit=SCREEN))
        else:
            took, page = await timed(lambda c=cursor: memory.page_messages(  # type: ignore[misc]
                conversation, after=c, limit=SCREEN))
        if len(page.items) != SCREEN:
            raise AssertionError(f"a screen held {len(page.items)} messages, not {SCREEN}")
        cursor = page.next
        if i >= 5:
            samples.append(took)
    return stats("page_up" if up else "page_down", samples, screen=SCREEN)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--config", type=Path, default=ROOT / "tiers" / "laptop.yaml")
    parser.add_argument("--builds", type=int, default=300)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--budget", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.pages * SCREEN > args.messages:
        parser.error("--pages screens of 50 must fit in --messages")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BRUNO_MEMORY_DB", str(Path(tmp) / "memory.db"))
        os.environ.setdefault("BRUNO_MEMORY_DATA", str(Path(tmp) / "data"))
        memory = await build_memory(load_config(args.config))
        try:
            texts = Texts(seed=3)
            user = "long-talker"
            conversation = (await memory.create_session(user)).conversation_id
            seconds = await seed(memory, conversation, args.messages, texts)
            print(json.dumps({"measure": "seed", "messages": args.messages,
                              "seconds": round(seconds, 1),
                              "per_s": round(args.messages / seconds, 1)}), flush=True)
            for line in await builds(memory, user, conversation, args, texts):
                print(json.dumps(line), flush=True)
            for up in (True, False):
                print(json.dumps(await pages(memory, conversation, args.pages, up=up)),
                      flush=True)
        finally:
            await memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
