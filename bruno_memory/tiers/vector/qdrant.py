"""``qdrant``: the semantic tier on Qdrant.

``path:`` runs Qdrant's own engine in this process (``qdrant-edge-py``: one shard directory
per collection, one process at a time); ``url:`` talks to a Qdrant server through
qdrant-client (``url: ":memory:"`` is qdrant-client's in-process mode, for tests only: it is
a pure-Python scan).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator

from bruno_memory.config.models import Duration, PositiveInt, TierConfig
from bruno_memory.config.registry import require
from bruno_memory.core.errors import TierError, TierUnavailable, translate_errors
from bruno_memory.core.ops import Key
from bruno_memory.core.queries import Scored, VectorFilter
from bruno_memory.tiers.vector.base import (
    CollectionRecord,
    Doc,
    VectorTier,
    conditions,
    key_of_payload,
    local_path,
    point_id,
)

_KEYWORDS = (
    "ns",
    "user_id",
    "conversation_id",
    "memory_type",
    "category",
    "tags",
    "role",
)
_FLOATS = ("confidence", "importance", "expires")


class QdrantConfig(TierConfig):
    """Exactly one of ``path`` (embedded, relative to the working directory) or ``url``."""

    kind: Literal["qdrant"] = "qdrant"
    path: str | None = None
    url: str | None = None
    api_key: SecretStr | None = None
    timeout: Duration = 10.0
    optimize_every: PositiveInt = 5000  # embedded: build the index after this many upserts

    @model_validator(mode="after")
    def _one_location(self) -> QdrantConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (embedded Qdrant) or url (a Qdrant server)")
        return self


def qdrant_filter(where: VectorFilter, m: Any, range_cls: Any) -> Any:
    """A ``VectorFilter`` as a Qdrant filter built from module ``m``'s classes."""
    must, must_not = [], []
    for field, op, value in conditions(where):
        if op == "eq":
            must.append(m.FieldCondition(key=field, match=m.MatchValue(value=value)))
        elif op == "ne":
            must_not.append(m.FieldCondition(key=field, match=m.MatchValue(value=value)))
        elif op in ("in", "any"):
            must.append(m.FieldCondition(key=field, match=m.MatchAny(any=value)))
        else:
            must.append(m.FieldCondition(key=field, range=range_cls(**{op: value})))
    if where.keys:
        ids = [point_id(k) for k in where.keys]
        has_id = (
            m.HasIdCondition(point_ids=set(ids))
            if hasattr(m, "EdgeShard")
            else m.HasIdCondition(has_id=ids)
        )
        must.append(has_id)
    return m.Filter(must=must or None, must_not=must_not or None)


class QdrantTier(VectorTier[QdrantConfig]):
    """Embeddings of messages and memories in Qdrant, with payload-filtered search."""

    config_model = QdrantConfig

    async def _connect(self) -> None:
        embedded = self.config.path is not None
        require("qdrant_edge" if embedded else "qdrant_client", "qdrant")  # names the extra
        self._backend: _Edge | _Client = (
            _Edge(self) if self.config.path is not None else _Client(self)
        )
        await self._backend.connect()

    async def _collections(self) -> list[CollectionRecord]:
        return await self._backend.collections()

    async def _create(self, record: CollectionRecord) -> None:
        await self._backend.create(record)

    async def _use(self, record: CollectionRecord) -> None:
        await self._backend.use(record)

    async def _upsert(self, docs: Sequence[Doc], vectors: Sequence[Sequence[float]]) -> None:
        await self._backend.upsert(docs, vectors)

    async def _delete(self, keys: Sequence[Key]) -> None:
        await self._backend.delete([point_id(k) for k in keys])

    async def _delete_where(self, where: VectorFilter) -> None:
        await self._backend.delete_where(where)

    async def _set_owner(self, conversation_id: str, user_id: str) -> None:
        await self._backend.set_owner(VectorFilter("message", conversation_id=conversation_id),
                                      user_id)

    async def _retrieve(self, keys: Sequence[Key]) -> list[Mapping[str, Any]]:
        return await self._backend.retrieve([point_id(k) for k in keys])

    async def _query(
        self, vector: list[float], where: VectorFilter, limit: int
    ) -> list[Scored[Key]]:
        return await self._backend.query(vector, where, limit)

    async def _drop(self, record: CollectionRecord) -> None:
        await self._backend.drop(record)

    async def _close(self) -> None:
        backend = getattr(self, "_backend", None)
        if backend is not None:
            await backend.close()

    async def ping(self) -> None:
        await self._backend.ping()


