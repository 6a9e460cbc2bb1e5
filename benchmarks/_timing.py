"""Timing helpers shared by the benchmarks: run an async callable, report JSON-able stats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def measure(
    fn: Callable[[], Awaitable[Any]], n: int, *, per_call: int = 1, warmup: int = 20
) -> dict[str, float]:
    """Call ``fn`` ``n`` times; ops/s counts ``per_call`` operations per call."""
    for _ in range(warmup):
        await fn()
    samples = []
    started = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    samples.sort()
    return {
        "ops_per_s": round(n * per_call / total, 1),
        "median_ops_per_s": round(per_call / statistics.median(samples), 1),
        "p50_us": round(statistics.median(samples) * 1e6, 1),
        "p99_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e6, 1),
        "calls": n,
    }


def ratio(a: dict[str, float], b: dict[str, float], key: str = "p50_us") -> float:
    """a / b of one statistic, rounded."""
    return round(a[key] / b[key], 3) if b[key] else float("inf")


async def measure_turns(
    fns: dict[str, Callable[[], Awaitable[Any]]], n: int, *, warmup: int = 20
) -> dict[str, dict[str, float]]:
    """Call each of ``fns`` in turns, ``n`` times each (every other turn in reverse order),
    so drift in the machine's load hits them alike; per name, the stats of ``measure``."""
    for _ in range(warmup):
        for fn in fns.values():
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for i in range(n):
        for name, fn in order if i % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - t)
    out = {}
    for name, taken in samples.items():
        taken.sort()
        p50 = statistics.median(taken)
        out[name] = {
            "ops_per_s": round(len(taken) / sum(taken), 1),
            "median_ops_per_s": round(1 / p50, 1),
            "p50_us": round(p50 * 1e6, 1),
            "p99_us": round(taken[min(len(taken) - 1, int(len(taken) * 0.99))] * 1e6, 1),
            "calls": n,
        }
    return out
