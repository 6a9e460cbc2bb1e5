"""Import: a portable JSONL file streamed into a store, validated line by line, written
in batches through the façade's ``restore`` (idempotent: importing twice changes nothing).

A line that is not valid stops the import with an ``ArchiveError`` naming it; the valid
lines before it are written, nothing of it is. Tombstone lines are applied as deletes
(``MemoryStack.erase``) in file order: before the records written after them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Value
from bruno_memory.core.queries import Tombstone
from bruno_memory.core.records import MessageRecord
from bruno_memory.managers.archive.export import Progress
from bruno_memory.managers.archive.format import ArchiveError, Header, loads, numbered, open_read
from bruno_memory.managers.archive.parsing import items
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.restore import Conflict, Restored, check

BATCH = 5000
CHUNK = 100
"""Lines validated in one call (``parsing.items``), between two turns of the event loop:
the batch being written gets its turn to hand its statements to the driver's thread while
the next one is parsed."""


@dataclass(slots=True)
class Imported:
    """What an import did: per outcome, how many records."""

    path: str
    header: Header | None = None
    written: int = 0
    unchanged: int = 0
    kept: int = 0
    erased: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, done: Restored) -> None:
        self.written += done.written
        self.unchanged += done.unchanged
        self.kept += done.kept

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": sum(self.kinds.values()),
            "written": self.written,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "erased": self.erased,
            "kinds": dict(self.kinds),
            "watermark": self.header.watermark if self.header else None,
        }


async def import_file(
    memory: MemoryStack,
    path: str | Path,
    *,
    on_conflict: Conflict | None = None,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> Imported:
    """Restore every record of the archive at ``path`` (gzip if it ends in ``.gz``).

    ``on_conflict`` says what happens to a record the store holds differently: ``skip``
    keeps the store's, ``newer`` keeps the newer one, ``overwrite`` takes the file's
    (see ``MemoryStack.restore``); by default ``skip``, and ``overwrite`` for an
    incremental archive (its records are newer than the copy it applies to). Raises
    ``ArchiveError`` naming the first bad line.
    """
    done = Imported(str(path))
    writes = _Writes(memory, done, progress)
    pending: list[tuple[int, Value]] = []
    gone: list[Tombstone] = []
    try:
        with open_read(path) as stream:
            lines = numbered(stream)
            first = next(lines, None)
            if first is None:
                raise ArchiveError("the file is empty: an archive starts with its header", 1)
            number, data = first
            done.header = Header.of_line(loads(data, number) if number == 1 else {})
            if on_conflict is not None:
                writes.conflict = on_conflict
            elif done.header.since is not None:
                writes.conflict = "overwrite"
            for chunk in _chunks(lines):
                for number, kind, item in items(chunk):
                    if isinstance(item, Tombstone):
                        gone.append(item)
                    else:
                        if gone:  # the deletes before the records that follow them
                            await writes.erase(gone)
                            gone = []
                        pending.append((number, _checked(item, number)))
                    if len(gone) >= batch:
                        await writes.erase(gone)
                        gone = []
                    done.kinds[kind] = done.kinds.get(kind, 0) + 1
                    if len(pending) >= batch:
                        await writes.submit(pending)
                        pending = []
                await asyncio.sleep(0)  # the batch being written moves on meanwhile
    except ArchiveError:
        await writes.erase(gone)
        await writes.submit(pending)
        await writes.drain()
        raise
    except OSError as exc:
        await writes.drain()
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except EOFError as exc:  # a truncated gzip stream
        await writes.drain()
        raise ArchiveError(f"{path} is truncated: {exc}") from exc
    except BaseException:
        await writes.drain()
        raise
    await writes.erase(gone)
    await writes.submit(pending)
    await writes.drain()
    return done


def _chunks(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    """``lines`` in lists of ``CHUNK``."""
    while chunk := list(itertools.islice(lines, CHUNK)):
        yield chunk


def _checked(record: Value, number: int) -> Value:
    """``record`` checked as ``restore`` would (``ArchiveError`` naming its line), its JSON
    made now: while the batch before is written, not when this one is."""
    try:
        check(record)
    except InvalidInput as exc:
        raise ArchiveError(exc.message, number) from exc
    if isinstance(record, MessageRecord):
        record.json()
    return record


class _Writes:
    """Batches written in file order, one at a time, each while the next is read: the
    store's work (in its driver's thread or server) overlaps the parsing."""

    def __init__(self, memory: MemoryStack, done: Imported, progress: Progress | None) -> None:
        self.memory, self.done, self.progress = memory, done, progress
        self.conflict: Conflict = "skip"
        self._task: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        """Wait for the batch being written (its error, if any, is raised here)."""
        task, self._task = self._task, None
        if task is not None:
            await task

    async def submit(self, pending: list[tuple[int, Value]]) -> None:
        await self.drain()
        if pending:
            self._task = asyncio.create_task(
                _write(self.memory, pending, self.conflict, self.done, self.progress)
            )

    async def erase(self, gone: list[Tombstone]) -> None:
        await self.drain()
        if gone:
            self.done.erased += await self.memory.erase(gone)


async def _write(
    memory: MemoryStack,
    pending: list[tuple[int, Value]],
    on_conflict: Conflict,
    done: Imported,
    progress: Progress | None,
) -> None:
    """Restore a batch; if the store refuses it, line by line up to the refused line.
    Sealed records (an encrypted export) are opened first, and checked once opened; those
    of a forgotten user (her key destroyed) are left out."""
    if not pending:
        return
    try:
        opened = await memory.unseal([r for _, r in pending])
    except InvalidInput as exc:
        raise ArchiveError(exc.message, pending[0][0]) from exc
    checked = all(o is r for (_, r), o in zip(pending, opened, strict=True))  # none opened
    pending[:] = [(n, r) for (n, _), r in zip(pending, opened, strict=True) if r is not None]
    try:
        records = [r for _, r in pending]  # built (and checked unless opened): no copies
        done.add(await memory.restore(records, on_conflict=on_conflict, copy=False,
                                      checked=checked))
    except InvalidInput:
        for number, record in pending:
            try:
                done.add(await memory.restore([record], on_conflict=on_conflict))
            except InvalidInput as exc:
                pending.clear()
                raise ArchiveError(exc.message, number) from exc
    if progress is not None:
        progress(len(pending))
    pending.clear()
