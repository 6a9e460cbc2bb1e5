"""The maintenance runner: steps per user, the lease, archival, the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bruno_memory.cli import main
from bruno_memory.config.lifecycle import ArchiveConfig, LifecycleConfig
from bruno_memory.core.archived import is_archived
from bruno_memory.drivers.lease import FileLease, RedisLease
from bruno_memory.drivers.redis import connect
from bruno_memory.managers.lifecycle import summaries_of
from bruno_memory.managers.lifecycle.archival import unarchive
from bruno_memory.managers.lifecycle.lease import LeaseHeld, held
from bruno_memory.managers.lifecycle.runner import Runner, make_steps
from tests.lifecycle.helpers import converse


async def test_runner_summarises_then_archives_every_user(sqlite_memory: Any) -> None:
    """All users are found; archived messages leave the window and come back on unarchive."""
    memory = sqlite_memory
    a = await converse(memory, "u1", sessions=3)
    await converse(memory, "u2", sessions=2)
    cfg = LifecycleConfig(archive=ArchiveConfig(after=0, keep_recent=6))
    reports = await Runner(memory, make_steps(cfg)).run()
    assert {r.user_id for r in reports} == {"u1", "u2"}
    assert sum(r.archived for r in reports if r.user_id == "u1") == 12
    assert len(await memory.retrieve_messages(a)) == 6  # the archived left the window
    again = await Runner(memory, make_steps(cfg)).run()
    assert sum(r.added + r.archived for r in again) == 0  # resumable: nothing left to do
    assert await unarchive(memory, a) == 12
    restored = await memory.retrieve_messages(a)
    assert len(restored) == 18 and not any(is_archived(m) for m in restored)
    assert len(await summaries_of(memory, "u1")) == 4


async def test_a_second_runner_is_refused_while_the_lease_is_held(tmp_path: Path) -> None:
    """Two file leases on one path: the second cannot be taken until the first is released."""
    first, second = FileLease(tmp_path / "lock"), FileLease(tmp_path / "lock")
    async with held(first):
        with pytest.raises(LeaseHeld):
            async with held(second):
                pass
    async with held(second):
        pass


async def test_redis_lease_expires_when_its_holder_stops_renewing(
    redis_url: str, namespace: str
) -> None:
    """A Redis lease is exclusive, and a dead holder's lease is freed after its ttl."""
    name = f"{namespace}:maintain"
    dead = RedisLease(connect(redis_url), name, ttl=0.2)
    assert await dead.acquire()  # and then never renewed nor released: its holder died
    other = RedisLease(connect(redis_url), name, ttl=0.2)
    assert not await other.acquire()
    client = connect(redis_url)
    try:
        assert 0 < await client.pttl(name) <= 200  # it expires on its own
        await client.delete(name)  # what its expiry does (tests never sleep out a ttl)
    finally:
        await client.aclose()
    assert await other.acquire()
    assert not await dead.renew()  # a holder back from the dead cannot take it back
    await other.release()
    await dead.client.aclose()


def test_cli_maintain_dry_run_then_run(tmp_path: Path, capsys: Any) -> None:
    """``maintain --dry-run --json`` reports, ``maintain`` writes, a rerun adds nothing."""
    import asyncio

    from bruno_memory import build_memory

    config = tmp_path / "stack.yaml"
    config.write_text(f"namespace: clitest\ntiers:\n  - kind: sqlite\n    path: {tmp_path}/m.db\n")

    async def seed() -> None:
        memory = await build_memory(str(config))
        await converse(memory, "cli", sessions=2)
        await memory.close()

    asyncio.run(seed())
    assert main(["maintain", str(config), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["totals"]["added"] == 2  # the sessions (not the roll-up)
    assert main(["maintain", str(config), "--json", "--user", "cli"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["added"] == 3
    assert main(["maintain", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["added"] == 0


async def test_periodic_runs_until_stopped(sqlite_memory: Any) -> None:
    """The in-process task runs the steps once at start and stops when asked."""
    from bruno_memory.managers.lifecycle.runner import Periodic

    await converse(sqlite_memory, "per", sessions=2)
    seen: list[str] = []
    ran = asyncio.Event()

    def progress(step: str, user: str) -> None:
        seen.append(user)
        ran.set()

    periodic = Periodic(Runner(sqlite_memory, make_steps(LifecycleConfig()), progress=progress),
                        3600)
    periodic.start()
    await ran.wait()
    await periodic.stop()
    assert seen == ["per"] and len(await summaries_of(sqlite_memory, "per")) == 3


async def test_get_context_has_the_summary_with_lifecycle_context(tmp_path: Path) -> None:
    """With ``context:`` and ``lifecycle:`` in the YAML, get_context starts with the
    summaries of what came before the recent turns."""
    from bruno_memory import build_memory

    memory = await build_memory({
        "namespace": "ctx", "context": {"max_tokens": 2048, "min_recent": 4},
        "lifecycle": {}, "tiers": [{"kind": "sqlite", "path": str(tmp_path / "c.db")}]})
    try:
        conversation = await converse(memory, "ctx", sessions=3)
        await Runner(memory, make_steps(LifecycleConfig())).run()
        ctx = await memory.get_context("ctx", conversation)
        summary = [m for m in ctx.messages if m.content.startswith("Summary of the earlier")]
        assert len(summary) == 1 and "Session 0" in summary[0].content
    finally:
        await memory.close()


async def test_postgres_lease_is_freed_when_its_holder_dies(postgres_dsn: str,
                                                           namespace: str) -> None:
    """An advisory-lock lease excludes a second holder and is freed when the holder's
    connection dies (its backend is terminated, as when its process is killed)."""
    import asyncpg

    from bruno_memory.drivers.lease import PostgresLease

    name = f"{namespace}:maintain"
    holder, other = PostgresLease(postgres_dsn, name), PostgresLease(postgres_dsn, name)
    assert await holder.acquire()
    assert not await other.acquire()
    admin = await asyncpg.connect(postgres_dsn)
    try:
        pids = await admin.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = (hashtext($1)::bigint & 4294967295)::oid", name)
        assert len(pids) == 1
        # waits (up to 10 s) until the backend is gone and its locks are freed
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pids[0]["pid"])
    finally:
        await admin.close()
    assert await other.acquire()
    await other.release()
    await holder.release()
