"""The tier protocol: three methods, plus small optional protocols named by capability."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.config.models import TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import Empty, Key, Miss, Value, WriteOp
from bruno_memory.core.records import MessageRecord

T = TypeVar("T")
C = TypeVar("C", bound=TierConfig)


@dataclass(frozen=True, slots=True)
class Scored(Generic[T]):
    """A search hit; higher ``score`` is better, comparable only within one result list."""

    item: T
    score: float


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A message next to message ``of`` in their conversation: ``offset`` -1 is the message
    just before it in ``(ts, seq)`` order, 1 the one just after."""

    of: str
    offset: int
    record: MessageRecord


@dataclass(frozen=True)
class TierContext:
    """What a tier may know of the stack it is built into."""

    namespace: str = "bruno"
    base_dir: Path = field(default_factory=Path.cwd)
    clock: Callable[[], float] = field(default=__import__("time").monotonic)
    wall_clock: Callable[[], float] = field(default=__import__("time").time)
    embedding: Any = None


@runtime_checkable
class Tier(Protocol):
    """One store doing one job. ``get`` leaves a key out of its answer on a miss."""

    name: str
    capabilities: frozenset[Capability]

    async def open(self) -> None: ...
    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]: ...
    async def write(self, ops: Sequence[WriteOp]) -> None: ...
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...


@runtime_checkable
class Windowed(Protocol):
    """Answers the newest messages of a conversation, oldest first (``WINDOWS``)."""

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss: ...


@runtime_checkable
class Leased(Protocol):
    """A cache other processes write too, whose fills take a lease (memcache-style).

    After a miss, and before the lower tier is read, the stack takes a lease on what it
    will fill: a record's key, or a conversation id for its window. Every write of that
    target revokes the lease, and a fill carrying a revoked (or expired) lease is
    dropped, so a read taken before another process's write never fills stale data.
    ``None``: no lease could be taken, so the stack does not fill this tier. A tier (or
    a policy around one) opts in with ``takes_leases = True``.
    """

    takes_leases: bool

    async def lease(self, target: Key | str) -> str | None: ...


@runtime_checkable
class TextSearch(Protocol):
    """Ranked full-text search (``TEXT_SEARCH``)."""

    async def search_messages(
        self, query: str, user_id: str | None, limit: int, conversation_id: str | None = None
    ) -> list[Scored[MessageRecord]]: ...


@runtime_checkable
class Durable(Protocol):
    """The authoritative store's queries (``DURABLE``, ``MEMORY_QUERY``, ``STATS``)."""

    async def query_memories(self, query: MemoryQuery, now: float) -> list[Scored[MemoryEntry]]: ...
    async def latest_session(self, user_id: str) -> SessionContext | None: ...
    async def statistics(self, user_id: str) -> dict[str, Any]: ...
    async def neighbours(self, ids: Sequence[str], before: int, after: int) -> list[Neighbour]: ...


@runtime_checkable
class VectorSearch(Protocol):
    """Nearest neighbours of a query text (``VECTOR_SEARCH``); ``where`` is a
    ``tiers._vector.VectorFilter``; scores are cosine similarities of record keys."""

    async def search_vector(self, query: str, where: Any, limit: int) -> list[Scored[Key]]: ...


class BaseTier(Generic[C]):
    """Shared plumbing: the config, the name and a ``repr`` without secrets."""

    capabilities: frozenset[Capability] = frozenset()
    config_model: ClassVar[type[TierConfig]]

    def __init__(self, config: C, context: TierContext | None = None) -> None:
        self.config = config
        self.context = context or TierContext()
        self.name = config.name or config.kind

    def __repr__(self) -> str:
        shown = self.config.model_dump(exclude_defaults=True, exclude={"name", "kind"})
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({self.name!r}{', ' if args else ''}{args})"

    async def open(self) -> None:
        """Connect and prepare; the default has nothing to do."""

    async def ping(self) -> None:
        """Raise ``TierUnavailable`` if the tier cannot answer."""

    async def aclose(self) -> None:
        """Release connections; the default has nothing to release."""
