"""Reads as data: every read beyond the hot ``get``/``window`` is a frozen query.

A query goes through one tier method, ``query(q: Query[R]) -> R``, so a policy wraps every
read at once (``Fallback`` guards it, ``WriteBehind`` keeps read-your-writes) and a new
read needs no edit in any policy. Each query class says which capability answers it
(``needs``), what a cache or semantic tier that is down answers instead (``degraded``) and
whether writes still queued in front of a tier must land first (``waits_for``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryQuery

from bruno_memory.core.audit import AuditEvent, AuditRecord
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.cursors import MessagePosition, SessionPosition
from bruno_memory.core.ops import Key, Namespace, Value
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.summaries import HIDDEN

R = TypeVar("R")
T = TypeVar("T")
VectorNs = Literal["message", "memory"]
ScanKind = Literal["message", "session", "user", "memory"]


class Pending(Protocol):
    """What a write-behind queue says of the writes it still holds."""

    def __len__(self) -> int: ...
    def touches(self, ns: Namespace) -> bool: ...
    def messages_in_scope(self, user_id: str | None) -> int: ...  # how many (0: none)


class Query(Generic[R]):
    """A read as data; subclasses are frozen dataclasses whose type parameter is the answer."""

    __slots__ = ()
    needs: ClassVar[Capability]

    def degraded(self) -> R:
        """The answer of a cache or semantic tier that is down and may be skipped."""
        raise NotImplementedError

    def waits_for(self, pending: Pending) -> bool:
        """Whether writes queued in front of the tier must reach it before it answers."""
        return False


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


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a scan; ``next`` is the cursor of the following page (``None``: done);
    ``prev``, where a page has one, the cursor to page back the other way from it."""

    items: list[T]
    next: str | None
    prev: str | None = None


async def every(
    fetch: Callable[..., Awaitable[Page[T]]], cursor: str = "after"
) -> AsyncIterator[T]:
    """Every item of a paged read: ``fetch(**{cursor: c})`` gives a page (``None``: the
    first), and each page's ``next`` is passed back until it is ``None``."""
    at: str | None = None
    while True:
        page = await fetch(**{cursor: at})
        for item in page.items:
            yield item
        if page.next is None:
            return
        at = page.next


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """What a vector search or delete is restricted to; pushed down to the engine."""

    ns: VectorNs | None = None
    user_id: str | None = None
    conversation_id: str | None = None
    memory_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_confidence: float = 0.0
    min_importance: float = 0.0
    expires_after: float | None = None  # keep only memories expiring later than this
    role_not: str | None = None
    keys: tuple[Key, ...] = ()  # only these records (engines filter ids their own way)

    @classmethod
    def messages(cls, user_id: str | None, conversation_id: str | None = None) -> VectorFilter:
        return cls("message", user_id, conversation_id)

    @classmethod
    def memories(cls, q: MemoryQuery, now: float) -> VectorFilter:
        return cls(
            "memory",
            q.user_id,
            None,
            tuple(t.value for t in q.memory_types),
            tuple(q.categories),
            tuple(q.tags),
            q.min_confidence,
            q.min_importance,
            None if q.include_expired else now,
        )


# -- the authoritative tier's reads -------------------------------------------------------


class MessageSearch(Query[list[Scored[MessageRecord]]]):
    """A ranked full-text search of messages, optionally scoped to a user."""

    __slots__ = ()
    user_id: str | None
    needs: ClassVar[Capability] = Capability.TEXT_SEARCH

    def degraded(self) -> list[Scored[MessageRecord]]:
        return []

    def waits_for(self, pending: Pending) -> bool:
        return pending.messages_in_scope(self.user_id) > 0  # ranking is the engine's


@dataclass(frozen=True, slots=True)
class SearchText(MessageSearch):
    """Messages ranked by full-text relevance to ``text``, optionally scoped."""

    text: str
    user_id: str | None
    limit: int
    conversation_id: str | None = None
    include_archived: bool = False  # archived messages (core.archived) too


@dataclass(frozen=True, slots=True)
class QueryMemories(Query[list[Scored[MemoryEntry]]]):
    """Memories passing every filter of ``query`` at wall-clock ``now``, ranked."""

    query: MemoryQuery
    now: float
    needs: ClassVar[Capability] = Capability.MEMORY_QUERY

    def __hash__(self) -> int:
        return hash((self.query.model_dump_json(), self.now))

    def degraded(self) -> list[Scored[MemoryEntry]]:
        return []

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches("memory")


