"""Redis-specific behaviour of the ``redis`` tier, against real servers.

Command counts and pauses use test-owned servers, so no other test's traffic is counted
or paused; the shared server and the session's test-owned Cluster serve the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis as sync_redis
from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole
from redis import exceptions as rx
from redis.asyncio.connection import AbstractConnection

from bruno_memory.build import create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.core.codec import key_of
from bruno_memory.core.errors import (
    BrunoMemoryConfigError,
    CorruptRecord,
    TierError,
    TierUnavailable,
    translate_errors,
)
from bruno_memory.core.ops import MISS, FillRecord, FillWindow, Key, PurgeUser, Put, WriteOp
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.base import TierContext
from bruno_memory.tiers.redis import tier as redis_tier
from bruno_memory.tiers.redis.keys import KeyNames, element, window_ids
from bruno_memory.tiers.redis.tier import ERRORS, RedisConfig, RedisTier
from bruno_memory.tiers.window import Window, merge_into, serve
from tests.redis_servers import RedisServer, cluster_url, owned_server

pytestmark = pytest.mark.redis
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SECRET = "s3cret-Pa55"


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server only this module uses (its counters and pauses are ours)."""
    yield from owned_server(tmp_path_factory.mktemp("redis-own"))


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A test-owned redis-server that requires a password."""
    yield from owned_server(tmp_path_factory.mktemp("redis-locked"), password=SECRET)


@pytest.fixture(params=["single", "cluster"])
def target(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Tier settings for the shared server, then for the test-owned Redis Cluster."""
    if request.param == "single":
        return {"url": request.getfixturevalue("redis_url")}
    return {"url": cluster_url(request), "cluster": True}


@contextlib.asynccontextmanager
async def opened(namespace: str, **config: Any) -> AsyncIterator[RedisTier]:
    """A redis tier built from a validated config, its keys deleted afterwards."""
    cfg = load_config({"namespace": namespace, "tiers": [{"kind": "redis", **config}]}).tiers[0]
    tier = create_tier(cfg, TierContext(namespace=namespace))
    assert isinstance(tier, RedisTier)
    await tier.open()
    try:
        yield tier
    finally:
        with contextlib.suppress(TierError):
            await tier.clear()
        await tier.aclose()


def msg(conv: str, i: float, user: str | None = "u1") -> MessageRecord:
    m = Message(role=MessageRole.USER, content=f"message {i}", timestamp=T0 + timedelta(seconds=i))
    return MessageRecord(m, conv, user)


def put(value: Any) -> Put:
    return Put(key_of(value), value)


def memory(user: str = "u1") -> MemoryEntry:
    return MemoryEntry(content="likes tea", memory_type=MemoryType.FACT, user_id=user)


def client_of(url: str, cluster: bool = False) -> Any:
    if cluster:
        return sync_redis.RedisCluster.from_url(url)
    return sync_redis.Redis.from_url(url)


