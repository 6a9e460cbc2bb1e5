"""Audit events riding along with the write that makes them, so the authoritative tier
appends them in that write's own transaction: a crash between the data and its record is
impossible, they commit together or not at all.

The façade sets the events (``carrying``) around its write; the first SQL tier planning
statements for it takes them (``take``) and adds the append to the same group-commit item.
Events nobody took (a write-behind tier journaling the write for later, a tier without a
trail) are appended by the façade after the write, as a separate statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bruno_memory.core.audit import AuditEvent


class Pending:
    """The events of one write; ``taken`` once a tier appends them with it. Closed when
    the write returns: a task it started (which inherits the context) takes nothing later,
    so the events are never appended twice."""

    __slots__ = ("closed", "events", "taken")

    def __init__(self, events: tuple[AuditEvent, ...]) -> None:
        self.events = events
        self.taken = self.closed = False


_PENDING: ContextVar[Pending | None] = ContextVar("bruno_memory_audit_pending", default=None)


@contextmanager
def carrying(events: tuple[AuditEvent, ...]) -> Iterator[Pending]:
    """Offer ``events`` to the tier that commits the write made inside the block."""
    pending = Pending(events)
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        pending.closed = True
        _PENDING.reset(token)


def take() -> tuple[AuditEvent, ...]:
    """The events of the write under way, once (then nobody else appends them)."""
    pending = _PENDING.get()
    if pending is None or pending.taken or pending.closed:
        return ()
    pending.taken = True
    return pending.events


def current() -> Pending | None:
    """The events of the write under way (taken or not), to hand to another task."""
    return _PENDING.get()
