"""Write coalescing: concurrent writes through one stack applied as one engine write.

Fifty tasks each storing a message make fifty engine writes: fifty version stamps, route
splits, cache updates and group-commit entries per tier, for what the authoritative tier
then commits as one transaction anyway. ``Coalescer`` gathers the writes that arrive
while one is being applied (``core.group_commit``: an idle stack's write goes alone, at
once, in its caller's task) and applies them as one: their ops in arrival order, their
touched generations together, and their audit events offered to the tier that commits
them (``core.audit_pending``), so data and trail still commit in one transaction.

- A batch that fails is applied again one write at a time, so a bad write fails only its
  own caller; an unavailable tier fails the batch at once (``GroupCommit``).
- Nothing is written before the authoritative tier commits, so a failed batch left no
  cache holding any of its writes; applying them again stamps new versions.
- A write made while a batch is being applied, from inside it, goes straight through:
  it cannot wait for the batch it is part of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from bruno_memory.core import audit_pending
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.ops import WriteOp

Apply = Callable[[Sequence[WriteOp], Sequence[object]], Awaitable[None]]

_INSIDE: ContextVar[bool] = ContextVar("bruno_memory_coalescing", default=False)


@dataclass(slots=True)
class _Write:
    ops: Sequence[WriteOp]
    touched: Sequence[object]
    pending: audit_pending.Pending | None  # the caller's audit events, if it keeps a trail


class Coalescer:
    """Concurrent ``write`` calls applied together through ``apply(ops, touched)``.

    Args:
        apply: applies one write (the engine's); called by one task at a time.
        name: the authoritative tier's name, for errors and logs.
        pipelined: the next batch is sent before the last one's callers are answered
            (``GroupCommit``): for an authoritative tier on a server
            (``Capability.PIPELINES``), whose round trip then overlaps with the callers'
            work. Not for SQLite: its thread's work would contend with theirs for the GIL
            and its commits cost by the pages they touch, so halved batches cost more.
    """

    def __init__(self, apply: Apply, *, name: str, pipelined: bool = False) -> None:
        self._apply = apply
        self._group: GroupCommit[_Write] = GroupCommit(self._batch, tier=name,
                                                       pipelined=pipelined)

    def write(self, ops: Sequence[WriteOp], touched: Sequence[object]) -> Awaitable[None]:
        """Apply ``ops`` (with others arriving meanwhile): the awaitable returns once they
        are applied, or raises what applying them alone raised."""
        if _INSIDE.get():
            return self._apply(ops, touched)
        return self._group.submit(_Write(ops, touched, audit_pending.current()))

    async def _batch(self, writes: Sequence[_Write]) -> None:
        inside = _INSIDE.set(True)
        try:
            if len(writes) == 1 and writes[0].pending is None:
                await self._apply(writes[0].ops, writes[0].touched)
                return
            ops = [op for w in writes for op in w.ops]
            touched = [key for w in writes for key in w.touched]
            pendings = [w.pending for w in writes if w.pending is not None]
            events = tuple(e for p in pendings if not p.taken for e in p.events)
            with audit_pending.carrying(events) as carried:
                await self._apply(ops, touched)
            if carried.taken:  # committed with the data: nobody appends them again
                for pending in pendings:
                    pending.taken = True
        finally:
            _INSIDE.reset(inside)

    def metrics(self) -> dict[str, int]:
        """``writes`` the stack was asked for, ``batches`` it applied (see
        ``core.group_commit.GroupCommitStats``)."""
        return self._group.metrics()

    async def aclose(self) -> None:
        """Refuse new writes, then return once every queued one has been applied."""
        await self._group.aclose()


__all__ = ["Apply", "Coalescer"]
