"""Single flight: concurrent identical reads share one load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The caller running the load was cancelled: a follower runs it again."""


class SingleFlight:
    """Runs a load once per key at a time; callers arriving meanwhile await its result.

    The load runs in the first caller's task (no extra task); if that caller is
    cancelled, the others are not: one of them runs the load again.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self.shared = 0  # calls answered by another caller's load

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        while (flight := self._flights.get(key)) is not None:
            try:
                result: T = await asyncio.shield(flight)
            except _LeaderGone:
                continue
            self.shared += 1
            return result
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = await load()
        except BaseException as exc:
            flight.set_exception(exc if isinstance(exc, Exception) else _LeaderGone())
            flight.exception()  # retrieved: no "never retrieved" warning without followers
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            del self._flights[key]
