"""Import: a portable JSONL file streamed into a store, validated line by line, written
in batches through the façade's ``restore`` (idempotent: importing twice changes nothing).

A line that is not valid stops the import with an ``ArchiveError`` naming it; the valid
lines before it are written, nothing of it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Value
from bruno_memory.managers.archive.export import Progress
from bruno_memory.managers.archive.format import (
    ArchiveError,
    Header,
    from_line,
    loads,
    numbered,
    open_read,
)
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.restore import Conflict, Restored

BATCH = 1000


@dataclass(slots=True)
class Imported:
    """What an import did: per outcome, how many records."""

    path: str
    header: Header | None = None
    written: int = 0
    unchanged: int = 0
    kept: int = 0
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
            "kinds": dict(self.kinds),
            "watermark": self.header.watermark if self.header else None,
        }


async def import_file(
    memory: MemoryStack,
    path: str | Path,
    *,
    on_conflict: Conflict = "skip",
    progress: Progress | None = None,
    batch: int = BATCH,
) -> Imported:
    """Restore every record of the archive at ``path`` (gzip if it ends in ``.gz``).

    ``on_conflict`` says what happens to a record the store holds differently: ``skip``
    keeps the store's, ``newer`` keeps the newer one, ``overwrite`` takes the file's
    (see ``MemoryStack.restore``). Raises ``ArchiveError`` naming the first bad line.
    """
    done = Imported(str(path))
    pending: list[tuple[int, Value]] = []
    try:
        with open_read(path) as stream:
            for number, data in numbered(stream):
                obj = loads(data, number)
                if done.header is None:
                    done.header = Header.of_line(obj if number == 1 else {})
                    continue
                record = from_line(obj, number)
                kind = obj["kind"]
                done.kinds[kind] = done.kinds.get(kind, 0) + 1
                pending.append((number, record))
                if len(pending) >= batch:
                    await _write(memory, pending, on_conflict, done, progress)
            if done.header is None:
                raise ArchiveError("the file is empty: an archive starts with its header", 1)
    except ArchiveError:
        await _write(memory, pending, on_conflict, done, progress)
        raise
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except EOFError as exc:  # a truncated gzip stream
        raise ArchiveError(f"{path} is truncated: {exc}") from exc
    await _write(memory, pending, on_conflict, done, progress)
    return done


async def _write(
    memory: MemoryStack,
    pending: list[tuple[int, Value]],
    on_conflict: Conflict,
    done: Imported,
    progress: Progress | None,
) -> None:
    """Restore a batch; if the store refuses it, line by line up to the refused line.
    Sealed records (an encrypted export) are opened first; those of a forgotten user
    (her key destroyed) are left out."""
    if not pending:
        return
    try:
        opened = await memory.unseal([r for _, r in pending])
    except InvalidInput as exc:
        raise ArchiveError(exc.message, pending[0][0]) from exc
    pending[:] = [(n, r) for (n, _), r in zip(pending, opened, strict=True) if r is not None]
    try:
        done.add(await memory.restore([r for _, r in pending], on_conflict=on_conflict))
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
