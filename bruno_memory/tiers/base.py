"""The tier protocol (stores, answers queries), and small optional protocols named by capability."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast, runtime_checkable

from bruno_memory.config.models import TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import CapabilityMissing
from bruno_memory.core.ops import Empty, Key, Miss, Value, WriteOp
from bruno_memory.core.queries import Query
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Ride

R = TypeVar("R")
C = TypeVar("C", bound=TierConfig)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class TierContext:
    """What a tier may know of the stack it is built into."""

    namespace: str = "bruno"
    base_dir: Path = field(default_factory=Path.cwd)
    clock: Callable[[], float] = field(default=time.monotonic)
    wall_clock: Callable[[], float] = field(default=time.time)
    embedding: Any = None
    opener: Callable[[Sequence[Value]], Awaitable[list[Value | None]]] | None = None
    """With encryption: the plain records of sealed ones (``None``: shredded), for a tier
    that must read what it stores (a semantic tier embeds the text)."""
    reindex: bool = False  # semantic tiers open the configured model's collection even
    # where the namespace holds another model's vectors (``bruno-memory reindex``)


@runtime_checkable
class Tier(Protocol):
    """One store doing one job. ``get`` leaves a key out of its answer on a miss; every
    other read is a ``Query`` sent through ``query``."""

    name: str
    capabilities: frozenset[Capability]
    config: TierConfig

    async def open(self) -> None: ...
    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]: ...
    async def write(self, ops: Sequence[WriteOp]) -> None: ...
    async def query(self, q: Query[R]) -> R: ...
    async def ping(self) -> None: ...
    async def flush(self) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class Windowed(Protocol):
    """Answers the newest messages of a conversation, oldest first (``WINDOWS``)."""

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss: ...


class Clearable(Protocol):
    """A cache that can drop everything it holds (``CLEAR``)."""

    async def clear(self) -> Any: ...


class Leased(Protocol):
    """A cache other processes write too, whose fills take a lease (``LEASES``).

    After a miss, and before the lower tier is read, the stack takes a lease on what it
    will fill: a record's key, or a conversation id for its window. Every write of that
    target revokes the lease, and a fill carrying a revoked (or expired) lease is
    dropped, so a read taken before another process's write never fills stale data.
    ``None``: no lease could be taken, so the stack does not fill this tier.
    """

    async def lease(self, target: Key | str) -> str | None: ...


class Settling(Protocol):
    """A shared cache that undoes fills racing a write-behind flush (``SETTLES``); returns
    the targets undone, which the local caches then drop too."""

    async def settle(self, targets: Iterable[Hashable]) -> list[Hashable]: ...


class Droppable(Protocol):
    """A tier that can erase everything it holds for its namespace (``DROP``): its file,
    schema, keys or collections. Irreversible; the tier serves nothing afterwards."""

    async def drop(self) -> None: ...


class Queued(Protocol):
    """A tier whose writes land later (``QUEUED``): it reports each applied batch."""

    def when_applied(self, callback: Callable[[list[WriteOp]], Awaitable[None]]) -> None: ...


class Rides(Protocol):
    """A tier whose write can ride another tier's script call to its Redis server
    (``RIDES``, ``core.rides``): ``ride`` is the write as a part (``None``: this write
    cannot ride, or not now); ``rode`` finishes a write whose ride was sent, raising
    ``TierError`` if its part failed."""

    def ride(self, ops: Sequence[WriteOp]) -> Ride | None: ...
    async def rode(self, ops: Sequence[WriteOp], ride: Ride) -> None: ...


class Carries(Protocol):
    """A tier whose write's script call can carry rides (``CARRIES``): ``carrier`` is the
    Redis server it goes to (``None``: it carries nothing now); ``carry`` writes ``ops``
    and sends the rides on that server after its own part (``Ride.sent`` says which)."""

    def carrier(self) -> str | None: ...
    async def carry(self, ops: Sequence[WriteOp], rides: Sequence[Ride]) -> None: ...


Users = frozenset[str | None]
"""Users whose data a change touched; ``None`` among them: any user (one not known)."""


class ChangeFeed(Protocol):
    """Hears other processes' writes (``CHANGES``): ``follow`` registers a listener called
    with the users each one touched (``{None}`` after a gap in hearing them: anything may
    have changed); ``in_sync`` is whether it hears them now (else nothing cached above it
    may be served)."""

    def follow(self, listener: Callable[[Users], None]) -> None: ...
    def in_sync(self) -> bool: ...


def answers(kind: type[Query[Any]]) -> Callable[[F], F]:
    """Mark a tier method as the handler of one query type (see ``BaseTier.query``)."""

    def mark(fn: F) -> F:
        fn.__dict__["answers"] = kind
        return fn

    return mark


def handlers_of(cls: type) -> dict[type[Query[Any]], Handler]:
    """The query handlers a class and its bases marked with ``answers``."""
    found: dict[type[Query[Any]], Handler] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            kind = vars(attr).get("answers") if inspect.isfunction(attr) else None
            if kind is not None:
                found[kind] = attr
    return found


class BaseTier(Generic[C]):
    """Shared plumbing: the config, the name and a ``repr`` without secrets."""

    capabilities: frozenset[Capability] = frozenset()
    config_model: ClassVar[type[TierConfig]]
    handlers: ClassVar[dict[type[Query[Any]], Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = handlers_of(cls)

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

    async def query(self, q: Query[R]) -> R:
        """Answer a read sent as data, through the handler marked for its type."""
        handler = self.handlers.get(type(q))
        if handler is None:
            raise CapabilityMissing(
                f"tier {self.name!r} does not answer {type(q).__name__} "
                f"(it needs {q.needs.value}; the tier has "
                f"{', '.join(sorted(c.value for c in self.capabilities)) or 'none'})"
            )
        return cast(R, await handler(self, q))

    async def flush(self) -> None:
        """Wait until writes this tier queued are applied; the default queues nothing."""

    def metrics(self) -> dict[str, Any]:
        """Counters of this tier (and of the policies around it)."""
        return {}

    async def aclose(self) -> None:
        """Release connections; the default has nothing to release."""
