"""The audit trail in a SQL tier: its table, and the mixin answering ``AppendAudit`` and
``ReadAudit``.

An append is a statement like any write's: it goes through the tier's group commit, so
appends made at the same time as other writes share their transaction. The tier numbers
and chains the events there (``chain_in``), after reading the newest record under the
transaction's write lock, so concurrent writers never fork the chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bruno_memory.core import audit
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.queries import AppendAudit, ReadAudit
from bruno_memory.tiers.base import answers
from bruno_memory.tiers.sql.group_commit import GroupCommit

APPEND = "-- bruno: append audit events"
"""The statement marker of an append: its rows are event rows, chained by ``chain_in``."""

COLUMNS = "seq, at, actor, action, kind, subject, targets, detail, prev, hash"
INSERT = f"INSERT INTO audit ({COLUMNS}) VALUES ({', '.join('?' for _ in COLUMNS.split(','))})"
HEAD = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
REFUSED = "audit records are append-only"


def table(seq: str, at: str) -> list[str]:
    """The table and its index, with the dialect's integer and float column types."""
    return [
        f"""CREATE TABLE audit (
            seq {seq} PRIMARY KEY,
            at {at} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT,
            targets TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        "CREATE INDEX audit_subject ON audit (subject, seq)",
    ]


def select(q: ReadAudit) -> tuple[str, list[Any]]:
    """The records a ``ReadAudit`` asks for, in order."""
    params: list[Any]
    where, params = "seq > ?", [q.after]
    if q.subject is not None:
        where += " AND subject = ?"
        params.append(q.subject)
    return f"SELECT {COLUMNS} FROM audit WHERE {where} ORDER BY seq LIMIT ?", [*params, q.limit]


async def chain_in(
    fetch_head: Callable[[], Awaitable[Any]],
    insert: Callable[[list[tuple[Any, ...]]], Awaitable[None]],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """Chain ``rows`` after the newest record and insert them, in the caller's
    transaction (which must already hold the write lock)."""
    head = await fetch_head()
    await insert(audit.chain((int(head[0]), str(head[1])) if head else None, rows))


class DurableAudit:
    """Mixin for a SQL tier: appends through ``_group``, reads through ``_fetch``."""

    name: str
    _group: GroupCommit[Any] | None

    async def _fetch(self, sql: str, params: Iterable[Any], op: str) -> list[Any]:
        raise NotImplementedError

    @answers(AppendAudit)
    async def _append_audit(self, q: AppendAudit) -> None:
        if not q.events:
            return
        if self._group is None:
            raise TierUnavailable("the tier is not open (call open())", tier=self.name,
                                  op="audit")
        await self._group.submit([(APPEND, [e.row() for e in q.events])])

    @answers(ReadAudit)
    async def _read_audit(self, q: ReadAudit) -> list[audit.AuditRecord]:
        if q.limit <= 0:
            return []
        rows = await self._fetch(*select(q), "audit")
        return [audit.record_of(tuple(r)) for r in rows]
