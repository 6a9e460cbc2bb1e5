"""The tier contract: plain async tests taking a ``tier`` fixture.

Import them into a test module (``from bruno_memory.testing.tier_contract import *``) and
provide a ``tier`` fixture yielding an opened tier. Each test names the capabilities it
needs and is skipped, never passed, on a tier that lacks them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.capabilities import Capability as C
from bruno_memory.core.errors import CapabilityMissing
from bruno_memory.core.ops import (
    EMPTY,
    MISS,
    ClearHistory,
    Delete,
    FillAbsent,
    FillRecord,
    FillWindow,
    Key,
    PurgeUser,
    Put,
)
from bruno_memory.core.queries import (
    LatestSession,
    Neighbours,
    QueryMemories,
    Scan,
    SearchText,
    Statistics,
)
from bruno_memory.core.records import MessageRecord
from bruno_memory.policies.base import PolicyTier
from bruno_memory.testing.queries import one_of_each

__all__ = [name for name in dir() if name.startswith("test_")]  # filled at the end

Test = Callable[[Any], Awaitable[None]]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def needs(*caps: C) -> Callable[[Test], Test]:
    """Skip the test on a tier that does not declare every one of ``caps``."""

    def decorate(fn: Test) -> Test:
        @functools.wraps(fn)
        async def run(tier: Any) -> None:
            lacking = [c.value for c in caps if c not in tier.capabilities]
            if lacking:
                pytest.skip(f"{tier.name} lacks {', '.join(lacking)}")
            await fn(tier)

        return run

    return decorate


def msg(
    conv: str, i: int, user: str = "u1", role: MessageRole = MessageRole.USER, text: str = ""
) -> MessageRecord:
    m = Message(
        role=role,
        content=text or f"message number {i}",
        timestamp=T0 + timedelta(seconds=i),
        conversation_id=conv,
    )
    return MessageRecord(m, conv, user)


def put(value: Any) -> Put:
    from bruno_memory.core.codec import key_of

    return Put(key_of(value), value)


def durable(tier: Any) -> bool:
    return C.DURABLE in tier.capabilities


async def window(tier: Any, conv: str, limit: int | None) -> Any:
    return await tier.window(conv, limit)


async def test_declared_capabilities_are_implemented(tier: Any) -> None:
    """A tier answers exactly the queries its capabilities promise, and has the methods
    of every ability it declares."""
    for q in one_of_each():
        if q.needs in tier.capabilities:
            await tier.query(q)  # answers without CapabilityMissing
        else:
            with pytest.raises(CapabilityMissing):
                await tier.query(q)
    abilities = {C.WINDOWS: "window", C.CLEAR: "clear", C.LEASES: "lease",
                 C.SETTLES: "settle", C.QUEUED: "when_applied", C.DROP: "drop",
                 C.RIDES: "rode", C.CARRIES: "carry"}
    for cap, method in abilities.items():
        if cap in tier.capabilities:
            assert callable(getattr(type(tier), method, None)), (
                f"{tier.name} declares {cap.value} without {method}()"
            )
    await tier.ping()
    assert tier.name in repr(tier)


@needs(C.SESSIONS)
async def test_absent_key_is_a_miss_in_caches_and_empty_in_durable_tiers(tier: Any) -> None:
    """A cache answers 'don't know' by leaving the key out; a durable tier answers EMPTY."""
    key = Key("session", "nope")
    got = await tier.get([key])
    assert got.get(key, MISS) is (EMPTY if durable(tier) else MISS)


@needs(C.SESSIONS, C.MEMORIES)
async def test_a_remembered_absence_lasts_until_the_key_is_written_or_dropped(
    tier: Any,
) -> None:
    """Tiers with ``absence``: a ``FillAbsent`` makes the key answer EMPTY; a write of the
    key (a session by its conversation too) or a drop of it ends that."""
    if C.ABSENCE not in tier.capabilities:
        pytest.skip(f"{tier.name} remembers no absence")
    s = SessionContext(user_id="u1")
    conv, mem = Key("conversation", s.conversation_id), Key("memory", "m-absent")
    await tier.write([FillAbsent(conv), FillAbsent(mem)])
    assert await tier.get([conv, mem]) == {conv: EMPTY, mem: EMPTY}
    await tier.write([put(s), Delete(mem)])
    got = await tier.get([conv, mem])
    assert got[conv] == s and got.get(mem, MISS) is MISS


