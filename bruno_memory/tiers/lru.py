"""``lru``: the in-process cache tier (cachetools), bounded by size and TTL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bruno_core.models.context import SessionContext

from bruno_memory.config.models import Duration, PositiveInt, TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import (
    MISS,
    ClearHistory,
    Delete,
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
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.base import BaseTier
from bruno_memory.tiers.window import Window, merge_into, serve


class LRUConfig(TierConfig):
    """``maxsize`` counts records (a window weighs as many as it holds messages)."""

    kind: Literal["lru"] = "lru"
    maxsize: PositiveInt = 10_000
    ttl: Duration | None = None
    window: PositiveInt = 100


@dataclass(frozen=True, slots=True)
class _WindowKey:
    conversation_id: str


def _weight(value: Any) -> int:
    return len(value.messages) or 1 if isinstance(value, Window) else 1


class LRUTier(BaseTier[LRUConfig]):
    """Recent windows, sessions, users and memories of this process.

    Holds immutable records only; callers get copies from the stack.
    """

    config_model = LRUConfig
    capabilities = frozenset(
        {Capability.WINDOWS, Capability.SESSIONS, Capability.USERS, Capability.MEMORIES,
         Capability.CLEAR}
    )

    async def open(self) -> None:
        from cachetools import Cache, LRUCache, TTLCache

        cfg = self.config
        self._cache: Cache[Any, Any] = (
            TTLCache(cfg.maxsize, cfg.ttl, timer=self.context.clock, getsizeof=_weight)
            if cfg.ttl
            else LRUCache(cfg.maxsize, getsizeof=_weight)
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
        if isinstance(op, (Put, FillRecord)):
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
        elif isinstance(op, ClearHistory):
            cache.pop(_WindowKey(op.conversation_id), None)
        elif isinstance(op, PurgeUser):
            for key in [k for k, v in cache.items() if _owner(v) == op.user_id]:
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

    def __len__(self) -> int:
        return len(self._cache)


def _owner(value: Any) -> str | None:
    if isinstance(value, Window):
        return value.messages[0].user_id if value.messages else None
    return getattr(value, "user_id", None)


__all__ = ["LRUConfig", "LRUTier"]
