"""The Redis Stream journal: one stream per tier, one consumer group, a consumer per writer.

An append adds the entry and puts it straight into this writer's pending list (one
script call, atomic), so an acknowledged entry always has an owner. Each writer keeps a
liveness key alive (``lease``); a writer whose key expired is dead, and any process
claims (``XCLAIM``) its pending entries and replays them. An entry is acknowledged and
deleted (``XACK`` + ``XDEL``) only once applied; a failing one moves to ``<stream>:dead``
with its error.

On a Redis Cluster every key of a journal is in one slot (the stream's hash tag), so each
call goes to one node through the cluster client's own routing; on a single node appends
and acks take a faster path (``drivers.redis_link.OneConnection``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from redis import exceptions as rx
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bruno_memory.config.models import JournalConfig, mask_password
from bruno_memory.core.deadline import deadline
from bruno_memory.core.errors import TierError, TierUnavailable, translate_errors
from bruno_memory.core.logs import get_logger
from bruno_memory.core.rides import Ride, RideFailed, joined
from bruno_memory.drivers.redis import connect
from bruno_memory.drivers.redis_errors import ERRORS
from bruno_memory.drivers.redis_fuse import fused_call
from bruno_memory.drivers.redis_link import Command, OneConnection
from bruno_memory.policies.base import stop_tasks
from bruno_memory.policies.write_behind.journal import DeadLetter, GroupCommit, Item, Landed

log = get_logger(__name__)

APPEND = """
local ids = {}
for i = 3, #ARGV do
  local id = redis.call('XADD', KEYS[1], '*', 'op', ARGV[i])
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'FORCE', 'JUSTID')
  ids[#ids + 1] = id
end
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ids[#ids])
return ids
"""
"""Append entries owned by consumer ARGV[2] of group ARGV[1]; ``>`` readers never see them."""

PAGE = 500


class Routed:
    """A Redis Cluster: one non-transactional pipeline, which the cluster client sends
    to the node of the keys' slot (following MOVED/ASK); after a node failed, the slot
    map is refreshed before the next send (a failover may have moved the slot)."""

    def __init__(self, client: Any) -> None:
        self._client = client  # the journal's RedisCluster, closed by the journal
        self._stale = False

    async def send(self, *commands: Command) -> list[Any]:
        """The replies in order; the first error reply is raised, once all are read."""
        if self._stale:
            await self._client.nodes_manager.initialize()
            self._stale = False
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            replies: list[Any] = await pipe.execute()
        except (rx.ConnectionError, rx.TimeoutError, rx.ClusterDownError, asyncio.CancelledError):
            self._stale = True
            raise
        return replies

    async def aclose(self) -> None:
        return None


class RedisJournal:
    """A Redis Stream with a consumer group; this process is one consumer."""

    kind = "redis"

    def __init__(self, cfg: JournalConfig, stream: str, owner: str, tier: str) -> None:
        self.cfg, self.stream, self.owner, self.tier = cfg, stream, owner, tier
        self.group = cfg.group
        self._client: Any = None
        self._link: OneConnection | Routed | None = None  # appends and acks
        self._sha = hashlib.sha1(APPEND.encode()).hexdigest()
        self._beat: asyncio.Task[None] | None = None
        self._group_commit = GroupCommit(self._append)

    def __repr__(self) -> str:
        url = mask_password(self.cfg.url or "")
        return f"RedisJournal({url!r}, stream={self.stream!r}, owner={self.owner!r})"

    def _connect(self, **extra: Any) -> Any:
        cfg = self.cfg
        # Calls are bounded by deadline(), not a socket timeout; said outright, as redis-py
        # 8 defaults to 5 s (and then wraps every send in a task of its own).
        return connect(
            cfg.url or "redis://", cluster=cfg.cluster, nodes=cfg.nodes, socket_timeout=None,
            socket_connect_timeout=cfg.timeout, retry=Retry(NoBackoff(), 0),
            client_name=self._client_name(self.owner), **extra)

    def _client_name(self, owner: str) -> str:
        """The connection name that says a writer is alive while its process is."""
        return _NAME.sub("_", f"bruno-memory.journal.{self.tier}.{owner}")

    def _linked(self) -> OneConnection | Routed:
        if self._link is None:
            raise TierUnavailable("the journal is closed", tier=f"{self.tier}.journal", op="use")
        return self._link

    def _alive_key(self, owner: str) -> str:
        return f"{self.stream}:alive:{owner}"

    @contextlib.asynccontextmanager
    async def _errors(self, op: str) -> AsyncIterator[None]:
        """Driver errors translated, and the whole call bounded by ``timeout``."""
        with translate_errors(f"{self.tier}.journal", op, ERRORS):
            async with deadline(self.cfg.timeout):
                yield

    # -- lifecycle ------------------------------------------------------------------

    async def open(self) -> list[Item]:
        self._client = self._connect()
        self._link = Routed(self._client) if self.cfg.is_cluster else OneConnection(
            self._connect(single_connection_client=True))  # the group commit sends one at a time
        try:
            async with self._errors("open"):
                await self._ensure_group()
                await self._heartbeat()
            own = await self._own_pending()
            self._beat = asyncio.create_task(self._beating())
            return own + await self.reclaim()
        except BaseException:
            await self.aclose()
            raise

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except rx.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _heartbeat(self) -> None:
        client, ms = self._client, max(1, int(self.cfg.lease * 1000))
        if client is not None:
            await client.set(self._alive_key(self.owner), b"1", px=ms)

    async def _beating(self) -> None:
        while self._client is not None:
            await asyncio.sleep(self.cfg.lease / 3)
            try:
                async with self._errors("heartbeat"):
                    await self._heartbeat()
            except TierUnavailable as exc:
                log.warning("journal heartbeat failed", tier=self.tier, error=str(exc))

    async def drop(self) -> None:
        """Delete the stream, its dead letters and every writer's liveness key (SCAN of
        ``<stream>:*``), then close."""
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in self.stream) + ":*"
        try:
            with translate_errors(f"{self.tier}.journal", "drop", ERRORS):  # no deadline:
                # a SCAN takes as long as the keyspace is large
                extra = [k async for k in self._client.scan_iter(match=pattern, count=500)]
                for name in (self.stream, *extra):
                    await self._client.delete(name)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None  # also stops the heartbeat loop
        beat, self._beat = self._beat, None
        await stop_tasks([beat] if beat is not None else [], self.cfg.timeout)
        if client is not None:
            with contextlib.suppress(TierError):  # its lease ends it anyway
                async with self._errors("close"):
                    await client.delete(self._alive_key(self.owner))
            await client.aclose()
        link, self._link = self._link, None
        if link is not None:
            await link.aclose()

    # -- writes ---------------------------------------------------------------------

    async def append(
        self, items: list[bytes], then: Landed | None = None, rides: Sequence[Ride] = ()
    ) -> list[Any]:
        return await self._group_commit.submit(items, then, rides)

    def carrier(self) -> str | None:
        """This single server's URL: appends carry the rides of tiers on it."""
        return None if self.cfg.is_cluster or self._link is None else self.cfg.url

    async def _append(self, items: list[bytes], rides: list[Ride]) -> list[Any]:
        with translate_errors(f"{self.tier}.journal", "append", ERRORS):  # the hot path:
            async with deadline(self.cfg.timeout):  # no generator-based context managers
                return await self._run_script(items, rides)

    async def _run_script(self, items: list[bytes], rides: list[Ride]) -> list[Any]:
        """EVALSHA through the link; loads the script, or the group, when Redis lacks it.
        With rides on this server, the call is the fused script (``drivers.redis_fuse``):
        the append, then each ride; their replies are set on them."""
        link = self._linked()
        mine = joined([r for r in rides if r.server == self.carrier()])
        args = (self.group, self.owner, *items)
        text, sha, call = fused_call(
            [(APPEND, (self.stream,), args), *((r.script, r.keys, r.args) for r, _ in mine)]
        ) if mine else (APPEND, self._sha, [1, self.stream, *args])
        evalsha = ("EVALSHA", sha, *call)
        try:
            [reply] = await link.send(evalsha)
        except rx.NoScriptError:
            await self._client.script_load(text)  # on a cluster: on every master
            [reply] = await link.send(evalsha)
        except rx.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()  # the stream was deleted under us
            [reply] = await link.send(evalsha)
        ids = reply
        if mine:
            ids = reply[0]
            for (_, answered), (ok, value) in zip(mine, reply[1:], strict=True):
                for ride in answered:
                    ride.reply = value if ok == 1 else RideFailed(_text(value))
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    async def ack(self, ids: list[Any]) -> None:
        if not ids:
            return
        async with self._errors("ack"):
            commands: list[tuple[Any, ...]] = []
            for at in range(0, len(ids), PAGE):
                chunk = ids[at : at + PAGE]
                commands.append(("XACK", self.stream, self.group, *chunk))
                commands.append(("XDEL", self.stream, *chunk))
            await self._linked().send(*commands)

    async def dead_letter(self, id: Any, data: bytes, error: str) -> None:
        async with self._errors("dead_letter"):
            pipe = self._client.pipeline(transaction=True)
            pipe.xadd(f"{self.stream}:dead", {"op": data, "error": error, "entry": str(id)})
            pipe.xack(self.stream, self.group, id)
            pipe.xdel(self.stream, id)
            await pipe.execute()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self._errors("dead_letters"):
            rows = await self._client.xrange(f"{self.stream}:dead", count=limit)
        return [DeadLetter(f[b"entry"].decode(), f[b"op"], f[b"error"].decode()) for _, f in rows]

    async def erase_dead_letters(self, match: Callable[[bytes], bool]) -> int:
        """Delete the matching entries of ``<stream>:dead`` (shared by every writer)."""
        dead, after, gone = f"{self.stream}:dead", "-", 0
        while True:
            async with self._errors("erase_dead_letters"):  # one deadline per page
                rows = await self._client.xrange(dead, min=after, max="+", count=PAGE)
                ids = [i for i, f in rows if match(f[b"op"])]
                if ids:
                    gone += await self._client.xdel(dead, *ids)
            if len(rows) < PAGE:
                return gone
            last = rows[-1][0]
            after = "(" + (last.decode() if isinstance(last, bytes) else last)

    # -- replay ---------------------------------------------------------------------

    async def _own_pending(self) -> list[Item]:
        """What this owner (a stable name reused by a restarted process) left unapplied."""
        out: list[Item] = []
        start = "0"
        while True:
            async with self._errors("replay"):  # one deadline per page
                got = await self._client.xreadgroup(
                    self.group, self.owner, {self.stream: start}, count=PAGE
                )
                rows = got[0][1] if got else []
                gone = [i for i, fields in rows if not fields]  # deleted before its ack
                if gone:
                    await self._client.xack(self.stream, self.group, *gone)
            if not rows:
                return out
            out += [(i.decode(), f[b"op"]) for i, f in rows if f]
            start = rows[-1][0]

    async def reclaim(self) -> list[Item]:
        """Claim the pending entries of every dead consumer; returns them, oldest first."""
        async with self._errors("reclaim"):
            consumers = await self._client.xinfo_consumers(self.stream, self.group)
            others = [c["name"] for c in consumers if _text(c["name"]) != self.owner]
            if not others:
                return []
            alive = await self._client.mget([self._alive_key(_text(c)) for c in others])
        connected = await self._connected()
        out: list[Item] = []
        for name, beat in zip(others, alive, strict=True):
            gone = connected is not None and self._client_name(_text(name)) not in connected
            if beat is None or gone:
                out += await self._claim_from(_text(name))
        out.sort(key=lambda item: tuple(int(p) for p in str(item[0]).split("-")))
        return out

    async def _connected(self) -> set[str] | None:
        """The names of the connections Redis holds now (single node only), or ``None``.

        A writer killed on a live host loses its connections at once, so its entries are
        claimed without waiting for its lease; a host that vanished leaves its connections
        open on the server, and then its lease decides. On a cluster the journal's node is
        not the only one a writer talks to: the lease decides there.
        """
        if self.cfg.is_cluster:
            return None
        async with self._errors("reclaim"):
            clients = await self._client.client_list()
        return {_text(c.get("name", "")) for c in clients}

    async def _claim_from(self, dead: str) -> list[Item]:
        out: list[Item] = []
        while True:
            async with self._errors("reclaim"):  # one deadline per page
                pending = await self._client.xpending_range(
                    self.stream, self.group, min="-", max="+", count=PAGE, consumername=dead
                )
                ids = [p["message_id"] for p in pending]
                claimed = await self._client.xclaim(
                    self.stream, self.group, self.owner, 0, ids) if ids else []
            out += [(i.decode(), f[b"op"]) for i, f in claimed if f]
            if len(pending) < PAGE:
                break
        async with self._errors("reclaim"):
            await self._client.xgroup_delconsumer(self.stream, self.group, dead)
        if out:
            log.warning("journal entries of a dead writer replayed", tier=self.tier,
                        dead=dead, entries=len(out))
        return out


_NAME = re.compile(r"[^A-Za-z0-9._:-]")  # CLIENT SETNAME refuses spaces and newlines


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