@needs(C.SESSIONS, C.USERS)
async def test_sessions_and_users_round_trip(tier: Any) -> None:
    """A stored session and user come back equal, and a session is found by its conversation."""
    s = SessionContext(user_id="u1", metadata={"k": [1, 2]}, state={"mode": "x"})
    u = UserContext(user_id="u1", name="Ann", preferences={"lang": "fr"})
    await tier.write([put(s), put(u)])
    got = await tier.get(
        [Key("session", s.session_id), Key("user", "u1"), Key("conversation", s.conversation_id)]
    )
    assert got[Key("session", s.session_id)] == s
    assert got[Key("user", "u1")] == u
    assert got[Key("conversation", s.conversation_id)] == s


@needs(C.MEMORIES)
async def test_memory_put_get_delete(tier: Any) -> None:
    """A memory round-trips with its metadata, and a delete (twice) removes it."""
    e = MemoryEntry(
        content="likes jazz",
        memory_type=MemoryType.FACT,
        user_id="u1",
        metadata=MemoryMetadata(tags=["music"], embedding=[0.5, 0.25]),
    )
    key = Key("memory", str(e.id))
    await tier.write([Put(key, e)])
    assert (await tier.get([key]))[key] == e
    await tier.write([Delete(key), Delete(key)])
    assert (await tier.get([key])).get(key, MISS) in (MISS, EMPTY)


@needs(C.MEMORIES, C.WINDOWS)
async def test_a_leased_fill_lands_unless_a_write_came_first(tier: Any) -> None:
    """Tiers with ``takes_leases``: a fill lands with a fresh lease, and never after a write
    of its target (a record, or a conversation's window) revoked the lease."""
    if C.LEASES not in tier.capabilities:
        pytest.skip(f"{tier.name} takes no fill leases")
    old = MemoryEntry(content="likes tea", memory_type=MemoryType.FACT, user_id="u1")
    new = old.model_copy(update={"content": "likes coffee"})
    other = MemoryEntry(content="likes jazz", memory_type=MemoryType.FACT, user_id="u1")
    key, other_key = Key("memory", str(old.id)), Key("memory", str(other.id))
    stale, fresh = await tier.lease(key), await tier.lease(other_key)
    await tier.write([Put(key, new, 2)])
    await tier.write([FillRecord(key, old, stale), FillRecord(other_key, other, fresh)])
    assert await tier.get([key, other_key]) == {key: new, other_key: other}

    first, second = msg("c5", 1), msg("c5", 2)
    stale = await tier.lease("c5")
    await tier.write([FillWindow("c5", (first,), True)])
    await tier.write([Put(Key("message", second.id), second, 3)])
    await tier.write([FillWindow("c5", (first,), True, lease=stale)])
    assert [r.id for r in await tier.window("c5", 10)] == [first.id, second.id]


@needs(C.WINDOWS)
async def test_window_serves_newest_messages_oldest_first(tier: Any) -> None:
    """A window answer holds the newest messages, oldest first, or is a miss."""
    records = [msg("c1", i) for i in range(5)]
    if durable(tier):
        await tier.write([put(r) for r in records])
    else:
        await tier.write([FillWindow("c1", tuple(records), True)])
    got = await window(tier, "c1", 3)
    assert [r.id for r in got] == [r.id for r in records[2:]]
    assert [r.id for r in await window(tier, "c1", None)] == [r.id for r in records]
    assert [r.id for r in await window(tier, "c1", 50)] == [r.id for r in records]