def connection_ids(admin: sync_redis.Redis, tier: RedisTier) -> list[int]:
    name = f"bruno-memory.{tier.names.prefix}"
    return [c["id"] for c in admin.client_list() if c["name"] == name]


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every write of a request to any Redis socket (a round trip each)."""
    sent = [0]
    real = AbstractConnection.send_packed_command

    async def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        await real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def calls(server: RedisServer, *commands: str) -> int:
    stats = server.client().info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in commands)


# -- configuration and secrets -----------------------------------------------------------


def test_bad_scheme_is_a_config_error_naming_the_key_without_the_password() -> None:
    """A non-redis URL fails at load time at tiers[0].url, and the password is masked."""
    with pytest.raises(BrunoMemoryConfigError) as info:
        load_config({"tiers": [{"kind": "redis", "url": f"http://:{SECRET}@127.0.0.1:6379"}]})
    assert "tiers[0].url" in str(info.value) and "redis://" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(ValueError) as direct:
        RedisConfig(url=f"postgres://:{SECRET}@127.0.0.1")
    assert SECRET not in str(direct.value)


def test_config_rejects_bad_nodes_ttls_and_password_twice() -> None:
    """Malformed nodes, a zero TTL and a password given twice are refused at load time."""
    bad = [
        ({"nodes": ["127.0.0.1"]}, "tiers[0].nodes"),
        ({"nodes": []}, "tiers[0].nodes"),
        ({"window_ttl": "0s"}, "tiers[0].window_ttl"),
        ({"url": f"redis://:{SECRET}@h:1", "password": "x"}, "not both"),
        ({"cluster": True, "url": "redis://h:1/3"}, "database 0"),
        ({"prefix": "a:b"}, "tiers[0].prefix"),
    ]
    for extra, expected in bad:
        with pytest.raises(BrunoMemoryConfigError) as info:
            load_config({"tiers": [{"kind": "redis", **extra}]})
        assert expected in str(info.value) and SECRET not in str(info.value)


def test_password_never_appears_in_repr_or_dump() -> None:
    """Neither a URL password nor a ``password`` key shows in repr, str or model_dump."""
    for extra in ({"url": f"redis://user:{SECRET}@10.0.0.1:6379/0"}, {"password": SECRET}):
        cfg = load_config({"tiers": [{"kind": "redis", **extra}]}).tiers[0]
        tier = create_tier(cfg, TierContext())
        for text in (repr(cfg), str(cfg), repr(tier), str(cfg.model_dump()), cfg.model_dump_json()):
            assert SECRET not in text
    assert "user:***@10.0.0.1" in repr(RedisConfig(url=f"redis://user:{SECRET}@10.0.0.1:6379/0"))


async def test_refused_connection_at_open_names_tier_and_address(namespace: str) -> None:
    """open() on a port nobody listens on raises TierUnavailable naming the tier and host:port."""
    from tests.redis_servers import spare_port

    port = spare_port()
    with pytest.raises(TierUnavailable) as info:
        async with opened(namespace, name="hot", url=f"redis://:{SECRET}@127.0.0.1:{port}/0"):
            pass
    text = str(info.value)
    assert "'hot'" in text and f"127.0.0.1:{port}" in text and SECRET not in text


async def test_wrong_password_is_a_tier_error_naming_the_address(
    locked: RedisServer, namespace: str
) -> None:
    """A refused or missing password is a TierError naming tier and address, never the password."""
    wrong = "not-the-" + SECRET
    with pytest.raises(TierError) as info:
        async with opened(namespace, name="hot", url=f"redis://:{wrong}@{locked.address}/0"):
            pass
    assert not isinstance(info.value, TierUnavailable)
    text = str(info.value)
    assert "'hot'" in text and locked.address in text and "password" in text
    assert wrong not in text and SECRET not in text
    with pytest.raises(TierError, match="needs a password"):
        async with opened(namespace, url=f"redis://{locked.address}/0"):
            pass
    async with opened(namespace, url=f"redis://{locked.address}/0", password=SECRET) as tier:
        await tier.ping()


async def test_timeout_is_tier_unavailable(own: RedisServer, namespace: str) -> None:
    """A server that does not answer within socket_timeout gives TierUnavailable."""
    async with opened(namespace, url=own.url, socket_timeout="100ms") as tier:
        own.client().client_pause(400, all=True)  # CLIENT UNPAUSE would wait too
        with pytest.raises(TierUnavailable):
            await tier.get([Key("user", "u1")])
        await asyncio.sleep(0.5)  # the pause ends by itself


# -- keys, prefixes, TTLs ----------------------------------------------------------------


async def test_prefixes_isolate_namespaces(redis_url: str, namespace: str) -> None:
    """Two prefixes never see (or clear) each other's keys, even when one extends the other."""
    session = SessionContext(user_id="u1")
    async with opened(namespace, url=redis_url) as a, opened(namespace + "x", url=redis_url) as b:
        await a.write([put(session), FillWindow(session.conversation_id, (msg("c", 1),), True)])
        await b.write([put(SessionContext(user_id="u2", session_id=session.session_id))])
        assert (await a.get([key_of(session)]))[key_of(session)] == session
        assert (await b.get([key_of(session)]))[key_of(session)].user_id == "u2"
        assert await b.window(session.conversation_id, 5) is MISS
        assert await b.clear() == 3  # session, conversation, user index
        assert (await a.get([key_of(session)]))[key_of(session)] == session


