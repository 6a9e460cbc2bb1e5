"""The archive manager: portable export, import and copy between stacks, and their CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from bruno_core.models.context import SessionContext
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole, MessageType

from bruno_memory import build_memory
from bruno_memory.cli import main
from bruno_memory.managers.archive import (
    Anonymizer,
    ArchiveError,
    Header,
    RegexRedactor,
    copy,
    export,
    export_csv,
    import_file,
)
from bruno_memory.stack.facade import MemoryStack
from tests.factories.redis import clear_stack

ROOT = Path(__file__).resolve().parents[2]
TZ = timezone(timedelta(hours=5, minutes=30))
META = {"s": "text", "i": 42, "f": 2.5, "b": True, "n": None, "l": [1, "two", [3]], "d": {"k": {}}}


def laptop(tmp: Path, name: str = "a") -> dict[str, Any]:
    return {
        "namespace": "bruno",
        "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp / f"{name}.db")}],
    }


def single_node(request: pytest.FixtureRequest, ns: str) -> dict[str, Any]:
    return {
        "namespace": ns,
        "tiers": [
            {"kind": "lru"},
            {"kind": "redis", "url": request.getfixturevalue("redis_url")},
            {"kind": "postgres", "dsn": request.getfixturevalue("postgres_dsn"), "max_size": 4},
        ],
    }


async def populate(memory: MemoryStack) -> None:
    """Every model variant, through the API."""
    ctx = await memory.get_context("ada", "chat-1")
    root = Message(
        role=MessageRole.SYSTEM,
        content="You are kind.",
        timestamp=datetime(2024, 1, 1, 9, tzinfo=TZ),
    )
    msgs = [root]
    for i, (role, kind) in enumerate(zip(MessageRole, MessageType, strict=False)):
        msgs.append(
            Message(
                role=role,
                content=f"turn {i}: mail ada@example.com or call +1 415 555 0100",
                message_type=kind,
                timestamp=datetime(2024, 1, 1, 10, i, tzinfo=TZ if i % 2 else timezone.utc),
                parent_id=msgs[-1].id,
                metadata={**META, "embedding": [0.1 * i, -0.5, 1.0]},
            )
        )
    await memory.store_messages(msgs, ctx.conversation_id)
    session = await memory.create_session("bob", metadata=META)
    await memory.store_message(
        Message(role=MessageRole.USER, content="bob here", timestamp=datetime(2024, 2, 1)),
        session.conversation_id,
    )
    await memory.end_session(session.session_id)
    await memory.store_message(Message(role=MessageRole.USER, content="nobody's"), "orphan-chat")
    now = datetime.now(timezone.utc)
    first = None
    for i, mtype in enumerate(MemoryType):
        entry = MemoryEntry(
            content=f"fact {i} about https://example.org and 10.0.0.{i}",
            memory_type=mtype,
            user_id="ada" if i % 2 else "bob",
            conversation_id="chat-1" if i % 2 else None,
            metadata=MemoryMetadata(
                category="c" if i else None,
                tags=["t1", f"t{i}"],
                confidence=0.5,
                importance=0.25 * (i % 4),
                embedding=[0.5, 0.25, float(i)],
                related_memories=[first] if first else [],
                custom_fields=META,
            ),
            created_at=datetime(2024, 3, 1, tzinfo=TZ),
            expires_at=now - timedelta(days=1)
            if i == 0
            else now + timedelta(days=30)
            if i == 1
            else None,
        )
        first = first or entry.id
        await memory.store_memory(entry)


def sorted_body(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert json.loads(lines[0])["kind"] == "header"
    return sorted(lines[1:])


async def reads(memory: MemoryStack) -> dict[str, Any]:
    """What the API says, for comparing two stores."""
    out: dict[str, Any] = {}
    for conv in ("chat-1", "orphan-chat"):
        out[conv] = [m.model_dump() for m in await memory.retrieve_messages(conv)]
    for user in ("ada", "bob"):
        sessions = await memory.list_sessions(user)
        out[f"{user}-sessions"] = [s.model_dump() for s in sessions.items]
        found = await memory.retrieve_memories(MemoryQuery(user_id=user, limit=100))
        out[f"{user}-memories"] = sorted(
            (e.model_dump() for e in found), key=lambda d: str(d["id"])
        )
        out[f"{user}-stats"] = await memory.get_statistics(user)
    return out


HEADER = Header(namespace="bruno")


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[MemoryStack]:
    async with await build_memory(laptop(tmp_path)) as memory:
        await populate(memory)
        yield memory


@pytest.fixture
async def server(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[MemoryStack]:
    memory = await build_memory(single_node(request, namespace))
    try:
        yield memory
    finally:
        try:
            await clear_stack(memory)
        finally:
            await memory.close()


async def test_laptop_round_trip_through_single_node(
    source: MemoryStack, server: MemoryStack, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    done = await export(source, first, header=HEADER, embeddings=True)
    assert done.kinds["message"]["count"] == 8 and done.kinds["memory"]["count"] == 6
    assert done.header.watermark > 0
    imported = await import_file(server, first)
    assert imported.written == done.records
    await export(server, second, header=HEADER, embeddings=True)
    assert sorted_body(first) == sorted_body(second)
    assert await reads(source) == await reads(server)
    again = await import_file(server, first)  # idempotent
    assert (again.written, again.unchanged) == (0, done.records)
    third = tmp_path / "c.jsonl"
    await export(server, third, header=HEADER, embeddings=True)
    assert sorted_body(third) == sorted_body(first)


async def test_copy_verifies(source: MemoryStack, server: MemoryStack) -> None:
    done = await copy(source, server)
    assert done.verified, done.differences
    assert done.written == sum(done.source.counts.values())
    assert await reads(source) == await reads(server)


async def test_copy_into_a_store_holding_more_is_not_verified(
    source: MemoryStack, tmp_path: Path
) -> None:
    async with await build_memory(laptop(tmp_path, "b")) as target:
        await target.get_context("eve", "elsewhere")
        done = await copy(source, target)
        assert not done.verified
        assert any(d.startswith("session") for d in done.differences)


async def test_import_twice_and_conflicts(source: MemoryStack, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    await export(source, path, header=HEADER)
    async with await build_memory(laptop(tmp_path, "b")) as target:
        first = await import_file(target, path)
        assert first.written > 0
        second = await import_file(target, path)
        assert second.written == 0 and second.unchanged == first.written
        # a memory changed in the target: skip keeps it, overwrite replaces it
        [memory] = [e for e in await target.retrieve_memories(MemoryQuery(user_id="ada"))][:1]
        memory.content = "changed here"
        memory.updated_at = datetime(2030, 1, 1, tzinfo=timezone.utc)
        await target.store_memory(memory)
        skipped = await import_file(target, path, on_conflict="skip")
        assert skipped.kept == 1
        newer = await import_file(target, path, on_conflict="newer")
        assert newer.kept == 1
        assert (await target.get_memory(str(memory.id))).content == "changed here"  # type: ignore[union-attr]
        over = await import_file(target, path, on_conflict="overwrite")
        assert over.written == 1
        assert (await target.get_memory(str(memory.id))).content != "changed here"  # type: ignore[union-attr]


async def test_bad_line_names_its_number(source: MemoryStack, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    await export(source, path, header=HEADER)
    lines = path.read_text().splitlines()
    broken = [*lines[:4], '{"kind": "memory", "record": {"id": "nope"}}', *lines[4:]]
    path.write_text("\n".join(broken) + "\n")
    async with await build_memory(laptop(tmp_path, "b")) as target:
        with pytest.raises(ArchiveError, match=r"^line 5: memory payload is not valid") as err:
            await import_file(target, path)
        assert err.value.line == 5
        # the lines before it are in, nothing after it
        assert (await target.scan("user")).items
        assert not (await target.scan("memory")).items
    path.write_text("not json\n")
    async with await build_memory(laptop(tmp_path, "c")) as target:
        with pytest.raises(ArchiveError, match=r"^line 1: not valid JSON"):
            await import_file(target, path)


async def test_a_line_parsing_takes_but_the_checks_refuse_names_it(
    source: MemoryStack, tmp_path: Path
) -> None:
    """Lines validated many at a time still fail one by one: a message whose conversation
    id is too long, a metadata value JSON has no token for (NaN); earlier lines are in."""
    path = tmp_path / "a.jsonl"
    await export(source, path, header=HEADER)
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if '"kind":"message"' in line)
    message = json.loads(lines[first])
    message["conversation_id"] = "c" * 600
    for bad, why in ((json.dumps(message), "conversation_id must be"),
                     (lines[first].replace('"metadata":{', '"metadata":{"x":NaN,', 1),
                      "not valid JSON")):
        path.write_text("\n".join([*lines[:first], bad, *lines[first + 1 :]]) + "\n")
        async with await build_memory(laptop(tmp_path, f"b{len(why)}")) as target:
            with pytest.raises(ArchiveError, match=f"^line {first + 1}: {why}"):
                await import_file(target, path)
            assert (await target.scan("session")).items  # the lines before it are in
            assert not (await target.scan("memory")).items  # none after it


async def test_a_refused_record_names_its_line(source: MemoryStack, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    await export(source, path, header=HEADER)
    async with await build_memory(laptop(tmp_path, "b")) as target:
        await target.get_context("mallory", "chat-1")  # chat-1 is ada's in the file
        with pytest.raises(ArchiveError, match="belongs to 'mallory'") as err:
            await import_file(target, path)
        number = err.value.line
        assert number is not None
        assert '"chat-1"' in path.read_text().splitlines()[number - 1]


async def test_one_user_and_anonymized(source: MemoryStack, tmp_path: Path) -> None:
    path = tmp_path / "ada.jsonl"
    anon = Anonymizer("k" * 32)
    await export(source, path, header=HEADER, user_id="ada", anonymizer=anon)
    text = path.read_text()
    for secret in ('"ada"', "chat-1", "example.com", "10.0.0.", "555 0100"):
        assert secret not in text
    lines = [orjson.loads(x) for x in text.splitlines()]
    assert lines[0]["anonymized"] and lines[0]["user"] == anon.pseudonym("ada")
    owners = {x["record"].get("user_id") or x.get("owner") for x in lines[1:]}
    assert owners == {anon.pseudonym("ada")}
    assert all(
        x["record"]["metadata"].get("embedding") is None for x in lines if x["kind"] == "memory"
    )
    # consistent: the same key gives the same file body; parents still link
    again = tmp_path / "again.jsonl"
    await export(source, again, header=HEADER, user_id="ada", anonymizer=anon)
    assert sorted_body(again) == sorted_body(path)
    ids = {x["record"]["id"] for x in lines if x["kind"] == "message"}
    parents = {x["record"]["parent_id"] for x in lines if x["kind"] == "message"} - {None}
    assert parents <= ids
    # and it imports: an anonymized export is a valid archive
    async with await build_memory(laptop(tmp_path, "b")) as target:
        assert (await import_file(target, path)).written == len(lines) - 1


def test_regex_redactor() -> None:
    redact = RegexRedactor()
    text = "ada@example.com, https://x.org/a?b=1, 192.168.1.20, fe80::1, +44 20 7946 0958 ok"
    assert redact(text) == "[email], [url], [ip], [ip], [phone] ok"
    assert redact("3 cats in 2024") == "3 cats in 2024"


async def test_csv(source: MemoryStack, tmp_path: Path) -> None:
    import csv

    path = tmp_path / "a.csv"
    counts = await export_csv(source, path)
    assert counts == {"message": 8, "memory": 6}
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 14 and {r["kind"] for r in rows} == {"message", "memory"}
    assert all(json.loads(r["metadata"]) is not None for r in rows)


def _stack_file(tmp: Path, name: str, config: dict[str, Any]) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return str(path)


async def _populated(tmp: Path) -> str:
    config = laptop(tmp, "src")
    async with await build_memory(config) as memory:
        await populate(memory)
    return _stack_file(tmp, "src", config)


def test_cli_export_import_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    src = asyncio.run(_populated(tmp_path))
    dst = _stack_file(tmp_path, "dst", laptop(tmp_path, "dst"))
    out = tmp_path / "out.jsonl.gz"
    assert main(["export", src, str(out), "--embeddings", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kinds"]["message"]["count"] == 8
    assert main(["import", dst, str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == summary["records"]
    assert main(["import", dst, str(out), "--json", "--on-conflict", "newer"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 0
    again = tmp_path / "again.jsonl.gz"
    assert main(["export", dst, str(again), "--embeddings"]) == 0
    assert capsys.readouterr().out.startswith("exported ")
    assert sorted_body(again) == sorted_body(out)
    assert main(["copy", src, dst, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    other = _stack_file(tmp_path, "other", laptop(tmp_path, "other"))
    assert main(["import", other, str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "header", "format": 1}\n{"kind": "user"}\n')
    assert main(["import", other, str(bad)]) == 2
    assert "line 2:" in capsys.readouterr().err
    assert main(["export", src, str(tmp_path / "a.csv"), "--format", "csv"]) == 0
    assert main(["export", src, str(tmp_path / "anon.jsonl"), "--anonymize"]) == 0
    err = capsys.readouterr().err
    assert "key" in err
    assert '"ada"' not in (tmp_path / "anon.jsonl").read_text()


def test_cli_subprocess(tmp_path: Path) -> None:
    import asyncio

    src = asyncio.run(_populated(tmp_path))
    dst = _stack_file(tmp_path, "dst", laptop(tmp_path, "dst"))
    run = subprocess.run(
        [sys.executable, "-m", "bruno_memory", "copy", src, dst, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["verified"] is True
    assert run.stderr == ""  # no progress bar off a terminal


def test_unique_ids_are_uuids() -> None:
    anon = Anonymizer("key")
    value = anon.pseudo_uuid(str(uuid.uuid4()))
    assert uuid.UUID(value).version == 4
    assert SessionContext  # imported for the models under test