@dataclass(frozen=True, slots=True)
class Neighbours(Query[list[Neighbour]]):
    """The ``before`` messages just before and ``after`` just after each of ``ids``."""

    ids: tuple[str, ...]
    before: int
    after: int
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> list[Neighbour]:
        return []

    def waits_for(self, pending: Pending) -> bool:
        return pending.messages_in_scope(None) > 0  # positions are the engine's


@dataclass(frozen=True, slots=True)
class LatestSession(Query["SessionContext | None"]):
    """The user's most recently started active session."""

    user_id: str
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> SessionContext | None:
        return None

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches("session")


@dataclass(frozen=True, slots=True)
class Statistics(Query[dict[str, Any]]):
    """Counts of the user's messages, conversations, sessions and memories (those not
    expired at ``now``, wall-clock seconds; ``None``: the tier's clock; and not of a
    ``hidden`` category: the lifecycle's own records, ``core.summaries.HIDDEN``)."""

    user_id: str
    now: float | None = None
    hidden: tuple[str, ...] = HIDDEN
    needs: ClassVar[Capability] = Capability.STATS

    def degraded(self) -> dict[str, Any]:
        return {}

    def waits_for(self, pending: Pending) -> bool:
        return len(pending) > 0


@dataclass(frozen=True, slots=True)
class Scan(Query[Page[Value]]):
    """Every record of one kind (only ``user_id``'s when given; only those written after
    version ``since`` when given), in key order, a page at a time: pass the previous
    page's ``next`` as ``after``."""

    kind: ScanKind
    user_id: str | None = None
    after: str | None = None
    limit: int = 500
    since: int | None = None
    needs: ClassVar[Capability] = Capability.SCAN

    def degraded(self) -> Page[Value]:
        return Page([], None)

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches(self.kind)


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """A record as the authoritative tier stores it: its model's JSON (``codec.payload``)
    undecoded, and for a message its conversation and owner."""

    payload: str
    conversation_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScanPayloads(Query[Page[StoredPayload]]):
    """``Scan`` without decoding: the stored JSON of each record (an export writes it as
    it is, without building models)."""

    kind: ScanKind
    user_id: str | None = None
    after: str | None = None
    limit: int = 500
    since: int | None = None
    needs: ClassVar[Capability] = Capability.SCAN

    def degraded(self) -> Page[StoredPayload]:
        return Page([], None)

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches(self.kind)