async def test_ttl_is_applied_per_kind(redis_url: str, namespace: str) -> None:
    """Each kind of key gets its own TTL; the user index outlives them all."""
    ttls = {"ttl": "1h", "window_ttl": "10m", "session_ttl": "20m", "memory_ttl": "40m"}
    session, entry = SessionContext(user_id="u1"), memory()
    async with opened(namespace, url=redis_url, **ttls) as tier:
        conv = session.conversation_id
        await tier.write(
            [
                put(session),
                put(UserContext(user_id="u1")),
                put(entry),
                FillWindow(conv, (msg(conv, 1),), True),
            ]
        )
        n, admin = tier.names, client_of(redis_url)
        expected = {
            n.window(conv): 600,
            n.record(Key("conversation", conv)): 1200,
            n.record(key_of(session)): 1200,
            n.record(Key("user", "u1")): 3600,
            n.record(key_of(entry)): 2400,
            n.user_index("u1"): 3600,
        }
        for name, seconds in expected.items():
            assert seconds * 1000 - 60_000 < admin.pttl(name) <= seconds * 1000, name
        admin.pexpire(n.window(conv), 5000)
        await tier.write([put(msg(conv, 2))])  # a put into a cached window refreshes its TTL
        assert admin.pttl(n.window(conv)) > 540_000


async def test_ttl_null_never_expires(redis_url: str, namespace: str) -> None:
    """``ttl: null`` writes keys without expiry."""
    async with opened(namespace, url=redis_url, ttl=None) as tier:
        await tier.write([put(UserContext(user_id="u1")), FillWindow("c", (msg("c", 1),), True)])
        admin = client_of(redis_url)
        assert admin.pttl(tier.names.record(Key("user", "u1"))) == -1
        assert admin.pttl(tier.names.window("c")) == -1


async def test_conversation_keys_share_one_cluster_slot(
    request: pytest.FixtureRequest, namespace: str
) -> None:
    """A conversation's window and session keys share a slot; conversations spread over nodes."""
    url = cluster_url(request)
    admin = client_of(url, cluster=True)
    names = KeyNames(namespace)
    slots = {admin.keyslot(names.window(c)) for c in ("a", "b", "{x}")}
    assert len(slots) == 3
    for conv in ("a", "a}b", "{x}", "ä-😀"):
        assert admin.keyslot(names.window(conv)) == admin.keyslot(names.conversation(conv, "sess"))
    async with opened(namespace, url=url, cluster=True) as tier:
        sessions = [SessionContext(user_id="u1") for _ in range(12)]
        await tier.write([put(s) for s in sessions])
        await tier.write(
            [FillWindow(s.conversation_id, (msg(s.conversation_id, 1),), True) for s in sessions]
        )
        await tier.write([put(msg(s.conversation_id, 2)) for s in sessions])
        for s in sessions:
            assert [r.message.content for r in await tier.window(s.conversation_id, 2)] == [
                "message 1",
                "message 2",
            ]
        owners = {
            admin.get_node_from_key(tier.names.window(s.conversation_id)).name for s in sessions
        }
        assert len(owners) > 1


async def test_seed_nodes_list_connects_to_the_cluster(
    request: pytest.FixtureRequest, namespace: str
) -> None:
    """``nodes: [host:port]`` reaches the whole cluster from its seeds."""
    seed = cluster_url(request).split("//")[1].split("/")[0]
    async with opened(namespace, nodes=[seed]) as tier:
        entries = [memory() for _ in range(20)]
        await tier.write([put(e) for e in entries])
        got = await tier.get([key_of(e) for e in entries])
        assert [got[key_of(e)] for e in entries] == entries


# -- round trips --------------------------------------------------------------------------


async def test_a_write_is_one_round_trip(
    own: RedisServer, namespace: str, round_trips: list[int]
) -> None:
    """One write of 70 records and a window fill is one pipeline: one round trip."""
    async with opened(namespace, url=own.url) as tier:
        sessions = [SessionContext(user_id=f"u{i % 3}") for i in range(20)]
        entries = [memory(f"u{i % 3}") for i in range(50)]
        ops: list[WriteOp] = [put(v) for v in (*sessions, *entries)]
        ops.append(FillWindow("c", tuple(msg("c", i) for i in range(20)), True))
        sets = calls(own, "set")
        round_trips[0] = 0
        await tier.write(ops)
        assert round_trips[0] == 1
        assert calls(own, "set") - sets == 2 * len(sessions) + len(entries)
        round_trips[0] = 0
        got = await tier.get([key_of(v) for v in (*sessions, *entries)])
        assert len(got) == 70 and round_trips[0] == 1
        round_trips[0] = 0
        assert len(await tier.window("c", 20)) == 20 and round_trips[0] == 1


