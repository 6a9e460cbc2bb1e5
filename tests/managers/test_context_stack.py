"""The context builder over a real stack (LRU over SQLite): only the facade's public API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bruno_core.models import MemoryEntry, MemoryMetadata, MemoryType, Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.config.loader import load_config
from bruno_memory.managers.context import ContextBuilder, budgeted_context, default_counter

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


async def test_an_old_turn_comes_back_within_budget(tmp_path: Path) -> None:
    """300 turns later, a question about an early turn brings that turn back verbatim,
    with the latest turns, a memory, the system prompt, and within the budget."""
    memory = await build_memory(
        {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    )
    async with memory:
        session = await memory.create_session("ada")
        conv = session.conversation_id
        turns = []
        for i in range(300):
            text = f"turn {i}: we chatted about the weather and the traffic today"
            if i == 12:
                text = "my grandmother's apple strudel recipe uses cardamom"
            turns.append(
                Message(
                    role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                    content=text,
                    timestamp=T0 + timedelta(minutes=i),
                )
            )
        await memory.store_messages(turns, conv)
        await memory.store_memory(
            MemoryEntry(
                content="Ada bakes a strudel every winter",
                memory_type=MemoryType.FACT,
                user_id="ada",
                metadata=MemoryMetadata(importance=0.8),
            )
        )
        builder = ContextBuilder(memory, system_prompt="You are Bruno.")
        ctx = await builder.build(
            "ada", conv, query="what spice is in the strudel recipe?", max_tokens=512
        )
        assert ctx.tokens == default_counter().count_messages_tokens(ctx.messages) <= 512
        assert ctx.messages[0].content == "You are Bruno."
        by_id = {m.id: m for m in ctx.messages}
        assert turns[12].id in by_id and by_id[turns[12].id].content == turns[12].content
        assert any("Ada bakes a strudel every winter" in m.content for m in ctx.messages)
        window = [
            m
            for m in ctx.messages
            if any(
                it.id == str(m.id) and it.section == "recent" and it.reason != "section header"
                for it in ctx.items
            )
        ]
        assert len(window) >= 6
        assert [m.id for m in window] == [m.id for m in turns[len(turns) - len(window) :]]

        config = load_config(
            {
                "context": {"max_tokens": 256, "min_recent": 4},
                "tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "x.db")}],
            }
        )
        assert config.context is not None
        await memory.store_message(
            Message(role=MessageRole.USER, content="remind me about the strudel spice"), conv
        )
        ctx = await budgeted_context(memory, "ada", conv, config.context)
        assert ctx.query == "remind me about the strudel spice"
        assert ctx.tokens <= 256 and turns[12].id in {m.id for m in ctx.messages}


async def test_expand_reaches_a_turn_that_shares_words_only_with_a_hit(tmp_path: Path) -> None:
    """With ``expand``, a turn that shares no word with the query but a rare one with its
    best hit (the second hop) comes in; without, it does not."""
    memory = await build_memory(
        {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "m.db")}]}
    )
    async with memory:
        conv = (await memory.create_session("ada")).conversation_id
        texts = [f"turn {i}: we chatted about the weather and the traffic today"
                 for i in range(200)]
        texts[10] = "my grandmother's apple strudel recipe uses cardamom"
        texts[120] = "that cardamom came from a spice stall in Zanzibar"
        await memory.store_messages([
            Message(role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                    content=text, timestamp=T0 + timedelta(minutes=i))
            for i, text in enumerate(texts)], conv)
        question = "what is in the strudel recipe?"
        plain = await ContextBuilder(memory).build("ada", conv, query=question, max_tokens=256)
        assert texts[10] in [m.content for m in plain.messages]
        assert texts[120] not in [m.content for m in plain.messages]
        expanded = await ContextBuilder(memory, expand=1).build(
            "ada", conv, query=question, max_tokens=256)
        by_id = {it.id: it.section for it in expanded.items}
        sections = {m.content: by_id.get(str(m.id)) for m in expanded.messages}
        assert sections.get(texts[120]) == "search" and sections.get(texts[10]) == "search"
