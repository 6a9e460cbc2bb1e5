"""The retrieval doors' contract (range queries, exact phrases, listing and paging), part of
the stack contract suite (``stack_contract`` imports these): plain async tests taking a
``stack`` fixture."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.cursors import START
from bruno_memory.core.errors import InvalidInput

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _say(text: str, seconds: float) -> Message:
    return Message(role=MessageRole.USER, content=text, timestamp=T0 + timedelta(seconds=seconds))


async def _conversation(stack: Any, user: str) -> str:
    return str((await stack.create_session(user)).conversation_id)


def _user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_messages_between_two_instants(stack: Any) -> None:
    """Messages of a conversation or a user in [start, end), oldest first; never another
    user's; naive datetimes are UTC; a reversed or unscoped range is refused."""
    ann, bob = _user("ann"), _user("bob")
    conv, other = await _conversation(stack, ann), await _conversation(stack, ann)
    await stack.store_messages([_say(f"turn {i}", i) for i in range(10)], conv)
    await stack.store_messages([_say("later", 4.5)], other)
    await stack.store_messages([_say("bob's", 3)], await _conversation(stack, bob))
    start, end = T0 + timedelta(seconds=2), T0 + timedelta(seconds=5)
    got = await stack.messages_between(start, end, conversation_id=conv)
    assert [m.content for m in got] == ["turn 2", "turn 3", "turn 4"]
    by_user = await stack.messages_between(start, end, user_id=ann)
    assert [m.content for m in by_user] == ["turn 2", "turn 3", "turn 4", "later"]
    assert await stack.messages_between(start, end, user_id=bob, conversation_id=conv) == []
    naive = start.replace(tzinfo=None)
    assert len(await stack.messages_between(naive, end, user_id=ann, limit=2)) == 2
    assert await stack.messages_between(start, start, user_id=ann) == []
    with pytest.raises(InvalidInput, match="after end"):
        await stack.messages_between(end, start, user_id=ann)
    with pytest.raises(InvalidInput, match="user_id or conversation_id"):
        await stack.messages_between(start, end)
    with pytest.raises(InvalidInput, match="datetime"):
        await stack.messages_between("2026-03-01", end, user_id=ann)


async def test_memories_between_two_instants(stack: Any) -> None:
    """A user's memories created (or updated) in [start, end), oldest first."""
    ann = _user("ann")
    for i in range(5):
        stamp = T0 + timedelta(days=i)
        await stack.store_memory(
            MemoryEntry(
                content=f"fact {i}",
                user_id=ann,
                memory_type=MemoryType.FACT,
                created_at=stamp,
                updated_at=stamp + timedelta(days=10),
            )
        )
    await stack.store_memory(
        MemoryEntry(
            content="bob",
            user_id=_user("bob"),
            memory_type=MemoryType.FACT,
            created_at=T0 + timedelta(days=2),
        )
    )
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=4)
    got = await stack.memories_between(ann, start, end)
    assert [m.content for m in got] == ["fact 1", "fact 2", "fact 3"]
    later = await stack.memories_between(
        ann, start + timedelta(days=10), end + timedelta(days=10), by="updated", limit=2
    )
    assert [m.content for m in later] == ["fact 1", "fact 2"]
    with pytest.raises(InvalidInput, match="by must be"):
        await stack.memories_between(ann, start, end, by="expires")


async def test_search_phrase_finds_the_exact_phrase_only(stack: Any) -> None:
    """Only messages holding the phrase verbatim (any case), only the user's; a phrase
    without a word is refused; hostile text is a phrase like any other."""
    ann, bob = _user("ann"), _user("bob")
    conv = await _conversation(stack, ann)
    texts = [
        "I drink black coffee every morning",
        "black tea, then coffee",
        "Coffee black, no sugar",
        "BLACK COFFEE again!",
        'he said "black coffee" twice',
    ]
    await stack.store_messages([_say(t, i) for i, t in enumerate(texts)], conv)
    await stack.store_messages([_say("black coffee for bob", 0)], await _conversation(stack, bob))
    hits = await stack.search_phrase("Black Coffee", user_id=ann)
    assert sorted(h.item.content for h in hits) == sorted([texts[0], texts[3], texts[4]])
    assert all(isinstance(h.score, float) for h in hits)
    assert [h.item.content for h in await stack.search_phrase("coffee every", user_id=ann)] == [
        texts[0]
    ]
    assert await stack.search_phrase('"black coffee" twice', conversation_id=conv, limit=5)
    assert await stack.search_phrase("coffee black tea", user_id=ann) == []
    with pytest.raises(InvalidInput, match="phrase"):
        await stack.search_phrase("?!", user_id=ann)


async def test_list_sessions_and_conversations_newest_first_paged(stack: Any) -> None:
    """Every session of the user exactly once, newest first, in cursor pages; nobody
    else's; a forged cursor is refused."""
    ann = _user("ann")
    made = [await stack.create_session(ann) for _ in range(5)]
    await stack.create_session(_user("bob"))
    expected = [
        s.session_id
        for s in sorted(made, key=lambda s: (s.started_at.timestamp(), s.session_id), reverse=True)
    ]
    for door in (stack.list_sessions, stack.list_conversations):
        seen: list[str] = []
        before = None
        for _ in range(10):
            page = await door(ann, before=before, limit=2)
            seen += [s.session_id for s in page.items]
            assert all(s.user_id == ann for s in page.items)
            if page.next is None:
                break
            before = page.next
        assert seen == expected
    assert (await stack.list_sessions(_user("nobody"))).items == []
    with pytest.raises(InvalidInput, match="cursor"):
        await stack.list_sessions(ann, before="not a cursor")


async def test_page_messages_backwards_and_forwards(stack: Any) -> None:
    """Paging a conversation up from its newest screen, and down from its start, gives
    every message once, in order (ties on timestamps kept in storage order)."""
    conv = await _conversation(stack, _user("ann"))
    await stack.store_messages([_say(f"m{i}", i // 3) for i in range(23)], conv)
    chronological = [m.content for m in reversed(await stack.retrieve_messages(conv))]
    assert chronological == [f"m{i}" for i in range(23)]

    screens: list[list[str]] = []
    page = await stack.page_messages(conv, limit=5)
    while True:
        screens.insert(0, [m.content for m in page.items])
        if page.next is None:
            break
        page = await stack.page_messages(conv, before=page.next, limit=5)
    assert [c for s in screens for c in s] == chronological
    assert screens[-1] == chronological[-5:]

    forward: list[str] = []
    page = await stack.page_messages(conv, after=START, limit=7)
    first = page
    while True:
        forward += [m.content for m in page.items]
        if page.next is None:
            break
        page = await stack.page_messages(conv, after=page.next, limit=7)
    assert forward == chronological
    back = await stack.page_messages(conv, before=first.next, limit=7)
    assert [m.content for m in back.items] == chronological[:6]
    turned = await stack.page_messages(conv, after=back.prev, limit=3)
    assert [m.content for m in turned.items] == chronological[6:9]

    assert (await stack.page_messages("no-such-conversation")).items == []
    with pytest.raises(InvalidInput, match="not both"):
        await stack.page_messages(conv, before=first.next, after=first.next)
    with pytest.raises(InvalidInput, match="cursor"):
        await stack.page_messages(conv, before="bogus!")


__all__ = [name for name in list(globals()) if name.startswith("test_")]
