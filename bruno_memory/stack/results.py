"""A small cache of frequent query results, per (user, query), that a write of the user
invalidates.

Each user has a generation; every write of the user through this façade bumps it (a
write whose user is unknown bumps every user's). A read takes the generation before it
asks the tiers and keeps its result under that stamp; a result is served only while its
user's generation is unchanged, so a read that raced a write is never served after it.

Other processes' writes reach it through the same channel as the LRU's: a stack whose LRU
has an ``invalidation:`` (Redis pub/sub) follows that tier's change feed, which tells the
users each remote write touched, and bumps them here too; while the feed is out of sync
(not subscribed, or not heard from for ``max_lag``) nothing is served from this cache, and
a resubscription bumps every user (what was missed is unknown). Without an invalidation
channel, ``ttl`` bounds how long another process's writes can go unseen, as an LRU's
``ttl`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache

from bruno_memory.core.errors import InvalidInput
from bruno_memory.tiers.base import ChangeFeed, Users

Stamp = tuple[int, int]
"""(epoch, user generation): an epoch ends every stamp taken before it."""


class QueryCache:
    """Results of user-scoped reads (search, phrase search, memories, statistics).

    Args:
        maxsize: results kept (least recently used go first).
        ttl: seconds a result is served at most (bounds other processes' staleness).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        maxsize: int = 1024,
        ttl: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidInput(f"maxsize must be a positive integer, got {maxsize!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise InvalidInput(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._results: TTLCache[tuple[str, Hashable], tuple[Stamp, Any]] = TTLCache(
            maxsize, ttl, timer=clock
        )
        self._users: dict[str, int] = {}
        self._epoch = 0
        self._feeds: list[ChangeFeed] = []
        self.hits = 0
        self.misses = 0

    def follow(self, feed: ChangeFeed) -> None:
        """Hear other processes' writes from ``feed``; serve only while it is in sync."""
        self._feeds.append(feed)
        feed.follow(self._heard)

    def _heard(self, users: Users) -> None:
        for user in users:
            self.bump(user)

    def serving(self) -> bool:
        """Whether every feed followed hears the other processes now."""
        return all(feed.in_sync() for feed in self._feeds)

    def stamp(self, user_id: str) -> Stamp:
        """The user's generation now (take it before reading the tiers)."""
        return self._epoch, self._users.get(user_id, 0)

    def get(self, user_id: str, key: Hashable) -> tuple[bool, Any]:
        """(found, result) of ``key`` for the user, if kept under the current generation."""
        held = self._results.get((user_id, key))
        if held is not None and held[0] == self.stamp(user_id) and self.serving():
            self.hits += 1
            return True, held[1]
        self.misses += 1
        return False, None

    def put(self, user_id: str, key: Hashable, stamp: Stamp, result: Any) -> None:
        """Keep ``result`` read under ``stamp``, unless a write bumped the user since."""
        if stamp == self.stamp(user_id) and self.serving():
            self._results[(user_id, key)] = (stamp, result)

    def bump(self, user_id: str | None) -> None:
        """A write of the user (``None``: of a user not known here, so of anyone)."""
        if user_id is None:
            self._epoch += 1
            self._results.clear()
            self._users.clear()
            return
        self._users[user_id] = self._users.get(user_id, 0) + 1
        if len(self._users) > 100_000:  # bounded: forgetting counters needs a new epoch
            self.bump(None)

    def metrics(self) -> dict[str, int]:
        return {"entries": len(self._results), "hits": self.hits, "misses": self.misses}
