"""Per-tier counters (hits, misses, latency per operation) and health probes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bruno_memory.core.errors import BrunoMemoryError
from bruno_memory.stack.latency import Latency
from bruno_memory.tiers.base import Tier


@dataclass
class TierStats:
    """Hits and misses the stack saw on one tier, and how long each operation took
    (``get``, ``window``, ``write``, and each query by its class name)."""

    hits: int = 0
    misses: int = 0
    latency: dict[str, Latency] = field(default_factory=dict)

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def timed(self, op: str, seconds: float) -> None:
        """Count one call of ``op`` that took ``seconds``."""
        found = self.latency.get(op)
        if found is None:
            found = self.latency[op] = Latency()
        found.observe(seconds)

    async def probe(self, tier: Tier) -> dict[str, Any]:
        """Ping the tier: up or down, latency in milliseconds, and the counters."""
        started = time.perf_counter()
        report: dict[str, Any] = {"kind": tier.config.kind}
        try:
            await tier.ping()
            report["status"] = "up"
        except BrunoMemoryError as exc:
            report.update(status="down", error=str(exc))
        report.update(
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            hits=self.hits,
            misses=self.misses,
            capabilities=sorted(c.value for c in tier.capabilities),
            operations={op: h.report() for op, h in sorted(self.latency.items())},
        )
        metrics = tier.metrics()
        if metrics:
            report["metrics"] = metrics
        return report
