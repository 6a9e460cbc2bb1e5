"""Write generations over hashed key slots: a cache fill racing a write is dropped."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final


class Generations:
    """Write counters over hashed key slots (fixed memory).

    A read stamps its key before asking a lower tier and fills the caches only if
    the stamp is unchanged, so a racing write is never overwritten by older data.
    """

    ALL: Final = ("*",)
    SLOTS: Final = 4096

    def __init__(self) -> None:
        self._slots = [0] * self.SLOTS
        self._epoch = 0

    def stamp(self, key: object) -> int:
        return self._slots[hash(key) % self.SLOTS] + self._epoch

    def bump(self, keys: Iterable[object]) -> None:
        for key in keys:
            if key == "*":
                self._epoch += 1
            else:
                self._slots[hash(key) % self.SLOTS] += 1
