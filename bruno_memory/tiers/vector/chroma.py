"""``chroma``: the semantic tier on Chroma.

``path:`` is a persistent local database (chromadb's ``PersistentClient``, run in a worker
thread; safe for ONE process only); ``url:`` is a Chroma server (``chroma run``), through the
async HTTP client, for several processes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import model_validator

from bruno_memory.config.models import TierConfig
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
)

_OPS = {"eq": "$eq", "ne": "$ne", "in": "$in", "gte": "$gte", "gt": "$gt"}


class ChromaConfig(TierConfig):
    """Exactly one of ``path`` (one process) or ``url`` (a Chroma server)."""

    kind: Literal["chroma"] = "chroma"
    path: str | None = None
    url: str | None = None
    tenant: str = "default_tenant"
    database: str = "default_database"

    @model_validator(mode="after")
    def _one_location(self) -> ChromaConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError(
                "give exactly one of path (local, one process) or url (a Chroma server)"
            )
        if self.url is not None and urlparse(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url must be http://host:port or https://..., got {self.url!r}")
        return self


def chroma_where(where: VectorFilter) -> dict[str, Any] | None:
    """A ``VectorFilter`` as a Chroma ``where`` document."""
    parts: list[dict[str, Any]] = []
    for field, op, value in conditions(where):
        if op == "any":
            tags = [{field: {"$contains": t}} for t in value]
            parts.append(tags[0] if len(tags) == 1 else {"$or": tags})
        else:
            parts.append({field: {_OPS[op]: value}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _doc_id(key: Key) -> str:
    return str(key)


class ChromaTier(VectorTier[ChromaConfig]):
    """Embeddings of messages and memories in a Chroma collection per (namespace, model)."""

    config_model = ChromaConfig

    async def _connect(self) -> None:
        require("chromadb", "chroma")  # a missing driver names the extra to install
        import chromadb
        from chromadb import errors

        cfg = self.config
        self._errors_map: dict[type[BaseException], type[TierError]] = {
            ConnectionError: TierUnavailable,
            OSError: TierUnavailable,
            errors.ChromaError: TierError,
            ValueError: TierError,
            Exception: TierError,
        }
        self._pool: ThreadPoolExecutor | None = None
        self._collection: Any = None
        with self._errors("open"):
            if cfg.url is not None:
                u = urlparse(cfg.url)
                self._client = await chromadb.AsyncHttpClient(
                    host=u.hostname or "127.0.0.1",
                    port=u.port or (443 if u.scheme == "https" else 8000),
                    ssl=u.scheme == "https",
                    tenant=cfg.tenant,
                    database=cfg.database,
                )
            else:
                path = local_path(self.context.base_dir, cfg.path or ".")
                self._pool = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"chroma-{self.name}"
                )
                self._client = await self._run(
                    "open",
                    chromadb.PersistentClient,
                    str(path),
                    tenant=cfg.tenant,
                    database=cfg.database,
                )

    def _errors(self, op: str) -> Any:
        return translate_errors(self.name, op, self._errors_map)

    async def _run(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a client method: awaited on the HTTP client, in the worker thread locally."""
        with self._errors(op):
            if self._pool is None:
                return await fn(*args, **kwargs)
            call = functools.partial(fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def _collections(self) -> list[CollectionRecord]:
        found = await self._run("open", self._client.list_collections)
        records = [CollectionRecord.from_metadata(c.metadata) for c in found]
        return [r for r in records if r is not None]

    async def _use(self, record: CollectionRecord) -> None:
        self._collection = await self._run("open", self._client.get_collection, record.name)

    async def _create(self, record: CollectionRecord) -> None:
        self._collection = await self._run(
            "open",
            self._client.get_or_create_collection,
            record.name,
            metadata=record.metadata(),
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
        )

    async def _upsert(self, docs: Sequence[Doc], vectors: Sequence[Sequence[float]]) -> None:
        await self._run(
            "write",
            self._collection.upsert,
            ids=[_doc_id(d.key) for d in docs],
            embeddings=[list(v) for v in vectors],
            metadatas=[d.payload for d in docs],
        )

    async def _delete(self, keys: Sequence[Key]) -> None:
        await self._run("write", self._collection.delete, ids=[_doc_id(k) for k in keys])

    async def _retrieve(self, keys: Sequence[Key]) -> list[Mapping[str, Any]]:
        found = await self._run(
            "get", self._collection.get, ids=[_doc_id(k) for k in keys], include=["metadatas"]
        )
        return [m for m in found["metadatas"] or [] if m]

    async def _delete_where(self, where: VectorFilter) -> None:
        await self._run("write", self._collection.delete, where=chroma_where(where))

    async def _set_owner(self, conversation_id: str, user_id: str) -> None:
        where = chroma_where(VectorFilter("message", conversation_id=conversation_id))
        found = await self._run("write", self._collection.get, where=where,
                                include=["metadatas"])
        ids, metas = found["ids"], found["metadatas"] or []
        if ids:
            owned = [{**m, "user_id": user_id} for m in metas]
            await self._run("write", self._collection.update, ids=ids, metadatas=owned)

    async def _query(
        self, vector: list[float], where: VectorFilter, limit: int
    ) -> list[Scored[Key]]:
        found = await self._run(
            "search",
            self._collection.query,
            query_embeddings=[vector],
            n_results=limit,
            where=chroma_where(where),
            ids=[_doc_id(k) for k in where.keys] or None,
            include=["metadatas", "distances"],
        )
        metas, dists = found["metadatas"][0], found["distances"][0]
        return [
            Scored(key_of_payload(m), 1.0 - float(d)) for m, d in zip(metas, dists, strict=True)
        ]

    async def _drop(self, record: CollectionRecord) -> None:
        await self._run("write", self._client.delete_collection, record.name)

    async def ping(self) -> None:
        await self._run("ping", self._client.heartbeat)

    async def _close(self) -> None:
        self._collection = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)


__all__ = ["ChromaConfig", "ChromaTier"]
