"""Cross-process invalidation of a local cache over Redis pub/sub.

Every process publishes what its writes change (as drops: see ``drops``) on one channel
per namespace; every other process applies those drops to its local cache. The bound
holds even when messages are lost: a subscriber pings its channel and, if it has not
heard from Redis for ``max_lag``, it stops serving from the cache (misses) until it is
subscribed again, and it clears the cache before serving again.

Each message also names the users the writes touched, so the stack's query-result cache
(``stack.results.QueryCache``) follows this tier's change feed (``tiers.base.ChangeFeed``)
and drops those users' results in every process; after a resubscription it hears "any
user" (what was missed is unknown).

Fills are leased (``tiers.base.Leased``): the lease is the count of drops heard for the
target, so a fill read before a drop arrived is refused however long the read took.

Why pub/sub rather than RESP3 client tracking: the local cache is filled from every
tier below it (Redis *and* SQL), and tracking only covers keys read through one Redis
connection; pub/sub carries our own drops, so it covers windows, purges and records
whatever tier they came from, on a single node or a cluster, with any client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import orjson
from redis import exceptions as rx
from redis.asyncio import Redis

from bruno_memory.config.models import InvalidationConfig, TierConfig, mask_password
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.drops import drops_for, users_of
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.core.generations import Generations
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.logs import get_logger
from bruno_memory.core.opcodec import DecodeError, decode_op, encode_op, frame, unframe
from bruno_memory.core.ops import MISS, Empty, Fill, FillWindow, Key, Miss, Value, WriteOp, is_fill
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.rides import Parts, Ride, RideFailed
from bruno_memory.policies.base import PolicyTier, stop_tasks
from bruno_memory.tiers.base import Tier, TierContext, Users

log = get_logger(__name__)
_Drops = tuple[list[bytes], set[str | None]]
"""One write's encoded drops, and the users whose query results it may change."""
PUBLISH = "return redis.call('PUBLISH', KEYS[1], ARGV[1])"
"""A publication as a ride part (``core.rides``)."""
LOST = (rx.ConnectionError, rx.TimeoutError, OSError, TimeoutError)