TOMBSTONE_SCOPES = ("message", "session", "user", "memory", "conversation", "clear", "clear-all")
"""The tombstones a store can hand to another: a deleted record (its namespace) or a
cleared conversation (``clear``: system messages kept). A forgotten user's tombstone holds
a hash keyed by its store, which no other store can match: it stays home."""


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A delete the store remembers: ``scope`` (``TOMBSTONE_SCOPES``), the ``id`` it covers
    (a record's, or a conversation's), its write ``version``."""

    scope: str
    id: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class Tombstones(Query[Page[Tombstone]]):
    """The transferable tombstones written after version ``since``, in (scope, id)
    order, a page at a time (an incremental export)."""

    since: int = 0
    after: str | None = None
    limit: int = 500
    needs: ClassVar[Capability] = Capability.SCAN

    def degraded(self) -> Page[Tombstone]:
        return Page([], None)

    def waits_for(self, pending: Pending) -> bool:
        return len(pending) > 0


@dataclass(frozen=True, slots=True)
class Count(Query[int]):
    """How many records of one kind are stored (only ``user_id``'s when given)."""

    kind: ScanKind
    user_id: str | None = None
    needs: ClassVar[Capability] = Capability.SCAN

    def degraded(self) -> int:
        return 0

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches(self.kind)


@dataclass(frozen=True, slots=True)
class Watermark(Query[int]):
    """The highest write version the store holds (records and tombstones; 0: none): what
    an export saw, so a later export can tell what came after."""

    needs: ClassVar[Capability] = Capability.SCAN

    def degraded(self) -> int:
        return 0

    def waits_for(self, pending: Pending) -> bool:
        return len(pending) > 0


@dataclass(frozen=True, slots=True)
class MessagesBetween(Query[list[MessageRecord]]):
    """Messages with ``start <= ts < end`` (epoch seconds) of a user and/or a conversation,
    oldest first (``(ts, seq)`` order), at most ``limit``."""

    start: float
    end: float
    user_id: str | None
    conversation_id: str | None
    limit: int
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> list[MessageRecord]:
        return []

    def waits_for(self, pending: Pending) -> bool:
        return pending.messages_in_scope(self.user_id) > 0


MemoryTime = Literal["created", "updated"]


@dataclass(frozen=True, slots=True)
class MemoriesBetween(Query[list[MemoryEntry]]):
    """A user's memories whose ``by`` instant (``created`` or ``updated``) is in
    ``[start, end)``, only ``conversation_id``'s when given, oldest first."""

    user_id: str
    start: float
    end: float
    limit: int
    conversation_id: str | None = None
    by: MemoryTime = "created"
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> list[MemoryEntry]:
        return []

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches("memory")


@dataclass(frozen=True, slots=True)
class SearchPhrase(MessageSearch):
    """Messages holding ``phrase`` verbatim (case-insensitive), ranked by full-text
    relevance, optionally scoped."""

    phrase: str
    user_id: str | None
    limit: int
    conversation_id: str | None = None
    include_archived: bool = False  # archived messages (core.archived) too


@dataclass(frozen=True, slots=True)
class ListSessions(Query[Page[SessionContext]]):
    """A user's sessions, newest first (by start, then id), a page of ``limit`` at a time
    from just after ``before``; ``conversations``: only each conversation's latest session
    (one item per conversation). ``next`` is the following page's cursor."""

    user_id: str
    before: SessionPosition | None = None
    limit: int = 20
    conversations: bool = False
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> Page[SessionContext]:
        return Page([], None)

    def waits_for(self, pending: Pending) -> bool:
        return pending.touches("session")


@dataclass(frozen=True, slots=True)
class MessagePage(Query[Page[MessageRecord]]):
    """``limit`` messages of a conversation next to a position, oldest first.

    Backwards (``forward`` false): the ones just before ``cursor`` (the newest ones when it
    is ``None``); forwards: the ones just after it (from the first when ``None``). ``next``
    continues in the same direction (``None``: no more), ``prev`` goes back the other way.
    """

    conversation_id: str
    cursor: MessagePosition | None = None
    forward: bool = False
    limit: int = 50
    until: MessagePosition | None = None
    """Only messages at or before this position (a branch's shared prefix)."""
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> Page[MessageRecord]:
        return Page([], None)

    def waits_for(self, pending: Pending) -> bool:
        return pending.messages_in_scope(None) > 0


@dataclass(frozen=True, slots=True)
class MessageAt(Query["MessagePosition | None"]):
    """Where message ``message_id`` stands in conversation ``conversation_id`` (``None``:
    it is not there)."""

    conversation_id: str
    message_id: str
    needs: ClassVar[Capability] = Capability.DURABLE

    def degraded(self) -> MessagePosition | None:
        return None

    def waits_for(self, pending: Pending) -> bool:
        return pending.messages_in_scope(None) > 0


@dataclass(frozen=True, slots=True)
class ServerEpoch(Query["str | None"]):
    """An id of the server's current life (Redis: its ``run_id``): when it changes, the
    server restarted and may hold data older than writes it missed while it was away."""

    needs: ClassVar[Capability] = Capability.EPOCH

    def degraded(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class AppendAudit(Query[None]):
    """Append events to the audit trail, numbered and hash-chained by the tier in the
    transaction that stores them (not a read: it goes where the trail is kept)."""

    events: tuple[AuditEvent, ...]
    needs: ClassVar[Capability] = Capability.AUDIT

    def degraded(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ReadAudit(Query[list[AuditRecord]]):
    """Up to ``limit`` audit records numbered after ``after``, in order; only those whose
    subject is ``subject`` when given."""

    after: int = 0
    limit: int = 500
    subject: str | None = None
    needs: ClassVar[Capability] = Capability.AUDIT

    def degraded(self) -> list[AuditRecord]:
        return []


# -- the semantic tiers' reads ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchVector(Query[list[Scored[Key]]]):
    """Keys of the records nearest to ``text`` under ``where``; scores are cosines."""

    text: str
    where: VectorFilter
    limit: int
    needs: ClassVar[Capability] = Capability.VECTOR_SEARCH

    def degraded(self) -> list[Scored[Key]]:
        return []


@dataclass(frozen=True, slots=True)
class Similarities(Query[dict[Key, float]]):
    """The cosine similarity of ``text`` to each of ``keys`` held under ``where``."""

    text: str
    keys: tuple[Key, ...]
    where: VectorFilter
    needs: ClassVar[Capability] = Capability.VECTOR_SEARCH

    def degraded(self) -> dict[Key, float]:
        return {}


QUERIES: tuple[type[Query[Any]], ...] = (
    SearchText,
    QueryMemories,
    Neighbours,
    LatestSession,
    Statistics,
    Scan,
    Count,
    Watermark,
    Tombstones,
    ScanPayloads,
    MessagesBetween,
    MemoriesBetween,
    SearchPhrase,
    ListSessions,
    MessagePage,
    MessageAt,
    ServerEpoch,
    AppendAudit,
    ReadAudit,
    SearchVector,
    Similarities,
)
"""Every query type (the contract and fallback suites run over all of them)."""
