"""Backups of a stack's authoritative tier into a folder, and restoring them.

The first backup into a folder is full, every later one incremental (what changed since
the previous one: records and tombstones), each a consistent snapshot: SQLite's online
backup API (the full one is a copy of the database file, every table and setting in it;
an increment is exported from such a copy), a ``REPEATABLE READ`` export on PostgreSQL.
``manifest.json`` lists the files in order; ``restore`` applies them in that order.

A write still queued by a write-behind policy in a running process is not in the
durable tier yet, so not in the backup: flush (or close) the stack first for a backup
that holds every acknowledged write.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bruno_memory.build import build_memory
from bruno_memory.config.loader import Source, load_config
from bruno_memory.config.models import StackConfig, TierConfig
from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.archive import KINDS, Header, copy, export, import_file
from bruno_memory.managers.archive.export import canonical, write
from bruno_memory.tiers.sql import text as _sql
from bruno_memory.tiers.sql.postgres import PostgresConfig
from bruno_memory.tiers.sql.schemas import is_durable
from bruno_memory.tiers.sql.snapshots import postgres_snapshot, sqlite_copy
from bruno_memory.tiers.sql.sqlite import SQLiteConfig

MANIFEST = "manifest.json"
FORMAT = 1


def header_of(cfg: StackConfig) -> Header:
    """What an archive's header says of the stack ``cfg`` describes."""
    emb = cfg.embedding
    return Header(
        cfg.namespace,
        embedding_model=emb.model if emb else None,
        embedding_dimension=emb.dimension if emb else None,
    )


def authoritative(cfg: StackConfig) -> TierConfig:
    """The stack's durable tier (the last SQLite or PostgreSQL one)."""
    durable = [t for t in cfg.tiers if is_durable(t)]
    if not durable:
        raise InvalidInput("the stack has no sqlite or postgres tier: nothing to back up")
    return durable[-1]


def manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's manifest (an empty one for a folder without backups)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "entries": []}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
        raise InvalidInput(f"{path} is not a bruno-memory backup manifest (format {FORMAT})")
    return data


async def backup(
    source: Source | StackConfig, folder: str | Path, *, full: bool = False
) -> dict[str, Any]:
    """Back the stack up into ``folder``: a full snapshot if the folder has none (or
    ``full``), else what changed since the last backup. Returns the manifest entry."""
    cfg = source if isinstance(source, StackConfig) else load_config(source)
    tier = authoritative(cfg)
    target = Path(folder)
    listed = await asyncio.to_thread(_prepare, target)
    entries = listed["entries"]
    since = None if full or not entries else int(entries[-1]["watermark"])
    number = len(entries) + 1
    kind = "full" if since is None else "incremental"
    if isinstance(tier, SQLiteConfig):
        entry = await _sqlite_backup(cfg, tier, target, number, since)
    elif isinstance(tier, PostgresConfig):
        path = target / f"{number:04d}-{kind}.jsonl.gz"
        async with postgres_snapshot(tier, cfg.namespace) as snap:
            header = dataclasses.replace(
                header_of(cfg), since=since, watermark=await snap.watermark(), embeddings=True
            )
            done = await write(path, header, canonical(snap.tombstones(since),
                                                       snap.records(KINDS, since)))
        entry = {"file": path.name, "records": done.records, "watermark": header.watermark}
    else:
        raise InvalidInput(f"tier {tier.kind!r} cannot be backed up")
    entry = {"kind": kind, "engine": tier.kind, "since": since,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **entry}
    listed["namespace"] = cfg.namespace
    entries.append(entry)
    await asyncio.to_thread(_save, target / MANIFEST, listed)
    return entry


def _prepare(folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return manifest(folder)


def _exists(path: str) -> bool:
    return path != ":memory:" and Path(path).is_file()


def _fresh(path: str) -> bool:
    """Whether no database file is at ``path`` yet (its folder is made)."""
    if path == ":memory:" or Path(path).exists():
        return False
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return True


async def _sqlite_backup(
    cfg: StackConfig, tier: SQLiteConfig, target: Path, number: int, since: int | None
) -> dict[str, Any]:
    if not await asyncio.to_thread(_exists, tier.path):
        raise InvalidInput(
            f"there is no SQLite database at {tier.path!r} to back up: check the config's path"
        )
    async with await build_memory(_sqlite_stack(cfg.namespace, Path(tier.path))):
        pass  # its schema brought to this version's
    if since is None:
        path = target / f"{number:04d}-full.db"
        await sqlite_copy(tier.path, path, name=tier.name or tier.kind)
        return {"file": path.name, "watermark": _watermark(path)}
    with tempfile.TemporaryDirectory(dir=target) as scratch:
        snapshot = Path(scratch) / "snapshot.db"
        await sqlite_copy(tier.path, snapshot, name=tier.name or tier.kind)
        path = target / f"{number:04d}-incremental.jsonl.gz"
        async with await build_memory(_sqlite_stack(cfg.namespace, snapshot)) as memory:
            done = await export(memory, path, header=header_of(cfg), embeddings=True,
                                since=since)
    return {"file": path.name, "records": done.records, "watermark": done.header.watermark}


def _watermark(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(_sql.WATERMARK).fetchone()[0] or 0)
    finally:
        db.close()


def _sqlite_stack(namespace: str, path: Path) -> dict[str, Any]:
    return {"namespace": namespace, "tiers": [{"kind": "sqlite", "path": str(path)}]}


def _save(path: Path, data: dict[str, Any]) -> None:
    """Write the manifest whole or not at all."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(scratch, path)


async def restore(source: Source | StackConfig, folder: str | Path) -> dict[str, Any]:
    """Apply the backups of ``folder`` in order to the stack: the full one, then each
    increment. A full SQLite backup becomes the stack's file when the stack is SQLite and
    its file does not exist yet (every table and setting kept); otherwise its records are
    copied in. Returns what was applied."""
    cfg = source if isinstance(source, StackConfig) else load_config(source)
    folder = Path(folder)
    entries = (await asyncio.to_thread(manifest, folder))["entries"]
    if not entries or entries[0]["kind"] != "full":
        raise InvalidInput(f"{folder} holds no full backup to restore from: run backup first")
    start = max(i for i, e in enumerate(entries) if e["kind"] == "full")
    first, rest = entries[start], entries[start + 1 :]
    tier = authoritative(cfg)
    applied: list[dict[str, Any]] = []
    full = folder / first["file"]
    full_done = False
    if full.suffix == ".db" and isinstance(tier, SQLiteConfig):
        if await asyncio.to_thread(_fresh, tier.path):
            await sqlite_copy(full, tier.path, name=tier.name or tier.kind)
            applied.append({"file": first["file"], "how": "file"})
            full_done = True
    async with await build_memory(cfg) as memory:
        if not full_done:
            applied.append(
                {"file": first["file"], **await _apply_full(memory, full, cfg.namespace)}
            )
        for entry in rest:
            done = await import_file(memory, folder / entry["file"], on_conflict="overwrite")
            applied.append({"file": entry["file"], "how": "import", **done.summary()})
    return {"folder": str(folder), "applied": applied}


async def _apply_full(memory: Any, path: Path, namespace: str) -> dict[str, Any]:
    if path.suffix != ".db":
        return {"how": "import", **(await import_file(memory, path)).summary()}
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot.db"
        await sqlite_copy(path, snapshot)
        async with await build_memory(_sqlite_stack(namespace, snapshot)) as backed:
            done = await copy(backed, memory)
    return {"how": "copy", **done.summary()}
