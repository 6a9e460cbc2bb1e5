"""Latency of one operation: exact count, sum and maximum, and percentiles of the most
recent calls (a bounded window: constant memory, a few tens of nanoseconds per call)."""

from __future__ import annotations

from collections import deque
from typing import Any

WINDOW = 1024
"""Calls the percentiles are computed over (the most recent ones)."""
QUANTILES = (0.5, 0.9, 0.99)


class Latency:
    """How long the calls of one operation took."""

    __slots__ = ("count", "max", "recent", "sum")

    def __init__(self, window: int = WINDOW) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        """Count one call that took ``seconds``."""
        self.count += 1
        self.sum += seconds
        self.recent.append(seconds)
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the recent calls, in seconds (nearest rank)."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    def report(self) -> dict[str, Any]:
        """Calls and mean (all of them), p50/p90/p99 (recent ones) and max, in ms."""
        ordered = sorted(self.recent)
        n = len(ordered)
        ms = {f"p{round(q * 100)}_ms": round(ordered[min(n - 1, max(0, round(q * n) - 1))]
                                             * 1000, 4) if n else 0.0 for q in QUANTILES}
        return {
            "count": self.count,
            "mean_ms": round(self.sum / self.count * 1000, 4) if self.count else 0.0,
            **ms,
            "max_ms": round(self.max * 1000, 4),
        }
