"""SyncMemory: the blocking façade, on server stacks (one loop thread) and on laptop."""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import MemoryStack, SyncMemory
from bruno_memory.core.errors import Closed, InvalidInput
from bruno_memory.sync import SYNC_METHODS
from tests.factories.redis import clear_stack

LIFECYCLE = {"open", "close", "aclose"}


def say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


@pytest.fixture
def single_node(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, namespace: str
) -> Iterator[SyncMemory]:
    """The shipped single-node stack (LRU -> Redis -> PostgreSQL), by name."""
    monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_url"))
    monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("postgres_dsn"))
    monkeypatch.setenv("BRUNO_MEMORY_NAMESPACE", namespace)
    memory = SyncMemory.build("single-node")
    try:
        yield memory
    finally:
        if not memory.loop.is_closed():
            asyncio.run_coroutine_threadsafe(clear_stack(memory.stack), memory.loop).result()
        memory.close()


def test_every_facade_door_has_a_blocking_twin() -> None:
    """The blocking methods cover every public coroutine method of MemoryStack."""
    doors = {
        name
        for name, value in inspect.getmembers(MemoryStack)
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    }
    assert doors - LIFECYCLE == set(SYNC_METHODS)
    assert SyncMemory.store_message.__doc__ == MemoryStack.store_message.__doc__


@pytest.mark.redis
@pytest.mark.postgres
def test_single_node_many_calls_one_loop(single_node: SyncMemory) -> None:
    """Many blocking calls on Redis + PostgreSQL: pools stay on the one live loop."""
    memory = single_node
    ctx = memory.get_context("ada", "chat-1")
    for i in range(40):
        memory.store_message(say(f"picnic bread {i}"), ctx.conversation_id)
        assert len(memory.retrieve_messages("chat-1", limit=3)) == min(i + 1, 3)
    assert memory.search_messages("picnic", user_id="ada", limit=5)
    assert memory.get_statistics("ada")["total_messages"] == 40
    memory.store_memory(
        MemoryEntry(content="likes rye bread", user_id="ada", memory_type=MemoryType.FACT)
    )
    assert memory.retrieve_memories(MemoryQuery(user_id="ada"))[0].content == "likes rye bread"
    assert all(h["status"] == "up" for h in memory.health().values())


@pytest.mark.redis
@pytest.mark.postgres
def test_single_node_from_many_threads(single_node: SyncMemory) -> None:
    """Calls from several threads at once all land, each in its own conversation."""
    memory = single_node

    def chat(t: int) -> list[str]:
        conv = memory.create_session(f"user-{t}").conversation_id
        for i in range(15):
            memory.store_message(say(f"thread {t} turn {i}"), conv)
        return [m.content for m in memory.retrieve_messages(conv)]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(chat, range(6)))
    for t, contents in enumerate(results):
        assert contents == [f"thread {t} turn {i}" for i in reversed(range(15))]


def test_laptop_by_name_as_context_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded default by name; closing drains, stops the thread and refuses calls."""
    monkeypatch.chdir(tmp_path)
    with SyncMemory.build("laptop") as memory:
        conv = memory.create_session("ada").conversation_id
        memory.store_messages([say("one"), say("two")], conv)
        thread = memory._thread
        assert [m.content for m in memory.retrieve_messages(conv)] == ["two", "one"]
        with pytest.raises(InvalidInput, match="limit"):
            memory.retrieve_messages(conv, limit=-1)
    assert not thread.is_alive() and memory.loop.is_closed()
    with pytest.raises(Closed):
        memory.retrieve_messages(conv)
    memory.close()  # again: nothing
    with SyncMemory.build("laptop") as again:  # the file has it all
        assert len(again.retrieve_messages(conv)) == 2


def test_dict_config_and_a_call_from_the_loop_thread(tmp_path: Path) -> None:
    """A dict config; a blocking call made on the loop thread is refused, not a deadlock."""
    db = tmp_path / f"{uuid.uuid4().hex}.db"
    with SyncMemory.build({"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(db)}]}) as m:
        assert m.get_session("nope") is None
        failed: list[BaseException] = []

        def on_loop() -> None:
            try:
                m.get_session("nope")
            except InvalidInput as exc:
                failed.append(exc)
            done.set()

        done = threading.Event()
        m.loop.call_soon_threadsafe(on_loop)
        done.wait()
        assert failed and "own event loop thread" in str(failed[0])
