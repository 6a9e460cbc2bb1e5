"""``lru``: the in-process cache tier (cachetools), bounded by size and TTL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bruno_core.models.context import SessionContext
from pydantic import BaseModel, field_validator

from bruno_memory.config.models import Bytes, Duration, PositiveInt, TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    ClaimConversation,
    ClearHistory,
    Delete,
    Empty,
    FillAbsent,
    FillRecord,
    FillWindow,
    Key,
    Miss,
    PurgeUser,
    Put,
    Value,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord, model_json_held
from bruno_memory.tiers.base import BaseTier
from bruno_memory.tiers.window import Window, merge_into, serve


class LRUConfig(TierConfig):
    """``maxsize`` counts records (a window weighs as many as it holds messages);
    ``max_bytes`` bounds their memory (``64MB``, ``1GiB``; each record weighs twice its
    JSON plus 700 bytes); both bounds hold, the least recently used records go first.
    ``ttl``: how long a record may be served (at least 1ms; leave it out for no expiry:
    ``ttl: 0`` is refused, not read as "never expire"); to cache nothing, drop the tier."""

    kind: Literal["lru"] = "lru"
    maxsize: PositiveInt = 10_000
    max_bytes: Bytes = 64 * 1024**2
    ttl: Duration | None = None
    window: PositiveInt = 100

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, ttl: float | None) -> float | None:
        if ttl is not None and ttl < 0.001:
            raise ValueError(
                "expected a TTL of at least 1ms (leave ttl out to never expire; to cache "
                "nothing, drop the lru tier)"
            )
        return ttl


@dataclass(frozen=True, slots=True)
class _WindowKey:
    conversation_id: str


def footprint(value: Any) -> int:
    """Bytes a cached value holds (see ``MessageRecord.footprint``): a model weighs twice
    its JSON plus 700 bytes."""
    if isinstance(value, Window):
        return value.footprint()
    if isinstance(value, MessageRecord):
        return value.footprint()
    if isinstance(value, BaseModel):
        return 2 * len(model_json_held(value)) + 700
    return 200


def _weigher(cfg: LRUConfig) -> Callable[[Any], int]:
    """One weight that keeps both bounds: a value weighs the larger of its records (each
    ``unit`` bytes, ``unit * maxsize`` in all) and its bytes, so a cache of at most
    ``unit * maxsize <= max_bytes`` holds at most ``maxsize`` records and ``max_bytes``."""
    unit = max(1, cfg.max_bytes // cfg.maxsize)

    def weight(value: Any) -> int:
        records = len(value.messages) or 1 if isinstance(value, Window) else 1
        return max(records * unit, footprint(value))

    return weight


class LRUTier(BaseTier[LRUConfig]):
    """Recent windows, sessions, users and memories of this process, and the keys the
    authoritative tier was found not to hold (answered ``EMPTY``, until written or dropped).

    Holds immutable records only; callers get copies from the stack.
    """

    config_model = LRUConfig
    capabilities = frozenset(
        {Capability.WINDOWS, Capability.SESSIONS, Capability.USERS, Capability.MEMORIES,
         Capability.CLEAR, Capability.DROP, Capability.IN_PROCESS, Capability.ABSENCE}
    )

    async def open(self) -> None:
        from cachetools import Cache, LRUCache, TTLCache

        cfg = self.config
        weight = _weigher(cfg)
        size = max(1, cfg.max_bytes // cfg.maxsize) * cfg.maxsize
        self._cache: Cache[Any, Any] = (
            TTLCache(size, cfg.ttl, timer=self.context.clock, getsizeof=weight)
            if cfg.ttl is not None
            else LRUCache(size, getsizeof=weight)
        )

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        cache = self._cache
        return {k: v for k in keys if (v := cache.get(k)) is not None}

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        held = self._cache.get(_WindowKey(conversation_id))
        return MISS if held is None else serve(held, limit)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        for op in ops:
            self._apply(op)

    def _apply(self, op: WriteOp) -> None:
        cache = self._cache
        if isinstance(op, FillAbsent):
            self._store(op.key, EMPTY)  # weighs as a small record
        elif isinstance(op, (Put, FillRecord)):
            value = op.value
            if isinstance(value, MessageRecord):
                self._add_message(value)
                return
            self._store(op.key, value)
            if isinstance(value, SessionContext):
                self._store(Key("conversation", value.conversation_id), value)
        elif isinstance(op, Delete):
            cache.pop(op.key, None)
        elif isinstance(op, FillWindow):
            w = Window(op.messages, op.complete).trimmed(self.config.window)
            self._store(_WindowKey(op.conversation_id), w)
        elif isinstance(op, (ClearHistory, ClaimConversation)):
            cache.pop(_WindowKey(op.conversation_id), None)
        elif isinstance(op, PurgeUser):
            for key in [k for k, v in cache.items() if _owned_by(v, op.user_id)]:
                cache.pop(key, None)
            cache.pop(Key("user", op.user_id), None)

    def _add_message(self, rec: MessageRecord) -> None:
        key = _WindowKey(rec.conversation_id)
        held = self._cache.get(key)
        if held is not None:
            updated = merge_into(held, rec, self.config.window)
            if updated is None:
                self._cache.pop(key, None)
            else:
                self._store(key, updated)

    def _store(self, key: Any, value: Any) -> None:
        try:
            self._cache[key] = value
        except ValueError:  # larger than the whole cache: not cached
            self._cache.pop(key, None)

    async def clear(self) -> None:
        """Forget everything (a cache that may have missed invalidations)."""
        self._cache.clear()

    async def drop(self) -> None:
        """Forget everything: an in-process cache holds nothing else (``Droppable``)."""
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def metrics(self) -> dict[str, Any]:
        """``entries`` held and their ``bytes`` (as weighed against ``max_bytes``)."""
        cache = getattr(self, "_cache", None)
        if cache is None:
            return {"entries": 0, "bytes": 0, "max_bytes": self.config.max_bytes}
        held = sum(footprint(v) for v in cache.values())
        return {"entries": len(cache), "bytes": held, "max_bytes": self.config.max_bytes}


def _owned_by(value: Any, user_id: str) -> bool:
    """Whether a purge of ``user_id`` removes ``value``: a window holding any message of
    hers (whoever owns its first one), or a record of hers."""
    if isinstance(value, Window):
        return any(m.user_id == user_id for m in value.messages)
    return bool(getattr(value, "user_id", None) == user_id)


__all__ = ["LRUConfig", "LRUTier"]
