"""The ``MemoryInterface`` contract: plain async tests taking a ``stack`` fixture.

Import them into a test module (``from bruno_memory.testing.stack_contract import *``) and
provide a ``stack`` fixture yielding an opened memory (e.g. from ``build_memory``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole, MessageType
from bruno_core.utils.exceptions import MemoryError as CoreMemoryError

from bruno_memory.core.errors import InvalidInput, NotFound

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
HOSTILE = [
    "'; DROP TABLE messages; --",
    'he said "hi" AND NOT (x OR y) NEAR/3 z*',
    "col:value ^start -minus +plus {braces} [brackets] \\ backslash",
    "nul\x00byte inside",
    "%_% LIKE wildcards",
]


async def session_of(stack: Any, user: str = "alice") -> str:
    """A new session's conversation id."""
    return str((await stack.create_session(user)).conversation_id)


def say(text: str, i: int = 0, role: MessageRole = MessageRole.USER, **kw: Any) -> Message:
    return Message(role=role, content=text, timestamp=T0 + timedelta(seconds=i), **kw)


async def test_message_round_trips_every_field(stack: Any) -> None:
    """A message comes back equal: id, enums, metadata, parent, embedding, aware timestamp."""
    conv = await session_of(stack)
    tz = timezone(timedelta(hours=5, minutes=30))
    parent = uuid.uuid4()
    m = Message(
        role=MessageRole.TOOL,
        content="résumé 🎉 日本語",
        message_type=MessageType.COMMAND,
        timestamp=datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=tz),
        parent_id=parent,
        conversation_id=conv,
        metadata={
            "intent": "x",
            "nested": {"a": [1, 2.5, None, True]},
            "embedding": [0.1, -0.2, 3e-8],
        },
    )
    await stack.store_message(m, conv)
    (got,) = await stack.retrieve_messages(conv)
    assert got == m
    assert got.timestamp.utcoffset() == timedelta(hours=5, minutes=30)
    assert isinstance(got.role, MessageRole) and got.parent_id == parent


async def test_naive_timestamps_stay_naive(stack: Any) -> None:
    """bruno-core's default naive UTC timestamps come back naive and equal."""
    conv = await session_of(stack)
    m = Message(role=MessageRole.USER, content="naive")
    await stack.store_message(m, conv)
    (got,) = await stack.retrieve_messages(conv)
    assert got.timestamp == m.timestamp and got.timestamp.tzinfo is None


async def test_retrieve_messages_newest_first_with_limit(stack: Any) -> None:
    """retrieve_messages returns the newest ``limit`` messages, most recent first."""
    conv = await session_of(stack)
    msgs = [say(f"turn {i}", i) for i in range(30)]
    await stack.store_messages(msgs, conv)
    for _ in range(2):  # second read may come from a cache
        assert [m.content for m in await stack.retrieve_messages(conv, limit=5)] == [
            f"turn {i}" for i in range(29, 24, -1)
        ]
    assert len(await stack.retrieve_messages(conv)) == 30
    assert len(await stack.retrieve_messages(conv, limit=100)) == 30
    assert await stack.retrieve_messages(conv, limit=0) == []
    assert await stack.retrieve_messages("no-such-conversation", limit=5) == []


async def test_order_follows_instants_across_timezones(stack: Any) -> None:
    """Messages are ordered by the instant they happened, whatever their offsets."""
    conv = await session_of(stack)
    east = timezone(timedelta(hours=9))
    early = say("early", 0).model_copy(
        update={"timestamp": datetime(2026, 1, 1, 18, 0, tzinfo=east)}
    )
    late = say("late", 0).model_copy(
        update={"timestamp": datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)}
    )
    await stack.store_messages([late, early], conv)
    assert [m.content for m in await stack.retrieve_messages(conv)] == ["late", "early"]


async def test_new_message_after_a_cached_read_is_visible(stack: Any) -> None:
    """A read that filled a cache never hides a message stored after it."""
    conv = await session_of(stack)
    await stack.store_messages([say("one", 1), say("two", 2)], conv)
    await stack.retrieve_messages(conv, limit=2)
    await stack.store_message(say("three", 3), conv)
    assert [m.content for m in await stack.retrieve_messages(conv, limit=2)] == ["three", "two"]
    ctx = await stack.get_context("alice", conv)
    assert [m.content for m in ctx.messages] == ["one", "two", "three"]


