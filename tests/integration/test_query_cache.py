"""The query-result cache: results per (user, query), dropped by any write of that user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.core.errors import InvalidInput
from bruno_memory.stack.results import QueryCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


def fact(user: str, text: str) -> MemoryEntry:
    return MemoryEntry(content=text, user_id=user, memory_type=MemoryType.FACT)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def memory(tmp_path: Path, clock: Clock) -> Any:
    config = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    stack = await build_memory(config, query_cache=QueryCache(64, ttl=30, clock=clock))
    async with stack:
        yield stack


async def test_repeated_searches_are_served_from_the_cache_as_copies(memory: Any) -> None:
    conv = (await memory.create_session("ann")).conversation_id
    await memory.store_message(say("rye bread for the picnic"), conv)
    first = await memory.search("picnic bread", user_id="ann")
    first[0].item.metadata["mutated"] = True
    hits = memory.query_cache.hits
    again = await memory.search("picnic bread", user_id="ann")
    assert memory.query_cache.hits == hits + 1
    assert [h.item.content for h in again] == ["rye bread for the picnic"]
    assert "mutated" not in again[0].item.metadata
    assert await memory.search_phrase("rye bread", user_id="ann")
    assert await memory.search_phrase("rye bread", user_id="ann")
    assert memory.query_cache.hits == hits + 2


async def test_a_write_of_the_user_drops_her_results_only(memory: Any) -> None:
    ann = (await memory.create_session("ann")).conversation_id
    bob = (await memory.create_session("bob")).conversation_id
    await memory.store_message(say("picnic in the park"), ann)
    await memory.store_message(say("picnic at the lake"), bob)
    assert len(await memory.search_messages("picnic", user_id="ann")) == 1
    assert len(await memory.search_messages("picnic", user_id="bob")) == 1
    assert (await memory.get_statistics("ann"))["total_messages"] == 1

    await memory.store_message(say("another picnic"), ann)  # ann's write
    hits = memory.query_cache.hits
    assert len(await memory.search_messages("picnic", user_id="ann")) == 2
    assert (await memory.get_statistics("ann"))["total_messages"] == 2
    assert memory.query_cache.hits == hits  # both re-read
    assert len(await memory.search_messages("picnic", user_id="bob")) == 1
    assert memory.query_cache.hits == hits + 1  # bob's result survived ann's write

    await memory.clear_history(ann)
    assert await memory.search_messages("picnic", user_id="ann") == []
    await memory.forget_user("bob")
    assert await memory.search_messages("picnic", user_id="bob") == []
    assert (await memory.get_statistics("bob"))["total_messages"] == 0


async def test_memory_writes_and_deletes_drop_memory_results(memory: Any) -> None:
    query = MemoryQuery(user_id="ann", query_text="bread")
    entry = fact("ann", "bakes rye bread")
    await memory.store_memory(entry)
    assert [m.content for m in await memory.retrieve_memories(query)] == ["bakes rye bread"]
    await memory.store_memory(fact("ann", "sells bread on sundays"))
    assert len(await memory.retrieve_memories(query)) == 2
    await memory.delete_memory(str(entry.id))  # owner unknown to the delete: all dropped
    assert [m.content for m in await memory.retrieve_memories(query)] == ["sells bread on sundays"]


async def test_results_expire_after_ttl(memory: Any, clock: Clock) -> None:
    conv = (await memory.create_session("ann")).conversation_id
    await memory.store_message(say("picnic"), conv)
    await memory.search_messages("picnic", user_id="ann")
    clock.now += 31
    hits = memory.query_cache.hits
    await memory.search_messages("picnic", user_id="ann")
    assert memory.query_cache.hits == hits


async def test_unscoped_reads_are_not_cached(memory: Any) -> None:
    await memory.search_messages("picnic")
    await memory.search_messages("picnic")
    assert memory.query_cache.metrics()["entries"] == 0


@pytest.mark.parametrize("args", [{"maxsize": 0}, {"ttl": 0}, {"ttl": "5s"}, {"maxsize": True}])
def test_bad_settings_are_refused(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        QueryCache(**args)