class _Edge:
    """Embedded Qdrant (qdrant-edge): blocking calls run in one worker thread per tier."""

    ERRORS: dict[type[BaseException], type[TierError]] = {
        OSError: TierUnavailable,
        Exception: TierError,
    }

    def __init__(self, tier: QdrantTier) -> None:
        import qdrant_edge

        self.m = qdrant_edge
        self.tier = tier
        self.root = local_path(tier.context.base_dir, tier.config.path or ".")
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"qdrant-{tier.name}")
        self.shard: Any = None
        self.pending = 0

    async def _call(self, op: str, fn: Any, *args: Any) -> Any:
        with translate_errors(self.tier.name, op, self.ERRORS):
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def connect(self) -> None:
        await self._call("open", lambda: self.root.mkdir(parents=True, exist_ok=True))

    def _meta(self, record: CollectionRecord) -> Path:
        return self.root / f"{record.name}.json"

    async def collections(self) -> list[CollectionRecord]:
        def scan() -> list[CollectionRecord]:
            found = (
                CollectionRecord.from_metadata(json.loads(p.read_text()))
                for p in sorted(self.root.glob("*.json"))
            )
            return [r for r in found if r is not None]

        records: list[CollectionRecord] = await self._call("open", scan)
        return records

    async def use(self, record: CollectionRecord) -> None:
        path = str(self.root / record.name)
        self.shard = await self._call("open", self.m.EdgeShard.load, path)

    async def create(self, record: CollectionRecord) -> None:
        def make() -> None:
            m = self.m
            cfg = m.EdgeConfig(
                vectors=m.EdgeVectorParams(size=record.dimension, distance=m.Distance.Cosine)
            )
            self.shard = m.EdgeShard.create(str(self.root / record.name), cfg)
            for field in _KEYWORDS:
                self.shard.update(
                    m.UpdateOperation.create_field_index(field, m.PayloadSchemaType.Keyword)
                )
            for field in _FLOATS:
                self.shard.update(
                    m.UpdateOperation.create_field_index(field, m.PayloadSchemaType.Float)
                )
            self._meta(record).write_text(json.dumps(record.metadata()))

        await self._call("open", make)

    async def upsert(self, docs: Sequence[Doc], vectors: Sequence[Sequence[float]]) -> None:
        m = self.m
        points = [
            m.Point(point_id(d.key), list(v), d.payload) for d, v in zip(docs, vectors, strict=True)
        ]
        self.pending += len(points)
        optimize = self.pending >= self.tier.config.optimize_every
        if optimize:
            self.pending = 0

        def run() -> None:
            self.shard.update(m.UpdateOperation.upsert_points(points))
            if optimize:
                self.shard.optimize()

        await self._call("write", run)

    async def delete(self, ids: list[str]) -> None:
        await self._call(
            "write", lambda: self.shard.update(self.m.UpdateOperation.delete_points(ids))
        )

    async def retrieve(self, ids: list[str]) -> list[Mapping[str, Any]]:
        found = await self._call("get", lambda: self.shard.retrieve(ids, True, False))
        return [r.payload for r in found if r.payload]

    async def delete_where(self, where: VectorFilter) -> None:
        flt = qdrant_filter(where, self.m, self.m.RangeFloat)
        await self._call(
            "write", lambda: self.shard.update(self.m.UpdateOperation.delete_points_by_filter(flt))
        )

    async def set_owner(self, where: VectorFilter, user_id: str) -> None:
        flt = qdrant_filter(where, self.m, self.m.RangeFloat)
        op = self.m.UpdateOperation.set_payload_by_filter(flt, {"user_id": user_id})
        await self._call("write", lambda: self.shard.update(op))

    async def query(
        self, vector: list[float], where: VectorFilter, limit: int
    ) -> list[Scored[Key]]:
        m = self.m
        request = m.QueryRequest(
            limit=limit,
            query=m.Query.Nearest(vector),
            with_payload=["ns", "id"],
            filter=qdrant_filter(where, m, m.RangeFloat),
        )
        points = await self._call("search", self.shard.query, request)
        return [Scored(key_of_payload(p.payload), float(p.score)) for p in points]

    async def drop(self, record: CollectionRecord) -> None:
        import shutil

        shard = self.shard if record == self.tier.record else None
        if shard is not None:  # the collection in use: its shard closes first, or it
            self.shard = None  # would write its segments back into the removed folder

        def remove() -> None:
            if shard is not None:
                shard.close()
            self._meta(record).unlink(missing_ok=True)
            shutil.rmtree(self.root / record.name, ignore_errors=True)

        await self._call("write", remove)

    async def ping(self) -> None:
        await self._call("ping", lambda: self.shard.info())

    async def close(self) -> None:
        if self.shard is not None:
            shard, self.shard = self.shard, None
            await self._call("close", lambda: (shard.flush(), shard.close()))
        self.pool.shutdown(wait=True)