async def test_returned_models_are_copies(stack: Any) -> None:
    """Mutating a stored or returned model never changes what is stored."""
    conv = await session_of(stack)
    m = say("original", metadata={"tags": ["a"]})
    await stack.store_message(m, conv)
    m.metadata["tags"].append("caller-side")
    m.content = "mutated before read"
    (got,) = await stack.retrieve_messages(conv)
    got.metadata["tags"].append("x")
    got.content = "mutated after read"
    (again,) = await stack.retrieve_messages(conv)
    assert again.content == "original" and again.metadata == {"tags": ["a"]}


async def test_same_message_id_twice_keeps_one(stack: Any) -> None:
    """Storing a message id again replaces it (upsert), never duplicates it."""
    conv = await session_of(stack)
    m = say("first version", 1)
    await stack.store_message(m, conv)
    await stack.store_message(m.model_copy(update={"content": "second version"}), conv)
    got = await stack.retrieve_messages(conv)
    assert [x.content for x in got] == ["second version"]
    assert (await stack.get_statistics("alice"))["total_messages"] == 1


async def test_large_and_hostile_content_round_trips(stack: Any) -> None:
    """1 MB content and SQL/FTS syntax, quotes and NUL bytes are stored verbatim."""
    conv = await session_of(stack)
    big = "x" * (1 << 20)
    msgs = [say(big, 0)] + [say(text, i + 1) for i, text in enumerate(HOSTILE)]
    await stack.store_messages(msgs, conv)
    got = list(reversed(await stack.retrieve_messages(conv)))
    assert [m.content for m in got] == [big, *HOSTILE]


async def test_hostile_queries_are_searched_not_executed(stack: Any) -> None:
    """Search treats syntax as words; nothing is dropped or raised."""
    conv = await session_of(stack)
    await stack.store_messages([say(text, i) for i, text in enumerate(HOSTILE)], conv)
    for q in [*HOSTILE, "", "   ", '"', "*", "AND", "NOT"]:
        await stack.search_messages(q, user_id="alice")
    hits = await stack.search_messages("DROP TABLE messages", user_id="alice")
    assert hits and hits[0].content == HOSTILE[0]
    assert len(await stack.retrieve_messages(conv)) == len(HOSTILE)


async def test_search_is_ranked_relevance_scoped_to_user(stack: Any) -> None:
    """search_messages ranks by relevance (not substring) and never crosses users."""
    a, b = await session_of(stack, "alice"), await session_of(stack, "bob")
    await stack.store_messages(
        [
            say("I adopted a small cat last spring", 1),
            say("The weather was sunny in Lisbon", 2),
            say("My cat hates the vet, the cat hides", 3),
        ],
        a,
    )
    await stack.store_message(say("bob also has a cat and a vet appointment", 4), b)
    hits = await stack.search_messages("vet appointment for my cat", user_id="alice", limit=10)
    assert hits[0].content == "My cat hates the vet, the cat hides"
    assert "The weather was sunny in Lisbon" not in [h.content for h in hits[:2]]
    assert all("bob" not in h.content for h in hits)
    assert [h.content for h in await stack.search_messages("cat", user_id="bob")] == [
        "bob also has a cat and a vet appointment"
    ]
    assert len(await stack.search_messages("cat", user_id="alice", limit=1)) == 1


async def test_a_write_naming_another_user_than_the_owner_is_refused(stack: Any) -> None:
    """Bob cannot file a message under alice's name: not in his conversation, not in hers;
    nothing moves, and none of her reads shows it."""
    alice, bob = await session_of(stack, "alice"), await session_of(stack, "bob")
    await stack.store_message(say("alice owns this turn"), alice)
    forged = say("forged turn for alice", metadata={"user_id": "alice"})
    with pytest.raises(InvalidInput, match="owner"):
        await stack.store_message(forged, bob)
    with pytest.raises(InvalidInput, match="owner"):
        await stack.store_message(say("bob in hers", metadata={"user_id": "bob"}), alice)
    await stack.store_message(say("alice names herself", 1, metadata={"user_id": "alice"}), alice)
    assert await stack.retrieve_messages(bob) == []
    hers = {m.content for m in await stack.search_messages("turn", user_id="alice")}
    assert "alice owns this turn" in hers and "forged turn for alice" not in hers
    found = await stack.retrieve_context(user_id="alice", query="forged turn", limit=10)
    assert "forged turn for alice" not in [m.content for m in found]
    assert (await stack.get_statistics("alice"))["total_messages"] == 2


