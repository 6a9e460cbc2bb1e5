"""The routing engine: writes fanned out (authoritative tier first), reads top-down with
promotion, and queries sent to the tiers able to answer them.

It owns the rules that keep caches right: a write's version is stamped here (once, for
every tier, journal and replay); a fill is dropped when a write raced the read that
produced it (in this process: the generation stamp; in another: the tier's lease); and a
write the authoritative tier committed never fails because another tier did: that tier
owes the invalidation, and serves no read until it has settled it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, TypeVar, cast

from bruno_memory.core.audit import Auditing
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.drops import Owed
from bruno_memory.core.errors import CapabilityMissing, TierError
from bruno_memory.core.generations import Generations
from bruno_memory.core.group_commit import GroupCommit
from bruno_memory.core.logs import get_logger
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    Empty,
    Fill,
    FillAbsent,
    FillRecord,
    FillWindow,
    Key,
    Value,
    WriteOp,
)
from bruno_memory.core.queries import Query
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.redact import Redactor
from bruno_memory.core.rides import Ride
from bruno_memory.core.versions import stamp
from bruno_memory.stack import fills
from bruno_memory.stack.coalescing import Coalescer
from bruno_memory.stack.epochs import EpochWatch
from bruno_memory.stack.routing import Routes, accepts, plan_routes
from bruno_memory.stack.stats import TierStats
from bruno_memory.tiers.base import Carries, Clearable, Droppable, Rides, Tier, Windowed

R = TypeVar("R")
Missed = list[tuple[Tier, str | None]]
log = get_logger(__name__)


@dataclass(slots=True)
class _Lookup:
    """Keys to read from the authoritative tier, and what it held once read."""

    keys: Sequence[Key]
    found: Mapping[Key, Value | Empty] = field(default_factory=dict)


class Engine:
    """Opened tiers, routed by their declared capabilities; ``auditing``: the stack keeps
    an audit trail (``core.audit.Auditing``); ``redactor``: contents are redacted before
    any tier has them (``stack.redaction``)."""

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        auditing: Auditing | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.routes: Routes = plan_routes(tiers)
        self.auditing = auditing
        self.redactor = redactor
        fills.settle_on_flush(self.routes)  # a write-behind durable tier settles the caches
        self.generations = Generations()
        self.stats = {t.name: TierStats() for t in tiers}
        self._debts: dict[str, Owed] = {}  # drops a tier owes for committed writes it missed
        self._lookups: GroupCommit[_Lookup] = GroupCommit(
            self._look_up, tier=self.routes.durable.name)
        durable = self.routes.durable
        self._writes = Coalescer(self._write, name=durable.name,
                                 pipelined=Capability.PIPELINES in durable.capabilities)
        self.epochs = EpochWatch(self.routes, self.generations)
        self.sealer: Any = None  # with encryption: the keyring (``seal``/``unseal`` records)
        with contextlib.suppress(RuntimeError):  # no running loop: start() it later
            self.epochs.start()

    def __repr__(self) -> str:
        return f"Engine([{', '.join(map(repr, self.routes.tiers))}])"

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, fastest first."""
        return self.routes.tiers

    # -- writes -----------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp], touched: Sequence[object]) -> Awaitable[None]:
        """Stamp ``ops`` with versions and apply them: the authoritative tier first, then
        every other tier holding what they change. ``touched`` are the generation keys
        whose in-flight fills must be dropped. Concurrent writes are applied together
        (``stack.coalescing``); the awaitable returned is the coalescer's."""
        return self._writes.write(ops, touched)

    def write_metrics(self) -> dict[str, int]:
        """How the stack's writes were gathered: ``batches`` well below ``writes`` under
        concurrency (``core.group_commit.GroupCommitStats``)."""
        return self._writes.metrics()

    async def _write(self, ops: Sequence[WriteOp], touched: Sequence[object]) -> None:
        routes = self.routes
        stamped = stamp(ops)  # every write carries a version: replays never regress a record
        gens = self.generations
        gens.bump(touched)
        durable, then = _split(routes, stamped)
        rides = self._rides(then) if durable else {}
        started = perf_counter()
        if rides:
            await cast(Carries, routes.durable).carry(durable, list(rides.values()))
        else:
            await routes.durable.write(durable)
        self.stats[routes.durable.name].timed("write", perf_counter() - started)
        gens.bump(touched)  # committed: from here on, a failing tier owes, it never raises
        for tier, mine in then:
            await self._apply(tier, mine, rides.get(tier.name))

    def _rides(self, then: list[tuple[Tier, list[WriteOp]]]) -> dict[str, Ride]:
        """The writes of ``then`` that ride the authoritative tier's script call (one round
        trip for all, in order): the leading ones whose tier is on its Redis server. The
        first whose write goes out and cannot ride ends them, so no write goes out before
        one sent earlier; a tier in this process's memory sends nothing and is passed over
        (it is written in its turn, once the call has returned)."""
        durable = self.routes.durable
        server = (cast(Carries, durable).carrier()
                  if Capability.CARRIES in durable.capabilities else None)
        rides: dict[str, Ride] = {}
        for tier, mine in then if server is not None else ():
            if Capability.RIDES not in tier.capabilities:
                if Capability.IN_PROCESS in tier.capabilities:
                    continue  # sends nothing: no order to keep with it
                break
            ride = cast(Rides, tier).ride(mine)
            if ride is None or ride.server != server:
                break
            rides[tier.name] = ride
        return rides

    async def _apply(self, tier: Tier, ops: list[WriteOp], ride: Ride | None = None) -> None:
        """Write to a tier after the authoritative one committed (or finish its write that
        rode with it): a failure leaves the tier owing the drops of ``ops`` (it serves
        nothing stale until they are settled)."""
        try:
            started = perf_counter()
            if ride is not None and ride.sent:
                await cast(Rides, tier).rode(ops, ride)
            else:
                await tier.write(ops)
            self.stats[tier.name].timed("write", perf_counter() - started)
        except TierError as exc:
            owed = self._debts.setdefault(tier.name, Owed())
            owed.add(ops)
            log.warning("tier missed a committed write; it owes the invalidation",
                        tier=tier.name, owed=len(owed), error=str(exc))

    async def _settled(self, tier: Tier) -> bool:
        """Whether ``tier`` may serve reads: it owes nothing, or settles its debt now."""
        owed = self._debts.get(tier.name)
        if not owed:
            return True
        ops, clear = owed.take(has_clear=Capability.CLEAR in tier.capabilities)
        try:
            if clear:
                await cast(Clearable, tier).clear()
            elif ops:
                await tier.write(ops)
        except TierError:
            owed.restore(ops, clear)
            return False
        del self._debts[tier.name]
        log.info("tier settled the writes it missed", tier=tier.name)
        return True

    # -- hot reads --------------------------------------------------------------------

    async def get(self, key: Key, *, fresh: bool = False) -> Value | None:
        """One record, from the fastest tier that knows it; lower answers fill the caches
        (an absence too, in caches that remember one: ``Capability.ABSENCE``).

        ``fresh``: a remembered absence is not taken as the answer. Another process's
        write reaches this process's caches only as fast as its invalidation: a caller
        about to create what it found absent asks the tiers below.
        """
        stamp_ = self.generations.stamp(key)
        missed: Missed = []
        durable = self.routes.durable
        for tier in self.routes.readers(key.ns):
            if self._debts and not await self._settled(tier):
                continue  # it may hold what a committed write changed: not read, not filled
            started = perf_counter()
            found = (await tier.get([key])).get(key, MISS)
            stats = self.stats[tier.name]
            stats.timed("get", perf_counter() - started)
            if found is EMPTY and fresh and tier is not durable:
                found = MISS
            stats.count(found is not MISS)
            if found is MISS:
                await self._missed(missed, tier, key)
                continue
            if found is EMPTY:
                if missed:
                    await self._fill(missed, FillAbsent(key), key, stamp_)
                return None
            await self._fill(missed, FillRecord(key, found), key, stamp_)
            return found
        return None

    async def window(self, conversation_id: str, limit: int | None) -> Sequence[MessageRecord]:
        """The newest ``limit`` messages of a conversation, oldest first."""
        wkey = ("window", conversation_id)
        stamp_ = self.generations.stamp(wkey)
        missed: Missed = []
        for tier in self.routes.windowed():
            if self._debts and not await self._settled(tier):
                continue
            started = perf_counter()
            got = await cast(Windowed, tier).window(conversation_id, limit)
            stats = self.stats[tier.name]
            stats.timed("window", perf_counter() - started)
            stats.count(got is not MISS)
            if got is MISS:
                await self._missed(missed, tier, conversation_id)
                continue
            complete = limit is None or len(got) < limit
            await self._fill(missed, FillWindow(conversation_id, tuple(got), complete), wkey,
                             stamp_)
            return got
        return ()

    async def authoritative(self, keys: Sequence[Key]) -> Mapping[Key, Value | Empty]:
        """Records as the authoritative tier holds them now (no cache, no fill).

        Concurrent calls are answered together (``core.group_commit``): the ids writers
        check before they write (``Owners._held``) cost one query for all of them.
        """
        if not keys:
            return {}
        lookup = _Lookup(keys)
        await self._lookups.submit(lookup)
        return lookup.found

    async def _look_up(self, batch: Sequence[_Lookup]) -> None:
        if len(batch) == 1:
            batch[0].found = await self.routes.durable.get(batch[0].keys)
            return
        found = await self.routes.durable.get(list({k: None for b in batch for k in b.keys}))
        for lookup in batch:
            lookup.found = {k: found[k] for k in lookup.keys if k in found}

    async def _missed(self, missed: Missed, tier: Tier, target: Key | str) -> None:
        """Note a tier to fill, with its lease when it takes one (see ``fills``)."""
        if tier.name not in self.routes.leased:
            missed.append((tier, None))
        elif (lease := await fills.lease(tier, target)) is not None:
            missed.append((tier, lease))

    async def _fill(self, missed: Missed, op: Fill, key: object, stamp_: int) -> None:
        """Promote a lower tier's answer, unless a write to ``key`` raced with the read."""
        for tier, lease in missed:
            if self.generations.stamp(key) != stamp_:
                return
            if accepts(tier, op):
                try:
                    await tier.write([fills.leased(op, lease)])
                except TierError as exc:  # a fill is an optimisation: the read has its answer
                    log.info("cache fill failed", tier=tier.name, error=str(exc))

    # -- queries ----------------------------------------------------------------------

    def able(self, q: Query[Any]) -> list[Tier]:
        """The tiers a query goes to (see ``Routes.answering``)."""
        return self.routes.answering(q.needs)

    def can(self, kind: type[Query[Any]]) -> bool:
        """Whether some tier answers queries of type ``kind``."""
        return bool(self.routes.answering(kind.needs))

    async def ask(self, q: Query[R]) -> R:
        """The answer of the first tier able to answer ``q``."""
        able = self.able(q)
        if not able:
            raise CapabilityMissing(
                f"no tier of the stack answers {type(q).__name__} (it needs {q.needs.value})"
            )
        return await self._query(able[0], q)

    async def fan_out(self, q: Query[R]) -> list[R]:
        """The answers of every tier able to answer ``q``, concurrently, in stack order."""
        return list(await asyncio.gather(*(self._query(t, q) for t in self.able(q))))

    async def _query(self, tier: Tier, q: Query[R]) -> R:
        """``tier``'s answer to ``q``, timed under the query's class name."""
        started = perf_counter()
        answer = await tier.query(q)
        self.stats[tier.name].timed(type(q).__name__, perf_counter() - started)
        return answer

    # -- lifecycle --------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every queued write has reached its tier."""
        for tier in self.tiers:
            await tier.flush()

    async def aclose(self) -> None:
        """Drain queued writes, then release every tier (slowest first)."""
        await self.epochs.stop()
        await self._writes.aclose()
        await self._lookups.aclose()
        try:
            await self.flush()
        finally:
            for tier in reversed(self.tiers):
                await tier.aclose()

    async def drop(self) -> None:
        """Erase every tier's data for good, caches first and the authoritative tier last
        (a drop that fails midway leaves the data where it is authoritative), then
        release every tier. Refused before anything is erased if a tier cannot drop."""
        lacking = [t.name for t in self.tiers if Capability.DROP not in t.capabilities]
        if lacking:
            raise CapabilityMissing(
                f"tier(s) {', '.join(lacking)} cannot drop their data (no drop ability); "
                "nothing was dropped: remove their data with the store's own tools"
            )
        await self.epochs.stop()
        routes = self.routes
        try:
            for tier in (*routes.caches, *routes.others, routes.durable):
                await cast(Droppable, tier).drop()
        finally:
            for tier in reversed(self.tiers):
                await tier.aclose()

    async def health(self) -> dict[str, dict[str, Any]]:
        """Per tier: up or down, ping latency, hits and misses, policy metrics."""
        return {t.name: await self.stats[t.name].probe(t) for t in self.tiers}


def _split(
    routes: Routes, ops: list[WriteOp]
) -> tuple[list[WriteOp], list[tuple[Tier, list[WriteOp]]]]:
    """The ops the durable tier takes, and each follower's ops (only followers taking some)."""
    if len(ops) == 1:  # the usual write: one op, its tiers known by its kind
        takes, followers = routes.taking(ops[0])
        return (ops if takes else []), [(t, ops) for t in followers]
    durable = [op for op in ops if routes.taking(op)[0]]
    then = [(t, mine) for t in routes.followers
            if (mine := [op for op in ops if t in routes.taking(op)[1]])]
    return durable, then
