"""Write-behind over a real SQLite tier: queueing, coalescing, batching, backpressure,
draining, dead letters, metrics and read-your-writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.config.models import WriteBehindConfig
from bruno_memory.core.errors import Backpressure, CorruptRecord, TierUnavailable
from bruno_memory.core.ops import (
    EMPTY,
    ClaimConversation,
    ClearHistory,
    Delete,
    Key,
    PurgeUser,
    Put,
    WriteOp,
    coalesce,
)
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.testing.faults import FlakyTier
from bruno_memory.testing.tier_contract import msg
from bruno_memory.tiers.sql.sqlite import SQLiteConfig, SQLiteTier

SLOW = {"interval": "1h"}  # nothing flushes on its own: only flush() and full batches


class Recording(PolicyTier):
    """Remembers every batch the tier was given."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.batches: list[list[WriteOp]] = []

    async def write(self, ops: Sequence[WriteOp]) -> None:
        self.batches.append(list(ops))
        await self.inner.write(ops)


def memory(text: str = "likes jazz", user: str = "u1", **kw: Any) -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.LONG_TERM, user_id=user, **kw)


def mput(entry: MemoryEntry) -> Put:
    return Put(Key("memory", str(entry.id)), entry)


class Rig:
    """A write-behind over a flaky, recording SQLite tier."""

    def __init__(self, tmp: Path, **cfg: Any) -> None:
        self.sqlite = SQLiteTier(SQLiteConfig(path=str(tmp / "d.db")))
        self.flaky = FlakyTier(self.sqlite)
        self.rec = Recording(self.flaky)
        self.wb = WriteBehind(self.rec, WriteBehindConfig(**cfg))

    async def durable(self, entry: MemoryEntry) -> Any:
        key = Key("memory", str(entry.id))
        return (await self.sqlite.get([key]))[key]


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A write-behind rig; ``parametrize('rig', [{...}], indirect=True)`` configures it."""
    r = Rig(tmp_path, **getattr(request, "param", SLOW))
    await r.wb.open()
    yield r
    r.flaky.heal()
    await r.wb.aclose()


async def test_write_is_acknowledged_before_the_tier_has_it_and_flush_lands_it(rig: Rig) -> None:
    """A queued write is not in the tier until flushed; flush() applies it."""
    entry = memory()
    await rig.wb.write([mput(entry)])
    assert await rig.durable(entry) is EMPTY
    await rig.wb.flush()
    assert await rig.durable(entry) == entry


async def test_ops_on_one_key_coalesce_last_write_wins_and_a_delete_counts(rig: Rig) -> None:
    """Three writes to one key reach the tier as one op: the last; a later delete wins."""
    a, b = memory("v1"), memory("v2")
    b = b.model_copy(update={"id": a.id})
    other = memory("other")
    await rig.wb.write([mput(a)])
    await rig.wb.write([mput(other)])
    await rig.wb.write([mput(b)])
    await rig.wb.flush()
    assert [len(batch) for batch in rig.rec.batches] == [2]
    assert await rig.durable(a) == b
    await rig.wb.write([mput(a)])
    await rig.wb.write([Delete(Key("memory", str(a.id)))])
    await rig.wb.flush()
    assert [type(op).__name__ for op in rig.rec.batches[-1]] == ["Delete"]
    assert await rig.durable(a) is EMPTY


async def test_a_queued_claim_is_read_before_it_lands_and_never_coalesced_across(
    rig: Rig,
) -> None:
    """Messages stored before a claim are the claimer's in reads at once (window and by
    id); a later put stays after the claim, and a purge of the claimer then hides them."""
    early = [msg("c", i, user=None) for i in range(2)]  # type: ignore[arg-type]
    later = msg("c", 5, user="carol")
    ops: list[WriteOp] = [*(Put(Key("message", r.id), r) for r in early),
                          ClaimConversation("c", "carol"), Put(Key("message", later.id), later)]
    assert [type(op).__name__ for op in coalesce(ops)] == ["Put", "Put", "ClaimConversation",
                                                             "Put"]
    await rig.wb.write(ops)
    window = await rig.wb.window("c", None)
    assert [r.user_id for r in window] == ["carol"] * 3  # type: ignore[union-attr]
    got = await rig.wb.get([Key("message", early[0].id)])
    assert got[Key("message", early[0].id)].user_id == "carol"  # type: ignore[union-attr]
    await rig.wb.flush()
    landed = await rig.sqlite.window("c", None)
    assert [r.user_id for r in landed] == ["carol"] * 3
    await rig.wb.write([PurgeUser("carol")])  # an erasure: acknowledged once applied
    assert await rig.sqlite.window("c", None) == []


@pytest.mark.parametrize("rig", [{"interval": "1h", "batch_size": 10}], indirect=True)
async def test_batches_are_bounded_by_size(rig: Rig) -> None:
    """35 queued ops reach the tier in batches of at most 10."""
    entries = [memory(f"m{i}") for i in range(35)]
    for e in entries:
        await rig.wb.write([mput(e)])
    await rig.wb.flush()
    assert [len(b) for b in rig.rec.batches] == [10, 10, 10, 5]
    assert [await rig.durable(e) for e in entries] == entries


@pytest.mark.parametrize("rig", [{"interval": "20ms"}], indirect=True)
async def test_a_batch_is_flushed_once_its_oldest_op_waited_the_interval(rig: Rig) -> None:
    """Without any flush() call, a lone write reaches the tier after the interval."""
    entry = memory()
    await rig.wb.write([mput(entry)])
    for _ in range(500):
        if await rig.durable(entry) != EMPTY:
            break
        await asyncio.sleep(0.01)
    assert await rig.durable(entry) == entry


@pytest.mark.parametrize(
    "rig", [{"max_pending": 5, "when_full": "reject", "backoff": "1h", **SLOW}], indirect=True)
async def test_a_full_queue_rejects_with_backpressure(rig: Rig) -> None:
    """With when_full: reject, the write past max_pending raises Backpressure at once."""
    for i in range(5):
        await rig.wb.write([mput(memory(f"m{i}"))])
    with pytest.raises(Backpressure, match="queue is full"):
        await rig.wb.write([mput(memory("one too many"))])
    assert rig.wb.metrics()["write_behind"]["rejected"] == 1


@pytest.mark.parametrize(
    "rig", [{"max_pending": 3, "block_timeout": "100ms", "backoff": "10ms", **SLOW}],
    indirect=True)
async def test_a_full_queue_blocks_then_times_out_or_proceeds_when_room_is_made(rig: Rig) -> None:
    """A blocked write fails with Backpressure after block_timeout, and proceeds once drained."""
    rig.flaky.fail(only=["write"])
    for i in range(3):
        await rig.wb.write([mput(memory(f"m{i}"))])
    with pytest.raises(Backpressure, match="stayed full"):
        await rig.wb.write([mput(memory("blocked"))])
    blocked = asyncio.create_task(rig.wb.write([mput(memory("waits"))]))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    rig.flaky.heal()
    await asyncio.wait_for(blocked, 5)


async def test_close_drains_every_queued_write(tmp_path: Path) -> None:
    """Closing a write-behind applies everything queued before returning."""
    r = Rig(tmp_path, **SLOW)
    await r.wb.open()
    entries = [memory(f"m{i}") for i in range(200)]
    await asyncio.gather(*(r.wb.write([mput(e)]) for e in entries))
    await r.wb.aclose()
    again = SQLiteTier(SQLiteConfig(path=str(tmp_path / "d.db")))
    await again.open()
    keys = [Key("memory", str(e.id)) for e in entries]
    assert list((await again.get(keys)).values()) == entries
    await again.aclose()


@pytest.mark.parametrize("rig", [{"max_attempts": 2, "backoff": "1ms", **SLOW}], indirect=True)
async def test_an_op_that_keeps_failing_is_dead_lettered_without_blocking_other_keys(
    rig: Rig,
) -> None:
    """An op the tier rejects goes to the dead letters with its error; the others land."""
    bad, good = memory("bad"), memory("good")

    class Picky(PolicyTier):
        async def write(self, ops: Sequence[WriteOp]) -> None:
            if any(getattr(op, "key", None) == Key("memory", str(bad.id)) for op in ops):
                raise CorruptRecord("cannot store this one", tier="durable", op="write")
            await self.inner.write(ops)

    rig.rec.inner = Picky(rig.flaky)
    await rig.wb.write([mput(bad)])
    await rig.wb.write([mput(good)])
    await rig.wb.flush()
    assert await rig.durable(good) == good and await rig.durable(bad) is EMPTY
    [dead] = await rig.wb.dead_letters()
    assert "cannot store this one" in dead.error
    assert rig.wb.metrics()["write_behind"]["dead_letters"] == 1


@pytest.mark.parametrize("rig", [{"backoff": "5ms", **SLOW}], indirect=True)
async def test_an_unavailable_tier_keeps_writes_queued_until_it_returns(rig: Rig) -> None:
    """While the tier is down writes still queue; they land when it is back."""
    rig.flaky.fail(only=["write"])
    entries = [memory(f"m{i}") for i in range(20)]
    for e in entries:
        await rig.wb.write([mput(e)])
    with pytest.raises(TierUnavailable, match="still queued"):
        await rig.wb._drain_through(rig.wb._log.last_seq, 0.1)
    metrics = rig.wb.metrics()["write_behind"]
    assert metrics["down"] and metrics["failures"] >= 1 and metrics["queue_depth"] == 20
    rig.flaky.heal()
    await rig.wb.flush()
    assert [await rig.durable(e) for e in entries] == entries


async def test_on_error_fail_refuses_writes_while_the_tier_is_down(tmp_path: Path) -> None:
    """With on_error: fail, a write-behind tier that failed a flush refuses new writes."""
    r = Rig(tmp_path, backoff="1h", **SLOW)
    r.wb = WriteBehind(r.rec, WriteBehindConfig(backoff="1h", **SLOW), on_error="fail")
    await r.wb.open()
    r.flaky.fail(only=["write"])
    await r.wb.write([mput(memory())])
    with pytest.raises(TierUnavailable):
        await r.wb._drain_through(r.wb._log.last_seq, 0.1)
    with pytest.raises(TierUnavailable, match="on_error: fail"):
        await r.wb.write([mput(memory("refused"))])
    r.flaky.heal()
    await r.wb._stop()


async def test_metrics_report_depth_age_latency_lag_and_failures(rig: Rig) -> None:
    """metrics() has queue depth, oldest pending age, flush latency and lag, failures."""
    await rig.wb.write([mput(memory())])
    before = rig.wb.metrics()["write_behind"]
    assert before["queue_depth"] == 1 and before["oldest_pending_age_s"] >= 0
    await rig.wb.flush()
    after = rig.wb.metrics()["write_behind"]
    assert after["queue_depth"] == 0 and after["flushed_ops"] == 1 and after["failures"] == 0
    assert set(after["flush_latency_ms"]) == {"p50", "p99", "max"}
    assert after["flush_lag_ms"]["max"] >= 0


# -- read-your-writes -------------------------------------------------------------------


async def test_pending_puts_and_deletes_are_visible_to_gets(rig: Rig) -> None:
    """A pending put is read back; a delete hides the stored record, and (an erasure) is
    acknowledged only once applied, with what was queued before it."""
    kept, gone = memory("kept"), memory("gone")
    await rig.sqlite.write([mput(gone)])
    await rig.wb.write([mput(kept)])
    keys = [Key("memory", str(kept.id)), Key("memory", str(gone.id))]
    assert await rig.wb.get(keys) == {keys[0]: kept, keys[1]: gone}
    assert await rig.durable(kept) is EMPTY  # still pending
    await rig.wb.write([Delete(Key("memory", str(gone.id)))])
    assert await rig.wb.get(keys) == {keys[0]: kept, keys[1]: EMPTY}
    assert await rig.durable(gone) is EMPTY and await rig.durable(kept) == kept


async def test_pending_clears_and_purges_hide_stored_records(rig: Rig) -> None:
    """Stored records of a pending purge or clear are not served."""
    entry = memory(user="u9")
    system = msg("c", 0, role=MessageRole.SYSTEM)
    await rig.sqlite.write([mput(entry), Put(Key("message", system.id), system),
                            Put(Key("message", "x"), msg("c", 1))])
    await rig.wb.write([PurgeUser("u9"), ClearHistory("c", keep_system=True)])
    key = Key("memory", str(entry.id))
    assert (await rig.wb.get([key]))[key] is EMPTY
    assert [r.id for r in await rig.wb.window("c", 5)] == [system.id]


async def test_pending_messages_are_in_windows_in_order(rig: Rig) -> None:
    """A window merges stored and pending messages, newest last, and honours the limit."""
    stored = [msg("c", i) for i in (1, 3)]
    pending = [msg("c", i) for i in (2, 4)]
    await rig.sqlite.write([Put(Key("message", r.id), r) for r in stored])
    await rig.wb.write([Put(Key("message", r.id), r) for r in pending])
    in_order = [stored[0].id, pending[0].id, stored[1].id, pending[1].id]
    assert [r.id for r in await rig.wb.window("c", 3)] == in_order[1:]
    assert [r.id for r in await rig.wb.window("c", None)] == in_order


async def test_a_stack_reads_its_pending_writes_everywhere(tmp_path: Path) -> None:
    """Through a stack: context, search, memories, sessions and statistics see pending writes."""
    memory_ = await build_memory({"tiers": [{"kind": "lru"}, {
        "name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db"),
        "write": "write-behind", "write_behind": SLOW}]})
    try:
        session = await memory_.create_session("ann")
        await memory_.store_message(Message(role=MessageRole.USER, content="ann rows kayaks"),
                                    session.conversation_id)
        entry = memory("ann likes kayaking", user="ann")
        await memory_.store_memory(entry)
        ctx = await memory_.get_context("ann", session.session_id)
        assert [m.content for m in ctx.messages] == ["ann rows kayaks"]
        assert [m.content for m in await memory_.search_messages("kayaks", "ann")] == [
            "ann rows kayaks"]
        assert [e.id for e in await memory_.retrieve_memories(MemoryQuery(user_id="ann"))] == [
            entry.id]
        await memory_.delete_memory(str(entry.id))
        assert await memory_.get_memory(str(entry.id)) is None
        assert (await memory_.get_statistics("ann"))["total_messages"] == 1
    finally:
        await memory_.close()


async def test_a_cache_miss_never_fills_the_cache_with_data_older_than_a_pending_write(
    tmp_path: Path,
) -> None:
    """With v1 stored and v2 pending, a read through an empty cache returns and caches v2."""
    memory_ = await build_memory({"tiers": [{"kind": "lru"}, {
        "name": "durable", "kind": "sqlite", "path": str(tmp_path / "m.db"),
        "write": "write-behind", "write_behind": SLOW}]})
    try:
        v1 = memory("v1", user="ann")
        await memory_.store_memory(v1)
        await memory_.flush()
        v2 = v1.model_copy(update={"content": "v2"})
        await memory_.store_memory(v2)
        lru = memory_.tiers[0]
        await lru.clear()
        assert (await memory_.get_memory(str(v1.id))).content == "v2"
        key = Key("memory", str(v1.id))
        assert (await lru.get([key]))[key].content == "v2"
    finally:
        await memory_.close()