async def test_first_attributed_write_makes_its_user_the_owner(stack: Any) -> None:
    """An ownerless conversation written with metadata user_id belongs to that user from then
    on: another user's get_context is refused and gets none of her messages."""
    conv = f"attributed-{uuid.uuid4()}"
    await stack.store_message(say("alice's private note", metadata={"user_id": "alice"}), conv)
    with pytest.raises(NotFound):
        await stack.get_context("mallory", conv)
    with pytest.raises(InvalidInput):
        await stack.store_message(say("mallory too", 1, metadata={"user_id": "mallory"}), conv)
    await stack.store_message(say("alice again", 2), conv)  # unattributed: the owner's
    ctx = await stack.get_context("alice", conv)
    assert ctx.session.user_id == "alice"
    assert [m.content for m in ctx.messages] == ["alice's private note", "alice again"]
    assert (await stack.get_statistics("alice"))["total_messages"] == 2
    assert (await stack.get_statistics("mallory"))["total_messages"] == 0


async def test_one_batch_naming_two_users_is_refused(stack: Any) -> None:
    """A conversation has one owner: a batch naming two users stores nothing."""
    conv = f"two-{uuid.uuid4()}"
    batch = [say("a", 0, metadata={"user_id": "alice"}), say("b", 1, metadata={"user_id": "bob"})]
    with pytest.raises(InvalidInput):
        await stack.store_messages(batch, conv)
    assert await stack.retrieve_messages(conv) == []


async def test_claiming_an_ownerless_conversation_claims_its_messages(stack: Any) -> None:
    """Messages stored before any session become the claiming user's for search,
    statistics, context and erasure."""
    conv = f"early-{uuid.uuid4()}"
    await stack.store_messages([say("carol early kayak", 0), say("carol early canoe", 1)], conv)
    assert [m.content for m in await stack.retrieve_messages(conv)]  # cached, ownerless
    ctx = await stack.get_context("carol", conv)
    assert [m.content for m in ctx.messages] == ["carol early kayak", "carol early canoe"]
    await stack.store_message(say("carol later kayak", 2), conv)
    found = {m.content for m in await stack.search_messages("kayak", user_id="carol")}
    assert {"carol early kayak", "carol later kayak"} <= found  # (by meaning: canoe too)
    assert (await stack.get_statistics("carol"))["total_messages"] == 3
    with pytest.raises(NotFound):
        await stack.get_context("mallory", conv)
    await stack.forget_user("carol")
    assert await stack.retrieve_messages(conv) == []
    assert await stack.search_messages("kayak") == []


async def test_forget_user_drops_windows_whose_first_message_was_stored_before_her(
    stack: Any,
) -> None:
    """A cached window whose oldest message predates her session is forgotten with her;
    another user taking the id afterwards gets none of it."""
    conv = f"window-{uuid.uuid4()}"
    await stack.store_message(say("before alice's session", 0), conv)
    await stack.retrieve_messages(conv)  # a cached window starting with that message
    await stack.get_context("alice", conv)
    await stack.store_message(say("alice secret", 1), conv)
    assert len(await stack.retrieve_messages(conv)) == 2  # served from the caches
    await stack.forget_user("alice")
    assert await stack.retrieve_messages(conv) == []
    ctx = await stack.get_context("mallory", conv)
    assert ctx.messages == [] and ctx.session.user_id == "mallory"


async def test_a_message_id_of_another_conversation_is_refused(stack: Any) -> None:
    """Reusing alice's message id in bob's conversation moves nothing, in any tier."""
    alice, bob = await session_of(stack, "alice"), await session_of(stack, "bob")
    original = say("alice original")
    await stack.store_message(original, alice)
    await stack.retrieve_messages(alice)  # cached too
    thief = say("bob takes it", 1, id=original.id)
    with pytest.raises(InvalidInput, match="another conversation"):
        await stack.store_message(thief, bob)
    with pytest.raises(InvalidInput):
        await stack.store_messages([say("bob's own", 2), thief], bob)
    assert [m.content for m in await stack.retrieve_messages(alice)] == ["alice original"]
    assert await stack.retrieve_messages(bob) == []
    assert [m.content for m in await stack.search_messages("alice original")] == [
        "alice original"
    ]
    assert (await stack.get_statistics("bob"))["total_messages"] == 0
    edited = say("alice edited", id=original.id)
    await stack.store_message(edited, alice)  # an upsert in place is fine
    assert [m.content for m in await stack.retrieve_messages(alice)] == ["alice edited"]


