"""What the semantic tiers (qdrant, chroma) share: payloads, filters, the model record check,
and the write/search plumbing. A backend implements a handful of ``_``-methods."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bruno_core.models.memory import MemoryEntry

from bruno_memory.config.models import TierConfig
from bruno_memory.core import codec
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import BrunoMemoryConfigError, CorruptRecord
from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    Empty,
    Key,
    PurgeUser,
    Put,
    Value,
    WriteOp,
    coalesce,
)
from bruno_memory.core.queries import Scored, SearchVector, Similarities, VectorFilter
from bruno_memory.core.records import MessageRecord, timestamp_key
from bruno_memory.tiers.base import BaseTier, answers

C = TypeVar("C", bound=TierConfig)
NEVER = 1e18  # the ``expires`` of a memory that never expires (payload values are finite)
_POINT_NS = uuid.UUID("6f1c3a52-8d0e-4f53-9b7e-2d3c1b0a9e11")


class ModelMismatch(BrunoMemoryConfigError):
    """A semantic tier holds vectors of another embedding model than the one configured."""


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """The embedding model a collection's vectors come from; one collection per (ns, model)."""

    namespace: str
    model: str
    dimension: int

    @property
    def name(self) -> str:
        """``<namespace>__<model slug>_<dimension>_<hash>``: unique, and legal everywhere."""
        slug = re.sub(r"[^a-z0-9]+", "_", self.model.lower()).strip("_")[:24] or "model"
        digest = hashlib.sha1(f"{self.model}|{self.dimension}".encode()).hexdigest()[:8]
        return f"{self.namespace}__{slug}_{self.dimension}_{digest}"

    def metadata(self) -> dict[str, Any]:
        return {
            "bruno_namespace": self.namespace,
            "bruno_model": self.model,
            "bruno_dimension": self.dimension,
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any] | None) -> CollectionRecord | None:
        if not meta or "bruno_model" not in meta:
            return None
        return cls(
            str(meta["bruno_namespace"]), str(meta["bruno_model"]), int(meta["bruno_dimension"])
        )


def check_model(tier: str, found: Sequence[CollectionRecord], wanted: CollectionRecord) -> None:
    """Refuse to open ``wanted`` when the namespace holds vectors of other models only."""
    mine = [r for r in found if r.namespace == wanted.namespace]
    if not mine or wanted in mine:
        return
    held = ", ".join(f"{r.model!r} ({r.dimension}-d)" for r in mine)
    raise ModelMismatch(
        f"semantic tier {tier!r} holds embeddings of {held} for namespace "
        f"{wanted.namespace!r}, but the stack is configured with {wanted.model!r} "
        f"({wanted.dimension}-d); run `bruno-memory reindex CONFIG` to re-embed with the new "
        "model, or set embedding.model back",
        path="embedding.model",
    )


def local_path(base_dir: Path, path: str) -> Path:
    """``path`` with ``~`` expanded, relative to ``base_dir`` unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def point_id(key: Key) -> str:
    """A stable UUID for a record key (Qdrant ids are UUIDs or integers)."""
    return str(uuid.uuid5(_POINT_NS, str(key)))


def text_of(value: Value) -> str:
    """The text embedded for a record."""
    if isinstance(value, MessageRecord):
        return str(value.message.content)
    assert isinstance(value, MemoryEntry)
    return str(value.content)


def payload_of(value: Value) -> dict[str, Any]:
    """The filterable fields of a message or memory; every key always present."""
    if isinstance(value, MessageRecord):
        return {
            "record": codec.payload(value),
            "ns": "message",
            "id": value.id,
            "user_id": value.user_id or "",
            "conversation_id": value.conversation_id,
            "role": value.message.role.value,
            "ts": value.sort_key,
        }
    assert isinstance(value, MemoryEntry)
    md = value.metadata
    return {
        "record": codec.payload(value),
        "ns": "memory",
        "id": str(value.id),
        "user_id": value.user_id,
        "conversation_id": value.conversation_id or "",
        "memory_type": value.memory_type.value,
        "category": md.category or "",
        "tags": list(md.tags) or [""],
        "confidence": float(md.confidence),
        "importance": float(md.importance),
        "expires": timestamp_key(value.expires_at) if value.expires_at else NEVER,
    }


def record_of_payload(p: Mapping[str, Any]) -> Value:
    """The record kept in a payload's ``record`` field."""
    try:
        if p["ns"] == "message":
            return codec.message_from_row(p["record"], p["conversation_id"], p["user_id"] or None)
        value: Value = codec.from_payload("memory", p["record"])
        return value
    except codec.DecodeError as exc:
        raise CorruptRecord(str(exc), tier="vector", op="get", cause=exc) from exc


def key_of_payload(payload: Mapping[str, Any]) -> Key:
    return Key(payload["ns"], str(payload["id"]))


def conditions(f: VectorFilter) -> list[tuple[str, str, Any]]:
    """The filter as (field, op, value) triples, op in eq, in, ne, gte, gt, any."""
    out: list[tuple[str, str, Any]] = []
    for field in ("ns", "user_id", "conversation_id"):
        value = getattr(f, field)
        if value is not None:
            out.append((field, "eq", value))
    for field, values in (
        ("memory_type", f.memory_types),
        ("category", f.categories),
    ):
        if values:
            out.append((field, "in", list(values)))
    if f.tags:
        out.append(("tags", "any", list(f.tags)))
    if f.min_confidence > 0:
        out.append(("confidence", "gte", f.min_confidence))
    if f.min_importance > 0:
        out.append(("importance", "gte", f.min_importance))
    if f.expires_after is not None:
        out.append(("expires", "gt", f.expires_after))
    if f.role_not is not None:
        out.append(("role", "ne", f.role_not))
    return out


