"""A Prometheus exporter of what ``MemoryStack.health()`` computes (extra ``metrics``).

Per tier: up, ping latency, hits and misses, latency per operation (a summary with its
p50/p90/p99), and the policies' gauges: write-behind queue depth, oldest pending write,
flush lag and latency, circuit-breaker state. ``serve(memory)`` starts an HTTP endpoint
in a thread (each scrape runs ``health()`` on the stack's event loop);
``exposition(memory)`` gives the text for an application's own HTTP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bruno_memory.core.errors import BrunoMemoryError, MissingDependency
from bruno_memory.stack.facade import MemoryStack

PREFIX = "bruno_memory"
STATES = ("closed", "half-open", "open")


def client() -> Any:
    """prometheus_client, or ``MissingDependency`` naming the extra."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingDependency(
            "the Prometheus exporter needs prometheus_client: "
            "pip install 'bruno-memory[metrics]'", path="metrics") from exc
    return prometheus_client


def families(health: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """The metric families of one ``health()`` report (pure, given prometheus_client)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ("tier",)) -> Any:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))

    up = gauge("tier_up", "1 if the tier answered its ping, else 0", ("tier", "kind"))
    ping = gauge("tier_ping_seconds", "How long the tier took to answer its ping")
    hits = CounterMetricFamily(f"{PREFIX}_tier_hits", "Hot reads the tier answered",
                               labels=["tier"])
    misses = CounterMetricFamily(f"{PREFIX}_tier_misses", "Hot reads the tier missed",
                                 labels=["tier"])
    ops = Metric(f"{PREFIX}_tier_operation_seconds",
                 "Latency of the stack's calls to the tier, per operation", "summary")
    depth = gauge("write_behind_queue_depth", "Writes queued in front of the tier")
    oldest = gauge("write_behind_oldest_pending_seconds", "Age of the oldest queued write")
    lag = gauge("write_behind_flush_lag_seconds",
                "From a write's acknowledgement to its flush (recent writes)",
                ("tier", "quantile"))
    flush = gauge("write_behind_flush_seconds", "How long recent flushes took",
                  ("tier", "quantile"))
    flushed = CounterMetricFamily(f"{PREFIX}_write_behind_flushed_ops",
                                  "Queued writes applied", labels=["tier"])
    dead = CounterMetricFamily(f"{PREFIX}_write_behind_dead_letters",
                               "Queued writes given up on", labels=["tier"])
    circuit = gauge("circuit_state", "1 for the circuit breaker's current state",
                    ("tier", "state"))
    opened = CounterMetricFamily(f"{PREFIX}_circuit_opened", "Times the breaker opened",
                                 labels=["tier"])
    for tier, report in health.items():
        up.add_metric([tier, str(report.get("kind", ""))], report.get("status") == "up")
        ping.add_metric([tier], float(report.get("latency_ms", 0.0)) / 1000)
        hits.add_metric([tier], report.get("hits", 0))
        misses.add_metric([tier], report.get("misses", 0))
        for op, o in report.get("operations", {}).items():
            _summary(ops, tier, op, o)
        metrics = report.get("metrics", {})
        if (behind := metrics.get("write_behind")) is not None:
            depth.add_metric([tier], behind.get("queue_depth", 0))
            oldest.add_metric([tier], behind.get("oldest_pending_age_s", 0.0))
            flushed.add_metric([tier], behind.get("flushed_ops", 0))
            dead.add_metric([tier], behind.get("dead_letters", 0))
            for q, key in (("0.5", "p50"), ("0.99", "p99")):
                lag.add_metric([tier, q], behind.get("flush_lag_ms", {}).get(key, 0.0) / 1000)
                flush.add_metric([tier, q],
                                 behind.get("flush_latency_ms", {}).get(key, 0.0) / 1000)
        if (fallback := metrics.get("fallback")) is not None:
            for state in STATES:
                circuit.add_metric([tier, state], fallback.get("circuit") == state)
            opened.add_metric([tier], fallback.get("opened", 0))
    return [up, ping, hits, misses, ops, depth, oldest, lag, flush, flushed, dead, circuit,
            opened]


def _summary(family: Any, tier: str, op: str, o: Mapping[str, Any]) -> None:
    labels = {"tier": tier, "op": op}
    for q in ("50", "90", "99"):
        family.add_sample(family.name, {**labels, "quantile": f"0.{q}"},
                          o[f"p{q}_ms"] / 1000)
    family.add_sample(f"{family.name}_count", labels, o["count"])
    family.add_sample(f"{family.name}_sum", labels, o["mean_ms"] * o["count"] / 1000)


async def exposition(memory: MemoryStack) -> bytes:
    """The Prometheus text of the stack's metrics now (for an application's own server)."""
    prom = client()
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(await memory.health())))
    return bytes(prom.generate_latest(registry))


@dataclass(frozen=True, eq=False)  # a registry keys its collectors by identity
class _Snapshot:
    found: list[Any]

    def collect(self) -> Iterator[Any]:
        yield from self.found


class StackCollector:
    """A prometheus_client collector: each scrape (from another thread) runs ``health()``
    on the stack's event loop, waiting at most ``timeout`` seconds."""

    def __init__(self, memory: MemoryStack, loop: asyncio.AbstractEventLoop,
                 timeout: float = 5.0) -> None:
        self.memory, self.loop, self.timeout = memory, loop, timeout

    def collect(self) -> Iterator[Any]:
        future = asyncio.run_coroutine_threadsafe(self.memory.health(), self.loop)
        try:
            health = future.result(self.timeout)
        except TimeoutError as exc:
            future.cancel()
            raise BrunoMemoryError(
                f"health() did not answer within {self.timeout}s: is the event loop "
                "blocked? (scrapes must come from another thread than the loop's)") from exc
        yield from families(health)


@dataclass
class Exporter:
    """A running metrics endpoint; ``close()`` stops it."""

    server: Any
    thread: Any

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


async def serve(memory: MemoryStack, port: int = 9464, addr: str = "127.0.0.1",
                timeout: float = 5.0) -> Exporter:
    """Serve ``/metrics`` on ``addr:port`` (``port=0``: a free one, see ``.port``) from a
    thread; call from the stack's event loop. ``addr="0.0.0.0"`` listens on every
    interface."""
    prom = client()
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(StackCollector(memory, asyncio.get_running_loop(), timeout))
    server, thread = await asyncio.to_thread(
        prom.start_http_server, port, addr=addr, registry=registry)
    return Exporter(server, thread)