async def test_a_memory_id_of_another_user_is_refused(stack: Any) -> None:
    """Bob reusing alice's memory id neither takes nor changes her memory."""
    mine = memory("alice's allergy", user="alice")
    await stack.store_memory(mine)
    stolen = MemoryEntry(id=mine.id, content="bob's now", user_id="bob",
                         memory_type=MemoryType.FACT)
    with pytest.raises(InvalidInput, match="another user"):
        await stack.store_memory(stolen)
    assert await stack.get_memory(str(mine.id)) == mine
    assert await stack.retrieve_memories(MemoryQuery(user_id="bob")) == []
    assert [m.content for m in await stack.retrieve_memories(MemoryQuery(user_id="alice"))] == [
        "alice's allergy"
    ]


async def test_a_minted_id_reused_elsewhere_is_refused(stack: Any) -> None:
    """The same message object (its id made by the model) stored in bob's conversation
    after alice's, or a copy of alice's memory given to bob, is refused like a chosen id."""
    alice, bob = await session_of(stack, "alice"), await session_of(stack, "bob")
    shared = say("alice's, minted")
    await stack.store_message(shared, alice)
    await stack.store_message(shared, alice)  # the same place again: an upsert in place
    with pytest.raises(InvalidInput, match="another conversation"):
        await stack.store_message(shared, bob)
    assert await stack.retrieve_messages(bob) == []
    assert [m.content for m in await stack.retrieve_messages(alice)] == ["alice's, minted"]
    mine = MemoryEntry(content="alice's diary", user_id="alice", memory_type=MemoryType.FACT)
    await stack.store_memory(mine)
    with pytest.raises(InvalidInput, match="another user"):
        await stack.store_memory(mine.model_copy(update={"user_id": "bob"}))
    assert await stack.get_memory(str(mine.id)) == mine
    assert await stack.retrieve_memories(MemoryQuery(user_id="bob")) == []


async def test_hundred_concurrent_writers_lose_nothing(stack: Any) -> None:
    """100 concurrent store_message calls on one conversation all land."""
    conv = await session_of(stack)
    msgs = [say(f"concurrent {i}", i) for i in range(100)]
    await asyncio.gather(*(stack.store_message(m, conv) for m in msgs))
    got = await stack.retrieve_messages(conv)
    assert sorted(m.id for m in got) == sorted(m.id for m in msgs)


async def test_sessions_lifecycle(stack: Any) -> None:
    """Sessions are created, found, ended; unknown ids give None or NotFound."""
    s = await stack.create_session("alice", metadata={"device": "phone"})
    got = await stack.get_session(s.session_id)
    assert got == s and got.metadata == {"device": "phone"} and got.is_active
    await stack.end_session(s.session_id)
    ended = await stack.get_session(s.session_id)
    assert not ended.is_active and ended.ended_at is not None
    assert await stack.get_session("no-such-session") is None
    with pytest.raises(NotFound):
        await stack.end_session("no-such-session")
    assert issubclass(NotFound, CoreMemoryError)


async def test_get_context_accepts_session_or_conversation_id(stack: Any) -> None:
    """get_context finds a session by its id or its conversation id, messages chronological."""
    s = await stack.create_session("alice")
    await stack.store_messages([say(f"m{i}", i) for i in range(25)], s.conversation_id)
    for ident in (s.session_id, s.conversation_id):
        ctx = await stack.get_context("alice", ident)
        assert ctx.session.session_id == s.session_id
        assert ctx.conversation_id == s.conversation_id
        assert [m.content for m in ctx.messages] == [f"m{i}" for i in range(5, 25)]
        assert ctx.user.user_id == "alice"


async def test_unknown_id_starts_a_session_owning_that_conversation(stack: Any) -> None:
    """An unknown id becomes a session of the user, so later messages are the user's."""
    ctx = await stack.get_context("dora", "chat-42")
    assert ctx.conversation_id == "chat-42" and ctx.session.user_id == "dora" and ctx.messages == []
    await stack.store_message(say("dora likes kayaking"), "chat-42")
    assert [m.content for m in await stack.search_messages("kayaking", user_id="dora")] == [
        "dora likes kayaking"
    ]
    assert [
        m.content
        for m in await stack.retrieve_context(user_id="dora", query="kayak trips", limit=5)
    ] == ["dora likes kayaking"]
    assert (await stack.get_context("dora", "chat-42")).messages[0].content == "dora likes kayaking"