@needs(C.WINDOWS)
async def test_incomplete_window_misses_rather_than_answering_short(tier: Any) -> None:
    """A cache holding only the newest 3 messages misses a request for 5."""
    if durable(tier):
        pytest.skip("durable tiers hold everything")
    records = tuple(msg("c2", i) for i in range(3))
    await tier.write([FillWindow("c2", records, False)])
    assert await window(tier, "c2", 5) is MISS
    assert await window(tier, "c2", None) is MISS
    assert [r.id for r in await window(tier, "c2", 2)] == [r.id for r in records[1:]]


@needs(C.WINDOWS)
async def test_put_message_keeps_a_cached_window_exact(tier: Any) -> None:
    """Storing a newer message or replacing one by id keeps the window exact."""
    records = [msg("c3", i) for i in range(3)]
    first = [put(r) for r in records] if durable(tier) else [FillWindow("c3", tuple(records), True)]
    await tier.write(first)
    newer = msg("c3", 10)
    edited = MessageRecord(records[1].message.model_copy(update={"content": "edited"}), "c3", "u1")
    await tier.write([put(newer), put(edited)])
    got = await window(tier, "c3", None)
    if got is MISS:
        return  # invalidating is also exact
    assert [r.id for r in got] == [records[0].id, records[1].id, records[2].id, newer.id]
    assert got[1].message.content == "edited"


@needs(C.WINDOWS)
async def test_clear_history_keeps_system_messages_when_asked(tier: Any) -> None:
    """Clearing a conversation leaves no user messages, and system messages only when kept."""
    records = [msg("c4", 0, role=MessageRole.SYSTEM), msg("c4", 1), msg("c4", 2)]
    if durable(tier):
        await tier.write([put(r) for r in records])
    else:
        await tier.write([FillWindow("c4", tuple(records), True)])
    await tier.write([ClearHistory("c4", keep_system=True)])
    got = await window(tier, "c4", None)
    if durable(tier):
        assert [r.message.role for r in got] == [MessageRole.SYSTEM]
        await tier.write([ClearHistory("c4", keep_system=False)])
        assert list(await window(tier, "c4", None)) == []
    else:
        assert got is MISS or [r.message.role for r in got] == [MessageRole.SYSTEM]


@needs(C.SESSIONS, C.MEMORIES)
async def test_purge_user_removes_only_that_user(tier: Any) -> None:
    """PurgeUser erases one user's sessions and memories and nobody else's."""
    mine = [
        SessionContext(user_id="gone"),
        MemoryEntry(content="x", memory_type=MemoryType.FACT, user_id="gone"),
    ]
    theirs = [
        SessionContext(user_id="kept"),
        MemoryEntry(content="y", memory_type=MemoryType.FACT, user_id="kept"),
    ]
    await tier.write([put(v) for v in mine + theirs])
    await tier.write([PurgeUser("gone")])
    from bruno_memory.core.codec import key_of

    got = await tier.get([key_of(v) for v in mine + theirs])
    assert all(got.get(key_of(v), MISS) in (MISS, EMPTY) for v in mine)
    assert all(got[key_of(v)] == v for v in theirs)


@needs(C.DURABLE, C.WINDOWS)
async def test_older_version_never_overwrites_newer(tier: Any) -> None:
    """A replayed older write does not regress a record."""
    r = msg("c5", 1, text="new text")
    old = MessageRecord(r.message.model_copy(update={"content": "old text"}), "c5", "u1")
    await tier.write([Put(Key("message", r.id), r, version=2)])
    await tier.write([Put(Key("message", r.id), old, version=1)])
    assert [x.message.content for x in await window(tier, "c5", None)] == ["new text"]


@needs(C.DURABLE, C.WINDOWS)
async def test_batch_of_a_thousand_messages_lands_once(tier: Any) -> None:
    """One write of 1,000 messages (with a repeated id) stores each message once."""
    records = [msg("c6", i) for i in range(1000)]
    await tier.write([put(r) for r in records] + [put(records[0])])
    got = await window(tier, "c6", None)
    assert len(got) == 1000 and got[0].id == records[0].id


@needs(C.TEXT_SEARCH)
async def test_text_search_ranks_and_scopes_by_user(tier: Any) -> None:
    """Search ranks the best match first and returns only the asked user's messages."""
    await tier.write(
        [
            put(msg("s1", 1, "ann", text="my cat is called Tom and the cat likes milk")),
            put(msg("s1", 2, "ann", text="the weather is nice today")),
            put(msg("s2", 3, "bob", text="my cat is called Felix")),
        ]
    )
    hits = await tier.query(SearchText("cat milk", "ann", 10))
    assert [h.item.message.content for h in hits][:1] == [
        "my cat is called Tom and the cat likes milk"
    ]
    assert all(h.item.user_id == "ann" for h in hits)
    assert len(await tier.query(SearchText("cat", None, 10))) == 2


@needs(C.TEXT_SEARCH)
async def test_text_search_survives_hostile_queries(tier: Any) -> None:
    """Query syntax, quotes, SQL and NUL bytes are searched as words, never executed."""
    await tier.write([put(msg("s3", 1, text="robert'); DROP TABLE messages;-- said hi"))])
    for q in [
        '"',
        "'",
        "a OR b",
        "NEAR(x y)",
        "*",
        "col:val",
        "'; DROP TABLE messages;--",
        "\x00",
        "(((",
        "",
    ]:
        await tier.query(SearchText(q, "u1", 5))
    hits = await tier.query(SearchText("robert DROP TABLE", "u1", 5))
    assert len(hits) == 1


@needs(C.MEMORY_QUERY)
async def test_memory_query_filters(tier: Any) -> None:
    """Every MemoryQuery filter narrows the answer."""
    now = datetime.now(timezone.utc)

    def entry(content: str, **kw: Any) -> MemoryEntry:
        md = MemoryMetadata(**kw.pop("md", {}))
        return MemoryEntry(
            content=content,
            user_id=kw.pop("user", "u1"),
            metadata=md,
            memory_type=kw.pop("t", MemoryType.FACT),
            **kw,
        )

    entries = [
        entry("jazz fan", md={"category": "pref", "tags": ["music"], "importance": 0.9}),
        entry("lives in Paris", t=MemoryType.LONG_TERM, md={"category": "fact", "confidence": 0.4}),
        entry("old news", expires_at=now - timedelta(days=1)),
        entry("other user jazz", user="u2"),
    ]
    await tier.write([put(e) for e in entries])

    async def q(**kw: Any) -> list[str]:
        hits = await tier.query(QueryMemories(MemoryQuery(user_id="u1", **kw), now.timestamp()))
        return sorted(h.item.content for h in hits)

    assert await q() == ["jazz fan", "lives in Paris"]
    assert await q(include_expired=True) == ["jazz fan", "lives in Paris", "old news"]
    assert await q(memory_types=[MemoryType.LONG_TERM]) == ["lives in Paris"]
    assert await q(categories=["pref"]) == ["jazz fan"]
    assert await q(tags=["music", "x"]) == ["jazz fan"]
    assert await q(min_confidence=0.5) == ["jazz fan"]
    assert await q(min_importance=0.95) == ["lives in Paris"]
    assert await q(query_text="jazz") == ["jazz fan"]
    assert len(await q(limit=1)) == 1


@needs(C.DURABLE)
async def test_statistics_and_latest_session(tier: Any) -> None:
    """Statistics count the user's records and the latest active session is found."""
    old = SessionContext(user_id="st", started_at=T0)
    new = SessionContext(user_id="st", started_at=T0 + timedelta(hours=1))
    await tier.write([put(old), put(new), put(msg(new.conversation_id, 1, "st"))])
    assert (await tier.query(LatestSession("st"))).session_id == new.session_id
    stats = await tier.query(Statistics("st"))
    assert stats["total_messages"] == 1 and stats["sessions"] == 2 and stats["conversations"] == 1


