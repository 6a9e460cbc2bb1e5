"""``managers.analytics``: the figures of a populated store, on SQLite and on the real
servers, whatever the scan page size; tier performance and LLM cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bruno_llm.base.cost_tracker import CostTracker

from bruno_memory.build import build_memory
from bruno_memory.managers.analytics import Options, analyze, llm_cost, tier_performance
from bruno_memory.stack.latency import Latency
from tests.factories.populated import TOPICS, populate


def _sqlite(tmp: Path, ns: str) -> dict[str, Any]:
    return {"namespace": ns, "tiers": [
        {"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp / "m.db")}]}


async def test_analyze_counts_growth_patterns_and_topics(tmp_path: Path, namespace: str) -> None:
    """Totals, per-day growth, turns, spans, hours, response times and each user's
    keywords match what was stored."""
    async with await build_memory(_sqlite(tmp_path, namespace)) as memory:
        made = await populate(memory, messages=600, conversations=12, memories=5)
        found = await analyze(memory)
    totals = found["totals"]
    assert (totals["messages"], totals["users"], totals["sessions"], totals["memories"]) == (
        600, 3, 12, 15)
    assert totals["conversations"] == 12 and sum(totals["memories_by_type"].values()) == 15
    daily = found["growth"]["daily"]
    assert sum(d["messages"] for d in daily) == 600 and sum(d["memories"] for d in daily) == 15
    assert len(daily) == 12  # one conversation a day, memories within those days
    per_user: dict[str, int] = {}
    for row in found["growth"]["by_user"]:
        per_user[row["user_id"]] = per_user.get(row["user_id"], 0) + row["messages"]
    assert per_user == made.messages
    patterns = found["patterns"]
    assert patterns["turns_per_session"]["mean"] == 25 and patterns["sessions"] == 12
    assert patterns["session_seconds"]["max"] == 24 * 60 + 4  # 25 turns a minute apart
    assert sum(patterns["active_hours"]) == 600
    assert patterns["responses"] == {"turns": 300, "responses": 300, "mean_seconds": 4.0,
                                     "max_seconds": 4.0}
    for user, words in TOPICS.items():
        keywords = {w["keyword"] for p in found["topics"][user].values() for w in p}
        assert keywords & set(words.split()), (user, keywords)
        assert not keywords & {w for u, ws in TOPICS.items() if u != user for w in ws.split()}
    assert found["cost"] is None


async def test_analyze_pages_and_scopes(tmp_path: Path, namespace: str) -> None:
    """A tiny scan page gives the same figures; a user scope counts only hers."""
    async with await build_memory(_sqlite(tmp_path, namespace)) as memory:
        made = await populate(memory, messages=120, conversations=6, memories=2)
        whole = await analyze(memory, options=Options(topics=False))
        paged = await analyze(memory, options=Options(topics=False, page=7))
        bob = await analyze(memory, user_id="bob", options=Options(period="week"))
    for key in ("totals", "growth", "patterns"):
        assert paged[key] == whole[key]
    assert bob["totals"]["messages"] == made.messages["bob"] and bob["totals"]["users"] == 1
    assert list(bob["topics"]) == ["bob"] and all("-W" in p for p in bob["topics"]["bob"])


@pytest.mark.redis
@pytest.mark.postgres
async def test_analyze_on_redis_over_postgres(
    redis_url: str, postgres_dsn: str, namespace: str
) -> None:
    """The same figures from a Redis + PostgreSQL stack, with hit ratios and latencies
    of the hot tier read back from the stack's counters."""
    config = {"namespace": namespace, "tiers": [
        {"kind": "lru"}, {"name": "hot", "kind": "redis", "url": redis_url},
        {"name": "durable", "kind": "postgres", "dsn": postgres_dsn, "max_size": 4}]}
    memory = await build_memory(config)
    try:
        made = await populate(memory, messages=90, conversations=3, memories=2)
        for conversation in made.conversations:
            for _ in range(3):
                await memory.get_context(made.conversations[conversation], conversation)
        found = await analyze(memory, options=Options(topics=False))
        assert found["totals"]["messages"] == 90 and found["totals"]["users"] == 3
        assert found["patterns"]["responses"]["mean_seconds"] == 4.0
        tiers = found["tiers"]
        assert tiers["lru"]["hit_ratio"] is not None and tiers["lru"]["hit_ratio"] > 0
        assert tiers["durable"]["operations"]["write"]["count"] > 0
        assert tiers["durable"]["operations"]["Scan"]["p99_ms"] > 0
        assert tiers["hot"]["status"] == "up"
        await memory.drop()
    finally:
        await memory.close()


def test_tier_performance_reads_policy_gauges() -> None:
    """Queue depth, flush lag and circuit state come from the policies' metrics."""
    health = {"durable": {"kind": "postgres", "status": "up", "latency_ms": 1.0, "hits": 3,
                          "misses": 1, "operations": {},
                          "metrics": {"write_behind": {"queue_depth": 7,
                                                       "oldest_pending_age_s": 0.5},
                                      "fallback": {"circuit": "open"}}}}
    found = tier_performance(health)["durable"]
    assert (found["hit_ratio"], found["queue_depth"], found["flush_lag_s"], found["circuit"]) == (
        0.75, 7, 0.5, "open")


def test_llm_cost_groups_tracker_records() -> None:
    """Requests, tokens and cost per model, purpose and day from ``CostTracker``s."""
    tracker = CostTracker("openai", {"small": {"input": 1.0, "output": 2.0}})
    tracker.track_request("small", 1000, 500, {"purpose": "summary"})
    tracker.track_request("small", 2000, 0, {"purpose": "extraction"})
    tracker.track_request("other", 10, 10)
    found = llm_cost([tracker])
    assert found["requests"] == 3 and found["cost"] == 4.0 and found["currency"] == "USD"
    assert found["by_purpose"]["summary"]["cost"] == 2.0
    assert found["by_purpose"]["other"]["requests"] == 1
    assert found["by_model"]["small"]["input_tokens"] == 3000
    assert sum(d["requests"] for d in found["by_day"].values()) == 3


def test_latency_percentiles_of_recent_calls() -> None:
    """Percentiles are exact over the recent window; count, mean and max cover every call."""
    h = Latency(window=1000)
    for i in range(1, 1001):
        h.observe(i / 1000)  # 1 ms .. 1 s
    assert (h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(1.0)) == (
        0.5, 0.9, 0.99, 1.0)
    for _ in range(1000):
        h.observe(0.002)  # the window now holds only these
    report = h.report()
    assert report["p99_ms"] == 2.0 and report["max_ms"] == 1000.0
    assert report["count"] == 2000 and report["mean_ms"] == round((500.5 + 2) / 2, 4)
    assert Latency().report()["p99_ms"] == 0.0
