"""Pruning by policy over real stacks: archive by default, delete only when asked, pinned
never, a dry-run report, restore; statistics stop counting what left."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType

from bruno_memory.config.lifecycle import PruneConfig
from bruno_memory.core import lifetimes as lt
from bruno_memory.core.errors import InvalidInput, NotFound
from bruno_memory.managers.lifecycle import importance
from bruno_memory.managers.lifecycle.prune import Prune, restore
from bruno_memory.managers.lifecycle.step import Step
from tests.factories import STACKS, opened

memory = opened("memory", [s for s in STACKS if s.id in ("lru->sqlite", "lru->redis->postgres")],
                "A cached stack over SQLite, and Redis over PostgreSQL.")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def mem(text: str, user: str = "pa", *, days: float = 0, importance_: float = 1.0,
        **kw: Any) -> MemoryEntry:
    at = NOW - timedelta(days=days)
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user, created_at=at,
                       updated_at=at, last_accessed=at,
                       metadata=MemoryMetadata(importance=importance_), **kw)


async def contents(memory: Any, user: str = "pa", **kw: Any) -> list[str]:
    q = MemoryQuery(user_id=user, limit=100, **kw)
    return sorted(e.content for e in await memory.retrieve_memories(q))


async def test_policy_archives_expired_stale_and_over_cap_but_never_pinned(memory: Any) -> None:
    """Expired, low-scoring old and over-cap memories are archived with a reason; pinned
    ones stay whatever their score; everything is still stored."""
    keep = [mem("fresh and important", days=1), mem("also fresh", days=2)]
    stale = mem("stale trivia", days=400, importance_=0.0)
    pinned = mem("pinned trivia", days=400, importance_=0.0)
    gone = mem("old appointment", days=3, expires_at=NOW - timedelta(days=1))
    for e in [*keep, stale, pinned, gone]:
        await memory.store_memory(e)
    await importance.pin(memory, str(pinned.id))
    prune = Prune(PruneConfig(min_age_days=30, min_score=0.2, max_per_user=1),
                  clock=lambda: NOW)
    assert isinstance(prune, Step)
    dry = await prune.run(memory, "pa", dry_run=True)
    why = {d["content"]: d["why"] for d in dry.details}
    assert why["old appointment"].startswith("expired at")
    assert why["stale trivia"].startswith("score")
    assert why["also fresh"].startswith("over the cap of 1")
    assert "pinned trivia" not in why and "fresh and important" not in why
    assert len(await memory.retrieve_memories(MemoryQuery(user_id="pa", limit=100,
                                                          include_expired=True))) == 5
    done = await prune.run(memory, "pa")
    assert done.archived == 3 and done.deleted == 0
    everything = await contents(memory, include_expired=True)
    assert len(everything) == 5
    archived = await memory.get_memory(str(stale.id))
    assert archived.metadata.custom_fields[lt.ARCHIVED_AT] == NOW.isoformat()
    rerun = await prune.run(memory, "pa")
    assert rerun.archived == 0  # nothing new to take


async def test_archived_memories_leave_retrieval_and_statistics_and_can_come_back(
    memory: Any,
) -> None:
    """An archived memory is out of default retrieval and counts; restore brings it back
    with its own expiry."""
    e = mem("low value note", days=100, importance_=0.0,
            expires_at=datetime(2099, 1, 1, tzinfo=timezone.utc))
    await memory.store_memory(e)
    await Prune(PruneConfig(min_age_days=10, min_score=0.5)).run(memory, "pa")
    assert await contents(memory) == []
    assert (await memory.get_statistics("pa"))["memories"] == 0
    back = await restore(memory, str(e.id))
    assert back.expires_at == datetime(2099, 1, 1, tzinfo=timezone.utc)
    assert await contents(memory) == ["low value note"]
    assert (await memory.get_statistics("pa"))["memories"] == 1
    with pytest.raises(InvalidInput, match="not archived"):
        await restore(memory, str(e.id))
    with pytest.raises(NotFound):
        await restore(memory, "00000000-0000-0000-0000-000000000000")


async def test_delete_mode_deletes_only_when_asked_and_never_pinned(memory: Any) -> None:
    """mode: delete removes what the policy takes; a pinned memory is kept."""
    doomed = mem("doomed", user="pd", expires_at=NOW - timedelta(hours=1))
    pinned = mem("pinned", user="pd", expires_at=NOW - timedelta(hours=1))
    for e in (doomed, pinned):
        await memory.store_memory(e)
    await importance.pin(memory, str(pinned.id))
    report = await Prune(PruneConfig(mode="delete"), clock=lambda: NOW).run(memory, "pd")
    assert report.deleted == 1
    assert await memory.get_memory(str(doomed.id)) is None
    assert await memory.get_memory(str(pinned.id)) is not None


def test_memory_steps_follow_the_lifecycle_config() -> None:
    """The runner's memory steps: consolidate only with an LLM, prune with the policy."""
    from bruno_memory.config.lifecycle import LifecycleConfig
    from bruno_memory.managers.lifecycle.runner import make_steps
    from bruno_memory.testing.llm import RecordingLLM

    cfg = LifecycleConfig.model_validate({"prune": {"mode": "delete", "max_per_user": 9}})
    only = make_steps(cfg, ["prune"])
    assert [s.name for s in only] == ["prune"]
    assert isinstance(only[0], Prune) and only[0].policy.max_per_user == 9
    both = make_steps(cfg, ["consolidate", "prune"], llm=RecordingLLM(), batch=5)
    assert [s.name for s in both] == ["consolidate", "prune"]
    assert all(isinstance(s, Step) for s in both)
    with pytest.raises(InvalidInput, match="llm="):
        make_steps(cfg, ["consolidate"])
