"""Lifecycle, dependencies, logs and bounds (issue 10, section 6), through the public API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole
from bruno_core.utils.exceptions import MemoryError as CoreMemoryError

from bruno_memory import build_memory
from bruno_memory.build import ConfiguredMemory
from bruno_memory.core.errors import BrunoMemoryConfigError, Closed, MissingDependency
from bruno_memory.providers.embedding.hashing import MAX_CHARS, HashingEmbedder
from tests.factories.postgres import drop_schema


def _say(text: str) -> Message:
    return Message(role=MessageRole.USER, content=text)


def _every_call(memory: Any, conv: str, session_id: str) -> dict[str, Any]:
    memory_entry = MemoryEntry(content="x", memory_type=MemoryType.FACT, user_id="ann")
    return {
        "store_message": lambda: memory.store_message(_say("late"), conv),
        "store_messages": lambda: memory.store_messages([_say("late")], conv),
        "retrieve_messages": lambda: memory.retrieve_messages(conv),
        "search_messages": lambda: memory.search_messages("kept", user_id="ann"),
        "search": lambda: memory.search("kept"),
        "scan": lambda: memory.scan("message"),
        "clear_history": lambda: memory.clear_history(conv),
        "store_memory": lambda: memory.store_memory(memory_entry),
        "retrieve_memories": lambda: memory.retrieve_memories(MemoryQuery(user_id="ann")),
        "get_memory": lambda: memory.get_memory(str(memory_entry.id)),
        "delete_memory": lambda: memory.delete_memory(str(memory_entry.id)),
        "create_session": lambda: memory.create_session("ann"),
        "get_session": lambda: memory.get_session(session_id),
        "end_session": lambda: memory.end_session(session_id),
        "get_context": lambda: memory.get_context("ann", session_id),
        "get_statistics": lambda: memory.get_statistics("ann"),
        "retrieve_context": lambda: memory.retrieve_context("ann", "kept"),
        "search_memories": lambda: memory.search_memories("ann", "x"),
        "forget_user": lambda: memory.forget_user("ann"),
        "flush": lambda: memory.flush(),
        "health": lambda: memory.health(),
        "open": lambda: memory.open(),
    }


async def _assert_closed(memory: Any, conv: str, session_id: str) -> None:
    for name, call in _every_call(memory, conv, session_id).items():
        with pytest.raises(Closed, match="closed") as info:
            await call()
        assert isinstance(info.value, CoreMemoryError), name
    with pytest.raises(Closed):
        async with memory:
            pass
    await memory.close()  # closing again does nothing


async def test_a_closed_stack_refuses_every_call(tmp_path: Path) -> None:
    """After close(), reads the LRU could answer and writes alike raise Closed (they used to
    answer from the LRU, and writes failed with "no active connection"); the data is in
    the file for the next stack."""
    cfg = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory = await build_memory(cfg)
    session = await memory.create_session("ann")
    await memory.store_message(_say("kept"), session.conversation_id)
    assert len(await memory.retrieve_messages(session.conversation_id)) == 1  # cached now
    await memory.close()
    await _assert_closed(memory, session.conversation_id, session.session_id)
    async with await build_memory(cfg) as again:
        assert [m.content for m in await again.retrieve_messages(session.conversation_id)] == [
            "kept"
        ]


async def test_a_configured_memory_closed_before_use_stays_closed(tmp_path: Path) -> None:
    """bruno-core's registry builds ConfiguredMemory lazily: closed before its first call, it
    never opens (no tier connects behind the caller's back)."""
    memory = ConfiguredMemory({"tiers": [{"kind": "sqlite", "path": str(tmp_path / "m.db")}]})
    await memory.close()
    await _assert_closed(memory, "c", "s")
    assert not (tmp_path / "m.db").exists()


@pytest.mark.postgres
async def test_a_closed_postgres_stack_refuses_every_call(
    postgres_dsn: str, namespace: str
) -> None:
    """The same on a server stack with a write-behind tier: close drains, then refuses."""
    memory = await build_memory(
        {
            "namespace": namespace,
            "tiers": [
                {"kind": "lru"},
                {"kind": "postgres", "dsn": postgres_dsn, "max_size": 2, "write": "write-behind"},
            ],
        }
    )
    try:
        session = await memory.create_session("ann")
        await memory.store_message(_say("kept"), session.conversation_id)
        await memory.close()
        await _assert_closed(memory, session.conversation_id, session.session_id)
        again = await build_memory(
            {
                "namespace": namespace,
                "tiers": [{"kind": "postgres", "dsn": postgres_dsn, "max_size": 2}],
            }
        )
        assert [m.content for m in await again.retrieve_messages(session.conversation_id)] == [
            "kept"
        ]
        await again.close()
    finally:
        await memory.close()
        await drop_schema(postgres_dsn, namespace)


@pytest.mark.parametrize(
    ("module", "tier"),
    [
        ("chromadb", "{kind: chroma, path: vectors}"),
        ("qdrant_edge", "{kind: qdrant, path: vectors}"),
        ("qdrant_client", "{kind: qdrant, url: 'http://127.0.0.1:6333'}"),
    ],
)
def test_a_missing_vector_driver_names_the_extra(tmp_path: Path, module: str, tier: str) -> None:
    """Without its driver, a qdrant or chroma tier says which extra to install (it raised a
    raw ModuleNotFoundError). The driver is hidden from a fresh interpreter."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.modules[{module!r}] = None  # as if it were not installed
        from bruno_memory import build_memory
        from bruno_memory.core.errors import MissingDependency
        yaml = "tiers:\\n  - {{kind: sqlite, path: m.db}}\\n  - " + {tier!r} + "\\n"
        try:
            asyncio.run(build_memory(yaml))
        except MissingDependency as exc:
            print(type(exc).__name__, exc)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    extra = "chroma" if module == "chromadb" else "qdrant"
    assert done.stdout.startswith(MissingDependency.__name__), done.stderr
    assert f"pip install 'bruno-memory[{extra}]'" in done.stdout
    assert repr(module) in done.stdout


def test_check_prints_only_its_table_on_stdout_and_logs_to_stderr(tmp_path: Path) -> None:
    """`bruno-memory check` on a stack whose cache tier is down: stdout is the table (a
    header and one row per tier), the library's warning goes through logging to stderr."""
    (tmp_path / "stack.yaml").write_text(
        "tiers:\n"
        "  - {name: hot, kind: redis, url: 'redis://127.0.0.1:1/0', on_error: skip,"
        " connect_timeout: 200ms}\n"
        "  - {name: durable, kind: sqlite, path: m.db}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bruno_memory", "check", "stack.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["tier", "hot", "durable"], done.stdout
    assert "down" in lines[1] and "up" in lines[2]
    assert "tier down at open" in done.stderr
    assert "event=" not in done.stdout


async def test_lru_is_bounded_in_bytes(tmp_path: Path) -> None:
    """Forty 1 MB messages read through an LRU of max_bytes 8MB: the cache holds at most
    8 MB of them (300 such messages took a process from 81 to 387 MB); what it holds is
    reported by health()."""
    memory = await build_memory(
        {
            "tiers": [
                {"kind": "lru", "max_bytes": "8MB"},
                {"kind": "sqlite", "path": str(tmp_path / "m.db")},
            ]
        }
    )
    big = "x" * 1_000_000
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(40):
            conv = (await memory.create_session("ann")).conversation_id
            await memory.store_message(_say(f"{big} {i}"), conv)
            assert len((await memory.retrieve_messages(conv))[0].content) > 1_000_000
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held - before < 20_000_000  # unbounded, it was over 80 MB (two copies each)
    lru = (await memory.health())["lru"]["metrics"]
    assert lru["max_bytes"] == 8_000_000 and 2_000_000 < lru["bytes"] <= 8_000_000
    await memory.close()


@pytest.mark.parametrize("ttl", [0, "0s", "0ms"])
async def test_lru_ttl_zero_is_refused(tmp_path: Path, ttl: Any) -> None:
    """`ttl: 0` used to mean "never expire"; it is refused, saying what to write instead."""
    with pytest.raises(BrunoMemoryConfigError, match="leave ttl out") as info:
        await build_memory(
            {
                "tiers": [
                    {"kind": "lru", "ttl": ttl},
                    {"kind": "sqlite", "path": str(tmp_path / "m.db")},
                ]
            }
        )
    assert info.value.path == "tiers[0].ttl"


@pytest.mark.parametrize("max_bytes", [0, "0MB", "-1", "lots"])
async def test_lru_max_bytes_must_be_a_positive_size(tmp_path: Path, max_bytes: Any) -> None:
    with pytest.raises(BrunoMemoryConfigError, match="positive size") as info:
        await build_memory(
            {
                "tiers": [
                    {"kind": "lru", "max_bytes": max_bytes},
                    {"kind": "sqlite", "path": str(tmp_path / "m.db")},
                ]
            }
        )
    assert info.value.path == "tiers[0].max_bytes"


async def test_hashing_embedder_does_not_block_the_event_loop() -> None:
    """A 10 MB text (which blocked the loop for 23 s) is hashed off the loop, and only its
    first MAX_CHARS characters count: other tasks keep running while it is embedded."""
    embedder = HashingEmbedder(64)
    head = "lorem ipsum dolor sit amet " * (MAX_CHARS // 27 + 1)
    huge = head[:MAX_CHARS] + " tail" * 2_000_000
    ticks = 0
    task = asyncio.create_task(embedder.embed_text(huge))
    while not task.done():
        ticks += 1
        await asyncio.sleep(0)
    assert ticks > 10  # the loop ran other work while the text was hashed
    assert await task == embedder.embed(head[:MAX_CHARS])
    batch = await embedder.embed_texts([huge, "short"])
    assert batch == [embedder.embed(head[:MAX_CHARS]), embedder.embed("short")]
