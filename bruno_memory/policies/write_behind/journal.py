"""Write-behind journals: an op is acknowledged only once one of these holds it.

This module holds what every journal shares: the ``Journal`` protocol, its items and
dead letters, and the group commit concurrent appends share. The kinds live apart:
``journal_file`` (an SQLite WAL file with an OS lock per owner) and ``journal_redis`` (a
Redis Stream with a consumer group); ``journals.create_journal`` picks one from a config.

Entries are deleted only once applied. Entries that keep failing are moved to a
dead-letter place with their error.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.rides import Ride

Item = tuple[Any, bytes]
"""A journal entry: its id and the encoded op."""


Landed = Callable[[list[Any] | None], None]
"""Called with the ids of appended entries (``None`` if the append failed), in the
committing task: it runs even when the caller that appended was cancelled meanwhile."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An op that kept failing, with the last error."""

    id: Any
    data: bytes
    error: str


class Journal(Protocol):
    """Where acknowledged, not yet applied ops live."""

    async def open(self) -> list[Item]: ...  # entries left by dead writers, now ours
    async def append(
        self, items: list[bytes], then: Landed | None = None, rides: Sequence[Ride] = ()
    ) -> list[Any]: ...
    # ^ ``rides`` (``core.rides``) go in the append's script call, after it, when the
    # journal's server is theirs (``carrier``); the others stay unsent
    def carrier(self) -> str | None: ...  # the Redis server appends go to, if they carry
    async def ack(self, ids: list[Any]) -> None: ...
    async def dead_letter(self, id: Any, data: bytes, error: str) -> None: ...
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...
    async def reclaim(self) -> list[Item]: ...  # entries of writers that died since
    async def erase_dead_letters(self, match: Callable[[bytes], bool]) -> int: ...
    # ^ deletes the dead letters (of every writer) whose encoded op ``match``es; how many
    async def drop(self) -> None: ...
    # ^ deletes the journal (entries, dead letters, liveness marks of every writer) and
    # closes it
    async def aclose(self) -> None: ...


def default_owner() -> str:
    """A writer name no other process has: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class GroupCommit:
    """Concurrent appends share one commit: while one runs, the next ones gather (their
    rides too: ``commit(items, rides)``)."""

    def __init__(
        self, commit: Callable[[list[bytes], list[Ride]], Awaitable[list[Any]]]
    ) -> None:
        self._commit = commit
        self._waiting: list[_Append] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(
        self, items: list[bytes], then: Landed | None = None, rides: Sequence[Ride] = ()
    ) -> list[Any]:
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, fut, then, rides))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                ids = await self._commit([i for items, _, _, _ in batch for i in items],
                                         [r for *_, rides in batch for r in rides])
            except BaseException as exc:
                error = exc if isinstance(exc, Exception) else TierUnavailable(
                    "journal commit cancelled", tier="journal", op="append")
                for _, fut, then, _ in batch:
                    if then is not None:
                        then(None)
                    if not fut.done():
                        fut.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                continue
            at = 0
            for items, fut, then, _ in batch:
                mine = ids[at : at + len(items)]
                at += len(items)
                if then is not None:
                    then(mine)
                if not fut.done():
                    fut.set_result(mine)


_Append = tuple[list[bytes], "asyncio.Future[list[Any]]", Landed | None, Sequence[Ride]]
