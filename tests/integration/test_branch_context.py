"""Branches seen by the context builder and their pure parts (lineage, cursors)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.core import cursors
from bruno_memory.core.branches import KEY, Lineage, Part
from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.context import ContextBuilder

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


async def test_the_context_of_a_branch_holds_the_shared_turns(tmp_path: Path) -> None:
    """A budgeted context of a branch ends with its own turn, after the shared ones up to
    the fork, and never holds what the parent said after it."""
    memory: Any = await build_memory({"tiers": [
        {"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]})
    async with memory:
        conv = (await memory.create_session("ann")).conversation_id
        turns = [Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                         content=f"turn {i}", timestamp=T0 + timedelta(seconds=i))
                 for i in range(6)]
        await memory.store_messages(turns, conv)
        branch = (await memory.fork_conversation("ann", conv, str(turns[3].id))).conversation_id
        await memory.store_message(Message(role=MessageRole.USER, content="instead, this"),
                                   branch)
        ctx = await ContextBuilder(memory).build("ann", branch, max_tokens=512)
        texts = [m.content for m in ctx.messages]
        assert texts[-5:] == ["turn 0", "turn 1", "turn 2", "turn 3", "instead, this"]
        assert "turn 4" not in texts and "turn 5" not in texts


async def test_the_search_of_a_branch_reaches_its_inherited_history(tmp_path: Path) -> None:
    """The past-messages section of a branch finds a turn of the shared prefix far behind
    the recent window, and never a turn the parent added after the fork."""
    memory: Any = await build_memory({"tiers": [
        {"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]})
    async with memory:
        conv = (await memory.create_session("ann")).conversation_id
        said = ["My sister's cat is called Pickles and loves tuna."]
        said += [f"Filler remark number {i} about the weather today." for i in range(40)]
        turns = [Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                         content=text, timestamp=T0 + timedelta(seconds=i))
                 for i, text in enumerate(said)]
        await memory.store_messages(turns, conv)
        branch = (await memory.fork_conversation("ann", conv, str(turns[-1].id))).conversation_id
        later = Message(role=MessageRole.USER, content="Pickles the cat now hates tuna.",
                        timestamp=T0 + timedelta(seconds=100))
        await memory.store_message(later, conv)
        await memory.store_message(Message(role=MessageRole.USER, content="Back to us.",
                                           timestamp=T0 + timedelta(seconds=101)), branch)
        ctx = await ContextBuilder(memory).build(
            "ann", branch, query="What is the cat called, the one who loves tuna?",
            max_tokens=160)
        sections = {item.id: item.section for item in ctx.items}
        assert sections.get(str(turns[0].id)) == "search"
        assert str(later.id) not in sections
        assert ctx.messages[-1].content == "Back to us."
        handle = await ContextBuilder(memory.for_user("ann")).build(
            "ann", branch, query="What is the cat called, the one who loves tuna?",
            max_tokens=160)
        assert [m.id for m in handle.messages] == [m.id for m in ctx.messages]
        own = await ContextBuilder(memory).build(
            "ann", conv, query="What is the cat called, the one who loves tuna?",
            max_tokens=160)
        assert str(later.id) in {item.id for item in own.items}  # the parent's own turn


def test_a_lineage_round_trips_through_session_metadata_and_refuses_anything_else() -> None:
    """What ``metadata()`` writes, ``of`` reads back; anything malformed is no lineage."""
    lineage = Lineage((Part("c1", "m1", (1.5, 7)), Part("c2", "m2", (2.0, 9))))
    assert Lineage.of(lineage.metadata()) == lineage
    assert (lineage.parent, lineage.at) == ("c2", "m2")
    for bad in ({}, {KEY: []}, {KEY: "c1"}, {KEY: [["c1", "m1", 1.5]]},
                {KEY: [["c1", "m1", True, 7]]}, {KEY: [["c1", "m1", 1.5, 7.0]]}):
        assert Lineage.of(bad) is None


def test_branch_cursors_name_their_part_and_refuse_others() -> None:
    """A branch cursor decodes to its part and place; a plain message cursor, a part out of
    range or an unknown edge is refused."""
    assert cursors.branch_position(cursors.branch(1, (3.5, 4)), "before", 2) == (1, (3.5, 4))
    assert cursors.branch_position(cursors.branch(0, "end"), "before", 2) == (0, "end")
    for bad in (cursors.branch(2, "end"), cursors.branch(0, "middle"),  # type: ignore[arg-type]
                cursors.encode(3.5, 4), "nonsense"):
        with pytest.raises(InvalidInput):
            cursors.branch_position(bad, "before", 2)