async def test_concurrent_writes_on_one_server_are_one_script_call(
    own: RedisServer, namespace: str
) -> None:
    """Writes gathered behind one in flight are sent as one APPLY call: each keeps its own
    replies (a fill whose lease was revoked is dropped alone), and the scripts are loaded
    again after a flush."""
    async with opened(namespace, url=own.url) as tier:
        await tier.write([FillWindow("c", (), True)])
        entries = [memory(f"u{i % 3}") for i in range(20)]
        messages = [msg("c", i) for i in range(10)]
        held = await tier.lease(key_of(entries[0]))
        revoked = await tier.lease(key_of(entries[1]))
        await tier.write([put(entries[1])])  # revokes the second lease
        assert await tier.get([key_of(entries[1])]) == {key_of(entries[1]): entries[1]}
        own.client().script_flush()
        evals, sets = calls(own, "evalsha"), calls(own, "set")
        writes = [
            tier.write([FillRecord(key_of(entries[0]), entries[0], held)]),
            tier.write([FillRecord(key_of(entries[1]), memory("stale"), revoked)]),
            *(tier.write([put(e)]) for e in entries[2:]),
            *(tier.write([put(m)]) for m in messages),
        ]
        await asyncio.gather(*writes)
        assert tier.fills_dropped == 1 and tier.metrics()["scripted"] is True
        assert calls(own, "evalsha") - evals <= 4  # the first alone, then a batch or two
        assert calls(own, "set") - sets >= len(entries) - 1  # run inside the script
        got = await tier.get([key_of(e) for e in entries])
        assert got == {key_of(e): e for e in entries}
        assert [r.id for r in await tier.window("c", None)] == [m.id for m in messages]