async def test_get_context_refuses_another_users_session(stack: Any) -> None:
    """User A can never read user B's conversation through get_context."""
    conv = await session_of(stack, "bob")
    await stack.store_message(say("bob secret"), conv)
    with pytest.raises(NotFound):
        await stack.get_context("alice", conv)


async def test_get_context_without_id_uses_latest_active_session(stack: Any) -> None:
    """Without a session id, the user's latest active session is used, or one is started."""
    ctx = await stack.get_context("erin")
    assert ctx.session.user_id == "erin"
    again = await stack.get_context("erin")
    assert again.session.session_id == ctx.session.session_id


async def test_clear_history(stack: Any) -> None:
    """clear_history keeps system messages by default; clear_conversation removes all."""
    conv = await session_of(stack)
    await stack.store_messages(
        [say("rules", 0, MessageRole.SYSTEM), say("hi", 1), say("yo", 2, MessageRole.ASSISTANT)],
        conv,
    )
    await stack.retrieve_messages(conv)
    await stack.clear_history(conv)
    assert [m.content for m in await stack.retrieve_messages(conv)] == ["rules"]
    await stack.clear_history(conv, keep_system_messages=False)
    assert await stack.retrieve_messages(conv) == []
    await stack.store_message(say("again", 3), conv)
    await stack.clear_conversation(conv)
    assert await stack.retrieve_messages(conv) == []
    assert await stack.search_messages("again", user_id="alice") == []


def memory(content: str, user: str = "alice", **kw: Any) -> MemoryEntry:
    md = MemoryMetadata(**kw.pop("md", {}))
    return MemoryEntry(
        content=content, user_id=user, memory_type=kw.pop("t", MemoryType.FACT), metadata=md, **kw
    )


async def test_memories_honour_every_query_field(stack: Any) -> None:
    """retrieve_memories applies types, categories, tags, confidence, importance, expiry, limit."""
    now = datetime.now(timezone.utc)
    entries = [
        memory(
            "loves jazz and blues",
            md={
                "category": "preference",
                "tags": ["music"],
                "importance": 0.9,
                "embedding": [0.1, 0.2],
            },
        ),
        memory(
            "lives in Porto", t=MemoryType.LONG_TERM, md={"category": "profile", "confidence": 0.3}
        ),
        memory(
            "had a dentist appointment", t=MemoryType.EPISODIC, expires_at=now - timedelta(hours=1)
        ),
        memory("bob loves jazz too", user="bob"),
    ]
    for e in entries:
        await stack.store_memory(e)

    async def q(**kw: Any) -> list[str]:
        return sorted(
            e.content for e in await stack.retrieve_memories(MemoryQuery(user_id="alice", **kw))
        )

    assert await q() == ["lives in Porto", "loves jazz and blues"]
    assert await q(include_expired=True) == [
        "had a dentist appointment",
        "lives in Porto",
        "loves jazz and blues",
    ]
    assert await q(memory_types=[MemoryType.LONG_TERM, MemoryType.SEMANTIC]) == ["lives in Porto"]
    assert await q(categories=["preference"]) == ["loves jazz and blues"]
    assert await q(tags=["music"]) == ["loves jazz and blues"]
    assert await q(min_confidence=0.5) == ["loves jazz and blues"]
    assert await q(min_importance=0.95) == ["lives in Porto"]
    assert len(await q(limit=1)) == 1
    ranked = await stack.retrieve_memories(MemoryQuery(user_id="alice", query_text="jazz music"))
    assert ranked[0].content == "loves jazz and blues" and all(e.user_id == "alice" for e in ranked)
    strict = await stack.retrieve_memories(
        MemoryQuery(user_id="alice", query_text="jazz", similarity_threshold=1.0)
    )
    assert len(strict) <= len(ranked)
    (stored,) = [
        e for e in await stack.retrieve_memories(MemoryQuery(user_id="alice", tags=["music"]))
    ]
    assert stored == entries[0]


