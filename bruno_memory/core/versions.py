"""Write versions: a hybrid logical clock in nanoseconds.

Every write carries a version; durable tiers apply a write only if it is not older than
what they hold, so a replayed or retried write never regresses a record. Versions are
wall-clock nanoseconds, bumped to stay strictly increasing within a process, so writes
of different processes (and of a restarted process) order by time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import cast

from bruno_memory.core.ops import Put, WriteOp, is_fill


class VersionClock:
    """Strictly increasing versions that follow the wall clock.

    Args:
        wall: nanoseconds since the epoch (injected in tests).
    """

    def __init__(self, wall: Callable[[], int] = time.time_ns) -> None:
        self._wall = wall
        self._last = 0

    def next(self) -> int:
        """A version greater than every one given or observed before."""
        self._last = max(self._wall(), self._last + 1)
        return self._last

    def observe(self, version: int) -> None:
        """Take a version seen elsewhere into account (later versions stay above it)."""
        self._last = max(self._last, version)


CLOCK = VersionClock()
"""The process-wide clock the stack and the policies stamp writes with."""


def stamp(ops: Sequence[WriteOp], clock: VersionClock = CLOCK) -> list[WriteOp]:
    """The ops, each unversioned one (``version == 0``) given the next version.

    Cache fills carry no version and pass unchanged; ops all versioned already (a policy
    behind the stack, which stamped them) come back as they are.
    """
    out: list[WriteOp] = []
    changed = not isinstance(ops, list)
    for op in ops:
        if type(op) is Put:  # the hot path: ~10x cheaper than dataclasses.replace
            if not op.version:
                op, changed = Put(op.key, op.value, clock.next()), True
        elif not is_fill(op) and op.version == 0:
            op, changed = dataclasses.replace(op, version=clock.next()), True
        out.append(op)
    return out if changed else cast("list[WriteOp]", ops)
