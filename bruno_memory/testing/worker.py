"""A memory in a child process, driven by JSON lines: for tests that kill or race processes.

Run ``python -m bruno_memory.testing.worker '<stack config as JSON>'``; it prints
``{"ready": true}``, then answers one JSON line per command read on stdin:

- ``{"cmd": "store", "conversation": c, "start": i, "count": n, "concurrency": k}``: stores
  messages ``msg_id(c, i)`` ... sequentially per task, printing ``{"ack": id}`` as each
  ``store_message`` returns, then ``{"done": n}``.
- ``{"cmd": "session", "user": u, "conversation": c}``: starts that conversation.
- ``{"cmd": "store_memory", "id": x, "user": u, "content": t}`` / ``{"cmd": "get_memory",
  "id": x}`` / ``{"cmd": "delete_memory", "id": x}``.
- ``{"cmd": "window", "conversation": c, "limit": n}``: the newest message ids, newest
  first (``retrieve_messages``).
- ``{"cmd": "flush"}``, ``{"cmd": "health"}``, ``{"cmd": "close"}`` (then it exits).

Errors are answered as ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import structlog
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def msg_id(conversation: str, i: int) -> str:
    """The id of message ``i`` of a conversation stored by a worker."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{conversation}/{i}"))


def message(conversation: str, i: int) -> Message:
    return Message(id=uuid.UUID(msg_id(conversation, i)), role=MessageRole.USER,
                   content=f"message {i} of {conversation}",
                   timestamp=T0 + timedelta(milliseconds=i))


def say(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")
    sys.stdout.buffer.flush()


async def store(memory: Any, c: str, start: int, count: int, concurrency: int) -> None:
    async def run(k: int) -> None:
        for i in range(start + k, start + count, concurrency):
            await memory.store_message(message(c, i), c)
            say({"ack": msg_id(c, i)})

    await asyncio.gather(*(run(k) for k in range(concurrency)))
    say({"done": count})


async def handle(memory: Any, cmd: dict[str, Any]) -> bool:
    op = cmd["cmd"]
    if op == "store":
        await store(memory, cmd["conversation"], cmd.get("start", 0), cmd["count"],
                    cmd.get("concurrency", 1))
    elif op == "session":
        await memory.get_context(cmd["user"], cmd["conversation"])
        say({"ok": True})
    elif op == "store_memory":
        await memory.store_memory(MemoryEntry(
            id=uuid.UUID(cmd["id"]), content=cmd["content"], user_id=cmd["user"],
            memory_type=MemoryType.LONG_TERM))
        say({"ok": True})
    elif op == "get_memory":
        found = await memory.get_memory(cmd["id"])
        say({"memory": found.content if found else None})
    elif op == "delete_memory":
        await memory.delete_memory(cmd["id"])
        say({"ok": True})
    elif op == "window":
        found = await memory.retrieve_messages(cmd["conversation"], cmd.get("limit"))
        say({"ids": [str(m.id) for m in found]})
    elif op == "flush":
        await memory.flush()
        say({"ok": True})
    elif op == "health":
        say({"health": await memory.health()})
    elif op == "close":
        await memory.close()
        say({"ok": True})
        return False
    else:
        say({"error": f"unknown command {op!r}"})
    return True


class Worker:
    """Drives a worker process from a test: ``await Worker(config).start()``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Worker:
        """Start the process (its logs go to this process's stderr) and wait until ready."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bruno_memory.testing.worker", orjson.dumps(self.config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        ready = await asyncio.wait_for(self.read(), 60)
        if not ready.get("ready"):
            raise RuntimeError(f"worker did not start: {ready}")
        return self

    async def send(self, **cmd: Any) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        await self.proc.stdin.drain()

    async def read(self) -> dict[str, Any]:
        """The next answer (lines that are not JSON objects are skipped)."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise EOFError(f"worker exited with {await self.proc.wait()}")
            if line.startswith(b"{"):
                answer: dict[str, Any] = orjson.loads(line)
                return answer

    async def call(self, **cmd: Any) -> dict[str, Any]:
        """Send a command and return its answer; raises on an ``error`` answer."""
        await self.send(**cmd)
        answer = await self.read()
        if "error" in answer:
            raise RuntimeError(f"worker: {answer['error']}")
        return answer

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, nothing."""
        assert self.proc is not None
        self.proc.kill()

    async def stop(self, timeout: float = 30.0) -> None:
        """Close the memory gracefully and wait for the process to exit (killed after
        ``timeout``)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            await asyncio.wait_for(self.call(cmd="close"), timeout)
        except (EOFError, RuntimeError, ConnectionError, TimeoutError):
            self.proc.kill()
        await self.proc.wait()


async def main(config: dict[str, Any]) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    memory = await build_memory(config)
    say({"ready": True})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            await memory.close()
            return
        try:
            if not await handle(memory, orjson.loads(line)):
                return
        except Exception as exc:  # reported to the test, which decides
            say({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    asyncio.run(main(orjson.loads(sys.argv[1])))
