"""Several flushers per write-behind queue: their batches never share a key, a clear or a
purge is applied alone, and the tier ends as the writes say (sqlite and postgres)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryType

from bruno_memory.config.models import WriteBehindConfig
from bruno_memory.core.ops import EMPTY, ClearHistory, Delete, Key, PurgeUser, Put, WriteOp
from bruno_memory.policies.base import PolicyTier
from bruno_memory.policies.write_behind.pending import PendingLog
from bruno_memory.policies.write_behind.policy import WriteBehind
from bruno_memory.testing.tier_contract import msg


def memory(text: str, user: str = "u1") -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user)


def mkey(i: int) -> Key:
    return Key("memory", f"00000000-0000-4000-8000-{i:012d}")


def put(i: int, text: str, version: int, user: str = "u1") -> Put:
    entry = memory(text, user).model_copy(update={"id": uuid.UUID(mkey(i).id)})
    return Put(mkey(i), entry, version)


def keys_of(batch: Sequence[WriteOp]) -> set[Any]:
    return {getattr(op, "key", None) for op in batch} - {None}


# -- the pending log -------------------------------------------------------------------


def test_batches_in_flight_never_share_a_key() -> None:
    log = PendingLog()
    log.add(put(1, "a", 1), [], 0.0)
    first = log.take(10)
    log.add(put(1, "b", 2), [], 0.0)  # key 1 in flight: a new entry, held back
    log.add(put(2, "c", 3), [], 0.0)
    second = log.take(10)
    assert [keys_of([e.op]) for e in second] == [{mkey(2)}]
    assert log.waiting() == 1 and log.take(10) == []
    log.remove(first)
    assert [e.op.version for e in log.take(10)] == [2]  # type: ignore[union-attr]


def test_a_clear_or_purge_goes_alone() -> None:
    log = PendingLog()
    log.add(put(1, "a", 1), [], 0.0)
    log.add(ClearHistory("c1", True, 2), [], 0.0)
    log.add(put(2, "b", 3), [], 0.0)
    before = log.take(10)
    assert [type(e.op) for e in before] == [Put]  # stops at the barrier
    assert log.take(10) == []  # the barrier waits for what is in flight
    log.release(before)
    again = log.take(10)
    assert [type(e.op) for e in again] == [Put]
    log.remove(again)
    barrier = log.take(10)
    assert [type(e.op) for e in barrier] == [ClearHistory, Put]  # first of its batch
    log.add(put(3, "c", 4), [], 0.0)
    assert log.take(10) == []  # nothing beside a clear in flight
    log.remove(barrier)
    assert [e.op.version for e in log.take(10)] == [4]  # type: ignore[union-attr]


def test_released_entries_wait_again_and_free_their_keys() -> None:
    log = PendingLog()
    log.add(put(1, "a", 1), [], 0.0)
    taken = log.take(10)
    log.release(taken)
    assert log.waiting() == 1 and log.oldest_waiting() is taken[0]
    assert log.take(10) == taken


# -- flushers on a real tier -----------------------------------------------------------


class Overlaps(PolicyTier):
    """Records how many batches were in the tier at once, and what they held."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.running: list[list[WriteOp]] = []
        self.most = 0
        self.shared: list[Any] = []
        self.barrier_beside_others = 0

    async def write(self, ops: Sequence[WriteOp]) -> None:
        batch = list(ops)
        for other in self.running:
            self.shared += list(keys_of(batch) & keys_of(other))
        barrier = any(isinstance(op, (ClearHistory, PurgeUser)) for op in batch)
        if self.running and (barrier or any(isinstance(op, (ClearHistory, PurgeUser))
                                            for b in self.running for op in b)):
            self.barrier_beside_others += 1
        self.running.append(batch)
        self.most = max(self.most, len(self.running))
        try:
            await asyncio.sleep(0.005)  # long enough for the next batch to start
            await self.inner.write(ops)
        finally:
            self.running.remove(batch)


async def test_flushers_apply_batches_at_once_and_the_tier_ends_as_written(durable: Any) -> None:
    tier = Overlaps(durable)
    cfg = WriteBehindConfig(flushers=3, batch_size=20, interval=0.001, max_pending=100_000)
    wb = WriteBehind(tier, cfg)
    await wb.open()
    rnd = random.Random(7)
    last: dict[Key, WriteOp] = {}
    version = 0
    try:
        for _ in range(600):
            version += 1
            i = rnd.randrange(40)
            op: WriteOp = (Delete(mkey(i), version) if rnd.random() < 0.15
                           else put(i, f"v{version}", version, user=f"u{i % 3}"))
            last[mkey(i)] = op
            await wb.write([op])
            if version % 97 == 0:  # a clear now and then: a barrier among the puts
                version += 1
                await wb.write([ClearHistory("c1", False, version)])
            if version % 10 == 0:
                await asyncio.sleep(0)
        version += 1
        await wb.write([put(100, "gone", version, user="u9"), PurgeUser("u9", version + 1)])
        await wb.write([Put(Key("message", msg("c1", 1).id), msg("c1", 1), version + 2)])
        await wb.flush()
        found = await durable.get([*last, mkey(100)])
    finally:
        await wb.aclose()  # closes the tier too
    assert tier.most >= 2  # batches did overlap
    assert tier.shared == [] and tier.barrier_beside_others == 0
    for key, op in last.items():
        if isinstance(op, Delete):
            assert found.get(key, EMPTY) is EMPTY, key
        else:
            assert isinstance(op, Put)
            assert found[key].content == op.value.content, key  # type: ignore[union-attr]
    assert found.get(mkey(100), EMPTY) is EMPTY  # purged with its user