@needs(C.DURABLE)
async def test_neighbours_are_read_by_position_in_the_conversation(tier: Any) -> None:
    """neighbours gives the messages just before and after each id by (ts, seq), numbered
    outwards, never from another conversation; unknown ids have none."""

    def at(conv: str, seconds: float, user: str = "nb") -> MessageRecord:
        m = Message(
            role=MessageRole.USER,
            content=f"{conv} at {seconds}",
            timestamp=T0 + timedelta(seconds=seconds),
        )
        return MessageRecord(m, conv, user)

    m0, m1, m2, m3, m4, m5 = (at("nb-a", s) for s in (0, 1, 2, 2, 3, 5))  # m2, m3: one ts
    other = at("nb-b", 2.5, "someone-else")
    await tier.write([put(r) for r in (m5, other, m0, m1, m2, m3, m4)])  # m5 stored first

    def got(found: Any) -> set[tuple[str, int, str]]:
        return {(n.of, n.offset, n.record.id) for n in found}

    found = await tier.query(Neighbours((m2.id, m0.id, "no-such-id"), 2, 1))
    assert got(found) == {
        (m2.id, -1, m1.id),
        (m2.id, -2, m0.id),
        (m2.id, 1, m3.id),
        (m0.id, 1, m1.id),
    }
    assert [n.record for n in found if n.record.id == m1.id] == [m1, m1]
    assert got(await tier.query(Neighbours((m3.id,), 1, 2))) == {
        (m3.id, -1, m2.id),
        (m3.id, 1, m4.id),
        (m3.id, 2, m5.id),
    }
    assert await tier.query(Neighbours((), 1, 1)) == []
    assert await tier.query(Neighbours((m1.id,), 0, 0)) == []


@needs(C.SCAN)
async def test_scan_pages_every_record_of_a_kind_in_key_order(tier: Any) -> None:
    """A scan returns every record of its kind once, a page at a time, only the asked
    user's when scoped; the last page has no cursor."""
    records = [msg(f"sc-{i % 3}", i, "scan-a" if i % 2 else "scan-b") for i in range(7)]
    memory = MemoryEntry(content="likes scans", memory_type=MemoryType.FACT, user_id="scan-a")
    await tier.write([put(r) for r in records] + [put(memory)])

    async def every(kind: Any, user: str | None, size: int) -> list[Any]:
        out: list[Any] = []
        after = None
        while True:
            page = await tier.query(Scan(kind, user, after, size))
            assert len(page.items) <= size
            out += page.items
            if page.next is None:
                return out
            after = page.next

    mine = [r for r in records if r.user_id == "scan-a"]
    assert sorted(r.id for r in await every("message", "scan-a", 2)) == sorted(
        r.id for r in mine
    )
    found = await every("message", None, 3)
    assert sorted(r.id for r in found if r.conversation_id.startswith("sc-")) == sorted(
        r.id for r in records
    )
    assert [r.id for r in found] == sorted(r.id for r in found)
    assert found[0] == next(r for r in records if r.id == found[0].id)
    assert [m.id for m in await every("memory", "scan-a", 10)] == [memory.id]
    assert await every("memory", "nobody", 10) == []


@needs(C.DROP)
async def test_drop_erases_everything_the_tier_held(tier: Any) -> None:
    """After ``drop``, the tier's config opened afresh holds none of the records written
    before; a cache stays usable and misses them."""
    session = SessionContext(user_id="drop-a")
    memory = MemoryEntry(content="likes drops", memory_type=MemoryType.FACT, user_id="drop-a")
    puts = [put(session), put(memory)]
    await tier.write(puts)
    await tier.flush()
    await tier.drop()
    keys = [p.key for p in puts]
    if C.CLEAR in tier.capabilities:
        assert await tier.get(keys) == {}
    inner: Any = tier.innermost if isinstance(tier, PolicyTier) else tier
    fresh = type(inner)(inner.config, inner.context)
    await fresh.open()
    try:
        held = await fresh.get(keys)
        assert all(v is EMPTY for v in held.values()), held
    finally:
        await fresh.drop()
        await fresh.aclose()


__all__ = [name for name in list(globals()) if name.startswith("test_")]
