"""A YAML ``context:`` section makes ``get_context`` return the token-budgeted context, so
bruno-core's ``BaseAssistant`` gets it with no change in the app."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bruno_core.base.assistant import BaseAssistant
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.build import ConfiguredMemory
from bruno_memory.managers.context import default_counter
from bruno_memory.testing.llm import RecordingLLM

BUDGET = 600
FILLER = [
    "we talked about the weather and the long winter evenings",
    "the train to work was late again this morning",
    "I tried a new recipe with lentils and it was fine",
    "the garden needs watering before the weekend",
    "my laptop fan keeps making a strange noise",
]


def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "context": {"max_tokens": BUDGET, "reserve": 64},
        "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}],
    }


def cost(messages: list[Message]) -> int:
    counter = default_counter()
    return sum(counter.count_tokens(m.content) + 4 for m in messages)


async def test_an_assistant_recalls_a_turn_300_turns_back_within_its_budget(
    tmp_path: Path,
) -> None:
    """Asked about something said 300 turns earlier, the next LLM input holds that turn
    (found by relevance, not recency), and no LLM input ever exceeds the budget."""
    memory = await build_memory(config(tmp_path))
    llm = RecordingLLM()
    assistant = BaseAssistant(llm=llm, memory=memory)
    await assistant.initialize()
    said = Message(role=MessageRole.USER, content="My sister's cat is named Pistachio")
    await assistant.process_message(said, user_id="ann", conversation_id="chat")
    filler = [
        Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                content=f"{FILLER[i % len(FILLER)]} (turn {i})")
        for i in range(300)
    ]
    await memory.store_messages(filler, "chat")
    for text in ("What is my sister's cat named?", "Thanks, and how old is she?"):
        turn = Message(role=MessageRole.USER, content=text)
        await assistant.process_message(turn, user_id="ann", conversation_id="chat")
    recalled = llm.inputs[-1]  # built with the question as its query
    assert str(said.id) in {str(m.id) for m in recalled}
    latest = [m.content for m in recalled[-3:]]  # the recent window ends with the latest turns
    assert latest[0] == "What is my sister's cat named?"
    assert latest[1].startswith("echo") and latest[2] == "Thanks, and how old is she?"
    assert all(cost(sent) <= BUDGET for sent in llm.inputs)
    await memory.close()


async def test_without_a_context_section_get_context_is_the_last_messages(
    tmp_path: Path,
) -> None:
    """No ``context:``: get_context returns the last ``context_messages``, oldest first."""
    stack = {"context_messages": 3,
             "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory = await build_memory(stack)
    await memory.get_context("ann", "chat")
    sent = [Message(role=MessageRole.USER, content=f"turn {i}") for i in range(5)]
    await memory.store_messages(sent, "chat")
    ctx = await memory.get_context("ann", "chat")
    assert [m.content for m in ctx.messages] == ["turn 2", "turn 3", "turn 4"]
    await memory.close()


async def test_the_registry_class_opens_with_the_budgeted_context(tmp_path: Path) -> None:
    """``ConfiguredMemory`` (what bruno-core's registry builds) applies ``context:`` too."""
    memory = ConfiguredMemory(config(tmp_path))
    await memory.get_context("ann", "chat")
    await memory.store_messages(
        [Message(role=MessageRole.USER, content=f"note {i} " + "word " * 40) for i in range(60)],
        "chat",
    )
    ctx = await memory.get_context("ann", "chat")
    assert 0 < cost(ctx.messages) <= BUDGET - 64  # the reserve is left for the next turn
    await memory.close()


async def test_an_inactivity_gap_starts_a_new_session(tmp_path: Path) -> None:
    """``session_gap``: get_context without an id ends the latest session when its newest
    message is older than the gap and starts a new one (a conversation boundary); a
    conversation id given explicitly is never split."""
    now = [1_000_000.0]
    stack = {"session_gap": "30m",
             "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    memory = await build_memory(stack, clock=lambda: now[0])
    first = await memory.get_context("ann")
    said = Message(role=MessageRole.USER, content="hello")
    said.timestamp = datetime.fromtimestamp(now[0], timezone.utc)
    await memory.store_message(said, first.conversation_id)
    now[0] += 10 * 60  # ten minutes: the same session
    assert (await memory.get_context("ann")).session.session_id == first.session.session_id
    now[0] += 60 * 60  # an hour since the last message: a new session
    second = await memory.get_context("ann")
    assert second.session.session_id != first.session.session_id
    assert second.conversation_id != first.conversation_id and second.messages == []
    ended = await memory.get_session(first.session.session_id)
    assert ended is not None and not ended.is_active
    by_id = await memory.get_context("ann", first.conversation_id)  # explicit: kept whole
    assert [m.content for m in by_id.messages] == ["hello"]
    await memory.close()
