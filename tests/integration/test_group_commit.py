"""Group commit on the durable SQL tiers: concurrent writes gathered into one transaction;
and write coalescing above them (``stack.coalescing``): one engine write for many.

Real SQLite files and a real PostgreSQL server; no timing is asserted. Batches are seen
through the tier's ``group_commit_metrics()`` counters.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryType
from bruno_core.models.message import Message, MessageRole
from bruno_core.utils.exceptions import MemoryError as CoreMemoryError

from bruno_memory.build import create_tier
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import InvalidInput, TierError, TierUnavailable
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.ops import Key, Put, WriteOp
from bruno_memory.core.records import MessageRecord
from bruno_memory.stack.coalescing import Coalescer
from bruno_memory.testing.tier_contract import msg, put
from tests.factories import embedded, postgres

DURABLE = [f for f in (*embedded.TIERS, *postgres.TIERS) if f.id in ("sqlite", "postgres")]
STACKS = [f for f in (*embedded.STACKS, *postgres.STACKS) if f.id in ("lru->sqlite", "postgres")]
POISON = "poison"


@pytest.fixture(params=[pytest.param(f, id=f.id, marks=f.marks) for f in DURABLE])
async def durable(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An opened SQLite or PostgreSQL tier in a namespace of its own."""
    async with request.param.open(request, namespace, tmp_path) as tier:
        yield tier


