"""The audit trail's records and their hash chain (pure).

Each record holds who (``actor``) did what (``action`` on ``kind`` records ``targets``) to
whose data (``subject``) and when (``at``, epoch seconds), plus its place in the trail
(``seq``, from 1) and ``prev``, the hash of the record before it. Its ``hash`` is SHA-256
over all of that, so editing a record breaks its own hash and removing one breaks the
numbering and the next record's ``prev``: ``verify`` finds and locates both. Removing the
newest records leaves a shorter valid chain; compare ``Verdict.head`` with a copy kept
elsewhere to detect that.

Actions are open strings; the ones the stack records are below, and other components add
their own (``KEY_ROTATION`` for key management).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

WRITE = "write"
DELETE = "delete"
CLEAR_HISTORY = "clear_history"
CLAIM = "claim"
FORGET_USER = "forget_user"
EXPORT = "export"
IMPORT = "import"
KEY_ROTATION = "key_rotation"
READ = "read"

GENESIS = "0" * 64
"""The ``prev`` of the first record."""


@dataclass(frozen=True, slots=True)
class Auditing:
    """A stack keeps an audit trail; ``actor`` names whoever acts when no one else is."""

    actor: str = "app"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before the trail numbers and chains it."""

    at: float
    actor: str
    action: str
    kind: str
    subject: str | None = None
    targets: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.at, self.actor, self.action, self.kind, self.subject, self.targets))

    def row(self) -> tuple[Any, ...]:
        """The stored columns: at, actor, action, kind, subject, targets, detail (JSON)."""
        return (self.at, self.actor, self.action, self.kind, self.subject,
                _json(list(self.targets)), _json(self.detail))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An event with its place in the chain."""

    seq: int
    event: AuditEvent
    prev: str
    hash: str


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def canonical(row: tuple[Any, ...]) -> str:
    """The canonical text of a record's columns (``AuditEvent.row``): what its hash covers
    beside its number and the previous hash."""
    return orjson.dumps(list(row)).decode()


def digest(seq: int, row: tuple[Any, ...], prev: str) -> str:
    """The hash of the record numbered ``seq`` with columns ``row`` after hash ``prev``."""
    return link(prev, seq, canonical(row))


def link(prev: str, seq: int, canon: str) -> str:
    """SHA-256 of ``prev|seq|canon`` as hex (a SQL tier may compute it in SQL)."""
    return hashlib.sha256(f"{prev}|{seq}|{canon}".encode()).hexdigest()


def chain(head: tuple[int, str] | None, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Number and chain event rows after ``head`` (the newest record's seq and hash):
    each as (seq, *row, prev, hash), ready to insert."""
    seq, prev = head if head is not None else (0, GENESIS)
    out = []
    for row in rows:
        seq += 1
        h = digest(seq, tuple(row), prev)
        out.append((seq, *row, prev, h))
        prev = h
    return out


def record_of(row: tuple[Any, ...] | Any) -> AuditRecord:
    """A stored row (seq, at, actor, action, kind, subject, targets, detail, prev, hash)."""
    seq, at, actor, action, kind, subject, targets, detail, prev, h = row
    event = AuditEvent(float(at), actor, action, kind, subject,
                       tuple(orjson.loads(targets)), orjson.loads(detail))
    return AuditRecord(int(seq), event, prev, h)


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain, located: ``seq`` is the record where it shows."""

    seq: int
    what: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.what}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``verify`` found: ``ok`` when there is no problem; ``head`` is the newest
    record's (seq, hash), to compare with a copy kept elsewhere."""

    records: int
    problems: tuple[Problem, ...]
    head: tuple[int, str] | None

    @property
    def ok(self) -> bool:
        return not self.problems


class Verifier:
    """Checks records fed in ``seq`` order, a page at a time (see ``verify``)."""

    def __init__(self) -> None:
        self.seq, self.prev, self.count = 0, GENESIS, 0
        self.problems: list[Problem] = []

    def feed(self, records: Iterable[AuditRecord]) -> None:
        for r in records:
            self.count += 1
            if r.seq != self.seq + 1:
                missing = (f"record {self.seq + 1}" if r.seq == self.seq + 2
                           else f"records {self.seq + 1} to {r.seq - 1}")
                self.problems.append(Problem(r.seq, f"{missing} deleted before it"))
            elif r.prev != self.prev:
                self.problems.append(Problem(
                    r.seq, f"its prev does not match the hash of record {self.seq}: "
                    f"record {self.seq} was changed"))
            if digest(r.seq, r.event.row(), r.prev) != r.hash:
                self.problems.append(Problem(r.seq, "edited: its content does not match its hash"))
            self.seq, self.prev = r.seq, r.hash

    def verdict(self) -> Verdict:
        head = (self.seq, self.prev) if self.count else None
        return Verdict(self.count, tuple(self.problems), head)


def verify(records: Iterable[AuditRecord]) -> Verdict:
    """Check a whole trail, in ``seq`` order."""
    v = Verifier()
    v.feed(records)
    return v.verdict()
