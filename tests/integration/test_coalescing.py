"""Write coalescing (``stack.coalescing``): concurrent writes through a stack applied as one
engine write, a refused one failing alone.

Real SQLite files and a real PostgreSQL server; batches are seen through the engine's
``write_metrics()`` counters, never through timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import WriteOp
from bruno_memory.stack.coalescing import Coalescer
from bruno_memory.testing.tier_contract import msg, put
from tests.factories import embedded, postgres

STACKS = [f for f in (*embedded.STACKS, *postgres.STACKS) if f.id in ("lru->sqlite", "postgres")]


@pytest.fixture(params=[pytest.param(f, id=f.id, marks=f.marks) for f in STACKS])
async def stack(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An opened write-through stack over SQLite (under an LRU) or PostgreSQL."""
    async with request.param.open(request, namespace, tmp_path) as memory:
        yield memory


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