async def test_delete_memory_is_idempotent_and_total(stack: Any) -> None:
    """A deleted memory is gone from every tier; deleting again is fine."""
    e = memory("temporary fact")
    await stack.store_memory(e)
    assert (await stack.get_memory(str(e.id))) == e
    await stack.delete_memory(str(e.id))
    await stack.delete_memory(str(e.id))
    await stack.delete_memory(str(uuid.uuid4()))
    assert await stack.get_memory(str(e.id)) is None
    assert await stack.retrieve_memories(MemoryQuery(user_id="alice", query_text="temporary")) == []


async def test_statistics_count_one_user(stack: Any) -> None:
    """Statistics count the user's messages, conversations, sessions and memories only,
    expired memories left out."""
    c1, c2 = await session_of(stack), await session_of(stack)
    await stack.store_messages([say("a", 1), say("b", 2)], c1)
    await stack.store_message(say("c", 3), c2)
    await stack.store_memory(memory("m"))
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    await stack.store_memory(memory("expired", t=MemoryType.EPISODIC, expires_at=past))
    await stack.store_message(say("bob's"), await session_of(stack, "bob"))
    stats = await stack.get_statistics("alice")
    assert stats["total_messages"] == 3 and stats["conversations"] == 2
    assert stats["sessions"] == 2 and stats["memories"] == 1  # the expired one not counted
    assert stats["memories_by_type"] == {"fact": 1}


async def test_statistics_count_turns_and_response_times(stack: Any) -> None:
    """Turns are the user's messages; a response time is the gap between a user turn and
    the assistant message right after it in its conversation (naive and aware alike)."""
    conv = await session_of(stack, "rt")
    await stack.store_messages([
        say("hi", 0), say("hello!", 2, MessageRole.ASSISTANT),
        say("how are you?", 10), say("fine", 16, MessageRole.ASSISTANT),
        say("and a follow-up", 20, MessageRole.ASSISTANT),  # not right after a user turn
        say("bye", 30),
    ], conv)
    stats = await stack.get_statistics("rt")
    assert stats["turns"] == 3 and stats["responses"] == 2
    assert stats["mean_response_seconds"] == 4.0 and stats["max_response_seconds"] == 6.0
    assert (await stack.get_statistics("nobody"))["mean_response_seconds"] is None


async def test_forget_user_erases_everywhere(stack: Any) -> None:
    """forget_user leaves nothing of the user in any tier and keeps other users intact."""
    s = await stack.create_session("gone")
    await stack.store_message(say("secret"), s.conversation_id)
    await stack.store_memory(memory("secret memory", user="gone"))
    await stack.retrieve_messages(s.conversation_id)
    await stack.get_session(s.session_id)
    keep = await session_of(stack, "kept")
    await stack.store_message(say("kept message"), keep)
    await stack.forget_user("gone")
    assert await stack.get_session(s.session_id) is None
    assert await stack.retrieve_messages(s.conversation_id) == []
    assert await stack.search_messages("secret", user_id="gone") == []
    assert await stack.retrieve_memories(MemoryQuery(user_id="gone")) == []
    assert (await stack.get_statistics("gone"))["total_messages"] == 0
    assert [m.content for m in await stack.retrieve_messages(keep)] == ["kept message"]


async def test_bad_input_is_refused_clearly(stack: Any) -> None:
    """Bad arguments raise InvalidInput (a bruno-core MemoryError) naming the argument."""
    conv = await session_of(stack)
    await stack.store_message(say("safe"), conv)
    cases = [
        stack.store_message(say("x"), ""),
        stack.store_message("not a message", conv),
        stack.retrieve_messages(conv, limit=-1),
        stack.retrieve_messages(None),
        stack.search_messages(None),
        stack.create_session(""),
        stack.store_memory({"content": "dict"}),
        stack.get_context("alice", "bad\x00id"),
    ]
    for call in cases:
        with pytest.raises(InvalidInput) as info:
            await call
        assert isinstance(info.value, CoreMemoryError)
    assert [m.content for m in await stack.retrieve_messages(conv)] == ["safe"]


async def test_health_reports_every_tier(stack: Any) -> None:
    """health() names every tier as up with a latency and counters."""
    report = await stack.health()
    assert report and all(r["status"] == "up" and r["latency_ms"] >= 0 for r in report.values())