@dataclass(frozen=True, slots=True)
class Doc:
    key: Key
    text: str
    payload: dict[str, Any]


class VectorTier(BaseTier[C]):
    """Embeds what it stores, keeps vectors with filterable payloads, answers vector queries.

    Holds no records: ``get`` always misses, and the stack re-reads hits from the
    authoritative tier. Backends implement ``_connect``, ``_collections``, ``_create``,
    ``_use``, ``_upsert``, ``_delete``, ``_delete_where``, ``_set_owner``, ``_query``,
    ``_drop`` and ``_close``.
    """

    capabilities = frozenset(
        {Capability.VECTOR_SEARCH, Capability.MESSAGES, Capability.MEMORIES, Capability.DROP}
    )

    async def open(self) -> None:
        from bruno_memory.providers.embedding import create_embedding

        self.embedding = self.context.embedding or create_embedding(None)
        dimension = getattr(self.embedding, "dimension", None)
        dim = await dimension() if callable(dimension) else self.embedding.get_dimension()
        model = self.embedding.get_model_name()
        self.record = CollectionRecord(self.context.namespace, model, int(dim))
        await self._connect()
        try:
            found = await self._collections()
            if not self.context.reindex:
                check_model(self.name, found, self.record)
            if self.record in found:
                await self._use(self.record)
            else:
                await self._create(self.record)
        except BaseException:
            await self._close()
            raise

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        """Records this tier holds (a miss for anything else); the stack never reads here."""
        wanted = [k for k in keys if k.ns in ("message", "memory")]
        payloads = await self._retrieve(wanted) if wanted else []
        return {key_of_payload(p): record_of_payload(p) for p in payloads}

    async def aclose(self) -> None:
        await self._close()

    async def drop_stale(self) -> list[CollectionRecord]:
        """Drop this namespace's collections of other models (after a reindex)."""
        stale = [
            r
            for r in await self._collections()
            if r.namespace == self.record.namespace and r != self.record
        ]
        for record in stale:
            await self._drop(record)
        return stale

    async def drop(self) -> None:
        """Delete every collection of the namespace, whatever its model (``Droppable``)."""
        for record in await self._collections():
            if record.namespace == self.record.namespace:
                await self._drop(record)

    # -- writes -------------------------------------------------------------------------

    async def write(self, ops: Sequence[WriteOp]) -> None:
        docs: list[Doc] = []
        for op in coalesce(ops):
            if isinstance(op, Put) and op.key.ns in ("message", "memory"):
                docs.append(Doc(op.key, text_of(op.value), payload_of(op.value)))
                continue
            await self._flush_docs(docs)
            docs = []
            if isinstance(op, Delete) and op.key.ns in ("message", "memory"):
                await self._delete([op.key])
            elif isinstance(op, ClearHistory):
                keep = "system" if op.keep_system else None
                await self._delete_where(
                    VectorFilter("message", conversation_id=op.conversation_id, role_not=keep)
                )
            elif isinstance(op, ClaimConversation):  # its messages' payloads name the owner
                await self._set_owner(op.conversation_id, op.user_id)
            elif isinstance(op, PurgeUser):
                await self._delete_where(VectorFilter(user_id=op.user_id))
        await self._flush_docs(docs)

    async def _flush_docs(self, docs: list[Doc]) -> None:
        if docs:
            vectors = await self.embedding.embed_texts([d.text for d in docs])
            await self._upsert(docs, vectors)

    # -- search -------------------------------------------------------------------------

    @answers(SearchVector)
    async def _search_vector(self, q: SearchVector) -> list[Scored[Key]]:
        """Nearest records to ``q.text`` under ``q.where``; score = cosine."""
        if q.limit <= 0:
            return []
        return await self._query(await self.embedding.embed_text(q.text), q.where, q.limit)

    @answers(Similarities)
    async def _similarities(self, q: Similarities) -> dict[Key, float]:
        """Cosine similarity of ``q.text`` to each of ``q.keys`` this tier holds."""
        if not q.keys:
            return {}
        scoped = dataclasses.replace(q.where, keys=q.keys)
        hits = await self._search_vector(SearchVector(q.text, scoped, len(q.keys)))
        return {h.item: h.score for h in hits}

    # -- the backend ----------------------------------------------------------------------

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _collections(self) -> list[CollectionRecord]:
        raise NotImplementedError

    async def _create(self, record: CollectionRecord) -> None:
        raise NotImplementedError

    async def _use(self, record: CollectionRecord) -> None:
        raise NotImplementedError

    async def _upsert(self, docs: Sequence[Doc], vectors: Sequence[Sequence[float]]) -> None:
        raise NotImplementedError

    async def _delete(self, keys: Sequence[Key]) -> None:
        raise NotImplementedError

    async def _retrieve(self, keys: Sequence[Key]) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    async def _delete_where(self, where: VectorFilter) -> None:
        raise NotImplementedError

    async def _set_owner(self, conversation_id: str, user_id: str) -> None:
        """Set ``user_id`` in the payload of every message point of the conversation."""
        raise NotImplementedError

    async def _query(
        self, vector: list[float], where: VectorFilter, limit: int
    ) -> list[Scored[Key]]:
        raise NotImplementedError

    async def _drop(self, record: CollectionRecord) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError
