"""The Redis Stream journal on a Redis Cluster (test-owned servers): a stack journals there
and the next process replays; lost scripts and groups come back; a cluster that cannot be
reached is unavailable; appends follow a master's failover to its replica. The journal
behaviours themselves run on a cluster too, in ``test_journal.py``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from bruno_memory import build_memory
from bruno_memory.config.models import JournalConfig
from bruno_memory.core.errors import TierUnavailable
from bruno_memory.core.opcodec import encode_op
from bruno_memory.drivers.redis import connect
from bruno_memory.policies.write_behind.journal_redis import RedisJournal
from bruno_memory.policies.write_behind.journals import create_journal
from bruno_memory.testing.worker import Worker, msg_id
from tests.policies.test_faults import sqlite_ids
from tests.policies.test_journal import memory, mput, off_seed
from tests.redis_servers import (
    REDIS_CLI,
    Cluster,
    RedisServer,
    cluster_url,
    spare_port,
    start_cluster,
    start_server,
)

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[RedisCluster]:
    """A client of the session's cluster, for looking at what a journal left there."""
    client = connect(cluster_url(request), cluster=True)
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


async def gone(client: RedisCluster, key: str) -> None:
    """Wait until ``key`` is gone (a dead writer's liveness key expires with its lease)."""
    for _ in range(100):
        if not await client.exists(key):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never expired")


