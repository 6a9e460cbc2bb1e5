"""Latency histograms: constant memory, log-spaced buckets, percentiles within ~19%."""

from __future__ import annotations

import math
from typing import Any

STEPS = 4
"""Buckets per doubling: a percentile is reported as its bucket's upper bound, at most
2**(1/4) - 1 (19%) above the true value."""
FLOOR = 1e-6
"""The first bucket's upper bound, in seconds (1 µs); faster calls count there."""
BUCKETS = 27 * STEPS + 1
"""1 µs to about 2 minutes; slower calls count in the last bucket."""
QUANTILES = (0.5, 0.9, 0.99)


def upper(index: int) -> float:
    """The upper bound of bucket ``index``, in seconds."""
    return FLOOR * 2 ** (index / STEPS)


class Latency:
    """How long the calls of one operation took."""

    __slots__ = ("count", "counts", "max", "sum")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        """Count one call that took ``seconds``."""
        index = 0 if seconds <= FLOOR else math.ceil(math.log2(seconds / FLOOR) * STEPS)
        self.counts[min(index, BUCKETS - 1)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in seconds (the upper bound of its bucket, at most ``max``)."""
        if not self.count:
            return 0.0
        rank, seen = q * self.count, 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank and n:
                return min(upper(index), self.max)
        return self.max

    def report(self) -> dict[str, Any]:
        """Calls, mean, p50/p90/p99 and max, in milliseconds."""
        ms = {f"p{round(q * 100)}_ms": round(self.quantile(q) * 1000, 4) for q in QUANTILES}
        return {
            "count": self.count,
            "mean_ms": round(self.sum / self.count * 1000, 4) if self.count else 0.0,
            **ms,
            "max_ms": round(self.max * 1000, 4),
        }