async def test_search_door_scopes_by_user_and_conversation_with_scores(stack: Any) -> None:
    """``search`` ranks with scores (best first), scoped to a user and to a conversation;
    ``mode="text"`` is full text alone; bad arguments are refused."""
    one, two = await session_of(stack, "sd-ann"), await session_of(stack, "sd-ann")
    other = await session_of(stack, "sd-bob")
    await stack.store_messages([say("the red kite flew over the hill", 1)], one)
    await stack.store_messages([say("a red kite nest in the oak", 2)], two)
    await stack.store_messages([say("red kite sighting reported", 3)], other)
    await stack.flush()
    hits = await stack.search("red kite", user_id="sd-ann", limit=10)
    assert {h.item.content for h in hits} >= {
        "the red kite flew over the hill", "a red kite nest in the oak"
    }
    assert "red kite sighting reported" not in {h.item.content for h in hits}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    scoped = await stack.search("red kite", user_id="sd-ann", conversation_id=two, mode="text")
    assert [h.item.content for h in scoped] == ["a red kite nest in the oak"]
    with pytest.raises(InvalidInput):
        await stack.search("red kite", limit=-1)


async def test_scan_door_pages_through_every_record_of_a_kind(stack: Any) -> None:
    """``scan`` returns every stored record of a kind once, in pages, as the authoritative
    tier holds it (queued writes included), only the asked user's when scoped."""
    conv = await session_of(stack, "sc-ann")
    sent = [say(f"scan me {i}", i) for i in range(7)]
    await stack.store_messages(sent, conv)
    await stack.store_memory(
        MemoryEntry(content="likes paging", memory_type=MemoryType.FACT, user_id="sc-ann")
    )
    seen: list[Any] = []
    after = None
    while True:
        page = await stack.scan("message", user_id="sc-ann", after=after, limit=3)
        assert len(page.items) <= 3
        seen += page.items
        if page.next is None:
            break
        after = page.next
    assert sorted(r.id for r in seen) == sorted(str(m.id) for m in sent)
    assert all(r.conversation_id == conv and r.user_id == "sc-ann" for r in seen)
    memories = await stack.scan("memory", user_id="sc-ann")
    assert [m.content for m in memories.items] == ["likes paging"] and memories.next is None
    sessions = await stack.scan("session", user_id="sc-ann")
    assert [s.conversation_id for s in sessions.items] == [conv]
    with pytest.raises(InvalidInput):
        await stack.scan("everything")


def _mutated(message: Message, **fields: Any) -> Message:
    """``message`` with fields assigned after validation (bruno-core does not re-validate)."""
    for name, value in fields.items():
        setattr(message, name, value)
    return message


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


class _Opaque:
    """An object no store can hold as JSON."""


