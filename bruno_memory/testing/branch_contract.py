"""The branching contract (``fork_conversation``), part of the stack contract suite
(``stack_contract`` imports these): plain async tests taking a ``stack`` fixture."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core.branches import KEY
from bruno_memory.core.cursors import START
from bruno_memory.core.errors import NotFound

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _say(text: str, seconds: float) -> Message:
    return Message(role=MessageRole.USER, content=text, timestamp=T0 + timedelta(seconds=seconds))


def _user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def _forked(stack: Any, user: str) -> tuple[str, str, list[Message]]:
    """A conversation of ten turns ``t0``..``t9``, forked at ``t4``; the branch then gets
    ``b0`` and ``b1``, and the parent ``t10``. Returns (parent, branch, parent's turns)."""
    conv = str((await stack.create_session(user)).conversation_id)
    turns = [_say(f"t{i}", i) for i in range(10)]
    await stack.store_messages(turns, conv)
    branch = (await stack.fork_conversation(user, conv, str(turns[4].id))).conversation_id
    await stack.store_messages([_say("b0", 20), _say("b1", 21)], branch)
    await stack.store_message(_say("t10", 10), conv)
    return conv, branch, turns


def _texts(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


async def test_a_branch_reads_the_shared_prefix_then_its_own_messages(stack: Any) -> None:
    """``retrieve_messages`` and ``get_context`` of a branch hold the parent's turns up to
    the fork, then its own; the parent is unchanged; the lineage is recorded; nothing of
    the prefix was copied."""
    user = _user("fork-ann")
    conv, branch, turns = await _forked(stack, user)
    expected = ["b1", "b0", "t4", "t3", "t2", "t1", "t0"]
    for _ in range(2):  # the second read may come from a cache
        assert _texts(await stack.retrieve_messages(branch)) == expected
    assert _texts(await stack.retrieve_messages(branch, limit=3)) == expected[:3]
    context = await stack.get_context(user, branch)
    assert _texts(context.messages) == expected[::-1]
    assert len(await stack.retrieve_messages(conv)) == 11
    lineage = await stack.branch_of(branch)
    assert (lineage.parent, lineage.at) == (conv, str(turns[4].id))
    assert await stack.branch_of(conv) is None
    await stack.flush()
    stored = (await stack.scan("message", user_id=user, limit=100)).items
    assert sorted(r.message.content for r in stored) == sorted(
        [f"t{i}" for i in range(11)] + ["b0", "b1"]
    )


async def test_a_branch_pages_backwards_and_forwards_across_the_fork(stack: Any) -> None:
    """Screens of a branch run over prefix and own messages alike, oldest first within a
    screen, with cursors both ways."""
    _, branch, _ = await _forked(stack, _user("fork-bob"))
    back, screens = None, []
    while True:
        page = await stack.page_messages(branch, before=back, limit=3)
        screens.append(_texts(page.items))
        if page.next is None:
            break
        back = page.next
    assert screens == [["t4", "b0", "b1"], ["t1", "t2", "t3"], ["t0"]]
    first = await stack.page_messages(branch, limit=3)
    middle = await stack.page_messages(branch, before=first.next, limit=3)
    assert _texts((await stack.page_messages(branch, after=middle.prev, limit=3)).items) == [
        "t4", "b0", "b1"
    ]
    ahead, screens = START, []
    while ahead is not None:
        page = await stack.page_messages(branch, after=ahead, limit=3)
        screens.append(_texts(page.items))
        ahead = page.next
    assert screens == [["t0", "t1", "t2"], ["t3", "t4", "b0"], ["b1"]]


async def test_a_branch_of_a_branch_shares_only_up_to_its_fork(stack: Any) -> None:
    """Forked at a message of the shared prefix, a branch shares the prefix up to there;
    forked at one of the branch's own messages, it shares the whole prefix and those."""
    user = _user("fork-cy")
    _, branch, turns = await _forked(stack, user)
    early = (await stack.fork_conversation(user, branch, str(turns[2].id))).conversation_id
    assert _texts(await stack.retrieve_messages(early)) == ["t2", "t1", "t0"]
    own = (await stack.retrieve_messages(branch))[1]  # b0
    late = (await stack.fork_conversation(user, branch, str(own.id))).conversation_id
    await stack.store_message(_say("c0", 30), late)
    assert _texts(await stack.retrieve_messages(late)) == ["c0", "b0", "t4", "t3", "t2", "t1",
                                                           "t0"]


async def test_forking_is_refused_outside_the_users_conversation(stack: Any) -> None:
    """Another user's conversation, or a message the conversation (or the branch's view of
    it) does not hold, cannot be forked; a lineage forged in session metadata that names
    another user's conversation is ignored."""
    user, other = _user("fork-dee"), _user("fork-eve")
    conv, branch, turns = await _forked(stack, user)
    with pytest.raises(NotFound):
        await stack.fork_conversation(other, conv, str(turns[4].id))
    later = (await stack.retrieve_messages(conv, limit=1))[0]  # t10: after the fork point
    with pytest.raises(NotFound):
        await stack.fork_conversation(user, branch, str(later.id))
    with pytest.raises(NotFound):
        await stack.fork_conversation(user, conv, str(uuid.uuid4()))
    forged = {KEY: [[conv, str(turns[4].id), 0.0, 0]]}
    theirs = (await stack.create_session(other, metadata=forged)).conversation_id
    assert await stack.retrieve_messages(theirs) == []
    assert await stack.branch_of(theirs) is None


async def test_clearing_and_forgetting_follow_what_each_conversation_holds(stack: Any) -> None:
    """Clearing a branch removes only its own messages; clearing the parent removes the
    branch's shared prefix (nothing was copied); forgetting the user erases both."""
    user = _user("fork-fay")
    conv, branch, _ = await _forked(stack, user)
    await stack.clear_history(branch)
    assert _texts(await stack.retrieve_messages(branch)) == ["t4", "t3", "t2", "t1", "t0"]
    assert len(await stack.retrieve_messages(conv)) == 11
    await stack.store_message(_say("b2", 22), branch)
    await stack.clear_history(conv)
    assert _texts(await stack.retrieve_messages(branch)) == ["b2"]
    await stack.forget_user(user)
    assert await stack.retrieve_messages(branch) == []
    assert await stack.branch_of(branch) is None
