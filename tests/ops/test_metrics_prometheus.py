"""The Prometheus exporter: a real scrape of a Redis + PostgreSQL stack shows each tier's
state, hits, operation latencies, write-behind queue depth and breaker state."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from bruno_core.models.memory import MemoryEntry, MemoryType
from prometheus_client.parser import text_string_to_metric_families

from bruno_memory.build import build_memory
from bruno_memory.cli import main
from bruno_memory.managers.metrics import exposition, families, serve


def _stack(redis_url: str, dsn: str, ns: str) -> dict[str, Any]:
    return {"namespace": ns, "tiers": [
        {"kind": "lru"},
        {"name": "hot", "kind": "redis", "url": redis_url, "on_error": "skip",
         "breaker": {"failures": 3, "reset": "5s"}},
        {"name": "durable", "kind": "postgres", "dsn": dsn, "max_size": 4,
         "write": "write-behind", "write_behind": {"interval": "60s", "batch_size": 10000}},
    ]}


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.redis
@pytest.mark.postgres
async def test_scrape_shows_tiers_queue_and_breaker(
    redis_url: str, postgres_dsn: str, namespace: str
) -> None:
    """A scrape over HTTP: every tier up, the LRU's hits, the durable tier's write
    latency, its queue depth before and after a flush, and the hot tier's closed breaker."""
    memory = await build_memory(_stack(redis_url, postgres_dsn, namespace))
    exporter = await serve(memory, port=0)
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        session = await memory.create_session("ada")
        for i in range(5):
            await memory.store_memory(MemoryEntry(content=f"fact {i}", user_id="ada",
                                                  memory_type=MemoryType.FACT))
        for _ in range(3):
            await memory.get_session(session.session_id)
        found = await asyncio.to_thread(_scrape, url)
        for tier, kind in (("lru", "lru"), ("hot", "redis"), ("durable", "postgres")):
            assert found[("bruno_memory_tier_up", (("kind", kind), ("tier", tier)))] == 1.0
        assert found[("bruno_memory_tier_hits_total", (("tier", "lru"),))] >= 2
        depth = ("bruno_memory_write_behind_queue_depth", (("tier", "durable"),))
        assert found[depth] >= 6  # the session, its user, five memories: none flushed yet
        assert found[("bruno_memory_tier_operation_seconds_count",
                      (("op", "write"), ("tier", "durable")))] >= 6
        assert found[("bruno_memory_circuit_state", (("state", "closed"), ("tier", "hot")))] == 1
        assert found[("bruno_memory_circuit_state", (("state", "open"), ("tier", "hot")))] == 0
        await memory.flush()
        assert (await asyncio.to_thread(_scrape, url))[depth] == 0
        text = (await exposition(memory)).decode()
        assert 'bruno_memory_tier_up{kind="postgres",tier="durable"} 1.0' in text
        await memory.drop()
    finally:
        exporter.close()
        await memory.close()


def test_families_of_a_down_tier_with_an_open_breaker() -> None:
    """A tier reported down with an open circuit exports up 0 and state open."""
    health = {"hot": {"kind": "redis", "status": "down", "latency_ms": 2.0, "hits": 0,
                      "misses": 4, "operations": {"get": {"count": 4, "mean_ms": 1.0,
                                                          "p50_ms": 1.0, "p90_ms": 1.0,
                                                          "p99_ms": 1.0, "max_ms": 1.0}},
                      "metrics": {"fallback": {"circuit": "open", "opened": 2}}}}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families(health) for s in f.samples}
    assert samples[("bruno_memory_tier_up", (("kind", "redis"), ("tier", "hot")))] == 0
    assert samples[("bruno_memory_circuit_state", (("state", "open"), ("tier", "hot")))] == 1
    assert samples[("bruno_memory_circuit_opened_total", (("tier", "hot"),))] == 2
    assert samples[("bruno_memory_tier_operation_seconds_sum", (("op", "get"),
                                                                ("tier", "hot")))] == 0.004


def _sqlite_config(tmp: Path) -> str:
    path = tmp / "stack.yaml"
    path.write_text(yaml.safe_dump({"tiers": [
        {"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp / "m.db")}]}))
    return str(path)


def test_metrics_command_once_prints_the_exposition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bruno-memory metrics CONFIG --once``: the stack's exposition text on stdout, every
    tier up, parseable by Prometheus' own parser."""
    assert main(["metrics", _sqlite_config(tmp_path), "--once"]) == 0
    text = capsys.readouterr().out
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("bruno_memory_tier_up", (("kind", "sqlite"), ("tier", "durable")))] == 1
    assert samples[("bruno_memory_tier_up", (("kind", "lru"), ("tier", "lru")))] == 1


def test_metrics_command_without_the_extra_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without prometheus_client the command fails with status 2 and names the extra."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    assert main(["metrics", _sqlite_config(tmp_path), "--once"]) == 2
    assert "bruno-memory[metrics]" in capsys.readouterr().err