async def test_malformed_input_is_refused_and_never_stored(stack: Any) -> None:
    """Models mutated after validation, values of the wrong type, non-JSON metadata, lone
    surrogates, runaway nesting, oversized limits and lists, NUL in ids: each refused with
    InvalidInput (a bruno-core MemoryError) before anything is stored; what was stored
    before stays intact."""
    conv = await session_of(stack, "bad-ann")
    await stack.store_message(say("safe and sound"), conv)
    await stack.store_memory(memory("keeps bees", user="bad-ann"))
    selfref: dict[str, Any] = {}
    selfref["me"] = selfref
    entry = memory("bad entry", user="bad-ann")
    query = MemoryQuery(user_id="bad-ann")
    cases: dict[str, Any] = {
        "id not a uuid": lambda: stack.store_message(_mutated(say("m"), id="not-a-uuid"), conv),
        "empty content": lambda: stack.store_message(_mutated(say("m"), content=""), conv),
        "bogus type": lambda: stack.store_message(_mutated(say("m"), message_type="bogus"), conv),
        "parent_id nope": lambda: stack.store_message(_mutated(say("m"), parent_id="nope"), conv),
        "content None": lambda: stack.store_message(_mutated(say("m"), content=None), conv),
        "content int": lambda: stack.store_message(_mutated(say("m"), content=5), conv),
        "content bytes": lambda: stack.store_message(_mutated(say("m"), content=b"\xff"), conv),
        "role hacker": lambda: stack.store_message(_mutated(say("m"), role="hacker"), conv),
        "role None": lambda: stack.store_message(_mutated(say("m"), role=None), conv),
        "str timestamp": lambda: stack.store_message(_mutated(say("m"), timestamp="2026"), conv),
        "lone surrogate": lambda: stack.store_message(_mutated(say("m"), content="a\ud800"), conv),
        "invalid utf-8": lambda: stack.store_message(
            _mutated(say("m"), content=b"a\xff".decode("utf-8", "surrogateescape")), conv
        ),
        "NUL in conversation field": lambda: stack.store_message(
            _mutated(say("m"), conversation_id="a\x00b"), conv
        ),
        "metadata object": lambda: stack.store_message(say("m", metadata={"o": _Opaque()}), conv),
        "metadata set": lambda: stack.store_message(say("m", metadata={"s": {1, 2}}), conv),
        "metadata datetime": lambda: stack.store_message(say("m", metadata={"t": T0}), conv),
        "metadata surrogate": lambda: stack.store_message(say("m", metadata={"k": "\udc00"}), conv),
        "metadata 300 deep": lambda: stack.store_message(say("m", metadata=_deep(300)), conv),
        "metadata refers to itself": lambda: stack.store_message(say("m", metadata=selfref), conv),
        "store_messages(None)": lambda: stack.store_messages(None, conv),
        "store_messages(a Message)": lambda: stack.store_messages(say("m"), conv),
        "session metadata list": lambda: stack.create_session("bad-ann", metadata=["a"]),
        "memory_types bogus": lambda: stack.retrieve_memories(
            _mutated(query.model_copy(), memory_types=["bogus"])
        ),
        "300,000 categories": lambda: stack.retrieve_memories(
            MemoryQuery(user_id="bad-ann", categories=[f"c{i}" for i in range(300_000)])
        ),
        "memory type bogus": lambda: stack.store_memory(_mutated(entry, memory_type="bogus")),
        "memory custom object": lambda: stack.store_memory(
            memory("m", user="bad-ann", md={"custom_fields": {"o": _Opaque()}})
        ),
        "NUL in memory user": lambda: stack.store_memory(
            _mutated(memory("m"), user_id="bad\x00ann")
        ),
        "limit 2**63 retrieve": lambda: stack.retrieve_messages(conv, limit=2**63),
        "limit 2**63 search": lambda: stack.search_messages("safe", "bad-ann", limit=2**63),
        "user_id list": lambda: stack.search_messages("safe", ["bad-ann"]),
        "user_id bytes": lambda: stack.search_messages("safe", b"bad-ann"),
        "user_id int": lambda: stack.search_messages("safe", 7),
        "search_memories no user": lambda: stack.search_memories("", "bees"),
        "search_memories limit 1001": lambda: stack.search_memories("bad-ann", "bees", limit=1001),
        "retrieve_context(None, q)": lambda: stack.retrieve_context(None, "safe"),
    }
    for name, call in cases.items():
        with pytest.raises(InvalidInput) as info:
            await call()
        assert isinstance(info.value, CoreMemoryError), name
        assert [m.content for m in await stack.retrieve_messages(conv)] == ["safe and sound"], name
    await stack.flush()
    stored = await stack.scan("message", user_id="bad-ann")
    assert [r.message.content for r in stored.items] == ["safe and sound"]
    assert [m.content for m in await stack.retrieve_memories(query)] == ["keeps bees"]


async def test_metadata_comes_out_as_it_went_in(stack: Any) -> None:
    """JSON-native metadata is returned equal by the caches and by the authoritative tier;
    values JSON cannot hold as they are (sets, tuples, datetimes, NaN) are refused."""
    conv = await session_of(stack, "md-ann")
    metadata = {
        "text": "résumé \x00 🎉",
        "numbers": [0, -(2**63), 2**63 - 1, 1.5, -0.0, 1e300],
        "nested": {"list": [[], {}, [None, True, False]], "empty": ""},
    }
    sent = say("with metadata", metadata=metadata)
    await stack.store_message(sent, conv)
    for _ in range(2):  # the second read may come from a cache
        (got,) = await stack.retrieve_messages(conv)
        assert got.metadata == metadata
    await stack.flush()
    (held,) = (await stack.scan("message", user_id="md-ann")).items
    assert held.message.metadata == metadata
    for bad in ({"s": {1}}, {"t": (1, 2)}, {"d": T0}, {"n": float("nan")}, {1: "int key"}):
        with pytest.raises(InvalidInput):
            await stack.store_message(_mutated(say("bad"), metadata=bad), conv)
    assert [m.content for m in await stack.retrieve_messages(conv)] == ["with metadata"]


from bruno_memory.testing.branch_contract import *  # noqa: E402, F403
from bruno_memory.testing.retrieval_contract import *  # noqa: E402, F403

__all__ = [name for name in list(globals()) if name.startswith("test_")]
