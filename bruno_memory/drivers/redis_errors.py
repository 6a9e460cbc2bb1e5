"""redis-py's exceptions mapped onto ours: one map for the redis tier and the redis journal."""

from __future__ import annotations

from redis import exceptions as rx

from bruno_memory.core import codec
from bruno_memory.core.errors import CorruptRecord, TierError, TierUnavailable

ERRORS: dict[type[BaseException], type[TierError]] = {
    codec.DecodeError: CorruptRecord,
    rx.AuthenticationError: TierError,  # a ConnectionError, but retrying will not help
    rx.ConnectionError: TierUnavailable,  # refused, reset, pool exhausted, loading
    rx.TimeoutError: TierUnavailable,
    rx.ClusterDownError: TierUnavailable,
    rx.TryAgainError: TierUnavailable,
    rx.RedisClusterException: TierUnavailable,  # no reachable node, no slot map
    rx.ResponseError: TierError,  # wrong type, OOM, read-only replica, script error
    rx.RedisError: TierError,
    rx.ChildDeadlockedError: TierError,  # a pool used across fork()
    rx.IncorrectPolicyType: TierError,
    OSError: TierUnavailable,
}
