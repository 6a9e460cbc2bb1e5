"""``Encrypting``: the outermost policy of every tier that stores outside the process.

Writes go down sealed (records, fills, and so every journal and dead letter under it);
reads come up unsealed, with the search text, categories and tags of a query turned into
the owner's blind tokens first. A record whose data key was destroyed reads as absent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from bruno_core.models.context import SessionContext

from bruno_memory.core import sealing
from bruno_memory.core.blind import BlindIndex
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.codec import DecodeError
from bruno_memory.core.errors import CorruptRecord, InvalidInput
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    Empty,
    FillRecord,
    FillWindow,
    Key,
    Miss,
    PurgeUser,
    Put,
    Value,
    WriteOp,
)
from bruno_memory.core.queries import (
    Neighbour,
    Page,
    Query,
    QueryMemories,
    Scored,
    SearchPhrase,
    SearchText,
    SearchVector,
    Similarities,
    Statistics,
    VectorFilter,
)
from bruno_memory.core.records import MessageRecord
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.encryption.keyring import Keyring
from bruno_memory.tiers.base import Tier

R = TypeVar("R")
MAX_UNSCOPED = 64
"""The most users' keys a search without a user (or a conversation) ORs together."""
_RECORDS = ("message", "memory")


class Encrypting(PolicyTier):
    """Seals what ``inner`` stores and unseals what it answers (see the module doc)."""

    def __init__(self, inner: Tier, keyring: Keyring) -> None:
        super().__init__(inner)
        self.keyring = keyring
        self.semantic = Capability.VECTOR_SEARCH in inner.capabilities
        self.durable = Capability.DURABLE in inner.capabilities

    def _settings(self) -> str:
        return repr(self.keyring)

    async def open(self) -> None:
        await self.keyring.acquire()
        try:
            await self.inner.open()
        except BaseException:
            await self.keyring.release()
            raise

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.keyring.release()

    # -- writes ---------------------------------------------------------------------------

    async def write(self, ops: Sequence[WriteOp]) -> None:
        out: list[WriteOp] = []
        segment: list[WriteOp] = []
        for op in ops:  # a purge destroys the key: what follows it gets a new one
            if isinstance(op, PurgeUser):
                out += await self._sealed(segment)
                segment = []
                await self.keyring.forget(op)
                out.append(op)
            else:
                segment.append(op)
        out += await self._sealed(segment)
        if out:
            await self.inner.write(out)

    async def _sealed(self, ops: list[WriteOp]) -> list[WriteOp]:
        if self.semantic and not self.keyring.vectors:
            ops = [op for op in ops if not _carries_record(op)]
        plain = [v for op in ops for v in _values(op)]
        if not plain:
            return ops
        sealed = iter(await self.keyring.seal(plain))
        return [_replaced(op, sealed) for op in ops]

    # -- reads ----------------------------------------------------------------------------

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        found = await self.inner.get(keys)
        held = [(k, v) for k, v in found.items() if v is not EMPTY]
        opened = await self._open([v for _, v in held if v is not EMPTY])
        out: dict[Key, Value | Empty] = {k: EMPTY for k, v in found.items() if v is EMPTY}
        for (k, _), v in zip(held, opened, strict=True):
            if v is not None:
                out[k] = v
            elif self.durable:
                out[k] = EMPTY  # shredded: erased
        return out

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        found = await super().window(conversation_id, limit)
        if found is MISS:
            return MISS
        opened = await self._open(list(found))
        return [cast(MessageRecord, v) for v in opened if v is not None]

    async def query(self, q: Query[R]) -> R:
        if self.semantic and not self.keyring.vectors and isinstance(q, (SearchVector,
                                                                        Similarities)):
            return cast(R, q.degraded())
        if isinstance(q, SearchPhrase):
            answer: Any = await self._phrase(q)
        else:
            answer = await self.inner.query(await self._blind(q))
        return cast(R, await self._unsealed(answer))

    async def _blind(self, q: Query[R]) -> Query[R]:
        """The query with its words, categories and tags as the owner's blind tokens (as
        is if she has no key: no sealed record of hers can match)."""
        if isinstance(q, SearchText):
            indexes = await self._indexes(q.user_id, q.conversation_id)
            blind = " ".join(i.query(q.text) for i in indexes)
            return cast(Query[R], dataclasses.replace(q, text=blind or q.text))
        if isinstance(q, QueryMemories) and (index := await self._index(q.query.user_id)):
            mq = q.query
            blind_q = mq.model_copy(update={
                "query_text": index.query(mq.query_text) if mq.query_text else mq.query_text,
                "categories": [index.label(c) for c in mq.categories],
                "tags": [index.label(t) for t in mq.tags],
            })
            return cast(Query[R], dataclasses.replace(q, query=blind_q))
        if isinstance(q, Statistics) and (index := await self._index(q.user_id)):
            hidden = tuple(index.label(c) for c in q.hidden)  # categories are stored hashed
            return cast(Query[R], dataclasses.replace(q, hidden=hidden))
        if isinstance(q, (SearchVector, Similarities)) and (q.where.categories or q.where.tags):
            return cast(Query[R], dataclasses.replace(q, where=await self._where(q.where)))
        return q

    async def _phrase(self, q: SearchPhrase) -> list[Scored[MessageRecord]]:
        """A phrase under each index that may have sealed the messages searched, merged."""
        hits: dict[str, Scored[MessageRecord]] = {}
        for index in await self._indexes(q.user_id, q.conversation_id):
            for h in await self.inner.query(dataclasses.replace(q, phrase=index.phrase(q.phrase))):
                if h.item.id not in hits or hits[h.item.id].score < h.score:
                    hits[h.item.id] = h
        return sorted(hits.values(), key=lambda h: -h.score)[: q.limit]

    async def _indexes(self, user_id: str | None, conversation_id: str | None) -> list[BlindIndex]:
        """The blind indexes a message search reads: the user's, and the shared one of
        messages stored before their conversation had an owner (then claimed)."""
        if user_id is None and conversation_id is not None:
            found = (await self.inner.get([Key("conversation", conversation_id)])).values()
            user_id = next((s.user_id for s in found if isinstance(s, SessionContext)), None)
        owners: list[str | None] = [user_id, None] if user_id is not None else []
        if user_id is None:  # every user's words: workable for a few users only
            owners = await self.keyring.owners()
            if len(owners) > MAX_UNSCOPED:
                raise InvalidInput(
                    f"with encryption on, a message search across {len(owners)} users' keys "
                    f"is refused (at most {MAX_UNSCOPED}): pass user_id or a conversation_id")
        await self.keyring.load(owners)
        keys = [self.keyring.key_of(o) for o in owners]
        return list({id(k.index): k.index for k in keys if k is not None}.values())

    async def _where(self, where: VectorFilter) -> VectorFilter:
        if where.user_id is None:
            raise InvalidInput("with encryption on, filtering by category or tag needs a user_id")
        index = await self._index(where.user_id)
        if index is None:
            return where
        return dataclasses.replace(
            where, categories=tuple(index.label(c) for c in where.categories),
            tags=tuple(index.label(t) for t in where.tags))

    async def _index(self, user_id: str) -> BlindIndex | None:
        """The user's blind index; ``None`` if she has no key (none made, or shredded)."""
        await self.keyring.load([user_id])
        key = self.keyring.key_of(user_id)
        return None if key is None else key.index

    async def _open(self, values: list[Value]) -> list[Value | None]:
        try:
            return await self.keyring.unseal(values)
        except DecodeError as exc:
            raise CorruptRecord(str(exc), tier=self.name, op="read", cause=exc) from exc

    async def _unsealed(self, answer: Any) -> Any:
        """``answer`` with every record in it unsealed; shredded ones left out."""
        if isinstance(answer, list):
            items = [_record_in(a) for a in answer]
            held = [i for i in items if i is not None]
            opened = iter(await self._open(held))
            out = []
            for a, i in zip(answer, items, strict=True):
                if i is None:
                    out.append(a)
                    continue
                v = next(opened)
                if v is not None:
                    out.append(_with_record(a, v))
            return out
        if isinstance(answer, Page):
            return dataclasses.replace(answer, items=await self._unsealed(answer.items))
        if _record_in(answer) is not None:
            (v,) = await self._open([answer])
            return v
        return answer


def _record_in(item: Any) -> Value | None:
    """The record an answer's item holds (a record, a hit, a neighbour), if any."""
    if isinstance(item, Scored):
        item = item.item
    elif isinstance(item, Neighbour):
        item = item.record
    return item if sealing.is_record(item) else None


def _with_record(item: Any, record: Value) -> Any:
    if isinstance(item, Scored):
        return Scored(record, item.score)
    if isinstance(item, Neighbour):
        return dataclasses.replace(item, record=record)
    return record


def _carries_record(op: WriteOp) -> bool:
    return isinstance(op, (Put, FillRecord)) and op.key.ns in _RECORDS


def _values(op: WriteOp) -> tuple[Value, ...]:
    if isinstance(op, (Put, FillRecord)):
        return (op.value,)
    if isinstance(op, FillWindow):
        return op.messages
    return ()


def _replaced(op: WriteOp, sealed: Any) -> WriteOp:
    if isinstance(op, Put):
        return Put(op.key, next(sealed), op.version)
    if isinstance(op, FillRecord):
        return FillRecord(op.key, next(sealed), op.lease)
    if isinstance(op, FillWindow):
        return dataclasses.replace(op, messages=tuple(next(sealed) for _ in op.messages))
    return op
