"""The pending log of a write-behind tier: queued ops, coalesced, indexed for reads.

Ops on one key coalesce while they wait (the newest version wins, a delete counts as a
write); clears, claims and purges are barriers nothing coalesces across. An entry stays
visible to reads until its batch is applied, so reads never see a gap.

Several batches may be in flight at once, never two holding ops on one key (their
transactions would lock the same rows) and never a clear or purge beside anything else.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bruno_core.models.context import SessionContext

from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    Key,
    Namespace,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord


@dataclass(eq=False, slots=True)
class Entry:
    """One queued op; ``ids`` are the journal entries it stands for."""

    seq: int
    op: WriteOp
    since: float
    ids: list[Any] = field(default_factory=list)
    attempts: int = 0
    inflight: bool = False


class PendingLog:
    """Queued ops in order, with the indexes reads need."""

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}
        self._seq = itertools.count(1)
        self._slot: dict[Key, Entry] = {}  # coalescing targets, not yet in flight
        self._by_key: dict[Key, list[Entry]] = {}
        self._by_conv: dict[str, list[Entry]] = {}  # message puts
        self._barriers: list[Entry] = []  # clears, claims, purges and message deletes
        self._ns: Counter[Namespace] = Counter()
        self._msg_users: Counter[str | None] = Counter()
        self._busy: dict[Key, int] = {}  # keys of in-flight entries, and how many
        self._inflight = 0
        self._barrier_inflight = False
        self.last_seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def oldest(self) -> Entry | None:
        return next(iter(self._entries.values()), None)

    def waiting(self) -> int:
        """Entries not yet taken by a flush."""
        return len(self._entries) - self._inflight

    def oldest_waiting(self) -> Entry | None:
        """The oldest entry not taken by a flush (in-flight ones come first: taken oldest
        first, they are at most the batches in flight)."""
        if not self._inflight:
            return self.oldest()
        return next((e for e in self._entries.values() if not e.inflight), None)

    # -- queueing -------------------------------------------------------------------

    def add(self, op: WriteOp, ids: list[Any], now: float) -> Entry:
        """Queue ``op``; an op on a key already waiting merges into its entry.

        ``ids`` becomes the entry's own list.
        """
        if isinstance(op, (Put, Delete)):
            held = self._slot.get(op.key)
            if held is not None:
                held.ids.extend(ids)
                if op.version >= _version(held.op):
                    self._unindex(held)
                    held.op = op
                    self._index(held)
                return held
        else:
            self._slot.clear()
        seq = self.last_seq = next(self._seq)
        entry = self._entries[seq] = Entry(seq, op, now, ids)
        if isinstance(op, (Put, Delete)):
            self._slot[op.key] = entry
        self._index(entry)
        return entry

    def take(self, n: int) -> list[Entry]:
        """Up to ``n`` waiting entries, oldest first, marked in flight.

        Entries on a key already in flight wait for it; a clear or purge goes only when
        nothing is in flight, and nothing goes beside one in flight.
        """
        if self._barrier_inflight:
            return []
        out: list[Entry] = []
        for e in self._entries.values():
            if e.inflight:
                continue
            key = _key(e.op)
            if key is None:  # a barrier: alone, or first of its batch
                if out or self._inflight:
                    break
                self._barrier_inflight = True
            elif key in self._busy:
                continue
            out.append(e)
            if len(out) >= n:
                break
        for e in out:
            self._mark(e, True)
        return out

    def _mark(self, e: Entry, inflight: bool) -> None:
        if e.inflight == inflight:
            return
        e.inflight = inflight
        key = _key(e.op)
        if inflight:
            self._inflight += 1
            if key is not None:
                busy = self._busy
                busy[key] = busy.get(key, 0) + 1
                if self._slot.get(key) is e:
                    del self._slot[key]
            return
        self._inflight -= 1
        if key is None:
            self._barrier_inflight = False
        elif (left := self._busy.pop(key) - 1) > 0:
            self._busy[key] = left

    def release(self, entries: list[Entry]) -> None:
        """Entries whose flush failed: they wait again (new writes no longer merge in)."""
        for e in entries:
            if e.seq in self._entries:
                self._mark(e, False)

    def remove(self, entries: list[Entry]) -> None:
        """Entries applied (or dead-lettered): gone from the log and its indexes."""
        for e in entries:
            if self._entries.pop(e.seq, None) is not None:
                self._mark(e, False)
                self._unindex(e)
                key = _key(e.op)
                if key is not None and self._slot.get(key) is e:
                    del self._slot[key]

    # -- indexes --------------------------------------------------------------------

    def _keys_of(self, op: WriteOp) -> list[Key]:
        if isinstance(op, Put) and isinstance(op.value, SessionContext):
            return [op.key, Key("conversation", op.value.conversation_id)]
        return [op.key] if isinstance(op, (Put, Delete)) else []

    def _index(self, e: Entry) -> None:
        op = e.op
        if type(op) is Put and type(op.value) is MessageRecord:  # the hot path
            self._by_key.setdefault(op.key, []).append(e)
            self._by_conv.setdefault(op.value.conversation_id, []).append(e)
            self._msg_users[op.value.user_id] += 1
            self._ns["message"] += 1
            return
        for key in self._keys_of(op):
            self._by_key.setdefault(key, []).append(e)
        if isinstance(op, (ClearHistory, ClaimConversation, PurgeUser)) or (
            isinstance(op, Delete) and op.key.ns == "message"
        ):
            self._barriers.append(e)
        if isinstance(op, (Put, Delete)):
            self._ns[op.key.ns] += 1

    def _unindex(self, e: Entry) -> None:
        op = e.op
        for key in self._keys_of(op):
            _drop(self._by_key, key, e)
        if isinstance(op, Put) and isinstance(op.value, MessageRecord):
            _drop(self._by_conv, op.value.conversation_id, e)
            users = self._msg_users
            users[op.value.user_id] -= 1
            if not users[op.value.user_id]:
                del users[op.value.user_id]
        elif self._barriers and e in self._barriers:
            self._barriers.remove(e)
        if isinstance(op, (Put, Delete)):
            self._ns[op.key.ns] -= 1

    # -- what reads ask -------------------------------------------------------------

    def for_key(self, key: Key) -> tuple[bool, list[WriteOp]]:
        """(decided, ops): the ops changing ``key``'s answer, oldest first.

        ``decided``: a pending put or delete of the key settles the answer, so the tier
        need not be asked.
        """
        own = self._by_key.get(key, [])
        start = max(own, key=lambda e: (_version(e.op), e.seq)) if own else None
        after = start.seq if start else 0
        later = [b.op for b in self._barriers if b.seq > after]
        return (start is not None, ([start.op] if start else []) + later)

    def for_conversation(self, conversation_id: str) -> list[WriteOp]:
        """Pending ops that may change a conversation's window, oldest first."""
        entries = self._by_conv.get(conversation_id, []) + self._barriers
        return [e.op for e in sorted(entries, key=lambda e: e.seq)]

    def messages_in_scope(self, user_id: str | None) -> int:
        """How many pending message writes a search scoped to ``user_id`` may see."""
        puts = self._msg_users.get(user_id, 0) if user_id else sum(self._msg_users.values())
        return puts + len(self._barriers)

    def touches(self, ns: Namespace) -> bool:
        """Whether any pending op may change records of ``ns``."""
        purges = any(isinstance(b.op, PurgeUser) for b in self._barriers)
        claims = ns == "message" and any(
            isinstance(b.op, ClaimConversation) for b in self._barriers)
        return self._ns[ns] > 0 or purges or claims


def _key(op: WriteOp) -> Key | None:
    """The key an op writes; ``None`` for clears, claims and purges (many keys)."""
    return op.key if isinstance(op, (Put, Delete)) else None


def _version(op: WriteOp) -> int:
    return getattr(op, "version", 0)


def _drop(index: dict[Any, list[Entry]], key: Any, e: Entry) -> None:
    held = index.get(key)
    if held is not None:
        try:
            held.remove(e)
        except ValueError:
            return
        if not held:
            del index[key]
