"""The audit trail at the façade: which events a write makes, who the actor is, and the
doors to list, verify and extend the trail.

Turned on by a YAML ``audit:`` section (``core.audit.Auditing``). Every write through the
façade then appends one event per (action, kind, subject) it contains, in the same
transaction as the write when the authoritative tier is a SQL one (``core.audit_pending``;
otherwise right after it): who (the actor), what (``write``, ``delete``, ``clear_history``,
``claim``, ``forget_user``; exports and imports add theirs), whose data (the owner) and
when. The actor is, in order: an explicit ``actor=`` (``memory.acting(actor)``,
``memory.for_user(user_id, actor=...)``), the user a scoped handle is bound to, or the
section's ``actor``. Records hold ids, never content: the trail outlives ``forget_user``
as the record of the erasure.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import audit, audit_pending, guards
from bruno_memory.core.audit import AuditEvent, AuditRecord, Verdict
from bruno_memory.core.errors import CapabilityMissing, TierError
from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.queries import AppendAudit, ReadAudit
from bruno_memory.core.records import MessageRecord
from bruno_memory.stack.engine import Engine
from bruno_memory.stack.plumbing import Plumbing

ACTOR: ContextVar[str | None] = ContextVar("bruno_memory_actor", default=None)
"""The actor of the calls made in this context (``acting``)."""

PAGE = 1000


def events_of(
    ops: Sequence[WriteOp], actor: str, at: float, owners: Mapping[str, str]
) -> tuple[AuditEvent, ...]:
    """One event per (action, kind, subject) of ``ops``, its targets in order; ``owners``
    maps a conversation (or a deleted record's) id to its owner."""
    groups: dict[tuple[str, str, str | None], list[str]] = {}
    for op in ops:
        action, kind, subject, target = _describe(op, owners)
        targets = groups.setdefault((action, kind, subject), [])
        if target not in targets:
            targets.append(target)
    return tuple(AuditEvent(at, actor, a, k, s, tuple(t)) for (a, k, s), t in groups.items())


def _describe(op: WriteOp, owners: Mapping[str, str]) -> tuple[str, str, str | None, str]:
    """(action, kind, subject, target) of one op."""
    if isinstance(op, Put):
        return audit.WRITE, op.key.ns, _owner(op.value), op.key.id
    if isinstance(op, Delete):
        return audit.DELETE, op.key.ns, owners.get(op.key.id), op.key.id
    if isinstance(op, ClearHistory):
        cid = op.conversation_id
        return audit.CLEAR_HISTORY, "conversation", owners.get(cid), cid
    if isinstance(op, ClaimConversation):
        return audit.CLAIM, "conversation", op.user_id, op.conversation_id
    if isinstance(op, PurgeUser):
        return audit.FORGET_USER, "user", op.user_id, op.user_id
    return "fill", "cache", None, ""  # fills never reach the façade's writes


def _owner(value: object) -> str | None:
    if isinstance(value, (MessageRecord, SessionContext, UserContext, MemoryEntry)):
        return str(value.user_id) if value.user_id is not None else None
    return None


class Audited(Plumbing):
    """The audit doors of ``MemoryStack`` (mixed in)."""

    def _write(self, ops: list[WriteOp], touched: Sequence[object]) -> Awaitable[None]:
        engine = self._live()
        if engine is not None and engine.auditing is None:
            return super()._write(ops, touched)  # no trail: no layer of our own
        return self._audited(ops, touched)

    async def _audited(self, ops: list[WriteOp], touched: Sequence[object]) -> None:
        engine = await self._ready()
        if engine.auditing is None:
            await super()._write(ops, touched)
            return
        owners = await self._deleted_owners(engine, ops)
        actor = ACTOR.get() or engine.auditing.actor
        events = events_of(ops, actor, self._clock(), ChainMap(owners, self._owners))
        with audit_pending.carrying(events) as pending:
            await super()._write(ops, touched)
        if not pending.taken:  # no tier committed them with the write: after it
            await engine.ask(AppendAudit(events))

    @staticmethod
    async def _deleted_owners(engine: Engine, ops: Sequence[WriteOp]) -> dict[str, str]:
        """Whose records the deletes in ``ops`` remove, read before they go (by id)."""
        keys = [op.key for op in ops if isinstance(op, Delete)]
        try:
            held = await engine.authoritative(keys)
        except TierError:  # down: the delete may still queue; its record names no owner
            return {}
        return {k.id: owner for k, v in held.items() if (owner := _owner(v)) is not None}

    @contextmanager
    def acting(self, actor: str) -> Iterator[None]:
        """Name the actor of the calls made inside this ``with`` block (and the tasks it
        starts) in the audit trail."""
        token = ACTOR.set(guards.identifier(actor, "actor"))
        try:
            yield
        finally:
            ACTOR.reset(token)

    async def record_event(
        self,
        action: str,
        kind: str,
        *,
        subject: str | None = None,
        targets: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> bool:
        """Append an event made elsewhere (an export, a key rotation: ``core.audit``'s
        action names) to the trail; ``False`` when the stack keeps none."""
        engine = await self._ready()
        if engine.auditing is None:
            return False
        guards.identifier(action, "action")
        guards.identifier(kind, "kind")
        who = actor or ACTOR.get() or engine.auditing.actor
        event = AuditEvent(self._clock(), who, action, kind, subject, tuple(targets),
                           dict(detail or {}))
        await engine.ask(AppendAudit((event,)))
        return True

    async def audit_trail(
        self, *, user_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        """Up to ``limit`` audit records numbered after ``after``, oldest first; only those
        about ``user_id``'s data when given. Pass the last record's ``seq`` as ``after``
        for the next page."""
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        guards.limit(limit, maximum=10_000)
        return await (await self._trail()).ask(ReadAudit(max(0, int(after)), limit, user_id))

    async def verify_audit(self) -> Verdict:
        """Check the whole trail's hash chain: each edited or deleted record is reported
        with the number where the break shows (``Verdict.problems``)."""
        engine = await self._trail()
        verifier, after = audit.Verifier(), 0
        while True:
            page = await engine.ask(ReadAudit(after, PAGE))
            verifier.feed(page)
            if len(page) < PAGE:
                return verifier.verdict()
            after = page[-1].seq

    async def _trail(self) -> Engine:
        engine = await self._ready()
        if engine.auditing is None:
            raise CapabilityMissing(
                "this stack keeps no audit trail: add an `audit:` section to its config"
            )
        return engine
