"""Copy: one store streamed into another (laptop to production), then verified: counts and
a checksum per kind of the source and of the copy must agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bruno_memory.core.ops import Value
from bruno_memory.core.queries import Tombstone
from bruno_memory.managers.archive.export import PAGE, Progress, digest, records, tombstones
from bruno_memory.managers.archive.format import TOMBSTONE, Digest, dumps, to_line, tombstone_line
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.restore import Conflict


@dataclass(slots=True)
class Copied:
    """What a copy did, and whether the copy matches its source."""

    source: Digest
    target: Digest
    written: int = 0
    unchanged: int = 0
    kept: int = 0
    erased: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences

    def summary(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "erased": self.erased,
            "verified": self.verified,
            "differences": list(self.differences),
            "source": self.source.summary(),
            "target": self.target.summary(),
        }


async def copy(
    source: MemoryStack,
    target: MemoryStack,
    *,
    on_conflict: Conflict = "skip",
    progress: Progress | None = None,
    page: int = PAGE,
) -> Copied:
    """Apply the tombstones of ``source`` to ``target``, restore every record of ``source``
    into it a page at a time, then compare both stores kind by kind (``Copied.verified``;
    ``differences`` says where not: a target that held other records before, or a write
    racing the copy)."""
    seen = Digest()
    done = Copied(seen, Digest())
    gone: list[Tombstone] = []
    async for tombstone in tombstones(source, page=page):
        seen.add(TOMBSTONE, dumps(tombstone_line(tombstone)))
        gone.append(tombstone)
        if len(gone) >= page:
            done.erased += await target.erase(gone)
            gone.clear()
    done.erased += await target.erase(gone)
    batch: list[Value] = []
    async for record in records(source, page=page):
        obj = to_line(record)
        seen.add(obj["kind"], dumps(obj))
        batch.append(record)
        if len(batch) >= page:
            await _flush(target, batch, on_conflict, done, progress)
    await _flush(target, batch, on_conflict, done, progress)
    await target.flush()
    done.target = await digest(target, page=page)
    done.differences = seen.differences(done.target)
    return done


async def _flush(
    target: MemoryStack,
    batch: list[Value],
    on_conflict: Conflict,
    done: Copied,
    progress: Progress | None,
) -> None:
    if not batch:
        return
    # the scan decoded these for this copy alone: stored as they are
    restored = await target.restore(batch, on_conflict=on_conflict, copy=False)
    done.written += restored.written
    done.unchanged += restored.unchanged
    done.kept += restored.kept
    if progress is not None:
        progress(len(batch))
    batch.clear()
