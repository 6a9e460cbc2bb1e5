"""The audit trail in a SQL tier: its table, and the mixin answering ``AppendAudit`` and
``ReadAudit``.

An append is a statement like any write's: it goes through the tier's group commit, so
appends made at the same time as other writes share their transaction. The database
numbers and chains the events in that statement, after the newest record, under its write
lock (SQLite's one writer, PostgreSQL's table lock), so concurrent writers, in one process
or many, never fork the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bruno_memory.core import audit
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.queries import AppendAudit, ReadAudit
from bruno_memory.tiers.base import answers

APPEND = "-- bruno: append audit events"
"""The statement marker of an append: its rows are event rows, chained by ``chain_in``."""

COLUMNS = "seq, at, actor, action, kind, subject, targets, detail, prev, hash"
REFUSED = "audit records are append-only"

SQLITE_APPEND = f"""INSERT INTO audit ({COLUMNS})
    SELECT h.seq + 1, ?, ?, ?, ?, ?, ?, ?, h.hash, bruno_audit_link(h.hash, h.seq + 1, ?)
    FROM (SELECT coalesce(max(seq), 0) AS seq, coalesce((SELECT hash FROM audit
          ORDER BY seq DESC LIMIT 1), '{audit.GENESIS}') AS hash FROM audit) AS h"""
"""SQLite's append of one event (then its canonical text), numbered and chained after
the newest record in the statement itself (SQLite has one writer at a time);
``bruno_audit_link`` is ``core.audit.link``, registered on the connection."""

PG_APPEND_FUNCTION = f"""CREATE FUNCTION audit_append(
    ats float8[], actors text[], actions text[], kinds text[], subjects text[],
    targets text[], details text[], canons text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n bigint; h text; i int;
BEGIN
    LOCK TABLE audit IN EXCLUSIVE MODE;
    SELECT seq, hash INTO n, h FROM audit ORDER BY seq DESC LIMIT 1;
    n := coalesce(n, 0);
    h := coalesce(h, '{audit.GENESIS}');
    FOR i IN 1 .. coalesce(array_length(ats, 1), 0) LOOP
        n := n + 1;
        INSERT INTO audit ({COLUMNS}) VALUES (n, ats[i], actors[i], actions[i], kinds[i],
            subjects[i], targets[i], details[i], h,
            encode(sha256(convert_to(h || '|' || n || '|' || canons[i], 'UTF8')), 'hex'))
        RETURNING hash INTO h;
    END LOOP;
END $$"""
"""PostgreSQL's append in one statement (one round trip): under the table lock (readers
do not wait for it), the events numbered and hashed as ``core.audit.link`` does."""
PG_APPEND = "SELECT audit_append(" + ", ".join(
    f"?::{t}[]" for t in ("float8", *["text"] * 7)) + ")"


def sqlite_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``SQLITE_APPEND``'s parameters: each event's columns, then its canonical text."""
    return [(*r, audit.canonical(r)) for r in rows]


def pg_columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``PG_APPEND``'s arguments: one array per column, then the canonical texts."""
    columns = [list(c) for c in zip(*rows, strict=True)]
    return [*columns, [audit.canonical(r) for r in rows]]


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
