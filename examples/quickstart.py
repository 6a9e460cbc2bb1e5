"""Quickstart: the embedded default stack (an LRU over SQLite), no server needed.

python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from bruno_core.models.memory import MemoryEntry, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory


async def main() -> None:
    async with await build_memory() as memory:  # ./bruno-memory.db; BRUNO_MEMORY_DB to move it
        context = await memory.get_context("ada", "kitchen-chat")  # starts the conversation
        await memory.store_messages(
            [
                Message(role=MessageRole.USER, content="I'm baking sourdough for Sunday's picnic"),
                Message(
                    role=MessageRole.ASSISTANT,
                    content="Lovely! Feed the starter on Saturday morning.",
                ),
                Message(role=MessageRole.USER, content="Remind me I'm allergic to walnuts"),
            ],
            context.conversation_id,
        )
        await memory.store_memory(
            MemoryEntry(
                content="Ada is allergic to walnuts", memory_type=MemoryType.FACT, user_id="ada"
            )
        )

        recent = await memory.retrieve_messages("kitchen-chat", limit=2)
        print("newest first:", [m.content for m in recent])
        print(
            "search 'picnic bread':",
            [m.content for m in await memory.search_messages("picnic bread", user_id="ada")],
        )
        facts = await memory.retrieve_memories(
            MemoryQuery(user_id="ada", query_text="walnut allergy")
        )
        print("memories:", [m.content for m in facts])
        print("stats:", await memory.get_statistics("ada"))
        print("health:", {name: h["status"] for name, h in (await memory.health()).items()})


if __name__ == "__main__":
    asyncio.run(main())