async def test_a_server_refusing_the_batch_script_gets_pipelines(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that will not run APPLY (here: it never knows its digest) gets the same
    commands as a pipeline, from then on."""
    monkeypatch.setattr(redis_tier, "APPLY_SHA", "0" * 40)
    async with opened(namespace, url=redis_url) as tier:
        entries = [memory(f"u{i}") for i in range(3)]
        await tier.write([put(e) for e in entries])
        assert await tier.get([key_of(e) for e in entries]) == {key_of(e): e for e in entries}
        await tier.write([put(memory())])
        assert tier.metrics()["scripted"] is False


async def test_settle_undoes_only_fills_that_raced(target: dict[str, Any], namespace: str) -> None:
    """After a flush, settle drops what a fill may have read too early (a lease out, or a
    fill made since) and keeps what a write put there; one call for every target."""
    async with opened(namespace, **target) as tier:
        leased, filled, written = memory("a"), memory("b"), memory("c")
        await tier.lease(key_of(leased))
        token = await tier.lease(key_of(filled))
        await tier.write([FillRecord(key_of(filled), filled, token), put(written)])
        targets = [key_of(leased), key_of(filled), key_of(written)]
        assert await tier.settle(targets) == targets[:2]
        assert await tier.get(targets) == {key_of(written): written}
        assert await tier.settle(targets) == []


async def test_cluster_write_is_one_round_trip_per_node(
    request: pytest.FixtureRequest, namespace: str, round_trips: list[int]
) -> None:
    """On a cluster a write sends at most one pipeline to each of the 3 masters."""
    async with opened(namespace, url=cluster_url(request), cluster=True) as tier:
        entries = [memory() for _ in range(60)]
        await tier.write([put(memory())])  # warm: topology and connections
        round_trips[0] = 0
        await tier.write([put(e) for e in entries])
        assert 1 <= round_trips[0] <= 3
        round_trips[0] = 0
        assert len(await tier.get([key_of(e) for e in entries])) == 60
        assert round_trips[0] <= 3


# -- errors --------------------------------------------------------------------------------


def test_error_map_covers_every_driver_exception() -> None:
    """Every redis-py exception class translates to one of our TierErrors."""
    classes = [c for c in vars(rx).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) > 20
    for cls in classes:
        try:
            exc = cls("3999 127.0.0.1:7000")  # MOVED/ASK parse their message
        except (TypeError, ValueError):
            continue
        with pytest.raises(TierError), translate_errors("hot", "get", ERRORS):
            raise exc
    with pytest.raises(TierUnavailable), translate_errors("hot", "get", ERRORS):
        raise rx.ConnectionError("reset")
    with pytest.raises(TierError) as info, translate_errors("hot", "get", ERRORS):
        raise rx.AuthenticationError("bad")
    assert not isinstance(info.value, TierUnavailable)


async def test_undecodable_values_are_corrupt_records(redis_url: str, namespace: str) -> None:
    """Garbage under a record key or in a window is CorruptRecord; a wrong type is a TierError."""
    async with opened(namespace, url=redis_url) as tier:
        admin = client_of(redis_url)
        admin.set(tier.names.record(Key("user", "u1")), b"u{not json")
        admin.set(
            tier.names.record(Key("memory", "m1")), UserContext(user_id="x").model_dump_json()
        )
        admin.rpush(tier.names.window("c"), b"#1", b"garbage")
        for call in (
            tier.get([Key("user", "u1")]),
            tier.get([Key("memory", "m1")]),
            tier.window("c", 5),
        ):
            with pytest.raises(CorruptRecord):
                await call
        admin.set(tier.names.window("d"), b"a string")
        with pytest.raises(TierError) as info:
            await tier.window("d", 5)
        assert not isinstance(info.value, (TierUnavailable, CorruptRecord))


# -- windows under concurrency, retries, idempotence ---------------------------------------


async def test_concurrent_writers_keep_a_window_exact(
    target: dict[str, Any], namespace: str
) -> None:
    """Eight tiers (own connections) putting 80 messages in random order leave the exact window."""
    records = [msg("busy", i) for i in range(80)]
    shuffled = sorted(records, key=lambda r: uuid.uuid4().hex)
    async with contextlib.AsyncExitStack() as stack:
        tiers = [
            await stack.enter_async_context(opened(namespace, window=1000, **target))
            for _ in range(8)
        ]
        await tiers[0].write([FillWindow("busy", (), True)])
        await asyncio.gather(*(tiers[i % 8].write([put(r)]) for i, r in enumerate(shuffled)))
        got = await tiers[0].window("busy", None)
        assert [r.id for r in got] == [r.id for r in records]
        small = await stack.enter_async_context(opened(namespace + "s", window=10, **target))
        await small.write([FillWindow("busy", (), True)])
        await asyncio.gather(*(small.write([put(r)]) for r in shuffled))
        assert await small.window("busy", 11) is MISS
        assert [r.id for r in await small.window("busy", 10)] == [r.id for r in records[-10:]]


async def test_purge_user_removes_windows_sessions_and_conversations(
    target: dict[str, Any], namespace: str
) -> None:
    """PurgeUser drops the user's windows (own and by conversation), sessions and memories only."""
    gone, kept = SessionContext(user_id="gone"), SessionContext(user_id="kept")
    async with opened(namespace, **target) as tier:
        await tier.write(
            [
                put(gone),
                put(kept),
                put(memory("gone")),
                put(memory("kept")),
                FillWindow(gone.conversation_id, (msg(gone.conversation_id, 1, None),), True),
                FillWindow("shared", (msg("shared", 1, "kept"), msg("shared", 2, "gone")), True),
                FillWindow(kept.conversation_id, (msg(kept.conversation_id, 1, "kept"),), True),
            ]
        )
        await tier.write([put(msg(gone.conversation_id, 2, "gone"))])  # indexes the window
        ids = window_ids(tier.names.window(gone.conversation_id))
        admin = client_of(target["url"], target.get("cluster", False))
        assert admin.hlen(ids) == 3  # two ids and the newest one's
        await tier.write([put(UserContext(user_id="gone")), PurgeUser("gone")])
        assert not admin.exists(ids)
        assert await tier.window(gone.conversation_id, 1) is MISS
        assert await tier.window("shared", 1) is MISS
        assert len(await tier.window(kept.conversation_id, 1)) == 1
        keys = [key_of(gone), Key("conversation", gone.conversation_id), Key("user", "gone")]
        assert await tier.get(keys) == {}
        assert (await tier.get([key_of(kept)]))[key_of(kept)] == kept


async def test_dropped_idle_connection_is_invisible(target: dict[str, Any], namespace: str) -> None:
    """A connection killed between two calls costs nothing: the next call succeeds."""
    async with opened(namespace, **target) as tier:
        await tier.write([put(UserContext(user_id="u1"))])
        admin = client_of(target["url"], target.get("cluster", False))
        for node in admin.get_nodes() if target.get("cluster") else [None]:
            one = admin.get_redis_connection(node) if node else admin
            for cid in connection_ids(one, tier):
                one.client_kill_filter(_id=cid)
        assert (await tier.get([Key("user", "u1")]))[Key("user", "u1")].user_id == "u1"
        await tier.write([put(UserContext(user_id="u2"))])
        assert tier.retries <= 2  # once per connection at most: the pool's, the write link's


async def test_connection_dropped_mid_write_is_retried_once(
    own: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A write whose connection is killed while in flight is re-sent once and applied once."""
    async with opened(namespace, url=own.url) as tier:
        conv = "mid"
        await tier.write([FillWindow(conv, (msg(conv, 1),), True)])
        admin = own.client()
        admin.client_pause(10_000, all=False)  # WRITE: the tier's next write waits
        try:
            with caplog.at_level(logging.WARNING, logger="bruno_memory.tiers.redis.tier"):
                task = asyncio.create_task(
                    tier.write([put(msg(conv, 2)), put(UserContext(user_id="u1"))])
                )
                blocked = await _wait_blocked(admin, tier)
                admin.client_kill_filter(_id=blocked)
                admin.client_unpause()
                await task
        finally:
            admin.client_unpause()
        assert tier.retries == 1
        assert [r.message.content for r in await tier.window(conv, None)] == [
            "message 1",
            "message 2",
        ]
        logs = [r.getMessage() for r in caplog.records]
        assert logs and all(f"address='redis {own.address}'" in line for line in logs)


async def test_writes_survive_their_link_being_killed(own: RedisServer, namespace: str) -> None:
    """Writes go on a connection of their own (``drivers.redis_link``): killed while idle,
    the next write finds it dead, reconnects and is re-sent once; then again, in step."""
    async with opened(namespace, url=own.url) as tier:
        admin = own.client()
        for i in range(2):
            fill = FillWindow("k", (msg("k", 0),), True)
            await tier.write([fill, put(UserContext(user_id="u1"))])
            for cid in connection_ids(admin, tier):
                admin.client_kill_filter(_id=cid)
            await tier.write([put(msg("k", i + 1)), put(UserContext(user_id=f"u{i + 2}"))])
            assert tier.retries == i + 1
        assert [r.message.content for r in await tier.window("k", None)] == [
            "message 0", "message 2"]  # the second fill reset the window
        got = await tier.get([Key("user", "u2"), Key("user", "u3")])
        assert sorted(u.user_id for u in got.values()) == ["u2", "u3"]


@pytest.mark.parametrize("most", [1, 3])
async def test_connections_stay_within_max_connections(
    own: RedisServer, namespace: str, most: int
) -> None:
    """The write link is one of ``max_connections`` (none with 1: writes use the pool);
    concurrent reads and writes never open more, and every write lands."""
    async with opened(namespace, url=own.url, max_connections=most) as tier:
        admin = own.client()
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, len(connection_ids(admin, tier)))
                await asyncio.sleep(0.002)

        watching = asyncio.ensure_future(watch())
        try:
            for round_ in range(5):
                await asyncio.gather(
                    *(tier.write([put(UserContext(user_id=f"u{round_}-{i}"))]) for i in range(20)),
                    *(tier.get([Key("user", f"u{round_}-{i}")]) for i in range(40)),
                )
        finally:
            watching.cancel()
        assert 1 <= peak <= most and len(connection_ids(admin, tier)) <= most
        assert (tier._link is None) == (most == 1)
        got = await tier.get([Key("user", f"u{r}-{i}") for r in range(5) for i in range(20)])
        assert len(got) == 100


async def test_a_write_times_out_per_socket_timeout(own: RedisServer, namespace: str) -> None:
    """A write the server does not answer within socket_timeout raises TierUnavailable;
    once the server answers again, the next write and read are in step."""
    async with opened(namespace, url=own.url, socket_timeout="100ms") as tier:
        await tier.write([put(UserContext(user_id="u1"))])
        own.client().client_pause(400, all=True)
        with pytest.raises(TierUnavailable):
            await tier.write([put(UserContext(user_id="u2")), put(memory())])
        await asyncio.sleep(0.5)  # the pause ends by itself
        await tier.write([put(UserContext(user_id="u3"))])
        got = await tier.get([Key("user", u) for u in ("u1", "u2", "u3")])
        assert {"u1", "u3"} <= {u.user_id for u in got.values()}
        assert tier.retries == 0  # a timeout is not re-sent


async def _wait_blocked(admin: sync_redis.Redis, tier: RedisTier) -> int:
    name = f"bruno-memory.{tier.names.prefix}"
    for _ in range(200):
        for c in admin.client_list():
            if c["name"] == name and "b" in c["flags"]:
                return int(c["id"])
        await asyncio.sleep(0.01)
    raise AssertionError("the tier's write never reached the paused server")


async def test_resending_a_write_changes_nothing(target: dict[str, Any], namespace: str) -> None:
    """Applying the same batch twice leaves exactly the state of applying it once."""
    s = SessionContext(user_id="u1")
    conv = s.conversation_id
    async with opened(namespace, window=3, **target) as tier:
        batch: list[WriteOp] = [
            put(s),
            put(memory()),
            FillWindow(conv, (msg(conv, 1),), True),
            put(msg(conv, 2)),
            put(msg(conv, 3)),
            put(msg(conv, 4)),
            put(msg(conv, 0.5)),
        ]
        await tier.write(batch)
        once = await _dump(tier, target)
        await tier.write(batch)
        assert await _dump(tier, target) == once
        assert [r.message.content for r in await tier.window(conv, 3)] == [
            "message 2",
            "message 3",
            "message 4",
        ]


async def _dump(tier: RedisTier, target: dict[str, Any]) -> dict[str, Any]:
    admin = client_of(target["url"], target.get("cluster", False))
    out: dict[str, Any] = {}
    for key in admin.scan_iter(match=tier.names.pattern):
        kind = admin.type(key)
        out[key] = {
            b"string": admin.get,
            b"list": lambda k: admin.lrange(k, 0, -1),
            b"set": admin.smembers,
            b"hash": admin.hgetall,
        }[kind](key)
    return out


async def test_flushed_scripts_are_reloaded(own: RedisServer, namespace: str) -> None:
    """After SCRIPT FLUSH (e.g. a restarted server) a put into a window still works."""
    async with opened(namespace, url=own.url) as tier:
        await tier.write([FillWindow("c", (msg("c", 1),), True)])
        own.client().script_flush()
        await tier.write([put(msg("c", 2))])
        assert len(await tier.window("c", 2)) == 2


async def test_window_semantics_match_the_pure_rules(redis_url: str, namespace: str) -> None:
    """Older-than-held puts skip a partial window, a moved timestamp invalidates, limit 0 hits."""
    async with opened(namespace, url=redis_url, window=3) as tier:
        records = tuple(msg("w", i) for i in (5, 6, 7))
        await tier.write([FillWindow("w", records, False)])
        await tier.write([put(msg("w", 1))])
        assert [r.id for r in await tier.window("w", 3)] == [r.id for r in records]
        assert await tier.window("w", 0) == () and await tier.window("nothing", 0) is MISS
        moved = MessageRecord(records[0].message.model_copy(update={"timestamp": T0}), "w", "u1")
        await tier.write([put(moved)])
        assert await tier.window("w", 1) is MISS
        await tier.write([FillWindow("e", (), True)])
        assert await tier.window("e", 10) == ()


async def test_the_newest_message_is_appended_without_reading_the_window(
    own: RedisServer, namespace: str
) -> None:
    """Once a put has indexed a window's ids, putting newer messages reads none of it."""
    records = [msg("long", i) for i in range(130)]
    async with opened(namespace, url=own.url, window=100) as tier:
        await tier.write([FillWindow("long", tuple(records[:100]), True)])
        await tier.write([put(records[100])])  # reads the window once, indexing its ids
        admin = own.client()
        admin.config_resetstat()
        for r in records[101:]:
            await tier.write([put(r)])
        stats = admin.info("commandstats")
        assert "cmdstat_lrange" not in stats
        assert stats["cmdstat_rpush"]["calls"] == 29
        got = await tier.window("long", 100)
        assert [r.id for r in got] == [r.id for r in records[-100:]]
        assert await tier.window("long", 101) is MISS  # trimmed: no longer complete
        index = window_ids(tier.names.window("long"))
        assert admin.hlen(index) == 101  # an id per message, and the newest one's
        for r in (records[60], records[-1]):  # indexed by the rebuild, then by an append
            assert admin.hget(index, r.id) == repr(r.sort_key).encode()
        assert admin.hget(index, "#tail #") == records[-1].id.encode()


@pytest.mark.parametrize("seed", range(8))
async def test_puts_into_a_window_follow_the_pure_rules(
    redis_url: str, namespace: str, seed: int
) -> None:
    """Random puts (newest, older, re-stored, moved), the ids hash now and then evicted,
    leave the window exactly what ``tiers.window.merge_into`` makes of the same puts."""
    rng = random.Random(seed)
    size = 4
    async with opened(namespace, url=redis_url, window=size) as tier:
        admin = client_of(redis_url)
        ids = window_ids(tier.names.window("p"))
        initial = tuple(msg("p", i) for i in range(rng.randint(0, 6)))
        complete = rng.random() < 0.5
        pure: Window | None = Window(initial, complete).trimmed(size)
        await tier.write([FillWindow("p", initial, complete)])
        stored = list(initial)
        for step in range(60):
            roll = rng.random()
            if roll < 0.1:
                admin.delete(ids)  # evicted: the next put reads the window instead
            if stored and roll < 0.3:  # the same message again, edited
                old = rng.choice(stored).message
                rec = MessageRecord(old.model_copy(update={"content": f"edit {step}"}), "p", "u1")
            elif stored and roll < 0.38:  # moved to another time
                old = rng.choice(stored).message
                when = old.timestamp + timedelta(seconds=rng.choice([-3, 2, 30]))
                rec = MessageRecord(old.model_copy(update={"timestamp": when}), "p", "u1")
            else:  # new: mostly the newest, sometimes older than what is held
                rec = msg("p", 6 + step + rng.choice([0, 0, 0, -8, -2]))
            stored.append(rec)
            await tier.write([put(rec)])
            pure = None if pure is None else merge_into(pure, rec, size)
            for limit in (None, 1, size, size + 1):
                want = MISS if pure is None else serve(pure, limit)
                got = await tier.window("p", limit)
                if want is MISS:
                    assert got is MISS, (step, limit)
                else:
                    assert got is not MISS, (step, limit)
                    assert [(r.id, r.message.content) for r in got] == [
                        (r.id, r.message.content) for r in want
                    ], (step, limit)


async def test_a_window_changed_behind_its_index_is_read_again(
    redis_url: str, namespace: str
) -> None:
    """A window another writer changed without its ids hash (a process of an earlier
    version) is not trusted: the index names another newest message, so the next put reads
    the window, and a message moved to a later time invalidates it instead of doubling."""
    records = [msg("old", i) for i in range(1, 5)]
    async with opened(namespace, url=redis_url, window=3) as tier:
        await tier.write([FillWindow("old", tuple(records[:3]), True)])
        await tier.write([put(records[3])])  # indexed: 2, 3, 4
        win = tier.names.window("old")
        admin = client_of(redis_url)
        fifth = msg("old", 5)
        admin.rpush(win, element(fifth))  # appended and trimmed, the index untouched
        admin.lset(win, 1, b"#0")
        admin.lpop(win)
        moved = MessageRecord(fifth.message.model_copy(
            update={"timestamp": fifth.message.timestamp + timedelta(seconds=9)}), "old", "u1")
        await tier.write([put(moved)])
        assert await tier.window("old", 1) is MISS
