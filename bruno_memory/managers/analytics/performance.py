"""Tier performance from the stack's own counters (``MemoryStack.health()``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tier_performance(health: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per tier: status, hit ratio of the hot reads, latency percentiles per operation,
    and the policies' gauges (queue depth, oldest pending write, circuit state)."""
    return {name: _tier(report) for name, report in health.items()}


def _tier(report: Mapping[str, Any]) -> dict[str, Any]:
    hits, misses = int(report.get("hits", 0)), int(report.get("misses", 0))
    metrics = report.get("metrics", {})
    behind = metrics.get("write_behind", {})
    fallback = metrics.get("fallback", {})
    return {
        "kind": report.get("kind"),
        "status": report.get("status"),
        "ping_ms": report.get("latency_ms"),
        "hits": hits,
        "misses": misses,
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "operations": dict(report.get("operations", {})),
        "queue_depth": behind.get("queue_depth"),
        "flush_lag_s": behind.get("oldest_pending_age_s"),
        "circuit": fallback.get("circuit"),
    }
