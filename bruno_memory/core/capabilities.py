"""What a tier can do, declared so a stack is checked before anything connects."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Capability(str, Enum):
    """One ability of a tier."""

    MESSAGES = "messages"  # holds messages by id
    WINDOWS = "windows"  # answers the newest N messages of a conversation
    SESSIONS = "sessions"  # sessions by id and by conversation id
    USERS = "users"  # user profiles by id
    MEMORIES = "memories"  # memory entries by id
    MEMORY_QUERY = "memory_query"  # filters of MemoryQuery, authoritative
    TEXT_SEARCH = "text_search"  # ranked full-text search of messages and memories
    VECTOR_SEARCH = "vector_search"  # nearest neighbours of an embedding
    STATS = "stats"  # per-user statistics
    DURABLE = "durable"  # authoritative: its answers are final, it never misses
    SCAN = "scan"  # pages through every record of a kind (``queries.Scan``)
    AUDIT = "audit"  # keeps the hash-chained audit trail (``queries.AppendAudit``)
    # abilities beyond storage, each a small protocol in ``tiers.base``
    CLEAR = "clear"  # can drop everything it caches (``Clearable``)
    LEASES = "leases"  # a shared cache whose fills take a lease (``Leased``)
    SETTLES = "settles"  # undoes fills that raced a write-behind flush (``Settling``)
    QUEUED = "queued"  # applies writes later and reports each applied batch (``Queued``)
    CHANGES = "changes"  # tells which users other processes' writes touched (``ChangeFeed``)
    EPOCH = "epoch"  # says when what it holds may have been lost or rolled back
    # (``queries.ServerEpoch``: a server restart, e.g. Redis back from its AOF)
    DROP = "drop"  # erases all it holds for its namespace, for good (``Droppable``)
    RIDES = "rides"  # its writes can ride another tier's Redis script call (``Rides``)
    CARRIES = "carries"  # its writes can carry rides in their script call (``Carries``)
    IN_PROCESS = "in_process"  # holds what it stores in this process's memory only: its
    # own writes send nothing (a policy around it may: ``RIDES`` says so)
    ABSENCE = "absence"  # remembers that the authoritative tier holds nothing at a key
    # (takes ``ops.FillAbsent``), until a write or drop of that key
    PIPELINES = "pipelines"  # a write waits on a server's round trip, the event loop free
    # meanwhile: the stack sends the next batch of writes before answering the last
    # (``stack.coalescing``)


REQUIRED: dict[Capability, str] = {
    Capability.DURABLE: "an authoritative store (sqlite or postgres)",
    Capability.SESSIONS: "sessions",
    Capability.MESSAGES: "messages",
    Capability.MEMORIES: "memories",
    Capability.MEMORY_QUERY: "memory queries",
    Capability.TEXT_SEARCH: "message search",
    Capability.STATS: "statistics",
}


def missing(declared: Iterable[frozenset[Capability]]) -> list[str]:
    """What the union of the tiers' durable capabilities lacks, as readable names."""
    sets = list(declared)
    durable = frozenset().union(*(s for s in sets if Capability.DURABLE in s))
    return [need for cap, need in REQUIRED.items() if cap not in durable]