async def test_a_stack_replays_what_a_killed_process_journaled_on_a_cluster(
    cluster: RedisCluster, request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> None:
    """A write-behind stack acknowledges writes once journaled on the cluster; after its
    process is SIGKILLed, the next stack claims and replays them into SQLite."""
    seed = cluster_url(request)  # a namespace whose default stream is off the seed node
    stream = off_seed(seed, lambda i: f"journal:{{{namespace}{i}:durable}}")
    namespace = stream.removeprefix("journal:{").removesuffix(":durable}")
    journal: dict[str, Any] = {"kind": "redis", "url": seed, "cluster": True, "lease": "300ms"}
    cfg: dict[str, Any] = {"namespace": namespace, "tiers": [{
        "name": "durable", "kind": "sqlite", "path": str(tmp_path / "d.db"),
        "write": "write-behind", "on_error": "queue", "journal": journal,
        "write_behind": {"interval": "1h", "batch_size": 1000}}]}
    writer = Worker({**cfg, "tiers": [{
        **cfg["tiers"][0], "journal": {**journal, "owner": "killed"}}]})
    try:
        await writer.start()
        await writer.send(cmd="store", conversation="c", count=40)
        while "done" not in await writer.read():  # until every store_message returned
            pass
        writer.kill()
        assert writer.proc is not None
        await writer.proc.wait()
        assert await sqlite_ids(tmp_path / "d.db", "c") == []  # only the journal has them
        assert await cluster.xlen(stream) == 40
        await gone(cluster, f"{stream}:alive:killed")
        stack = await build_memory(cfg)
        try:
            await stack.flush()
            health = await stack.health()
            assert health["durable"]["metrics"]["write_behind"]["replayed"] == 40
        finally:
            await stack.close()
        ids = await sqlite_ids(tmp_path / "d.db", "c")
        assert sorted(ids) == sorted(msg_id("c", i) for i in range(40))
        assert await cluster.xlen(stream) == 0
    finally:
        if writer.proc is not None and writer.proc.returncode is None:
            writer.kill()
            await writer.proc.wait()
        await cluster.delete(stream, f"{stream}:dead")


async def test_a_lost_script_and_a_deleted_stream_come_back_on_the_next_append(
    cluster: RedisCluster, request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> None:
    """After SCRIPT FLUSH on every master (NOSCRIPT) and then the stream deleted (NOGROUP),
    appends still land, owned by the writer; the cluster is reached from seed ``nodes``."""
    seed = cluster_url(request)
    cfg = JournalConfig(kind="redis", nodes=(seed.split("//")[1].split("/")[0],),
                        stream=off_seed(seed, lambda i: f"{{{namespace}{i}}}:journal"))
    j = create_journal(cfg, "durable", namespace, tmp_path)
    assert isinstance(j, RedisJournal)
    op = encode_op(mput(memory()))
    await j.open()
    try:
        await cluster.script_flush()  # every master
        assert await cluster.script_exists(j._sha) == [False]
        first = await j.append([op])
        await cluster.delete(j.stream)
        second = await j.append([op, op])
        pending = await cluster.xpending(j.stream, cfg.group)
        assert len(first) == 1 and len(second) == 2
        assert pending["pending"] == 2 and pending["consumers"] == [
            {"name": j.owner.encode(), "pending": 2}]
    finally:
        await j.aclose()
        await cluster.delete(j.stream, f"{j.stream}:dead")


async def test_a_cluster_that_cannot_be_reached_is_unavailable(tmp_path: Path) -> None:
    """Seed nodes that answer nothing make open() fail as TierUnavailable, not a driver error."""
    port = spare_port()
    cfg = JournalConfig(kind="redis", url=f"redis://127.0.0.1:{port}",
                        nodes=(f"127.0.0.1:{port}",), timeout=0.5)
    j = create_journal(cfg, "durable", "t", tmp_path)
    with pytest.raises(TierUnavailable):
        await j.open()


# -- a master fails over to its replica ------------------------------------------------


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A 3-master cluster of this test's own (it kills a master), stopped afterwards."""
    cluster = start_cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def owner_of(cluster: Cluster, key: str) -> RedisServer:
    """The master that serves ``key``'s slot."""
    for node in cluster.nodes:
        try:
            node.client().exists(key)
        except redis.exceptions.MovedError:
            continue
        return node
    raise AssertionError(f"no node serves {key}")


def add_replica(cluster: Cluster, master: RedisServer, folder: Path) -> RedisServer:
    """A new server, replica of ``master``, once it has synced."""
    assert REDIS_CLI is not None
    replica = start_server(folder, cluster=True)
    cluster.nodes.append(replica)  # stopped with the cluster
    master_id = master.client().cluster("MYID").decode()
    subprocess.run([REDIS_CLI, "--cluster", "add-node", replica.address, master.address,
                    "--cluster-slave", "--cluster-master-id", master_id],
                   check=True, capture_output=True, timeout=60)
    synced(master, replica)
    return replica


def synced(master: RedisServer, replica: RedisServer, timeout: float = 30.0) -> None:
    """Wait until ``replica`` has every write ``master`` took so far."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        info = replica.client().info("replication")
        if info.get("master_link_status") == "up" and info["slave_repl_offset"] >= (
            master.client().info("replication")["master_repl_offset"]
        ):
            return
        time.sleep(0.05)
    raise AssertionError("the replica never caught up with its master")


async def test_appends_and_acks_follow_a_failover(
    own_cluster: Cluster, tmp_path: Path, namespace: str
) -> None:
    """The master of the journal's slot is SIGKILLed: appends fail as TierUnavailable
    (never another error) until its replica takes over, then land there, without waiting
    for anything else (here, a heartbeat) to refresh the slot map; entries journaled
    before stay pending, and all of them are acknowledged."""
    stream = f"{{{namespace}}}:journal"
    master = owner_of(own_cluster, stream)
    replica = add_replica(own_cluster, master, tmp_path)
    seed = next(n for n in own_cluster.nodes if n not in (master, replica))
    cfg = JournalConfig(kind="redis", url=seed.url, cluster=True, stream=stream, timeout=1.0,
                        lease=90)  # no heartbeat while the test runs
    j = create_journal(cfg, "durable", namespace, tmp_path)
    op = encode_op(mput(memory()))
    await j.open()
    try:
        before = await j.append([op, op])
        synced(master, replica)
        master.proc.kill()
        master.proc.wait(10)
        new, failures, until, promoted = replica.client(), 0, time.monotonic() + 30, 0.0
        while True:
            try:
                after = await j.append([op])
                break
            except TierUnavailable:
                failures += 1
            if not promoted and new.info("replication")["role"] == "master":
                promoted = time.monotonic()
            assert not promoted or time.monotonic() - promoted < 2, "appends stay on the dead node"
            assert time.monotonic() < until, "the replica never took over"
            await asyncio.sleep(0.1)
        assert failures > 0  # the journal saw the master go
        assert new.xpending(stream, cfg.group)["pending"] == 3
        await j.ack(before + after)
        assert new.xlen(stream) == 0
    finally:
        await j.aclose()
