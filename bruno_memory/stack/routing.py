"""Which tiers take which operations, decided once from declared capabilities (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from bruno_memory.core.capabilities import Capability, missing
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    FillAbsent,
    FillRecord,
    FillWindow,
    Namespace,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.tiers.base import Tier

HOLDS: dict[Namespace, frozenset[Capability]] = {
    "message": frozenset({Capability.MESSAGES, Capability.WINDOWS}),
    "session": frozenset({Capability.SESSIONS}),
    "conversation": frozenset({Capability.SESSIONS}),
    "user": frozenset({Capability.USERS}),
    "memory": frozenset({Capability.MEMORIES}),
}


def accepts(tier: Tier, op: WriteOp) -> bool:
    """Whether ``op`` concerns what ``tier`` holds."""
    caps = tier.capabilities
    if isinstance(op, (Put, Delete)):
        return bool(caps & HOLDS[op.key.ns])
    if isinstance(op, FillRecord):
        return bool(caps & HOLDS[op.key.ns]) and Capability.DURABLE not in caps
    if isinstance(op, FillAbsent):
        return bool(caps & HOLDS[op.key.ns]) and Capability.ABSENCE in caps
    if isinstance(op, FillWindow):
        return Capability.WINDOWS in caps and Capability.DURABLE not in caps
    if isinstance(op, (ClearHistory, ClaimConversation)):
        return bool(caps & HOLDS["message"])
    return isinstance(op, PurgeUser)


@dataclass(frozen=True)
class Routes:
    """The stack's tiers sorted by role; ``durable`` is the one authoritative tier."""

    tiers: tuple[Tier, ...]
    durable: Tier
    caches: tuple[Tier, ...]
    others: tuple[Tier, ...]
    leased: frozenset[str] = frozenset()  # caches whose fills take a lease

    @cached_property
    def followers(self) -> tuple[Tier, ...]:
        """The tiers a write reaches after the durable one, in order: the caches, the
        others, and last those that tell other processes (``CHANGES``): an invalidation
        another process acts on must find the shared cache already written."""
        rest = (*self.caches, *self.others)
        return tuple(sorted(rest, key=lambda t: Capability.CHANGES in t.capabilities))

    @cached_property
    def _taking(self) -> dict[object, tuple[bool, tuple[Tier, ...]]]:
        return {}

    def taking(self, op: WriteOp) -> tuple[bool, tuple[Tier, ...]]:
        """Whether the durable tier takes ``op``, and which ``followers`` do: ``accepts``,
        worked out once per kind of op (capabilities are fixed once a stack is built)."""
        kind: object = type(op)
        if isinstance(op, (Put, Delete, FillRecord, FillAbsent)):
            kind = (kind, op.key.ns)
        found = self._taking.get(kind)
        if found is None:
            found = self._taking[kind] = (
                accepts(self.durable, op), tuple(t for t in self.followers if accepts(t, op)))
        return found

    def readers(self, ns: Namespace) -> list[Tier]:
        """Caches holding ``ns``, top-down, then the durable tier."""
        return [t for t in self.caches if t.capabilities & HOLDS[ns]] + [self.durable]

    def windowed(self) -> list[Tier]:
        """Caches answering windows, top-down, then the durable tier."""
        return [t for t in self.caches if Capability.WINDOWS in t.capabilities] + [self.durable]

    def answering(self, needs: Capability) -> list[Tier]:
        """The tiers able to answer a query needing ``needs``: the authoritative tier when
        it can (its answer is final), else the others that declare it, in stack order."""
        if needs in self.durable.capabilities:
            return [self.durable]
        return [t for t in self.others if needs in t.capabilities]


def plan_routes(tiers: Sequence[Tier]) -> Routes:
    """Sort tiers into roles, or raise a config error saying what the stack lacks."""
    check([t.capabilities for t in tiers], [t.name for t in tiers])
    durable = next(t for t in tiers if Capability.DURABLE in t.capabilities)
    caches = tuple(
        t for t in tiers if t is not durable and Capability.VECTOR_SEARCH not in t.capabilities
    )
    others = tuple(t for t in tiers if t is not durable and t not in caches)
    leased = frozenset(t.name for t in caches if Capability.LEASES in t.capabilities)
    return Routes(tuple(tiers), durable, caches, others, leased)


def check(capabilities: Sequence[frozenset[Capability]], names: Sequence[str]) -> None:
    """Reject a stack that cannot serve ``MemoryInterface``, before anything connects."""
    lacking = missing(capabilities)
    if lacking:
        raise BrunoMemoryConfigError(
            f"no tier of the stack ({', '.join(names)}) can hold {', '.join(lacking)}: "
            "add a sqlite or postgres tier",
            path="tiers",
        )
    durable = [n for n, c in zip(names, capabilities, strict=True) if Capability.DURABLE in c]
    if len(durable) > 1:
        raise BrunoMemoryConfigError(
            f"a stack has one authoritative tier, this one has {len(durable)} "
            f"({', '.join(durable)}): keep one sqlite or postgres tier",
            path="tiers",
        )
