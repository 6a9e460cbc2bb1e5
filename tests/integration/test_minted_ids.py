"""Minted ids on a write-behind stack: a write whose id the model made asks the
authoritative tier nothing before it is acknowledged; a chosen id is looked up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Key
from bruno_memory.stack.minted import Minted
from tests.factories.postgres import production_stack

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
async def production(
    redis_url: str, postgres_dsn: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    async with production_stack(monkeypatch, redis_url, postgres_dsn, namespace) as memory:
        yield memory
        await memory.drop()  # the shared Redis: nothing of this namespace stays


@pytest.fixture
async def lookups(production: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[Key]]:
    """The keys of every look-up of messages and memories in the authoritative tier (the
    real one): what writers check before they write (other reads, sessions and users,
    go there too)."""
    asked: list[list[Key]] = []
    durable = (await production._ready()).routes.durable
    real = durable.get

    async def spy(keys: Sequence[Key]) -> Any:
        if any(k.ns in ("message", "memory") for k in keys):
            asked.append(list(keys))
        return await real(keys)

    monkeypatch.setattr(durable, "get", spy)
    return asked


async def test_minted_ids_are_written_without_a_look_up(
    production: Any, lookups: list[list[Key]]
) -> None:
    conv = (await production.create_session("u1")).conversation_id
    minted = Message(role=MessageRole.USER, content="made here")
    await production.store_message(minted, conv)
    await production.store_messages(
        [Message(role=MessageRole.USER, content=f"batch {i}") for i in range(3)], conv)
    await production.store_memory(
        MemoryEntry(content="likes tea", memory_type=MemoryType.FACT, user_id="u1"))
    assert lookups == []
    chosen = Message(id=uuid.uuid4(), role=MessageRole.USER, content="id given")
    await production.store_messages([chosen, minted], conv)
    assert lookups == [[Key("message", str(chosen.id))]]  # the minted one still needs none
    assert len(await production.retrieve_messages(conv)) == 5


def test_the_window_of_remembered_places_is_bounded() -> None:
    """The oldest place is forgotten first: that id then passes as new."""
    minted = Minted(size=2)
    first, second, third = (Message(role=MessageRole.USER, content=str(i)) for i in range(3))
    assert minted.vouches(first, str(first.id), "a")
    assert minted.vouches(second, str(second.id), "a")
    assert not minted.vouches(first, str(first.id), "b")  # seen at another place: check it
    assert minted.vouches(third, str(third.id), "a")  # evicts the first
    assert minted.vouches(first, str(first.id), "b")
    given = Message(id=uuid.uuid4(), role=MessageRole.USER, content="given")
    assert not minted.vouches(given, str(given.id), "a")


async def test_concurrent_chosen_ids_are_checked_a_batch_at_a_time(
    production: Any, lookups: list[list[Key]]
) -> None:
    """Fifty writers with ids of their own: their ids are looked up together, a batch at
    a time (not once per write); the one reusing another conversation's id and the
    second of two taking one fresh id are refused alone; every other write lands."""
    ann = (await production.create_session("ann")).conversation_id
    bob = (await production.create_session("bob")).conversation_id
    taken, fresh = uuid.uuid4(), uuid.uuid4()
    await production.store_message(Message(id=taken, role=MessageRole.USER, content="ann's"), ann)
    lookups.clear()
    engine = await production._ready()
    before = engine.write_metrics()["batches"]

    async def store(i: int) -> None:
        mid = taken if i == 10 else fresh if i in (20, 21) else uuid.uuid4()
        conv = ann if i == 20 else bob
        await production.store_message(
            Message(id=mid, role=MessageRole.USER, content=f"m{i}"), conv)

    results = await asyncio.gather(*(store(i) for i in range(50)), return_exceptions=True)
    refused = {i for i, r in enumerate(results) if r is not None}
    assert refused == {10, 21} and all(isinstance(results[i], InvalidInput) for i in refused)
    batches = engine.write_metrics()["batches"] - before
    assert len(lookups) <= batches < 50
    assert sum(len(keys) for keys in lookups) >= 49  # every chosen id was looked at
    got = {m.content for m in await production.retrieve_messages(bob)}
    assert got == {f"m{i}" for i in range(50)} - {"m10", "m20", "m21"}
    assert {m.content for m in await production.retrieve_messages(ann)} == {"ann's", "m20"}