@pytest.fixture(params=[pytest.param(f, id=f.id, marks=f.marks) for f in STACKS])
async def stack(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An opened stack whose durable tier is SQLite (under an LRU) or PostgreSQL."""
    async with request.param.open(request, namespace, tmp_path) as memory:
        yield memory


async def sibling(tier: Any) -> Any:
    """Another opened tier on the same database (file or schema) as ``tier``."""
    other = create_tier(tier.config, tier.context)
    await other.open()
    return other


async def refuse_poison(tier: Any) -> None:
    """Make the database itself refuse messages whose text holds ``POISON`` (a real
    constraint violation, raised inside the tier's transaction)."""
    if tier.config.kind == "sqlite":
        with sqlite3.connect(tier.config.path) as conn:
            conn.execute(
                f"CREATE TRIGGER refuse_poison BEFORE INSERT ON messages "
                f"WHEN NEW.content LIKE '%{POISON}%' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned message refused'); END"
            )
        conn.close()
        return
    conn = await asyncpg.connect(tier.config.dsn.get_secret_value())
    try:
        await conn.execute(
            f'ALTER TABLE "{tier.schema}".messages ADD CONSTRAINT refuse_poison '
            f"CHECK (content NOT LIKE '%{POISON}%')"
        )
    finally:
        await conn.close()


async def contents(tier: Any, conv: str) -> list[str]:
    return [r.message.content for r in await tier.window(conv, None)]


def text(conv: str, i: int) -> str:
    return f"{conv} says {i}"


async def test_fifty_concurrent_writers_are_gathered_and_all_land(durable: Any) -> None:
    """50 writers, 4 writes each: all acknowledged, all stored, in fewer transactions."""

    async def writer(w: int) -> None:
        for i in range(4):
            await durable.write([put(msg(f"c{w}", i, text=text(f"c{w}", i)))])

    before = durable.group_commit_metrics()
    await asyncio.gather(*(writer(w) for w in range(50)))
    after = durable.group_commit_metrics()
    for w in range(50):
        assert await contents(durable, f"c{w}") == [text(f"c{w}", i) for i in range(4)]
    writes, batches = after["writes"] - before["writes"], after["batches"] - before["batches"]
    assert writes == 200
    assert batches < writes
    assert after["largest"] > 1 and after["failed"] == 0 and after["isolated"] == 0


async def test_concurrent_memory_writes_keep_their_tags(durable: Any) -> None:
    """Memories written together (one batch statement) come back with their own tags:
    none, one, several, with quotes, commas, braces and non-ASCII text."""
    tag_sets = [[], ["a"], ["x", "y", "z"], ['say "hi"', "a,b", "{braced}"], ["café", "日本"]]
    entries = [
        MemoryEntry(content=f"memory {i}", memory_type=MemoryType.FACT, user_id=f"u{i % 3}",
                    metadata=MemoryMetadata(tags=tag_sets[i % len(tag_sets)]))
        for i in range(40)
    ]
    keys = [Key("memory", str(e.id)) for e in entries]
    before = durable.group_commit_metrics()
    await asyncio.gather(*(durable.write([Put(k, e)]) for k, e in zip(keys, entries, strict=True)))
    after = durable.group_commit_metrics()
    found = await durable.get(keys)
    assert [found[k].metadata.tags for k in keys] == [e.metadata.tags for e in entries]
    assert after["largest"] > 1 and after["failed"] == before["failed"]


async def test_a_bad_write_fails_only_its_caller(durable: Any) -> None:
    """A write the database refuses fails its own caller with the tier's error; the other
    writes of its batch are applied one by one and land."""
    await refuse_poison(durable)
    records = [msg("c", i, text=POISON if i == 7 else text("c", i)) for i in range(20)]
    results = await asyncio.gather(
        *(durable.write([put(r)]) for r in records), return_exceptions=True
    )
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert [i for i, _ in failed] == [7]
    error = failed[0][1]
    assert isinstance(error, TierError) and isinstance(error, CoreMemoryError)
    assert not isinstance(error, TierUnavailable)
    assert error.op == "write" and "refuse" in str(error)
    assert await contents(durable, "c") == [text("c", i) for i in range(20) if i != 7]
    metrics = durable.group_commit_metrics()
    assert metrics["isolated"] >= 1 and metrics["failed"] == 1
    await durable.write([put(msg("c", 99, text="after the failure"))])  # the tier works on
    assert (await contents(durable, "c"))[-1] == "after the failure"


async def test_a_bad_write_alone_keeps_its_error(durable: Any) -> None:
    """A refused write with nobody else in its batch gets the same error, not retried."""
    await refuse_poison(durable)
    with pytest.raises(TierError, match="refuse") as caught:
        await durable.write([put(msg("c", 1, text=POISON)), put(msg("c", 2))])
    assert not isinstance(caught.value, TierUnavailable)
    assert await contents(durable, "c") == []  # the caller's write is all or nothing


def version_of(record: MessageRecord, content: str) -> MessageRecord:
    """``record`` (same id, conversation, owner) with other content."""
    message = record.message.model_copy(update={"content": content})
    return MessageRecord(message, record.conversation_id, record.user_id)


async def test_writes_to_one_key_land_in_order(durable: Any) -> None:
    """Many concurrent writes of one message: the last acknowledged is what is stored."""
    base = msg("c", 1)
    key = Key("message", base.id)
    acknowledged: list[int] = []

    async def write(i: int) -> None:
        await durable.write([Put(key, version_of(base, text("c", i)), 1_000 + i)])
        acknowledged.append(i)

    await asyncio.gather(*(write(i) for i in range(100)))
    stored = (await durable.get([key]))[key]
    assert stored.message.content == text("c", acknowledged[-1]) == text("c", 99)
    assert len(await durable.window("c", None)) == 1


async def test_versions_never_regress_under_concurrency(durable: Any) -> None:
    """Concurrent writes of one key carrying shuffled versions leave the newest version."""
    base = msg("c", 1)
    key = Key("message", base.id)
    versions = list(range(1_000, 1_100))
    random.Random(7).shuffle(versions)

    async def write(v: int) -> None:
        await durable.write([Put(key, version_of(base, f"version {v}"), v)])

    await asyncio.gather(*(write(v) for v in versions[:50]))
    await asyncio.gather(*(write(v) for v in versions[50:]))
    assert (await durable.get([key]))[key].message.content == "version 1099"


async def test_a_cancelled_writer_leaves_the_others_intact(durable: Any) -> None:
    """Writers cancelled while they wait (queued, or in a batch in flight) take nobody
    else's write with them, and the tier keeps working."""
    big = [msg("big", i) for i in range(300)]
    busy = asyncio.ensure_future(durable.write([put(r) for r in big]))  # the committer's busy
    await asyncio.sleep(0)
    records = [msg("c", i) for i in range(30)]
    writers = [asyncio.ensure_future(durable.write([put(r)])) for r in records]
    await asyncio.sleep(0)
    victims = {3, 11, 29}
    for i in victims:
        writers[i].cancel()
    late = {5, 17}
    await asyncio.sleep(0)
    for i in late:  # perhaps in flight by now: those may still land
        writers[i].cancel()
    results = await asyncio.gather(*writers, return_exceptions=True)
    await busy
    for i, result in enumerate(results):
        if i in victims | late:
            assert isinstance(result, asyncio.CancelledError) or result is None
        else:
            assert result is None
    stored = [r.id for r in await durable.window("c", None)]
    assert len(stored) == len(set(stored))  # nothing applied twice
    assert {r.id for i, r in enumerate(records) if i not in victims | late} <= set(stored)
    assert len(await durable.window("big", None)) == 300
    after = msg("c", 100)
    await durable.write([put(after)])
    assert after.id in {r.id for r in await durable.window("c", None)}


async def test_a_batch_whose_callers_all_gave_up_stops(durable: Any) -> None:
    """Cancelling every caller of the batch in flight cancels it: the tier stays usable
    and every write after it lands."""
    writers = [asyncio.ensure_future(durable.write([put(msg("c", i))])) for i in range(10)]
    await asyncio.sleep(0)
    for w in writers:
        w.cancel()
    await asyncio.gather(*writers, return_exceptions=True)
    await asyncio.gather(*(durable.write([put(msg("d", i))]) for i in range(10)))
    assert len(await durable.window("d", None)) == 10


async def test_close_drains_queued_writes(durable: Any) -> None:
    """aclose waits for every write already submitted; later writes are refused."""
    other = await sibling(durable)
    writers = [asyncio.ensure_future(other.write([put(msg("c", i))])) for i in range(50)]
    await asyncio.sleep(0)  # every writer is queued or in flight
    await other.aclose()
    assert await asyncio.gather(*writers) == [None] * 50
    assert len(await durable.window("c", None)) == 50
    with pytest.raises(TierUnavailable):
        await other.write([put(msg("c", 50))])


async def test_stack_store_message_from_fifty_tasks(stack: Any) -> None:
    """50 tasks storing through the stack: every message is there, in fewer engine writes
    (``stack.coalescing``) and fewer commits."""
    sessions = [await stack.create_session(f"user-{t}") for t in range(50)]
    words = [f"kiwi{chr(97 + t // 26)}{chr(97 + t % 26)}" for t in range(50)]  # one per task
    tier = stack.tiers[-1]
    engine = await stack._ready()
    before, asked = tier.group_commit_metrics(), engine.write_metrics()

    async def task(conv: str, word: str) -> None:
        for i in range(5):
            message = Message(role=MessageRole.USER, content=f"{word} number {i}")
            await stack.store_message(message, conv)

    pairs = list(zip(sessions, words, strict=True))
    await asyncio.gather(*(task(s.conversation_id, w) for s, w in pairs))
    after, coalesced = tier.group_commit_metrics(), engine.write_metrics()
    for s, word in pairs:
        got = await stack.retrieve_messages(s.conversation_id)
        assert [m.content for m in reversed(got)] == [f"{word} number {i}" for i in range(5)]
        found = await stack.search_messages(word, user_id=s.user_id, limit=10)
        assert sorted(m.content for m in found) == [f"{word} number {i}" for i in range(5)]
    assert coalesced["writes"] - asked["writes"] == 250
    engine_batches = coalesced["batches"] - asked["batches"]
    assert engine_batches < 250
    assert after["writes"] - before["writes"] == engine_batches  # one tier write per batch
    assert after["batches"] - before["batches"] <= engine_batches


async def test_group_commit_isolates_and_reports_with_any_apply() -> None:
    """The mechanism alone, over an apply that refuses one item: the first write leads
    alone, the rest wait and form one batch; the refused caller gets its own error, the
    batch is retried item by item, in order; the counters add up."""
    applied: list[list[int]] = []

    async def apply(items: Any) -> None:
        await asyncio.sleep(0)  # a driver call: let the other callers queue up
        if 13 in items:
            raise ValueError(f"refused {list(items)}")
        applied.append(list(items))

    group: GroupCommit[int] = GroupCommit(apply, tier="test")
    results = await asyncio.gather(*(group.submit(i) for i in range(20)), return_exceptions=True)
    assert [r for r in results if r is not None] == [results[13]]
    assert isinstance(results[13], ValueError) and str(results[13]) == "refused [13]"
    assert applied == [[i] for i in range(20) if i != 13]  # the leader, then one by one
    assert group.metrics() == {
        "writes": 20,
        "batches": 2,
        "isolated": 1,
        "failed": 1,
        "dropped": 0,
        "largest": 19,
    }
    await group.aclose()
    with pytest.raises(TierUnavailable):
        await group.submit(1)


async def test_callers_woken_together_after_a_crowded_batch_form_one_batch() -> None:
    """Writes going down a stack's tiers: once a tier has seen many callers at a time, the
    callers another tier's batch acknowledges at once form one batch there, the first one
    no longer leading alone (splitting them into more batches, a round trip each)."""
    sizes: list[int] = []

    async def apply(items: Any) -> None:
        sizes.append(len(items))
        await asyncio.sleep(0)  # a driver call

    group: GroupCommit[int] = GroupCommit(apply, tier="test")
    await asyncio.gather(*(group.submit(i) for i in range(10)))
    assert sizes == [1, 9]  # idle: the first leads alone, the rest queue behind it
    acknowledged = asyncio.Event()

    async def woken(i: int) -> None:
        await acknowledged.wait()  # as if acknowledged by one batch of the tier above
        await group.submit(i)

    writers = asyncio.gather(*(woken(i) for i in range(10)))
    await asyncio.sleep(0)
    acknowledged.set()
    await writers
    assert sizes == [1, 9, 10]
    await group.submit(10)  # one caller at a time again: it leads alone
    await group.submit(11)
    assert sizes == [1, 9, 10, 1, 1]
    assert group.metrics()["batches"] == 5


async def test_a_pipelined_group_sends_the_next_batch_before_answering_the_last() -> None:
    """``pipelined``: the next batch goes out as soon as one commits, before its callers go
    on (their next writes overlap with it); callers are taken half at a time, so two
    batches take turns; each caller's writes still land in order, one batch at a time."""
    events: list[tuple[str, Any]] = []
    flying = 0

    async def apply(items: Any) -> None:
        nonlocal flying
        flying += 1
        assert flying == 1  # one batch at a time
        events.append(("sent", [i for i, _ in items]))
        await asyncio.sleep(0)  # a driver call
        events.append(("landed", list(items)))
        flying -= 1

    group: GroupCommit[tuple[int, int]] = GroupCommit(apply, tier="test", pipelined=True)

    async def writer(i: int) -> None:
        for k in range(3):
            await group.submit((i, k))
            events.append(("answered", i))

    await asyncio.gather(*(writer(i) for i in range(20)))
    landed = [item for kind, items in events if kind == "landed" for item in items]
    for i in range(20):
        assert [k for j, k in landed if j == i] == [0, 1, 2]
    sizes = [len(items) for kind, items in events if kind == "sent"]
    assert sizes == [1, 10, 10, 10, 10, 10, 9]  # the idle tier's leader, then halves
    first_answer = events.index(("answered", 1))
    assert events[first_answer - 1][0] == "sent"  # the next batch went out first


async def test_a_lone_writer_after_a_burst_applies_its_writes_itself() -> None:
    """After a burst of concurrent writes, one caller writing alone gets back the leader's
    path: its writes are applied in its own task, with no hand-off to a committer."""
    tasks: list[asyncio.Task[Any] | None] = []

    async def apply(items: Any) -> None:
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0)  # a driver call

    group: GroupCommit[int] = GroupCommit(apply, tier="test")
    await asyncio.gather(*(group.submit(i) for i in range(10)))  # a burst: a crowded batch

    async def alone() -> asyncio.Task[Any] | None:
        for i in range(3):
            await group.submit(i)
        return asyncio.current_task()

    writer = asyncio.ensure_future(alone())
    own = await writer
    assert tasks[-2:] == [own, own]  # the first may still go through the committer


# -- write coalescing (stack.coalescing): one engine write for concurrent writes ------------


def say(text: str, **given: Any) -> Message:
    return Message(role=MessageRole.USER, content=text, **given)


async def test_a_refused_write_in_a_batch_fails_only_its_caller(stack: Any) -> None:
    """Twenty writes gathered with one that reuses another conversation's message id: that
    one is refused with its own error; the batch is applied again write by write and
    every other write lands, in its caller's order."""
    a, b = await stack.create_session("ann"), await stack.create_session("bob")
    taken = uuid.uuid4()
    await stack.store_message(say("ann's", id=taken), a.conversation_id)
    engine = await stack._ready()
    before = engine.write_metrics()

    async def store(i: int) -> None:
        if i == 10:
            await stack.store_message(say("a stolen id", id=taken), b.conversation_id)
        else:
            await stack.store_message(say(f"bob {i}"), b.conversation_id)

    results = await asyncio.gather(*(store(i) for i in range(21)), return_exceptions=True)
    assert isinstance(results[10], InvalidInput)
    assert [r for i, r in enumerate(results) if i != 10] == [None] * 20
    after = engine.write_metrics()
    assert after["batches"] - before["batches"] < 21 and after["isolated"] > before["isolated"]
    got = await stack.retrieve_messages(b.conversation_id)
    assert [m.content for m in reversed(got)] == [f"bob {i}" for i in range(21) if i != 10]
    [kept] = await stack.retrieve_messages(a.conversation_id)
    assert (kept.id, kept.content) == (taken, "ann's")


async def test_batches_overlap_round_trips_only_on_a_server(stack: Any) -> None:
    """PostgreSQL declares ``PIPELINES``: the next batch goes out while the last one's
    callers run. SQLite does not (its thread would contend with them for the GIL)."""
    engine = await stack._ready()
    on_server = Capability.PIPELINES in engine.routes.durable.capabilities
    assert on_server == (engine.routes.durable.config.kind == "postgres")
    assert engine._writes._group.pipelined == on_server
    await asyncio.gather(*(stack.store_memory(
        MemoryEntry(user_id="ann", content=f"m{i}", memory_type=MemoryType.FACT))
        for i in range(60)))
    assert len(await stack.search_memories("ann", "m1", limit=100)) >= 1
    assert engine.write_metrics()["batches"] < engine.write_metrics()["writes"]


async def test_coalesced_writes_to_one_key_land_in_order(stack: Any) -> None:
    """Concurrent upserts of one memory, gathered into batches: the last one called wins,
    as if each had been applied alone."""
    entry = MemoryEntry(user_id="ann", content="v0", memory_type=MemoryType.FACT)
    await stack.store_memory(entry)
    await asyncio.gather(*(
        stack.store_memory(entry.model_copy(update={"content": f"v{i}"})) for i in range(1, 40)
    ))
    got = await stack.get_memory(str(entry.id))
    assert got is not None and got.content == "v39"


async def test_the_coalescer_keeps_order_and_lets_a_nested_write_through() -> None:
    """The mechanism alone: writes gathered while one is applied go as one call, their ops
    and touched keys in arrival order; a write made from inside a batch goes straight
    through instead of waiting for the batch it is part of."""
    applied: list[tuple[list[Any], list[object]]] = []

    async def apply(ops: Sequence[WriteOp], touched: Sequence[object]) -> None:
        await asyncio.sleep(0)  # a driver call: let other writers queue up
        applied.append((list(ops), list(touched)))
        if any(op is nested_op for op in ops):
            return
        if ops and ops[0] is first_op:
            await asyncio.wait_for(coalescer.write([nested_op], ["nested"]), 5)

    coalescer = Coalescer(apply, name="test")
    first_op, nested_op = put(msg("c", 0)), put(msg("c", 99))
    rest = [put(msg("c", i)) for i in range(1, 6)]
    await asyncio.gather(coalescer.write([first_op], ["k0"]),
                         *(coalescer.write([op], [f"k{i}"]) for i, op in enumerate(rest, 1)))
    assert applied[0] == ([first_op], ["k0"])
    assert applied[1] == ([nested_op], ["nested"])  # from inside the first batch
    assert applied[2] == (rest, [f"k{i}" for i in range(1, 6)])  # one call, in order
    assert coalescer.metrics()["writes"] == 6 and coalescer.metrics()["batches"] == 2
    await coalescer.aclose()
