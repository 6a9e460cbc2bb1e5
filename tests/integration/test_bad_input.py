"""Bad input refused at the boundary on real stacks (issue 10, sections 4 and 5): what holds
for every stack is in the stack contract; here, what is about one tier or the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole
from bruno_core.utils.exceptions import ConfigError
from bruno_core.utils.exceptions import MemoryError as CoreMemoryError

from bruno_memory import build_memory
from bruno_memory.core import guards
from bruno_memory.core.errors import BrunoMemoryConfigError, InvalidInput
from tests.factories.postgres import drop_schema

SECRET = "987654321"


def _say(text: str, **kw: Any) -> Message:
    return Message(role=MessageRole.USER, content=text, **kw)


@pytest.fixture
async def laptop(tmp_path: Path, namespace: str) -> Any:
    """lru -> sqlite, with a breaker on the durable tier that opens after 2 failures."""
    memory = await build_memory(
        {
            "namespace": namespace,
            "tiers": [
                {"kind": "lru"},
                {"kind": "sqlite", "path": str(tmp_path / "m.db"), "breaker": {"failures": 2}},
            ],
        }
    )
    yield memory
    await memory.close()


@pytest.fixture
async def pg(postgres_dsn: str, namespace: str) -> Any:
    """lru -> postgres in a schema of its own."""
    memory = await build_memory(
        {
            "namespace": namespace,
            "tiers": [
                {"kind": "lru"},
                {"kind": "postgres", "dsn": postgres_dsn, "max_size": 2},
            ],
        }
    )
    yield memory
    await memory.close()
    await drop_schema(postgres_dsn, namespace)


async def test_oversized_queries_are_refused_up_front_and_never_open_the_breaker(
    laptop: Any,
) -> None:
    """A MemoryQuery with 300,000 categories used to fail inside SQLite as TierUnavailable
    and open the breaker for everyone; now it is InvalidInput, however often, and the tier
    keeps answering."""
    conv = (await laptop.create_session("ann")).conversation_id
    await laptop.store_message(_say("still here"), conv)
    huge = MemoryQuery(user_id="ann", categories=[f"c{i}" for i in range(300_000)])
    for _ in range(5):
        with pytest.raises(InvalidInput, match="at most 1000"):
            await laptop.retrieve_memories(huge)
    with pytest.raises(InvalidInput, match=f"at most {guards.MAX_BATCH}"):
        await laptop.store_messages([_say(f"m{i}") for i in range(guards.MAX_BATCH + 1)], conv)
    health = await laptop.health()
    assert all(r["status"] == "up" for r in health.values())
    assert [m.content for m in await laptop.search_messages("still", user_id="ann")] == [
        "still here"
    ]


@pytest.mark.postgres
async def test_postgres_refuses_nul_in_ids_and_oversized_queries_before_the_server(
    pg: Any,
) -> None:
    """NUL in an id (which PostgreSQL text cannot hold) is InvalidInput, never a driver
    error; a query at the caps stays under PostgreSQL's placeholder limits and answers; one
    over them is refused up front (it raised a raw RuntimeError)."""
    conv = (await pg.create_session("ann")).conversation_id
    await pg.store_message(_say("kept"), conv)
    await pg.store_memory(
        MemoryEntry(
            content="likes tea",
            memory_type=MemoryType.FACT,
            user_id="ann",
            metadata={"category": "food"},
        )
    )
    entry = MemoryEntry(content="x", memory_type=MemoryType.FACT, user_id="ann")
    entry.user_id = "a\x00nn"
    message = _say("x")
    message.conversation_id = "c\x00"
    calls = [
        pg.store_memory(entry),
        pg.store_message(message, conv),
        pg.store_message(_say("x", metadata={"user_id": "a\x00nn"}), conv),
        pg.create_session("a\x00nn"),
        pg.get_context("ann", "s\x00"),
        pg.retrieve_memories(MemoryQuery(user_id="ann", tags=["t\x00"])),
        pg.retrieve_memories(MemoryQuery(user_id="ann", categories=["x"] * 10_000)),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            await call
    at_caps = MemoryQuery(
        user_id="ann",
        categories=["food", *(f"c{i}" for i in range(guards.MAX_FILTER - 1))],
        tags=[f"t{i}" for i in range(guards.MAX_FILTER)],
        memory_types=[MemoryType.FACT] * guards.MAX_FILTER,
    )
    assert await pg.retrieve_memories(at_caps) == []  # no memory has one of those tags
    assert [m.content for m in await pg.retrieve_memories(MemoryQuery(user_id="ann"))] == [
        "likes tea"
    ]
    assert [m.content for m in await pg.retrieve_messages(conv)] == ["kept"]


@pytest.mark.postgres
async def test_a_pg_namespace_and_a_bad_port_are_config_errors(postgres_dsn: str) -> None:
    """A namespace the PostgreSQL schema cannot take, or a DSN port that is no port, fails
    at load with the key to fix (it escaped as ValueError/OverflowError)."""
    for namespace in ("pg_catalog_copy", "PG_x"):
        with pytest.raises(BrunoMemoryConfigError) as info:
            await build_memory(
                {"namespace": namespace, "tiers": [{"kind": "postgres", "dsn": postgres_dsn}]}
            )
        assert info.value.path == "namespace" and "pg_" in str(info.value)
    for port in ("notaport", "99999"):
        with pytest.raises(BrunoMemoryConfigError) as info:
            await build_memory(
                {
                    "tiers": [
                        {"kind": "postgres", "dsn": f"postgresql://u:hunter2@127.0.0.1:{port}/db"}
                    ]
                }
            )
        assert info.value.path == "tiers[0].dsn" and "hunter2" not in str(info.value)


@pytest.mark.parametrize("source", [123, 4.5, ["tiers"], b"tiers: []"])
async def test_build_memory_of_a_non_config_is_a_config_error(source: Any) -> None:
    """build_memory(123) said "expected str, bytes or os.PathLike object" (a TypeError)."""
    with pytest.raises(BrunoMemoryConfigError, match="got "):
        await build_memory(source)


async def test_an_sqlite_path_under_an_uncreatable_folder_is_a_config_error(
    tmp_path: Path,
) -> None:
    """A folder that cannot be made (a file is in the way) raised FileExistsError."""
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(BrunoMemoryConfigError, match="cannot create the folder") as info:
        await build_memory({"tiers": [{"kind": "sqlite", "path": str(tmp_path / "file/x.db")}]})
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    "yaml_text",
    [
        f"tiers:\n  - kind: postgres\n    dsn: {SECRET}\n",
        f"tiers:\n  - kind: postgres\n    dsn: [postgresql://u:{SECRET}@h/db]\n",
        f"tiers:\n  - kind: postgres\n    dsn: {{password: {SECRET}}}\n",
        f"tiers:\n  - kind: postgres\n    dsn: postgresql://u@h/db\n    password: {SECRET}\n",
        f"tiers:\n  - {{kind: redis, url: {SECRET}}}\n  - {{kind: sqlite, path: ':memory:'}}\n",
        f"tiers:\n  - {{kind: redis, url: [{SECRET}]}}\n  - {{kind: sqlite, path: ':memory:'}}\n",
        f"tiers:\n  - {{kind: sqlite, path: ':memory:'}}\n"
        f"  - {{kind: qdrant, url: 'http://h:6333', api_key: {SECRET}}}\n",
        f"tiers:\n  - kind: sqlite\n    path: ':memory:'\n    write: write-behind\n"
        f"    journal: {{kind: redis, url: {SECRET}}}\n",
        f"tiers:\n  - kind: lru\n    invalidation: {{url: [{SECRET}]}}\n"
        f"  - {{kind: sqlite, path: ':memory:'}}\n",
    ],
)
async def test_a_secret_of_any_type_is_never_echoed(yaml_text: str) -> None:
    """An unquoted number (or a list, a mapping) where a DSN, URL, password or API key goes
    is refused without showing it (it was echoed: "got 987654321")."""
    with pytest.raises(BrunoMemoryConfigError) as info:
        await build_memory(yaml_text)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert info.value.path.startswith("tiers[")


async def test_every_bad_call_error_is_a_bruno_core_memory_error(laptop: Any) -> None:
    """The messages say what to fix: which field, what was expected."""
    conv = (await laptop.create_session("ann")).conversation_id
    bad = _say("x")
    bad.role = "hacker"  # type: ignore[assignment]
    with pytest.raises(CoreMemoryError, match=r"messages\[0\]\.role must be a MessageRole"):
        await laptop.store_message(bad, conv)
    with pytest.raises(CoreMemoryError, match="pass \\[message\\]"):
        await laptop.store_messages(_say("one"), conv)
    with pytest.raises(CoreMemoryError, match=r"metadata\['o'\] holds a set"):
        await laptop.store_message(_say("x", metadata={"o": {1}}), conv)
