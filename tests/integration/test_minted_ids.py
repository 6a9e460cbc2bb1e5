"""Minted ids on a write-behind stack: a write whose id the model made asks the
authoritative tier nothing before it is acknowledged; a chosen id is looked up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.ops import Key
from bruno_memory.stack.engine import Engine
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
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[list[Key]]:
    """The keys of every look-up writers make in the authoritative tier (the real one)."""
    asked: list[list[Key]] = []
    real = Engine.authoritative

    async def spy(self: Engine, keys: Sequence[Key]) -> Any:
        asked.append(list(keys))
        return await real(self, keys)

    monkeypatch.setattr(Engine, "authoritative", spy)
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
