"""Chat turns on the server stacks: what a write costs once its conversation is cached; JSON.

    python benchmarks/chat_turns.py [--stack single-node] [--conversations 20]
        [--history 100] [--turns 300] [--bytes 1000]

An assistant's loop, on ``build_memory(STACK)`` (``single-node`` or ``production``, which
read ``DATABASE_URL`` and ``REDIS_URL``), in a namespace of its own dropped afterwards:
each turn reads a conversation's newest 20 messages, then stores the user's message and
the assistant's reply (``--bytes`` of text each). The conversations start with
``--history`` messages and are read once before timing, so every write lands in a cached
window, as in a live chat. Prints per turn p50/p99 and, from the Redis server's ``INFO``
(``used_cpu_user`` + ``used_cpu_sys``), the Redis server's CPU per turn: one Redis server
serves every process of a deployment, so its time per turn bounds them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from typing import Any

from bruno_core.models.message import Message, MessageRole
from redis.asyncio import Redis

from bruno_memory import build_memory


def text(i: int, size: int) -> str:
    words = " ".join(f"word{(i * 7 + j) % 997}" for j in range(size // 8 + 1))
    return words[:size]


async def redis_cpu(client: Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["BRUNO_MEMORY_NAMESPACE"] = f"chat_{uuid.uuid4().hex[:8]}"  # dropped after
    memory = await build_memory(args.stack)
    client = Redis.from_url(os.environ["REDIS_URL"])
    try:
        convs = []
        for c in range(args.conversations):
            conv = str((await memory.create_session(f"chat-user-{c}")).conversation_id)
            history = [Message(role=MessageRole.USER if i % 2 else MessageRole.ASSISTANT,
                               content=text(i, args.bytes)) for i in range(args.history)]
            await memory.store_messages(history, conv)
            await memory.retrieve_messages(conv, limit=20)  # cached from here on
            convs.append(conv)
        samples: list[float] = []
        cpu = await redis_cpu(client)
        started = time.perf_counter()
        for turn in range(args.turns):
            conv = convs[turn % len(convs)]
            t = time.perf_counter()
            await memory.retrieve_messages(conv, limit=20)
            for role in (MessageRole.USER, MessageRole.ASSISTANT):
                await memory.store_message(Message(role=role, content=text(turn, args.bytes)),
                                           conv)
            samples.append(time.perf_counter() - t)
        wall = time.perf_counter() - started
        cpu = await redis_cpu(client) - cpu
    finally:
        await client.aclose()
        await memory.drop()
    samples.sort()
    return {
        "benchmark": "chat turns: newest 20, then two message writes, on a cached window",
        "stack": args.stack,
        "turns": args.turns,
        "turns_per_s": round(args.turns / wall, 1),
        "turn_p50_us": round(statistics.median(samples) * 1e6, 1),
        "turn_p99_us": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
        "redis_cpu_us_per_turn": round(cpu / args.turns * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="single-node", choices=["single-node", "production"])
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--bytes", type=int, default=1000)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
