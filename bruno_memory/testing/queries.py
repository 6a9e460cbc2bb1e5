"""One harmless query of each type, for suites that must cover every read by construction."""

from __future__ import annotations

from typing import Any

from bruno_core.models.memory import MemoryQuery

from bruno_memory.core.audit import AuditEvent
from bruno_memory.core.ops import Key
from bruno_memory.core.queries import (
    QUERIES,
    AppendAudit,
    Count,
    LatestSession,
    ListSessions,
    MemoriesBetween,
    MessageAt,
    MessagePage,
    MessagesBetween,
    Neighbours,
    Query,
    QueryMemories,
    ReadAudit,
    Scan,
    SearchPhrase,
    SearchText,
    SearchVector,
    ServerEpoch,
    Similarities,
    Statistics,
    VectorFilter,
    Watermark,
)

EXAMPLES: dict[type[Query[Any]], Query[Any]] = {
    SearchText: SearchText("coffee", "u1", 5),
    QueryMemories: QueryMemories(MemoryQuery(user_id="u1", query_text="coffee"), 0.0),
    Neighbours: Neighbours(("no-such-id",), 1, 1),
    LatestSession: LatestSession("u1"),
    Statistics: Statistics("u1"),
    Scan: Scan("memory", "u1", None, 10),
    Count: Count("message", "u1"),
    Watermark: Watermark(),
    MessagesBetween: MessagesBetween(0.0, 2e9, "u1", None, 10),
    MemoriesBetween: MemoriesBetween("u1", 0.0, 2e9, 10),
    SearchPhrase: SearchPhrase("black coffee", "u1", 5),
    ListSessions: ListSessions("u1", None, 10),
    MessagePage: MessagePage("no-such-conversation", None, False, 10),
    MessageAt: MessageAt("no-such-conversation", "no-such-id"),
    ServerEpoch: ServerEpoch(),
    AppendAudit: AppendAudit((AuditEvent(0.0, "contract", "check", "none"),)),
    ReadAudit: ReadAudit(0, 10, "u1"),
    SearchVector: SearchVector("coffee", VectorFilter.messages("u1"), 5),
    Similarities: Similarities("coffee", (Key("message", "no-such-id"),), VectorFilter()),
}
assert set(EXAMPLES) == set(QUERIES), "every query type needs an example"


def one_of_each() -> list[Query[Any]]:
    """An example of every query type, in ``QUERIES`` order."""
    return [EXAMPLES[kind] for kind in QUERIES]
