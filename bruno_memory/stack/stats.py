"""Per-tier counters and health probes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bruno_memory.core.errors import BrunoMemoryError
from bruno_memory.tiers.base import Tier


@dataclass
class TierStats:
    """Hits and misses the stack saw on one tier."""

    hits: int = 0
    misses: int = 0

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

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
        )
        metrics = tier.metrics()
        if metrics:
            report["metrics"] = metrics
        return report