class _Client:
    """A Qdrant server through qdrant-client's async client."""

    def __init__(self, tier: QdrantTier) -> None:
        import httpx
        from qdrant_client import AsyncQdrantClient, models
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        self.m = models
        self.tier = tier
        cfg = tier.config
        key = cfg.api_key.get_secret_value() if cfg.api_key else None
        self.client = (
            AsyncQdrantClient(location=":memory:")
            if cfg.url == ":memory:"
            else AsyncQdrantClient(url=cfg.url, api_key=key, timeout=int(cfg.timeout) or 1)
        )
        self.ERRORS: dict[type[BaseException], type[TierError]] = {
            ResponseHandlingException: TierUnavailable,
            httpx.TransportError: TierUnavailable,
            OSError: TierUnavailable,
            UnexpectedResponse: TierError,
            ValueError: TierError,
        }
        self.name = ""

    def _errors(self, op: str) -> Any:
        return translate_errors(self.tier.name, op, self.ERRORS)

    async def connect(self) -> None:
        self.name = self.tier.record.name

    async def collections(self) -> list[CollectionRecord]:
        prefix = f"{self.tier.context.namespace}__"
        with self._errors("open"):
            names = [c.name for c in (await self.client.get_collections()).collections]
            infos = [await self.client.get_collection(n) for n in names if n.startswith(prefix)]
        found = (CollectionRecord.from_metadata(i.config.metadata) for i in infos)
        return [r for r in found if r is not None]

    async def use(self, record: CollectionRecord) -> None:
        """Nothing to load: the server holds the collection."""

    async def create(self, record: CollectionRecord) -> None:
        m = self.m
        with self._errors("open"):
            await self.client.create_collection(
                record.name,
                vectors_config=m.VectorParams(size=record.dimension, distance=m.Distance.COSINE),
                metadata=record.metadata(),
            )
            if self.tier.config.url == ":memory:":
                return  # local mode ignores payload indexes
            for field in _KEYWORDS:
                await self.client.create_payload_index(
                    record.name, field, m.PayloadSchemaType.KEYWORD
                )
            for field in _FLOATS:
                await self.client.create_payload_index(
                    record.name, field, m.PayloadSchemaType.FLOAT
                )

    async def upsert(self, docs: Sequence[Doc], vectors: Sequence[Sequence[float]]) -> None:
        points = [
            self.m.PointStruct(id=point_id(d.key), vector=list(v), payload=d.payload)
            for d, v in zip(docs, vectors, strict=True)
        ]
        with self._errors("write"):
            await self.client.upsert(self.name, points, wait=True)

    async def delete(self, ids: list[Any]) -> None:
        with self._errors("write"):
            await self.client.delete(self.name, self.m.PointIdsList(points=ids), wait=True)

    async def retrieve(self, ids: list[str]) -> list[Mapping[str, Any]]:
        with self._errors("get"):
            found = await self.client.retrieve(self.name, ids, with_payload=True)
        return [r.payload for r in found if r.payload]

    async def delete_where(self, where: VectorFilter) -> None:
        selector = self.m.FilterSelector(filter=qdrant_filter(where, self.m, self.m.Range))
        with self._errors("write"):
            await self.client.delete(self.name, selector, wait=True)

    async def set_owner(self, where: VectorFilter, user_id: str) -> None:
        selector = self.m.FilterSelector(filter=qdrant_filter(where, self.m, self.m.Range))
        with self._errors("write"):
            await self.client.set_payload(self.name, {"user_id": user_id}, selector, wait=True)

    async def query(
        self, vector: list[float], where: VectorFilter, limit: int
    ) -> list[Scored[Key]]:
        with self._errors("search"):
            found = await self.client.query_points(
                self.name,
                query=vector,
                query_filter=qdrant_filter(where, self.m, self.m.Range),
                limit=limit,
                with_payload=["ns", "id"],
            )
        return [Scored(key_of_payload(p.payload or {}), float(p.score)) for p in found.points]

    async def drop(self, record: CollectionRecord) -> None:
        with self._errors("write"):
            await self.client.delete_collection(record.name)

    async def ping(self) -> None:
        with self._errors("ping"):
            await self.client.get_collections()

    async def close(self) -> None:
        await self.client.close()


__all__ = ["QdrantConfig", "QdrantTier"]
