"""``redis``: the shared hot cache tier (redis-py asyncio + hiredis, single node or Cluster).

Windows, sessions, users and memories by id, each kind with its own TTL, under a key
prefix per namespace (see ``redis_keys`` for the layout). A missing key is a miss.
Every ``write`` is one round trip (per node), and concurrent writes share one
(``core.group_commit``: one ``write`` in flight at a time, the others gathered behind it,
each caller answered when its batch is): on a single server the batch's commands run in
one script call (``scripts.APPLY``), sent on a lean connection of the tier's own
(``drivers.redis_link``: hiredis packing, no pool; one of ``max_connections``); on a cluster
they go as a pipeline through the cluster client. Reads use the pooled client. Every command is
idempotent, so a batch cut by a dropped connection is re-sent once, whole, and a batch a
bad command failed is sent again one caller at a time.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import ConfigDict, SecretStr, field_serializer, field_validator, model_validator
from redis import exceptions as rx
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bruno_memory.config.models import Duration, PositiveInt, TierConfig
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.errors import TierUnavailable, translate_errors
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import Empty, Key, Miss, PurgeUser, Value, WriteOp, is_fill
from bruno_memory.core.queries import ServerEpoch
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Parts, Ride, RideFailed
from bruno_memory.drivers.redis import SeedNodes, check_cluster_db, connect
from bruno_memory.drivers.redis_errors import ERRORS
from bruno_memory.drivers.redis_link import OneConnection
from bruno_memory.tiers.base import BaseTier, TierContext, answers
from bruno_memory.tiers.redis.keys import (
    Command,
    KeyNames,
    Ttls,
    address,
    decode_record,
    lease,
    leased_fills,
    mask_url,
    parse_window,
    plan,
    settle_commands,
    window_range,
)
from bruno_memory.tiers.redis.scripts import (
    APPLY,
    APPLY_CHUNK,
    APPLY_SHA,
    FILL_RECORD_SHA,
    FILL_WINDOW_SHA,
    SCRIPTS,
)

T = TypeVar("T")
log = get_logger(__name__)

_NOT_DROPPED = (rx.AuthenticationError, rx.MaxConnectionsError)
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class RedisConfig(TierConfig):
    """``url`` may carry a password (or give it in ``password``); it is never shown.

    ``cluster: true`` treats ``url`` as one seed node of a Redis Cluster; ``nodes``
    lists seed nodes (``host:port``) and implies a cluster. ``ttl`` applies to every
    kind of key unless ``window_ttl``/``session_ttl``/``user_ttl``/``memory_ttl`` says
    otherwise; ``null`` never expires. ``prefix`` defaults to the stack's namespace.
    ``lease_ttl``: how long a fill lease lasts; a lower-tier read slower than that fills
    nothing (see ``tiers.base.Leased``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    password: SecretStr | None = None
    cluster: bool = False
    nodes: SeedNodes | None = None
    ttl: Duration | None = 3600.0
    window_ttl: Duration | None = None
    session_ttl: Duration | None = None
    user_ttl: Duration | None = None
    memory_ttl: Duration | None = None
    window: PositiveInt = 100
    socket_timeout: Duration = 5.0
    connect_timeout: Duration = 2.0
    max_connections: PositiveInt = 64
    prefix: str | None = None
    lease_ttl: Duration = 10.0

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(
                f"expected a redis:// or rediss:// URL with a host, got {mask_url(url)!r}"
            )
        try:
            parse_url(url)
        except ValueError as exc:
            raise ValueError(f"{exc} in {mask_url(url)!r}") from None
        return url

    @field_validator("ttl", "window_ttl", "session_ttl", "user_ttl", "memory_ttl", "lease_ttl")
    @classmethod
    def _ttl(cls, ttl: float | None) -> float | None:
        if ttl is not None and ttl < 0.001:
            raise ValueError("expected a TTL of at least 1ms (or null: never expire)")
        return ttl

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        if prefix is not None and not _PREFIX.match(prefix):
            raise ValueError(f"expected 1-64 letters, digits, '_', '.' or '-', got {prefix!r}")
        return prefix

    @model_validator(mode="after")
    def _consistent(self) -> RedisConfig:
        if self.password is not None and urlsplit(self.url).password is not None:
            raise ValueError("give the password either in 'url' or in 'password', not both")
        if self.is_cluster:
            check_cluster_db(self.url)
        return self

    @field_serializer("url")
    def _masked(self, url: str) -> str:
        return mask_url(url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "url" else value

    @property
    def is_cluster(self) -> bool:
        return self.cluster or self.nodes is not None

    def ms(self, ttl: float | None) -> int | None:
        """A per-kind TTL (falling back on ``ttl``) in whole milliseconds."""
        chosen = self.ttl if ttl is None else ttl
        return None if chosen is None else max(1, round(chosen * 1000))


class RedisTier(BaseTier[RedisConfig]):
    """Recent windows, sessions, users and memories shared by every process.

    Fills are leased (``Leased``), so a read of the tier below taken before another
    process's write never fills stale data. ``retries`` counts operations re-sent after
    a dropped connection; ``fills_dropped`` counts fills whose lease was revoked.
    """

    config_model = RedisConfig
    capabilities = frozenset(
        {Capability.WINDOWS, Capability.SESSIONS, Capability.USERS, Capability.MEMORIES,
         Capability.CLEAR, Capability.LEASES, Capability.SETTLES, Capability.EPOCH,
         Capability.DROP, Capability.RIDES}
    )

    def __init__(self, config: RedisConfig, context: TierContext | None = None) -> None:
        super().__init__(config, context)
        self.names = KeyNames(config.prefix or self.context.namespace)
        self.ttls = Ttls(config.ms(config.window_ttl), config.ms(config.session_ttl),
                         config.ms(config.user_ttl), config.ms(config.memory_ttl))
        self.retries = self.fills_dropped = 0
        self._lease_ms = max(1, round(config.lease_ttl * 1000))
        self._client: Any = None
        self._link: OneConnection | None = None  # writes, on a single server
        # On a single server the write link is one of ``max_connections``: the pool gets
        # the rest (with ``max_connections: 1`` there is no link; writes use the pool).
        self._linked = not config.is_cluster and config.max_connections > 1
        self._pooled = config.max_connections - 1 if self._linked else config.max_connections
        self._slots = asyncio.Semaphore(self._pooled)
        self._writes: GroupCommit[_Writing] | None = None
        self._scripted = False  # batches go as APPLY calls: on one server (see open)
        self._cluster = False

    @property
    def address(self) -> str:
        """Where the tier connects, without credentials: for messages and logs."""
        if self.config.nodes:
            return "redis cluster " + ",".join(self.config.nodes)
        kind = "redis cluster" if self.config.cluster else "redis"
        return f"{kind} {address(self.config.url)}"

    def metrics(self) -> dict[str, Any]:
        """Re-sent operations, revoked fills, and how writes shared pipelines
        (``pipelines``: ``core.group_commit.GroupCommitStats``; ``scripted``: batches are
        sent as one script call)."""
        return {"retries": self.retries, "fills_dropped": self.fills_dropped,
                "prefix": self.names.prefix, "scripted": self._scripted,
                "pipelines": self._writes.metrics() if self._writes else {}}

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        self._writes = GroupCommit(self._write_all, tier=self.name)
        self._client = self._connect(max_connections=self._pooled)
        self._cluster = isinstance(self._client, RedisCluster)
        self._scripted = not self._cluster
        if self._linked:  # bounded by socket_timeout as one (see OneConnection)
            self._link = OneConnection(self._connect(single_connection_client=True,
                                                     socket_timeout=None),
                                       timeout=self.config.socket_timeout)
        try:
            await self._run("open", self._hello, retry=False)
        except BaseException:
            await self.aclose()
            raise

    def _connect(self, **extra: Any) -> Any:
        cfg = self.config
        common: dict[str, Any] = {
            "socket_timeout": cfg.socket_timeout,
            "socket_connect_timeout": cfg.connect_timeout,
            "retry": Retry(NoBackoff(), 0),  # the one retry is ours: see _run
            "client_name": f"bruno-memory.{self.names.prefix}",
            "max_connections": cfg.max_connections,
            **extra,
        }
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        return connect(cfg.url, cluster=cfg.cluster, nodes=cfg.nodes, password=password, **common)

    async def _hello(self) -> None:
        if isinstance(self._client, RedisCluster):
            await self._client.initialize()
        await self._client.ping()
        if self._link is not None:  # connected now: a refusal shows at open, not on a write
            await self._link.send(("PING",))
        await self._load_scripts()

    async def _load_scripts(self) -> None:
        for script in SCRIPTS:
            await self._client.script_load(script)

    async def ping(self) -> None:
        await self._run("ping", self._client.ping)

    @answers(ServerEpoch)
    async def _epoch(self, q: ServerEpoch) -> str | None:
        """The ``run_id`` of the server (of each primary, on a cluster): it changes when a
        node restarts, with its old data (AOF, RDB) or none."""
        if isinstance(self._client, RedisCluster):
            info = await self._run("epoch", lambda: self._client.info(
                "server", target_nodes=RedisCluster.PRIMARIES))
            ids = sorted(str(v.get("run_id")) for v in info.values() if isinstance(v, dict))
            return ",".join(ids) or None
        found = await self._run("epoch", lambda: self._client.info("server"))
        return str(found.get("run_id")) if found.get("run_id") else None

    async def aclose(self) -> None:
        if self._writes is not None:
            await self._writes.aclose()  # writes in flight land before the client closes
        client, self._client = self._client, None
        link, self._link = self._link, None
        if client is not None:
            await client.aclose()
        if link is not None:
            await link.aclose()

    # -- reads ------------------------------------------------------------------------

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        wanted = [k for k in keys if k.ns != "message"]  # messages live in windows
        if not wanted:
            return {}
        names = [self.names.record(k) for k in wanted]
        client = self._client
        fetch = client.mget_nonatomic if isinstance(client, RedisCluster) else client.mget
        raw = await self._run("get", lambda: fetch(names))
        with self._errors("get"):
            pairs = zip(wanted, raw, strict=True)
            return {k: decode_record(k, v) for k, v in pairs if v is not None}

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        start, stop = window_range(limit)
        name = self.names.window(conversation_id)
        items = await self._run("window", lambda: self._client.lrange(name, start, stop))
        with self._errors("window"):
            return parse_window(items, conversation_id, limit)

    async def clear(self) -> int:
        """Delete every key under this tier's prefix (SCAN, then DEL); returns how many."""

        async def scan_and_delete() -> int:
            found = [k async for k in self._client.scan_iter(match=self.names.pattern, count=500)]
            if found:
                await self._send([("DEL", k) for k in found])
            return len(found)

        return await self._run("clear", scan_and_delete)

    async def drop(self) -> None:
        """Delete every key under the prefix (SCAN, on every node of a cluster)
        (``Droppable``)."""
        await self.clear()

    # -- writes -----------------------------------------------------------------------

    async def lease(self, target: Key | str) -> str | None:
        """A fill lease on a record or a conversation's window (``Leased``)."""
        if isinstance(target, Key) and target.ns == "message":
            return None  # messages are cached in windows, never filled by id
        token = secrets.token_hex(8)
        name = lease(self.names.target(target))
        await self._run("lease", lambda: self._client.set(name, token, px=self._lease_ms))
        return token

    async def settle(self, targets: Iterable[Hashable]) -> list[Hashable]:
        """After a write-behind flush: undo fills that may have read the tier below before
        the flushed writes reached it; returns the targets undone (others drop them too).

        Targets are what ``policies.drops.drops_for`` names: record keys and
        ``("window", conversation id)``.
        """
        calls = settle_commands(targets, self.names)
        if not calls:
            return []
        replies = await self._run("settle", lambda: self._batch([c for _, c in calls]))
        return [t for (t, _), raced in zip(calls, replies, strict=True) if raced]

    async def write(self, ops: Sequence[WriteOp]) -> None:
        users = [op.user_id for op in ops if isinstance(op, PurgeUser)]
        purged = await self._index_members(users) if users else {}
        cmds = plan(ops, self.names, self.ttls, self.config.window, purged, self._lease_ms)
        if not cmds:
            return
        if self._writes is None:
            raise TierUnavailable("the tier is not open (call open())", tier=self.name,
                                  op="write")
        writing = _Writing(cmds)
        await self._writes.submit(writing)
        replies = writing.replies
        if not any(is_fill(op) and op.lease is not None for op in ops):
            return  # not a fill: nothing to count or undo
        self.fills_dropped += sum(1 for c, r in zip(cmds, replies, strict=True)
                                  if r == 0 and c[0] == "EVALSHA" and c[1] in _FILLS)
        filled = leased_fills(ops, self.names)
        if filled:
            await self._undo_purged(filled)

    def ride(self, ops: Sequence[WriteOp]) -> Ride | None:
        """``ops`` as an ``APPLY`` part another tier's script call to this server runs
        (``tiers.base.Rides``): on one server, for writes that need no read first (no
        purge, no fill) and fit one call."""
        if not self._scripted or self._writes is None or self.config.password is not None:
            return None
        if any(is_fill(op) or isinstance(op, PurgeUser) for op in ops):
            return None
        cmds = plan(ops, self.names, self.ttls, self.config.window, {}, self._lease_ms)
        if not cmds or len(cmds) > APPLY_CHUNK:
            return None
        try:
            batch = orjson.dumps(cmds, default=_text)
        except (TypeError, UnicodeDecodeError):
            return None
        return Ride(self.config.url, APPLY, (), (batch,), item=len(cmds), join=_joined)


    async def rode(self, ops: Sequence[WriteOp], ride: Ride) -> None:
        """A ridden write: raises (translated) if its part failed on the server."""
        if isinstance(ride.reply, RideFailed):
            with self._errors("write"):
                raise rx.ResponseError(ride.reply.error)

    async def _undo_purged(self, filled: dict[str, list[str]]) -> None:
        """Delete what the fills just wrote for a user purged meanwhile.

        The fill's key-index entry went out with it: a purge that read the index before
        sees the key; one that read it after marked the user first, and is seen here.
        """
        users = list(filled)
        names = [self.names.purged(u) for u in users]
        client = self._client
        fetch = client.mget_nonatomic if isinstance(client, RedisCluster) else client.mget
        marks = await self._run("write", lambda: fetch(names))
        gone = [("DEL", n) for u, m in zip(users, marks, strict=True) if m for n in filled[u]]
        if gone:
            await self._run("write", lambda: self._send(gone))

    async def _index_members(self, users: list[str]) -> dict[str, list[bytes]]:
        """The keys written for each user about to be purged (one round trip)."""
        names = [self.names.user_index(u) for u in users]
        members = await self._run("write", lambda: self._send([("SMEMBERS", n) for n in names]))
        return {u: list(m) for u, m in zip(users, members, strict=True)}

    async def _write_all(self, batch: Sequence[_Writing]) -> None:
        """One round trip for the writes of ``batch`` (one script call on a single server,
        one pipeline on a cluster); each gets its own replies."""
        cmds = batch[0].cmds if len(batch) == 1 else [c for w in batch for c in w.cmds]
        replies = await self._run("write", lambda: self._batch(cmds))
        if len(batch) == 1:
            batch[0].replies = replies
            return
        at = 0
        for w in batch:
            w.replies = replies[at : at + len(w.cmds)]
            at += len(w.cmds)

    async def _batch(self, cmds: list[Command]) -> list[Any]:
        """``cmds`` as one ``APPLY`` script call (see ``scripts.APPLY``), or as a pipeline on
        a cluster (keys in many slots) or when an argument is not text."""
        if len(cmds) == 1 or not self._scripted:
            return await self._pipeline(cmds)
        try:
            calls: list[Command] = [
                ("EVALSHA", APPLY_SHA, 0, orjson.dumps(cmds[at : at + APPLY_CHUNK], default=_text))
                for at in range(0, len(cmds), APPLY_CHUNK)
            ]
        except (TypeError, UnicodeDecodeError):
            return await self._pipeline(cmds)
        try:
            return [reply for replies in await self._pipeline(calls) for reply in replies]
        except rx.ResponseError as exc:  # a bad command, or a server refusing the script
            replies = await self._pipeline(cmds)  # idempotent: sent again, one by one
            self._scripted = False  # the commands pass alone: the script is what failed
            log.warning("redis refused the batch script; writes go as pipelines",
                        tier=self.name, address=self.address, error=str(exc)[:200])
            return replies

    async def _pipeline(self, cmds: list[Command]) -> list[Any]:
        try:
            return await self._send(cmds)
        except rx.NoScriptError:  # the server restarted or flushed its scripts
            await self._load_scripts()
            return await self._send(cmds)

    async def _send(self, cmds: list[Command]) -> list[Any]:
        if self._link is not None:  # a single server: replies raw (no reply callbacks)
            return await self._link.send(*cmds)
        pipe = self._client.pipeline(transaction=False)
        for cmd in cmds:
            pipe.execute_command(*cmd)
        result: list[Any] = await pipe.execute()
        return result

    # -- errors and the single retry --------------------------------------------------

    def _errors(self, op: str) -> Any:
        return translate_errors(self.name, op, ERRORS)

    async def _run(self, op: str, call: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """Call the driver: errors translated; a dropped connection re-sends once.

        At most as many calls are in flight as the pool has connections; the others wait
        their turn.
        """
        if self._client is None:
            raise TierUnavailable(f"{self.address}: not open (open the stack first)",
                                  tier=self.name, op=op)
        async with self._slots:
            with self._errors(op):
                try:
                    return await self._attempt(call)
                except rx.ConnectionError as exc:
                    if not retry or isinstance(exc, _NOT_DROPPED):
                        raise
                    await self._dropped(op, exc)
                return await self._attempt(call)

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except rx.AuthenticationError as exc:
            cfg = self.config
            if cfg.password is None and "password" not in parse_url(cfg.url):
                hint = "it needs a password: give it in url (redis://:PASSWORD@host) or password"
            else:
                hint = f"it refused the credentials ({exc}): check the password"
            raise rx.AuthenticationError(f"{self.address}: {hint}") from exc

    async def _dropped(self, op: str, exc: Exception) -> None:
        self.retries += 1
        log.warning("redis connection dropped, retrying once", tier=self.name, op=op,
                    address=self.address, error=type(exc).__name__)
        if isinstance(self._client, RedisCluster):  # a node may have failed over: refresh
            await self._client.nodes_manager.initialize()  # the slot map, keep healthy links


_FILLS = frozenset({FILL_RECORD_SHA, FILL_WINDOW_SHA})


def _joined(rides: Sequence[Ride]) -> Parts:
    """Rides of concurrent writes as ``APPLY`` parts: their commands in order, at most
    ``APPLY_CHUNK`` to a part (a script blocks the server while it runs)."""
    if len(rides) == 1:
        return [(rides[0], [rides[0]])]
    groups: list[list[Ride]] = [[]]
    size = 0
    for ride in rides:
        if groups[-1] and size + ride.item > APPLY_CHUNK:
            groups.append([])
            size = 0
        groups[-1].append(ride)
        size += ride.item
    return [(_apply(group), group) for group in groups]


def _apply(rides: Sequence[Ride]) -> Ride:
    """One ``APPLY`` part running the commands of ``rides``, in order."""
    if len(rides) == 1:
        return rides[0]
    batch = b"[" + b",".join(ride.args[0][1:-1] for ride in rides) + b"]"
    return Ride(rides[0].server, APPLY, (), (batch,))


def _text(data: Any) -> str:
    """Bytes as JSON text for ``APPLY`` (cache payloads are UTF-8 JSON)."""
    if isinstance(data, bytes):
        return data.decode()
    raise TypeError(f"cannot send {type(data).__name__} in a script call")


@dataclass(slots=True)
class _Writing:
    """One ``write``'s commands, and their replies once its pipeline is sent."""

    cmds: list[Command]
    replies: list[Any] = field(default_factory=list)

__all__ = ["RedisConfig", "RedisTier"]
