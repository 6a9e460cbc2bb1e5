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
- Ids a write must not take from another owner (``verify``, on a write-behind tier) are
  checked for the whole batch at once before it is applied (``stack.moves``): a refused
  write fails alone, and is not applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from bruno_memory.core import audit_pending
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.ops import Key, WriteOp
from bruno_memory.stack import moves

Apply = Callable[[Sequence[WriteOp], Sequence[object]], Awaitable[None]]

_INSIDE: ContextVar[bool] = ContextVar("bruno_memory_coalescing", default=False)


@dataclass(slots=True)
class _Write:
    ops: Sequence[WriteOp]
    touched: Sequence[object]
    pending: audit_pending.Pending | None  # the caller's audit events, if it keeps a trail
    verify: Sequence[Key] = ()  # ids of its puts to check first (``stack.moves``)
    refused: InvalidInput | None = None  # why it was refused, once checked


class Coalescer:
    """Concurrent ``write`` calls applied together through ``apply(ops, touched)``.

    Args:
        apply: applies one write (the engine's); called by one task at a time.
        name: the authoritative tier's name, for errors and logs.
        look: reads the authoritative tier (its queue included) for the ids writes verify.
        pipelined: the next batch is sent before the last one's callers are answered
            (``GroupCommit``): for an authoritative tier on a server
            (``Capability.PIPELINES``), whose round trip then overlaps with the callers'
            work. Not for SQLite: its thread's work would contend with theirs for the GIL
            and its commits cost by the pages they touch, so halved batches cost more.
    """

    def __init__(
        self, apply: Apply, *, name: str, look: moves.Look, pipelined: bool = False
    ) -> None:
        self._apply = apply
        self._look = look
        self._group: GroupCommit[_Write] = GroupCommit(self._batch, tier=name,
                                                       pipelined=pipelined)

    def write(
        self, ops: Sequence[WriteOp], touched: Sequence[object], verify: Sequence[Key] = ()
    ) -> Awaitable[None]:
        """Apply ``ops`` (with others arriving meanwhile): the awaitable returns once they
        are applied, or raises what applying them alone raised. ``verify``: keys of the
        puts of ``ops`` whose ids must not be another owner's (``stack.moves``); a write
        taking one raises ``InvalidInput`` and is not applied."""
        write = _Write(ops, touched, None if _INSIDE.get() else audit_pending.current(), verify)
        if _INSIDE.get():
            return self._batch([write], inside=True) if verify else self._apply(ops, touched)
        if not verify:
            return self._group.submit(write)
        return self._checked(write)

    async def _checked(self, write: _Write) -> None:
        await self._group.submit(write)
        if write.refused is not None:
            raise write.refused

    async def _batch(self, writes: Sequence[_Write], *, inside: bool = False) -> None:
        entered = _INSIDE.set(True)
        try:
            if any(w.verify for w in writes):
                writes = await self._verified(writes)
                if inside and writes[0].refused is not None:
                    raise writes[0].refused
                writes = [w for w in writes if w.refused is None]
                if not writes:
                    return
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
            _INSIDE.reset(entered)

    async def _verified(self, writes: Sequence[_Write]) -> Sequence[_Write]:
        """``writes``, each with its refusal set (``None``: it may be applied)."""
        refusals = await moves.refused([(w.ops, w.verify) for w in writes], self._look)
        for write, refusal in zip(writes, refusals, strict=True):
            write.refused = refusal
        return writes

    def metrics(self) -> dict[str, int]:
        """``writes`` the stack was asked for, ``batches`` it applied (see
        ``core.group_commit.GroupCommitStats``)."""
        return self._group.metrics()

    async def aclose(self) -> None:
        """Refuse new writes, then return once every queued one has been applied."""
        await self._group.aclose()


__all__ = ["Apply", "Coalescer"]
