"""Backup and restore: a full snapshot, then increments, into a folder; restored into an
empty stack, the store exports and reads as the source does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.backup import backup, restore
from bruno_memory.cli import main
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.archive import copy, export
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.tiers.sql.postgres import PostgresConfig
from bruno_memory.tiers.sql.snapshots import postgres_snapshot
from tests.factories.redis import clear_stack
from tests.ops.store import (
    HEADER,
    first_changes,
    laptop,
    reads_all,
    second_changes,
    single_node,
    sorted_body,
)


async def _same(a: MemoryStack, b: MemoryStack, tmp: Path) -> None:
    await export(a, tmp / "left.jsonl", header=HEADER, embeddings=True)
    await export(b, tmp / "right.jsonl", header=HEADER, embeddings=True)
    assert sorted_body(tmp / "left.jsonl") == sorted_body(tmp / "right.jsonl")
    assert await reads_all(a) == await reads_all(b)


async def _three_backups(memory: MemoryStack, cfg: dict[str, object], folder: Path) -> None:
    """A full backup, changes, an increment, changes, an increment."""
    await memory.flush()
    assert (await backup(cfg, folder))["kind"] == "full"
    await first_changes(memory)
    await memory.flush()
    assert (await backup(cfg, folder))["kind"] == "incremental"
    await second_changes(memory)
    await memory.flush()
    last = await backup(cfg, folder)
    assert last["kind"] == "incremental" and last["records"] > 0
    listed = json.loads((folder / "manifest.json").read_text())["entries"]
    assert [e["kind"] for e in listed] == ["full", "incremental", "incremental"]
    assert listed[1]["since"] == listed[0]["watermark"] < listed[1]["watermark"]


async def test_sqlite_backup_restores_into_a_new_file(source: MemoryStack, tmp_path: Path) -> None:
    """The full backup is the database file (online backup API); restored into a stack
    whose file does not exist, then the increments: same exports, same reads."""
    folder = tmp_path / "backups"
    await _three_backups(source, laptop(tmp_path), folder)
    assert (folder / "0001-full.db").exists()
    restored_cfg = laptop(tmp_path, "restored")
    done = await restore(restored_cfg, folder)
    assert [a["how"] for a in done["applied"]] == ["file", "import", "import"]
    async with await build_memory(restored_cfg) as restored:
        await _same(source, restored, tmp_path)


async def test_sqlite_backup_restores_into_single_node(
    source: MemoryStack, server: MemoryStack, tmp_path: Path, request: pytest.FixtureRequest,
    namespace: str,
) -> None:
    """A SQLite backup restored into Redis over PostgreSQL: the full file's records are
    copied in, then the increments imported."""
    folder = tmp_path / "backups"
    await _three_backups(source, laptop(tmp_path), folder)
    done = await restore(single_node(request, namespace), folder)
    assert [a["how"] for a in done["applied"]] == ["copy", "import", "import"]
    await _same(source, server, tmp_path)


async def test_postgres_backup_restores_into_another_schema(
    source: MemoryStack, server: MemoryStack, tmp_path: Path, request: pytest.FixtureRequest,
    namespace: str,
) -> None:
    """A single-node store backed up from PostgreSQL (repeatable-read exports) and restored
    into another namespace holds what the first one holds."""
    assert (await copy(source, server)).verified
    folder = tmp_path / "backups"
    cfg = single_node(request, namespace)
    await _three_backups(server, cfg, folder)
    assert (folder / "0001-full.jsonl.gz").exists()
    other = single_node(request, f"{namespace}_r")
    await restore(other, folder)
    restored = await build_memory(other)
    try:
        await _same(server, restored, tmp_path)
    finally:
        await clear_stack(restored)
        await restored.close()


async def test_restore_needs_a_full_backup(tmp_path: Path) -> None:
    """A folder without backups is refused with a message saying what to do."""
    with pytest.raises(InvalidInput, match="run backup first"):
        await restore(laptop(tmp_path), tmp_path / "empty")


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``backup`` twice (full, then incremental) and ``restore``, with JSON summaries."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"tiers:\n  - {{kind: sqlite, path: {tmp_path / 's.db'}}}\n")
    target = tmp_path / "t.yaml"
    target.write_text(f"tiers:\n  - {{kind: sqlite, path: {tmp_path / 't.db'}}}\n")
    folder = str(tmp_path / "b")
    assert main(["backup", str(cfg), folder]) == 2
    assert "no SQLite database" in capsys.readouterr().err
    assert main(["check", str(cfg)]) == 0  # makes the database
    capsys.readouterr()
    assert main(["backup", str(cfg), folder, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "full"
    assert main(["backup", str(cfg), folder]) == 0
    assert "incremental backup" in capsys.readouterr().out
    assert main(["restore", str(target), folder, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["applied"]) == 2
    assert main(["restore", str(target), str(tmp_path / "none")]) == 2


async def test_a_postgres_snapshot_does_not_see_later_writes(
    server: MemoryStack, request: pytest.FixtureRequest, namespace: str
) -> None:
    """Pages read in one snapshot all see the store as it was when the snapshot began,
    whatever is written meanwhile: a backup is one instant."""
    cfg = load_config(single_node(request, namespace))
    tier = cfg.tiers[-1]
    assert isinstance(tier, PostgresConfig)
    await server.store_messages(
        [Message(role=MessageRole.USER, content=f"before {i}") for i in range(5)], "snap"
    )
    async with postgres_snapshot(tier, cfg.namespace) as snap:
        mark = await snap.watermark()
        await server.store_messages(
            [Message(role=MessageRole.USER, content=f"after {i}") for i in range(5)], "snap"
        )
        await server.delete_memory("00000000-0000-4000-8000-000000000000")
        seen = [r async for r in snap.records(("message",), None)]
        assert await snap.watermark() == mark
        assert [t async for t in snap.tombstones(None)] == []
    assert sorted(r.message.content for r in seen) == [f"before {i}" for i in range(5)]
    assert await server.watermark() > mark