class Invalidation(PolicyTier):
    """Keeps a local cache coherent with the other processes sharing its namespace.

    Args:
        cfg: the Redis URL, channel and ``max_lag``.
        namespace: the stack's namespace (the default channel is ``<namespace>:invalidate``).
        clock: monotonic seconds.
    """

    added = frozenset({Capability.LEASES, Capability.CHANGES, Capability.RIDES})
    # fills are checked against the drops heard; the users each remote write touched are
    # told to ``follow``ers; a write's publication can ride another tier's script call

    def __init__(self, inner: Tier, cfg: InvalidationConfig, namespace: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.cfg, self._clock = cfg, clock
        self.channel = cfg.channel or f"{namespace}:invalidate"
        self.sender = uuid.uuid4().hex.encode()
        self._heard = float("-inf")  # when Redis last spoke on the subscription
        self._synced = False
        self._drops = Generations()  # drops heard per target: the fill leases
        self._listener: asyncio.Task[None] | None = None
        self._pub: Any = None
        self._listeners: list[Callable[[Users], None]] = []
        self._publishing: GroupCommit[_Drops] = GroupCommit(self._send, tier=self.name)
        self.received = self.published = self.publish_failures = 0

    def _settings(self) -> str:
        url = mask_password(self.cfg.url)
        return f"url={url!r}, channel={self.channel!r}, max_lag={self.cfg.max_lag}"

    async def open(self) -> None:
        if Capability.CLEAR not in self.inner.capabilities:
            raise BrunoMemoryConfigError(
                f"invalidation needs a local cache it can clear (kind: lru), not {self.inner!r}",
                path="invalidation")
        await self.inner.open()
        self._pub = self._client()
        self._listener = asyncio.create_task(self._listen())

    def _client(self) -> Any:
        t = self.cfg.max_lag
        return Redis.from_url(self.cfg.url, socket_timeout=t, socket_connect_timeout=t,
                              client_name="bruno-memory.invalidation")

    async def aclose(self) -> None:
        await self._publishing.aclose()  # what writes are publishing goes out first
        if self._listener is not None:
            await stop_tasks([self._listener], self.cfg.max_lag)
        if self._pub is not None:
            await _quietly(self._pub.aclose(), self.cfg.max_lag)
        await self.inner.aclose()

    # -- serving only while in sync -------------------------------------------------

    def follow(self, listener: Callable[[Users], None]) -> None:
        """Call ``listener`` with the users every remote write touched (``{None}``: any)."""
        self._listeners.append(listener)

    def _tell(self, users: Users) -> None:
        for listener in self._listeners:
            listener(users)

    def in_sync(self) -> bool:
        """Subscribed, and Redis was heard from within ``max_lag``."""
        return self._synced and self._clock() - self._heard <= self.cfg.max_lag

    async def get(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        return await self.inner.get(keys) if self.in_sync() else {}

    async def window(
        self, conversation_id: str, limit: int | None
    ) -> Sequence[MessageRecord] | Miss:
        return await super().window(conversation_id, limit) if self.in_sync() else MISS

    async def lease(self, target: Key | str) -> str | None:
        """A fill lease: the drops heard for ``target`` so far (none while out of sync)."""
        return str(self._drops.stamp(_target(target))) if self.in_sync() else None

    async def write(self, ops: Sequence[WriteOp]) -> None:
        changes = [op for op in ops if not is_fill(op)]
        fills = [op for op in ops if is_fill(op) and self._fill_allowed(op)]
        if fills and self.in_sync():
            await self.inner.write(fills)
        if changes:
            await self.inner.write(changes)
            await self._publish(changes)

    def _fill_allowed(self, op: Fill) -> bool:
        """A fill read before a remote change arrived must not bring the old value back."""
        if op.lease is None:
            return True  # not through the stack: nothing to compare with
        target = _target(op.conversation_id) if isinstance(op, FillWindow) else op.key
        return op.lease == str(self._drops.stamp(target))

    # -- publishing -----------------------------------------------------------------

    async def _publish(self, ops: Sequence[WriteOp]) -> None:
        """Publish the drops of ``ops``; concurrent writes' drops go out as one message
        (``core.group_commit``), each write returning once the message holding its drops
        was published (or given up on: logged and counted)."""
        drops = [encode_op(d) for d in drops_for(ops).values()]
        await self._publishing.submit((drops, users_of(ops)))

    def _payload(self, batch: Sequence[_Drops]) -> bytes:
        drops = [d for encoded, _ in batch for d in encoded]
        everyone: set[str | None] = set().union(*(users for _, users in batch))
        users = orjson.dumps(sorted(everyone, key=lambda u: (u is None, u or "")))
        return self.sender + b"\n" + users + b"\n" + frame(drops)

    def ride(self, ops: Sequence[WriteOp]) -> Ride | None:
        """The publication of ``ops``' drops as a part of another tier's script call to
        this channel's server (``tiers.base.Rides``): it goes after that tier's part,
        so after the shared cache's writes sent before it."""
        if self._pub is None or any(is_fill(op) for op in ops):
            return None
        item = ([encode_op(d) for d in drops_for(ops).values()], users_of(ops))
        return Ride(self.cfg.url, PUBLISH, (self.channel,), item=item, join=self._joined)

    def _joined(self, rides: Sequence[Ride]) -> Parts:
        """The publication of one or more writes' drops: one message (as ``_publish``
        gathers concurrent writes' drops)."""
        payload = self._payload([ride.item for ride in rides])
        return [(Ride(self.cfg.url, PUBLISH, (self.channel,), (payload,)), list(rides))]

    async def rode(self, ops: Sequence[WriteOp], ride: Ride) -> None:
        """The local cache written once the ride's publication went out (or, if it
        failed there, published on its own)."""
        await self.inner.write(ops)
        if isinstance(ride.reply, RideFailed):
            await self._publish(ops)
        else:
            self.published += 1

    async def _send(self, batch: Sequence[_Drops]) -> None:
        payload = self._payload(batch)
        for attempt in (1, 2):
            try:
                await self._pub.publish(self.channel, payload)
                self.published += 1
                return
            except LOST as exc:
                if attempt == 2:
                    self.publish_failures += 1
                    log.error("invalidation not published", tier=self.name, error=str(exc))

    # -- listening ------------------------------------------------------------------

    async def _listen(self) -> None:
        pause = 0.05
        while True:
            try:
                await self._subscribed()
            except LOST as exc:
                log.warning("invalidation channel lost; cache bypassed", tier=self.name,
                            error=str(exc))
            self._synced = False
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.cfg.max_lag)

    async def _subscribed(self) -> None:
        client = self._client()
        pubsub = client.pubsub(push_handler_func=_pushed)
        try:
            await pubsub.subscribe(self.channel)
            beat = self.cfg.max_lag / 4
            if await pubsub.get_message(timeout=self.cfg.max_lag) is None:
                raise TimeoutError("no subscribe confirmation")
            await self.inner.clear()  # type: ignore[attr-defined]  # what we missed is gone
            self._drops.bump(Generations.ALL)  # and so are fills leased before
            self._tell(frozenset({None}))  # and results cached above: any user's
            self._heard, self._synced, pinged = self._clock(), True, self._clock()
            while True:
                message = await pubsub.get_message(timeout=beat)
                now = self._clock()
                if message is not None:
                    self._heard = now
                    await self._received(message)
                if now - pinged >= beat:
                    await pubsub.ping()
                    pinged = now
                if now - self._heard > self.cfg.max_lag:
                    raise TimeoutError(f"no word from Redis for {self.cfg.max_lag}s")
        finally:
            self._synced = False
            await _quietly(pubsub.aclose(), self.cfg.max_lag)
            await _quietly(client.aclose(), self.cfg.max_lag)

    async def _received(self, message: Mapping[str, Any]) -> None:
        if message.get("type") != "message":
            return
        sender, _, rest = bytes(message["data"]).partition(b"\n")
        if sender == self.sender:
            return
        named, _, body = rest.partition(b"\n")
        try:
            users = _users(named)
            drops = [decode_op(d) for d in unframe(body)]
        except DecodeError as exc:
            log.warning("invalidation message ignored", tier=self.name, error=str(exc))
            return
        self.received += 1
        targets = drops_for(drops)
        purge = any(isinstance(t, tuple) and t[0] == "user" for t in targets)
        self._drops.bump(Generations.ALL if purge else targets)  # a fill's owner is unknown
        await self.inner.write(drops)                             # when it is leased
        self._tell(users)

    def metrics(self) -> dict[str, Any]:
        mine = {"in_sync": self.in_sync(), "received": self.received,
                "published": self.published, "publish_failures": self.publish_failures}
        return {**super().metrics(), "invalidation": mine}


async def _pushed(message: Any) -> Any:
    """A RESP3 pub/sub message, handed on as it came: redis-py's default handler formats
    every message for a debug log line, whether or not that log is on."""
    return message


async def _quietly(closing: Any, timeout: float) -> None:
    """Close a connection without waiting on a peer that stopped answering."""
    with contextlib.suppress(*LOST, rx.RedisError):
        await asyncio.wait_for(closing, timeout)



def _users(named: bytes) -> Users:
    """The users a message names; raises ``DecodeError`` if it does not name them."""
    try:
        users = orjson.loads(named)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"users not JSON: {exc}") from exc
    if not isinstance(users, list) or not all(u is None or isinstance(u, str) for u in users):
        raise DecodeError("users: expected a list of ids and nulls")
    return frozenset(users)


def _target(target: Key | str) -> Hashable:
    """What drops name: a record's key, or ``("window", conversation id)``."""
    return target if isinstance(target, Key) else ("window", target)


def wrap(tier: Tier, cfg: TierConfig, context: TierContext) -> Invalidation:
    """The ``invalidation`` policy from a tier's config."""
    assert cfg.invalidation is not None
    return Invalidation(tier, cfg.invalidation, context.namespace, context.clock)

