"""End to end with bruno-core's own clients: BaseAssistant, ContextManager, the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bruno_core.base.assistant import BaseAssistant
from bruno_core.context.manager import ContextManager
from bruno_core.models.message import Message, MessageRole
from bruno_core.registry.memory_registry import MemoryBackendRegistry

from bruno_memory import MemoryStack, build_memory
from bruno_memory.testing.llm import RecordingLLM


def stack_config(tmp_path: Path) -> dict[str, Any]:
    return {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}


async def test_assistant_second_turn_sees_the_first(tmp_path: Path) -> None:
    """Across two process_message calls the second LLM input holds the first turn."""
    llm = RecordingLLM()
    memory = await build_memory(stack_config(tmp_path))
    assistant = BaseAssistant(llm=llm, memory=memory)
    await assistant.initialize()
    first = await assistant.process_message(
        Message(role=MessageRole.USER, content="My dog is called Biscuit"),
        user_id="u1",
        conversation_id="conv-1",
    )
    await assistant.process_message(
        Message(role=MessageRole.USER, content="What is my dog called?"),
        user_id="u1",
        conversation_id="conv-1",
    )
    second_input = [(m.role, m.content) for m in llm.inputs[1]]
    assert second_input == [
        (MessageRole.USER, "My dog is called Biscuit"),
        (MessageRole.ASSISTANT, first.text),
        (MessageRole.USER, "What is my dog called?"),
    ]
    found = await memory.search_messages("Biscuit", user_id="u1")
    assert {m.content for m in found} == {"My dog is called Biscuit", first.text}
    assert await memory.search_messages("Biscuit", user_id="someone-else") == []
    await memory.close()


async def test_assistant_state_survives_a_restart(tmp_path: Path) -> None:
    """A new process (a new stack on the same file) continues the conversation."""
    memory = await build_memory(stack_config(tmp_path))
    assistant = BaseAssistant(llm=RecordingLLM(), memory=memory)
    await assistant.initialize()
    await assistant.process_message(
        Message(role=MessageRole.USER, content="remember: blue"), user_id="u1", conversation_id="c"
    )
    await memory.close()
    llm = RecordingLLM()
    memory = await build_memory(stack_config(tmp_path))
    assistant = BaseAssistant(llm=llm, memory=memory)
    await assistant.initialize()
    await assistant.process_message(
        Message(role=MessageRole.USER, content="which colour?"), user_id="u1", conversation_id="c"
    )
    assert llm.inputs[0][0].content == "remember: blue"
    await memory.close()


async def test_context_manager_returns_relevant_past_messages(tmp_path: Path) -> None:
    """ContextManager's retrieve_context call gets the user's relevant past messages."""
    memory = await build_memory(stack_config(tmp_path))
    old = await memory.create_session("u1")
    await memory.store_messages(
        [
            Message(role=MessageRole.USER, content="I am allergic to peanuts"),
            Message(role=MessageRole.USER, content="I work as a nurse in Porto"),
        ],
        old.conversation_id,
    )
    await memory.get_context("u1", "new-conv")
    manager = ContextManager(memory=memory)
    await manager.add_message(
        Message(role=MessageRole.USER, content="Can I eat this peanuts cake?"),
        conversation_id="new-conv",
        user_id="u1",
    )
    context = await manager.get_context("new-conv", user_id="u1")
    relevant = context.metadata["relevant_memories"]
    assert {"content": "I am allergic to peanuts", "role": "user"} in relevant
    assert all(r["content"] != "I work as a nurse in Porto" for r in relevant[:1])
    await memory.close()


async def test_registry_accepts_and_instantiates_the_stack(tmp_path: Path) -> None:
    """bruno-core's MemoryBackendRegistry discovers our entry point and builds a usable stack."""
    registry = MemoryBackendRegistry()
    registry.discover_plugins()
    assert "bruno_memory" in registry.list_plugins()
    assert registry.validate_plugin(MemoryStack)
    memory = registry.get_instance("bruno_memory", config=stack_config(tmp_path))
    session = await memory.create_session("u9")
    await memory.store_message(
        Message(role=MessageRole.USER, content="hello registry"), session.conversation_id
    )
    assert [m.content for m in await memory.search_memories("u9", "anything")] == []
    assert [m.content for m in await memory.retrieve_context("u9", "registry", 3)] == [
        "hello registry"
    ]
    await memory.clear_conversation(session.conversation_id)
    assert await memory.retrieve_messages(session.conversation_id) == []
    await memory.close()
