"""Fault injection for tests: a TCP proxy that can be cut, a tier that fails on command,
and a Redis server the test owns (started and stopped by its own pid)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bruno_memory.core.errors import TierError, TierUnavailable
from bruno_memory.core.ops import Empty, Key, Value, WriteOp
from bruno_memory.core.queries import Query
from bruno_memory.policies.base import PolicyTier

R = TypeVar("R")


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpProxy:
    """A loopback TCP proxy on its own thread and event loop, so any process can use it.

    ``cut()`` drops every connection and refuses new ones (the service is unreachable);
    ``hang()`` accepts connections but forwards nothing (the service stops answering);
    ``stall()`` keeps connections open but delivers nothing (a frozen peer);
    ``restore()`` forwards again.
    """

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def url(self, template: str) -> str:
        """``template`` with ``{port}`` filled in, e.g. ``redis://127.0.0.1:{port}/0``."""
        return template.format(port=self.port)

    def cut(self) -> None:
        self.mode = "refuse"
        self._run(self._drop_all())

    def hang(self) -> None:
        self.mode = "hang"
        self._run(self._drop_all())

    def stall(self) -> None:
        """Keep every connection open but deliver nothing more (a peer that froze, or a
        network that swallows packets); new connections are held unanswered too."""
        self.mode = "stall"

    def restore(self) -> None:
        """Forward again; connections held by ``hang()`` or ``stall()`` are reset, as a real
        network would."""
        if self.mode in ("hang", "stall"):
            self._run(self._drop_all())
        self.mode = "forward"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._run(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _close(self) -> None:
        await self._drop_all()
        if self._server is not None:
            self._server.close()

    async def _drop_all(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode in ("hang", "stall"):
            return  # held open, never answered, until cut or restored
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "stall":
                    continue  # swallowed: the peer waits for an answer that never comes
                if self.mode != "forward":
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)


class FlakyTier(PolicyTier):
    """A real tier that fails on command: ``fail(n)`` makes the next ``n`` calls raise.

    ``calls`` counts the calls that reached the inner tier, per operation.
    """

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._failures: int | float = 0
        self._error: type[TierError] = TierUnavailable
        self._only: frozenset[str] | None = None
        self.calls: dict[str, int] = {}

    def fail(self, times: float = float("inf"), error: type[TierError] = TierUnavailable,
             only: Sequence[str] | None = None) -> None:
        """Make the next ``times`` calls (of the ``only`` operations, if given) raise ``error``."""
        self._failures, self._error = times, error
        self._only = frozenset(only) if only else None

    def heal(self) -> None:
        self._failures = 0

    async def _maybe_fail(self, op: str) -> None:
        if self._failures > 0 and (self._only is None or op in self._only):
            self._failures -= 1
            raise self._error("injected failure", tier=self.name, op=op)
        self.calls[op] = self.calls.get(op, 0) + 1

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        await self._maybe_fail("get")
        return await self.inner.get(keys)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        await self._maybe_fail("write")
        await self.inner.write(ops)

    async def window(self, conversation_id: str, limit: int | None) -> Any:
        await self._maybe_fail("window")
        return await super().window(conversation_id, limit)

    async def query(self, q: Query[R]) -> R:
        await self._maybe_fail(type(q).__name__)
        return await self.inner.query(q)

    async def ping(self) -> None:
        await self._maybe_fail("ping")
        await self.inner.ping()

    async def open(self) -> None:
        await self._maybe_fail("open")
        await self.inner.open()


class RedisServer:
    """A ``redis-server`` this test owns, on a spare loopback port, with its own data dir.

    ``persist=True`` keeps data across ``stop()``/``start()`` (AOF), so a restarted server
    comes back with what it held: a cache that must not be trusted blindly.
    """

    def __init__(self, port: int | None = None, *, persist: bool = False) -> None:
        self.port = port or free_port()
        self.persist = persist
        self.dir = Path(tempfile.mkdtemp(prefix="bruno-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else [
            "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *aof,
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(up=True)
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM; SIGKILL with ``kill``) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def _wait(self, up: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), 0.2
            ) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")
