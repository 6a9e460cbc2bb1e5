"""Writing records back as they were (an import, a copy between stacks): the façade's
``restore`` door, with the same ownership rules as every other write, and ``watermark``,
the highest version the store holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry

from bruno_memory.core import guards
from bruno_memory.core.codec import encode, key_of
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.generations import Generations
from bruno_memory.core.ops import ClearHistory, Delete, Key, Namespace, Put, Value, WriteOp
from bruno_memory.core.queries import (
    TOMBSTONE_SCOPES,
    Page,
    ScanKind,
    ScanPayloads,
    StoredPayload,
    Tombstone,
    Tombstones,
    Watermark,
)
from bruno_memory.core.records import MessageRecord, fresh, message_record, timestamp_key
from bruno_memory.stack.owners import Owners, refused_moves

Conflict = Literal["skip", "newer", "overwrite"]
CONFLICTS: tuple[Conflict, ...] = ("skip", "newer", "overwrite")


@dataclass(frozen=True, slots=True)
class Restored:
    """What a ``restore`` did: records written, records already held as they are, and
    records held differently that ``on_conflict`` kept."""

    written: int = 0
    unchanged: int = 0
    kept: int = 0


class Restore(Owners):
    """Records written as they are (mixed into ``MemoryStack``)."""

    async def restore(
        self,
        records: Sequence[Value],
        *,
        on_conflict: Conflict = "skip",
        copy: bool = True,
        checked: bool = False,
    ) -> Restored:
        """Write ``records`` (``MessageRecord``s with their conversation and owner,
        ``SessionContext``, ``UserContext``, ``MemoryEntry``) with their ids, timestamps and
        owners unchanged, in one batch (at most 10,000).

        A record the store holds identically is left alone, so restoring twice changes
        nothing. One held differently is kept (``skip``), replaced when the incoming one is
        newer (``newer``: a message's timestamp, a session's last activity, a user's last
        activity, a memory's ``updated_at``) or replaced (``overwrite``). A record whose id
        belongs to another conversation or owner, or a session or message naming another
        owner than its conversation's, is refused (``InvalidInput``) and nothing of the
        batch is written.

        ``copy=False`` stores the records themselves instead of copies: for a caller that
        built them for this call and never changes them afterwards (an import).
        ``checked=True`` skips the records' checks: for a caller that ran ``check`` on each
        while it had nothing else to do (an import, while the batch before is written).
        """
        guards.choice(on_conflict, "on_conflict", CONFLICTS)
        if len(records) > guards.MAX_BATCH:
            raise InvalidInput(
                f"restore takes at most {guards.MAX_BATCH} records at once, got {len(records)}"
            )
        if not checked:
            for record in records:
                check(record)
        keys = [key_of(r) for r in records]
        held = await (await self._ready()).authoritative(keys)
        owners: dict[str, str | None] = {}  # looked up once per conversation a batch
        ops: list[WriteOp] = []
        touched: list[object] = []
        windows: dict[tuple[str, str], None] = {}
        unchanged = kept = 0
        for key, record in zip(keys, records, strict=True):
            await self._check_owner(record, owners)
            old = held.get(key)
            if isinstance(old, (MessageRecord, SessionContext, UserContext, MemoryEntry)):
                if encode(old) == encode(record):
                    unchanged += 1
                    continue
                _check_move(key, old, record)
                if on_conflict == "skip" or (
                    on_conflict == "newer" and _instant(record) <= _instant(old)
                ):
                    kept += 1
                    continue
            ops.append(Put(key, _copy(record) if copy else _pinned(record)))
            touched.append(key)
            if isinstance(record, MessageRecord):
                windows[("window", record.conversation_id)] = None
            elif isinstance(record, SessionContext):
                touched.append(Key("conversation", record.conversation_id))
        if ops:
            touched.extend(windows)  # a conversation's window once, however many messages
            with refused_moves():
                await self._write(ops, touched)
        self._owners.update({c: u for c, u in owners.items() if u is not None})
        return Restored(len(ops), unchanged, kept)

    async def tombstones(
        self, *, since: int = 0, after: str | None = None, limit: int = 500
    ) -> Page[Tombstone]:
        """One page of the deletes the store remembers that another store can apply (a
        deleted record, a cleared conversation; see ``queries.TOMBSTONE_SCOPES``) written
        after ``since``, in (scope, id) order; pass the page's ``next`` as ``after``."""
        guards.watermark(since)
        guards.limit(limit)
        if after is not None:
            guards.identifier(after, "after")
        return await (await self._ready()).ask(Tombstones(since, after, limit))

    async def scan_payloads(
        self,
        kind: ScanKind,
        *,
        user_id: str | None = None,
        after: str | None = None,
        limit: int = 500,
        since: int | None = None,
    ) -> Page[StoredPayload]:
        """``scan`` without decoding: each record's stored JSON (its model's, as
        ``codec.payload`` writes it) and a message's conversation and owner. For moving
        records as they are (an export); the JSON is the store's, not validated again."""
        guards.choice(kind, "kind", ("message", "session", "user", "memory"))
        guards.limit(limit)
        if user_id is not None:
            guards.identifier(user_id, "user_id")
        if after is not None:
            guards.identifier(after, "after")
        if since is not None:
            guards.watermark(since)
        return await (await self._ready()).ask(ScanPayloads(kind, user_id, after, limit, since))

    async def erase(self, tombstones: Sequence[Tombstone]) -> int:
        """Apply deletes another store remembered (``tombstones()``), as of now: each
        record or conversation they name is deleted or cleared, and remembered as deleted;
        returns how many were applied. Records restored afterwards are newer, so kept."""
        if len(tombstones) > guards.MAX_BATCH:
            raise InvalidInput(
                f"erase takes at most {guards.MAX_BATCH} tombstones at once, got "
                f"{len(tombstones)}"
            )
        ops = [_erasure(t) for t in tombstones]
        if ops:
            await self._write(ops, Generations.ALL)
        return len(ops)

    async def watermark(self) -> int:
        """The highest write version the store holds, records and tombstones (0: empty)."""
        return await (await self._ready()).ask(Watermark())

    async def _check_owner(self, record: Value, owners: dict[str, str | None]) -> None:
        """A session or an attributed message agrees with its conversation's owner (the
        store's, or the one an earlier record of the batch set)."""
        if isinstance(record, SessionContext):
            conversation, user = record.conversation_id, record.user_id
        elif isinstance(record, MessageRecord) and record.user_id is not None:
            conversation, user = record.conversation_id, record.user_id
        else:
            return
        if conversation in owners:
            owner = owners[conversation]
        else:
            owner = owners[conversation] = await self._owner(conversation)
        if owner is not None and owner != user:
            raise InvalidInput(
                f"conversation {conversation!r} belongs to {owner!r}, not {user!r}: a "
                "conversation has one owner; restore into a store without it, or drop it first"
            )
        if isinstance(record, SessionContext):
            owners[conversation] = user


def _erasure(t: Tombstone) -> WriteOp:
    """The write that leaves tombstone ``t`` (its version comes from this store's clock)."""
    guards.choice(t.scope, "tombstone scope", TOMBSTONE_SCOPES)
    guards.identifier(t.id, "tombstone id")
    if t.scope in ("clear", "clear-all"):
        return ClearHistory(t.id, keep_system=t.scope == "clear")
    return Delete(Key(cast(Namespace, t.scope), t.id))


def check(record: object) -> None:
    """What ``restore`` checks of each record (``InvalidInput``): its type, ids, text and
    metadata."""
    if isinstance(record, MessageRecord):
        guards.conversation_id(record.conversation_id)
        guards.message(record.message)
        if record.user_id is not None:
            guards.identifier(record.user_id, "user_id")
    elif isinstance(record, MemoryEntry):
        guards.memory(record)
    elif isinstance(record, SessionContext):
        guards.identifier(record.session_id, "session_id")
        guards.identifier(record.user_id, "user_id")
        guards.conversation_id(record.conversation_id)
        guards.metadata(record.metadata)
        guards.metadata(record.state, "state")
    elif isinstance(record, UserContext):
        guards.identifier(record.user_id, "user_id")
        for name in ("preferences", "profile", "metadata"):
            guards.metadata(getattr(record, name), name)
    else:
        raise InvalidInput(
            f"restore takes MessageRecord, SessionContext, UserContext or MemoryEntry "
            f"records, got {type(record).__name__}"
        )


def _check_move(key: Key, old: Value, new: Value) -> None:
    if isinstance(old, MessageRecord) and isinstance(new, MessageRecord):
        moved = old.conversation_id != new.conversation_id or old.user_id not in (
            None,
            new.user_id,
        )
    elif isinstance(old, (SessionContext, MemoryEntry)) and isinstance(
        new, (SessionContext, MemoryEntry)
    ):
        moved = old.user_id != new.user_id
    else:
        moved = False
    if moved:
        raise InvalidInput(
            f"{key.ns} id {key.id} is already used by another conversation or owner: a "
            "restore never moves a record; restore into a store without it"
        )


def _instant(record: Value) -> float:
    stamp: datetime
    if isinstance(record, MessageRecord):
        stamp = record.message.timestamp
    elif isinstance(record, SessionContext):
        stamp = record.last_activity
    elif isinstance(record, UserContext):
        stamp = record.last_active
    else:
        stamp = record.updated_at
    return timestamp_key(stamp)


def _pinned(record: Value) -> Value:
    """``record`` itself, a message's conversation pinned as ``_copy`` pins it."""
    if isinstance(record, MessageRecord) and record.message.conversation_id is None:
        return message_record(record.message, record.conversation_id, record.user_id)
    return record


def _copy(record: Value) -> Value:
    if isinstance(record, MessageRecord):
        return message_record(record.message, record.conversation_id, record.user_id)
    return fresh(record)
