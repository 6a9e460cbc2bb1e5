"""Counters and recent timings of a write-behind queue, for ``metrics()`` and ``health()``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


def percentiles(samples: deque[float]) -> dict[str, float]:
    """p50, p99 and max of recent samples, in milliseconds."""
    if not samples:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {k: round(v * 1000, 3) for k, v in
            (("p50", pick(0.5)), ("p99", pick(0.99)), ("max", ordered[-1]))}


@dataclass
class FlushStats:
    """What the flusher did: batches, ops, failures and how long things took."""

    batches: int = 0
    ops: int = 0
    failures: int = 0
    dead_letters: int = 0
    rejected: int = 0
    replayed: int = 0
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=512))
    lag: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    def flushed(self, ops: int, seconds: float, lags: list[float]) -> None:
        self.batches += 1
        self.ops += ops
        self.latency.append(seconds)
        self.lag.extend(lags)

    def report(self) -> dict[str, Any]:
        return {
            "flushed_batches": self.batches,
            "flushed_ops": self.ops,
            "failures": self.failures,
            "dead_letters": self.dead_letters,
            "rejected": self.rejected,
            "replayed": self.replayed,
            "flush_latency_ms": percentiles(self.latency),
            "flush_lag_ms": percentiles(self.lag),
        }
