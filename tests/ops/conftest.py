"""Stores the operations tests move data between: a populated laptop stack and an empty
single-node one (LRU over Redis over PostgreSQL) in its own namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bruno_memory import build_memory
from bruno_memory.stack.facade import MemoryStack
from tests.factories.redis import clear_stack
from tests.ops.store import laptop, populate_all, single_node


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[MemoryStack]:
    """A laptop stack holding every model variant and every kind of tombstone."""
    async with await build_memory(laptop(tmp_path)) as memory:
        await populate_all(memory)
        yield memory


@pytest.fixture
async def server(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[MemoryStack]:
    """An empty single-node stack, dropped after the test."""
    memory = await build_memory(single_node(request, namespace))
    try:
        yield memory
    finally:
        try:
            await clear_stack(memory)
        finally:
            await memory.close()
