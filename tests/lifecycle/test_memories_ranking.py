"""Importance and decay in retrieval: the salience ranking, its explanation in the context,
and recall counts written in batches, never one write per read."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType

from bruno_memory import build_memory
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.salience import Weights, salience
from bruno_memory.managers.context import ContextBuilder
from bruno_memory.managers.lifecycle import importance
from tests.factories import STACKS, opened

memory = opened("memory", [s for s in STACKS if s.id in ("lru->sqlite", "lru->redis->postgres")],
                "A cached stack over SQLite, and Redis over PostgreSQL.")

NOW = datetime.now(timezone.utc)


def mem(text: str, user: str = "ra", *, hours: float = 0, importance_: float = 0.5,
        recalls: int = 0) -> MemoryEntry:
    at = NOW - timedelta(hours=hours)
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user, created_at=at,
                       updated_at=at, last_accessed=at,
                       metadata=MemoryMetadata(importance=importance_, access_count=recalls))


def test_the_score_follows_its_documented_parts() -> None:
    """Recency decays 0.995 per hour, strength is exp(-t/S) with S = 1 + recalls days,
    pinned importance is maximal, and the parts are weighted."""
    e = mem("neutral", hours=100, recalls=1)
    s = salience(e, NOW, Weights(), relevance=0.5)
    assert abs(s.recency - 0.995**100) < 1e-6
    assert abs(s.strength - 2.718281828 ** (-100 / 48)) < 1e-6
    assert abs(s.importance - 0.7 * 0.5) < 1e-9
    expected = (0.5 * 0.5 + 0.3 * s.importance + 0.15 * s.recency + 0.05 * s.strength) / 1.0
    assert abs(s.score - expected) < 1e-9
    e.metadata.custom_fields["pinned"] = True
    assert salience(e, NOW).importance == 1.0
    assert "relevance" not in salience(e, NOW).explain()
    assert "pinned" in salience(e, NOW).explain()


async def test_retrieval_ranks_recent_pinned_and_charged_memories_higher(memory: Any) -> None:
    """Without a query: fresher beats older, a pinned one beats a younger unpinned one, and
    of two equal memories the emotionally charged one comes first."""
    old, new, pinned = mem("old note", hours=24 * 30), mem("new note", hours=1), \
        mem("pinned note", hours=24 * 60)
    calm, charged = mem("The bus is at nine", hours=5), mem("I am terrified of dogs", hours=5)
    for e in (old, new, pinned, calm, charged):
        await memory.store_memory(e)
    await importance.pin(memory, str(pinned.id))
    order = [e.content for e in await memory.retrieve_memories(MemoryQuery(user_id="ra"))]
    assert order.index("new note") < order.index("old note")
    assert order.index("pinned note") < order.index("old note")
    assert order.index("I am terrified of dogs") < order.index("The bus is at nine")
    only = await memory.retrieve_memories(MemoryQuery(user_id="ra", query_text="dogs"))
    assert only[0].content == "I am terrified of dogs"


async def test_the_context_explains_each_memory_score(memory: Any) -> None:
    """ctx.explain() shows the salience breakdown of every memory it took."""
    await memory.get_context("rb", "rb-chat")
    await memory.store_memory(mem("Loves sailing", user="rb", hours=2))
    ctx = await ContextBuilder(memory).build("rb", "rb-chat", query="sailing")
    lines = [line for line in ctx.explain().splitlines() if line.startswith("memories")]
    assert any("recency" in line and "strength" in line and "importance" in line
               for line in lines)


async def test_recalls_are_counted_in_batches_not_per_read(memory: Any) -> None:
    """Reads write nothing; a flush writes each recalled memory once with all its recalls."""
    e = mem("counted", user="rc", hours=3)
    await memory.store_memory(e)
    for _ in range(3):
        assert [m.content for m in await memory.retrieve_memories(MemoryQuery(user_id="rc"))] \
            == ["counted"]
    assert (await memory.get_memory(str(e.id))).metadata.access_count == 0
    await memory.flush()
    after = await memory.get_memory(str(e.id))
    assert after.metadata.access_count == 3
    assert after.last_accessed.replace(tzinfo=timezone.utc) > NOW - timedelta(minutes=5)
    assert after.content == "counted" and after.metadata.importance == 0.5


async def test_a_pending_recall_never_brings_back_a_deleted_memory(memory: Any) -> None:
    """Deleting (or forgetting the user) drops the pending counts."""
    e = mem("ephemeral", user="rd")
    await memory.store_memory(e)
    await memory.retrieve_memories(MemoryQuery(user_id="rd"))
    await memory.delete_memory(str(e.id))
    await memory.flush()
    assert await memory.get_memory(str(e.id)) is None
    f = mem("forgotten", user="re")
    await memory.store_memory(f)
    await memory.retrieve_memories(MemoryQuery(user_id="re"))
    await memory.forget_user("re")
    await memory.flush()
    assert await memory.get_memory(str(f.id)) is None


async def test_close_writes_the_pending_recalls(tmp_path: Path) -> None:
    """Counts pending at close are written before the stack closes."""
    cfg = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}],
           "lifecycle": {"recalls": {"interval": 3600}}}
    e = mem("kept count", user="rf")
    async with await build_memory(cfg) as m:
        await m.store_memory(e)
        await m.retrieve_memories(MemoryQuery(user_id="rf"))
        await m.retrieve_memories(MemoryQuery(user_id="rf"))
    async with await build_memory(cfg) as m:
        assert (await m.get_memory(str(e.id))).metadata.access_count == 2


async def test_recalls_are_written_once_max_pending_memories_wait(tmp_path: Path) -> None:
    """With max_pending 1, the background writer lands a recall without any flush call."""
    cfg = {"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}],
           "lifecycle": {"recalls": {"interval": 3600, "max_pending": 1}}}
    e = mem("eager", user="rg")
    async with await build_memory(cfg) as m:
        await m.store_memory(e)
        await m.retrieve_memories(MemoryQuery(user_id="rg"))
        for _ in range(500):  # bounded wait for the background write, no timing assert
            if (await m.get_memory(str(e.id))).metadata.access_count == 1:
                break
            await asyncio.sleep(0.01)
        assert (await m.get_memory(str(e.id))).metadata.access_count == 1


async def test_history_needs_a_datetime(memory: Any) -> None:
    """as_of must be a datetime: anything else is refused with what to pass."""
    with pytest.raises(InvalidInput, match="as_of must be a datetime"):
        await memory.query_memories(MemoryQuery(user_id="rh"), as_of="yesterday")


async def test_a_flush_writes_copies_and_leaves_the_read_entry_as_it_was() -> None:
    """The counts land on copies: the entry the flush read is not changed in place."""
    from bruno_memory.core.ops import Key
    from bruno_memory.stack.recalls import Recalls

    stored = mem("shared", user="rs", hours=2, recalls=4)
    stored.metadata.tags = ["kept"]
    written: list[MemoryEntry] = []

    async def read(keys: list[Key]) -> dict[Key, Any]:
        return {k: stored for k in keys}

    async def write(out: list[MemoryEntry]) -> None:
        written.extend(out)

    recalls = Recalls(read, write, interval=3600)
    recalls.note([stored, stored], NOW.timestamp())
    await recalls.aclose()
    [out] = written
    assert out.metadata.access_count == 6 and stored.metadata.access_count == 4
    assert out.metadata is not stored.metadata and out.metadata.tags == ["kept"]
    assert out.last_accessed.replace(tzinfo=timezone.utc) > stored.last_accessed
    assert out.content == "shared" and out.id == stored.id


async def test_a_large_flush_is_written_in_chunks_and_a_failed_chunk_counts_once() -> None:
    """1,201 pending memories go out as writes of at most ``CHUNK``; when the second write
    fails, only its memories and the third's wait for the next flush (the first's counts
    are not added twice), and a memory written since the read keeps its counts for later."""
    from bruno_memory.core.ops import Key
    from bruno_memory.stack.recalls import CHUNK, Recalls

    stored = {str(e.id): e for e in (mem(f"m{i}", user="rc") for i in range(2 * CHUNK + 201))}
    writes: list[list[MemoryEntry]] = []
    fail_second = True

    async def read(keys: list[Key]) -> dict[Key, Any]:
        return {k: stored[k.id] for k in keys}

    async def write(out: list[MemoryEntry]) -> None:
        nonlocal fail_second
        if len(writes) == 1 and fail_second:
            fail_second = False
            recalls.written([str(e.id) for e in writes[0]][:1])  # too late: already out
            raise RuntimeError("the store went away")
        writes.append(out)
        for e in out:
            stored[str(e.id)] = e

    recalls = Recalls(read, write, interval=3600)
    recalls.note(list(stored.values()), NOW.timestamp())
    with pytest.raises(RuntimeError):
        await recalls.flush()
    assert [len(w) for w in writes] == [CHUNK]
    assert len(recalls) == CHUNK + 201  # the first chunk's counts are not pending again
    await recalls.flush()
    assert [len(w) for w in writes] == [CHUNK, CHUNK, 201]
    assert all(e.metadata.access_count == 1 for e in stored.values())

    late = next(iter(stored))
    writes.clear()
    recalls.note([*list(stored.values())[1 : CHUNK + 5], stored[late]], NOW.timestamp())

    async def write_marking(out: list[MemoryEntry]) -> None:  # the app writes `late` meanwhile
        recalls.written([late])
        await write(out)

    recalls._write = write_marking
    await recalls.flush()
    assert late not in {str(e.id) for w in writes for e in w} and len(recalls) == 1
