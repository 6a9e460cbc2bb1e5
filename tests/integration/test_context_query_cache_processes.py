"""The query-result cache across processes: another process's write of a user drops that
user's cached results here, through the LRU's invalidation channel (Redis pub/sub)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryQuery
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.stack.results import QueryCache
from bruno_memory.testing.worker import Worker
from bruno_memory.tiers.base import Users


def shared_config(redis_url: str, namespace: str, tmp_path: Path) -> dict[str, Any]:
    """An LRU kept coherent over Redis pub/sub, over one SQLite file both processes use."""
    return {
        "namespace": namespace,
        "tiers": [
            {"kind": "lru", "invalidation": {"url": redis_url, "max_lag": "1s"}},
            {"kind": "sqlite", "path": str(tmp_path / "shared.db")},
        ],
    }


async def eventually(read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool]) -> bool:
    """Whether ``ok(await read())`` holds within 5 s of reads 0.05 s apart."""
    for _ in range(100):
        if ok(await read()):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def pair(redis_url: str, namespace: str, tmp_path: Path) -> Any:
    """This process's stack (a query cache whose results would live 10 minutes) and a
    worker process over the same stores."""
    config = shared_config(redis_url, namespace, tmp_path)
    memory = await build_memory(config, query_cache=QueryCache(64, ttl=600))
    await memory.open()
    worker = await Worker(config).start()
    try:
        cache = memory.query_cache
        assert await eventually(lambda: asyncio.sleep(0, cache.serving()), bool)
        yield memory, worker
    finally:
        await worker.stop()
        await memory.close()


@pytest.mark.redis
async def test_another_process_storing_a_message_drops_that_users_cached_search(
    pair: Any,
) -> None:
    """A search cached here is served until the worker stores a message in ann's
    conversation; then the next search here finds it, and bob's cached result survives."""
    memory, worker = pair
    conv = f"c-{uuid.uuid4()}"
    await worker.call(cmd="session", user="ann", conversation=conv)
    bob = (await memory.create_session("bob")).conversation_id
    await memory.store_message(Message(role=MessageRole.USER, content="message of bob"), bob)
    assert await memory.search_messages("message", user_id="ann") == []
    assert len(await memory.search_messages("message", user_id="bob")) == 1
    hits = memory.query_cache.hits
    assert await memory.search_messages("message", user_id="ann") == []
    assert memory.query_cache.hits == hits + 1  # served from the cache

    await worker.send(cmd="store", conversation=conv, count=1)
    while "done" not in await worker.read():
        pass
    found = await eventually(
        lambda: memory.search_messages("message", user_id="ann"), lambda hits: len(hits) == 1
    )
    assert found
    hits = memory.query_cache.hits
    assert len(await memory.search_messages("message", user_id="bob")) == 1
    assert memory.query_cache.hits == hits + 1  # ann's remote write left bob's result


@pytest.mark.redis
async def test_another_process_storing_and_deleting_a_memory_drops_cached_memories(
    pair: Any,
) -> None:
    """``retrieve_memories`` cached here sees the worker's new memory of ann, then its
    deletion (whose owner the delete does not name: every user's results go)."""
    memory, worker = pair
    query = MemoryQuery(user_id="ann", query_text="bread")
    assert await memory.retrieve_memories(query) == []
    assert await memory.retrieve_memories(query) == []
    memory_id = str(uuid.uuid4())
    await worker.call(cmd="store_memory", id=memory_id, user="ann", content="bakes rye bread")
    assert await eventually(
        lambda: memory.retrieve_memories(query), lambda got: [str(m.id) for m in got] == [memory_id]
    )
    await worker.call(cmd="delete_memory", id=memory_id)
    assert await eventually(lambda: memory.retrieve_memories(query), lambda got: got == [])


class Feed:
    """A change feed this test drives: in sync or not, telling users on command."""

    def __init__(self) -> None:
        self.synced = True
        self.listeners: list[Callable[[Users], None]] = []

    def follow(self, listener: Callable[[Users], None]) -> None:
        self.listeners.append(listener)

    def in_sync(self) -> bool:
        return self.synced

    def tell(self, users: Users) -> None:
        for listener in self.listeners:
            listener(users)


def test_results_are_not_served_while_a_feed_is_out_of_sync() -> None:
    """Out of sync, the cache neither serves nor keeps; a told user's results go."""
    cache, feed = QueryCache(8, ttl=600), Feed()
    cache.follow(feed)
    cache.put("ann", "q", cache.stamp("ann"), ["kept"])
    cache.put("bob", "q", cache.stamp("bob"), ["kept"])
    assert cache.get("ann", "q") == (True, ["kept"])
    feed.synced = False
    assert cache.get("ann", "q") == (False, None)
    cache.put("eve", "q", cache.stamp("eve"), ["new"])
    feed.synced = True
    assert cache.get("eve", "q") == (False, None)
    feed.tell(frozenset({"ann"}))
    assert cache.get("ann", "q") == (False, None)
    assert cache.get("bob", "q") == (True, ["kept"])
    feed.tell(frozenset({None}))
    assert cache.get("bob", "q") == (False, None)
