"""Versions make replays idempotent: durable tiers never apply a write older than they hold."""

from __future__ import annotations

from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import MessageRole

from bruno_memory.core.opcodec import decode_op, encode_op
from bruno_memory.core.ops import (
    EMPTY,
    ClaimConversation,
    ClearHistory,
    Delete,
    FillWindow,
    Key,
    PurgeUser,
    Put,
)
from bruno_memory.core.versions import VersionClock, stamp
from bruno_memory.testing.tier_contract import msg


def memory(user: str = "u1", text: str = "likes jazz") -> MemoryEntry:
    return MemoryEntry(content=text, memory_type=MemoryType.LONG_TERM, user_id=user)


def put(value: Any, version: int) -> Put:
    from bruno_memory.core.codec import key_of

    return Put(key_of(value), value, version)


async def ids_of(tier: Any, conv: str) -> list[str]:
    return [r.id for r in await tier.window(conv, None)]


def test_version_clock_increases_strictly_and_follows_the_wall_clock() -> None:
    """Versions never repeat or go back, even when the wall clock stalls or steps back."""
    wall = iter([100, 100, 90, 200, 300])
    clock = VersionClock(lambda: next(wall))
    assert [clock.next() for _ in range(4)] == [100, 101, 102, 200]
    clock.observe(500)
    assert clock.next() > 500


def test_stamp_versions_only_unversioned_ops_and_never_fills() -> None:
    """Ops without a version get one; explicit versions and cache fills are kept."""
    fill = FillWindow("c", (), True)
    ops = stamp([Delete(Key("memory", "a")), Delete(Key("memory", "b"), 7), fill])
    assert ops[0].version > 0 and ops[1].version == 7 and ops[2] is fill


def test_every_op_round_trips_through_bytes() -> None:
    """A journaled op decodes to an equal op."""
    rec = msg("c", 1)
    ops = [put(rec, 3), put(memory(), 4), Delete(Key("memory", "x"), 5),
           ClearHistory("c", False, 6), PurgeUser("u9", 7), ClaimConversation("c", "u2", 8),
           FillWindow("c", (rec, msg("c", 2)), True)]
    for op in ops:
        assert decode_op(encode_op(op)) == op


async def test_an_older_put_never_resurrects_a_versioned_delete(durable: Any) -> None:
    """A put replayed after a newer delete of the same record is not applied."""
    entry = memory()
    key = Key("memory", str(entry.id))
    await durable.write([put(entry, 10)])
    await durable.write([Delete(key, 20)])
    await durable.write([put(entry, 15)])
    assert (await durable.get([key]))[key] is EMPTY
    await durable.write([put(entry, 25)])
    assert (await durable.get([key]))[key] == entry


async def test_an_older_delete_spares_a_newer_record(durable: Any) -> None:
    """A delete replayed after a newer put leaves the newer record in place."""
    entry = memory()
    key = Key("memory", str(entry.id))
    await durable.write([put(entry, 30), Delete(key, 20)])
    assert (await durable.get([key]))[key] == entry


async def test_a_cleared_history_is_not_refilled_by_older_puts(durable: Any) -> None:
    """Messages older than a clear stay cleared; newer ones and kept system messages land."""
    system = msg("c", 0, role=MessageRole.SYSTEM)
    old, new = msg("c", 1), msg("c", 2)
    await durable.write([put(system, 5), put(old, 5)])
    await durable.write([ClearHistory("c", True, 10)])
    await durable.write([put(old, 8), put(system, 9), put(new, 11)])
    assert await ids_of(durable, "c") == [system.id, new.id]


async def test_a_purged_user_is_not_resurrected_by_older_puts(durable: Any) -> None:
    """After a purge, an older replayed put of that user's data is dropped."""
    gone, kept = memory("u1"), memory("u2")
    await durable.write([PurgeUser("u1", 10)])
    await durable.write([put(gone, 9), put(kept, 9), put(msg("c", 1, user="u1"), 9)])
    keys = [Key("memory", str(gone.id)), Key("memory", str(kept.id))]
    found = await durable.get(keys)
    assert found[keys[0]] is EMPTY and found[keys[1]] == kept
    assert await ids_of(durable, "c") == []


async def test_unversioned_writes_keep_working_as_before(durable: Any) -> None:
    """Version 0 ops leave no tombstone: delete then put again restores the record."""
    entry = memory()
    key = Key("memory", str(entry.id))
    await durable.write([put(entry, 0), Delete(key)])
    await durable.write([put(entry, 0)])
    assert (await durable.get([key]))[key] == entry
