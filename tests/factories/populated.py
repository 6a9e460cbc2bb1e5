"""A store populated through the public API with known, countable content: users with
conversations of alternating user/assistant turns spread over days, and memories."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole

START = datetime(2026, 10, 1, 8, 0, tzinfo=timezone.utc)
TOPICS = {
    "ada": "picnic bread lake cheese basket sunny meadow",
    "bob": "python compiler deadline refactoring database benchmark",
    "cy": "garden tomato compost seedlings watering greenhouse",
}


@dataclass(frozen=True)
class Populated:
    """What ``populate`` stored: per user, messages and memories; per conversation its user."""

    messages: dict[str, int]
    memories: dict[str, int]
    conversations: dict[str, str]

    @property
    def total(self) -> int:
        return sum(self.messages.values())


async def populate(
    memory: Any, *, messages: int = 600, conversations: int = 12, memories: int = 5,
    users: tuple[str, ...] = tuple(TOPICS), reply_seconds: float = 4.0,
) -> Populated:
    """``messages`` in ``conversations`` (each a session of one user, spread over days;
    every assistant message ``reply_seconds`` after the user turn before it) and
    ``memories`` per user."""
    rng = random.Random(7)
    per_conversation = messages // conversations
    counts: dict[str, int] = dict.fromkeys(users, 0)
    owners: dict[str, str] = {}
    for c in range(conversations):
        user = users[c % len(users)]
        session = await memory.create_session(user)
        owners[session.conversation_id] = user
        words = TOPICS.get(user, "weather news music").split()
        start = START + timedelta(days=c, hours=c % 9)
        batch = []
        for i in range(per_conversation):
            role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
            at = start + timedelta(seconds=(i // 2) * 60 + (reply_seconds if i % 2 else 0))
            text = " ".join(rng.choice(words) for _ in range(8))
            batch.append(Message(role=role, content=f"{text}.", timestamp=at))
        for i in range(0, len(batch), 1000):
            await memory.store_messages(batch[i : i + 1000], session.conversation_id)
        counts[user] += per_conversation
    kinds = list(MemoryType)
    for user in users:
        for m in range(memories):
            await memory.store_memory(MemoryEntry(
                content=f"{user} likes {TOPICS.get(user, 'music').split()[m % 3]}",
                memory_type=kinds[m % len(kinds)], user_id=user,
                created_at=START + timedelta(days=m), updated_at=START + timedelta(days=m),
            ))
    return Populated(counts, dict.fromkeys(users, memories), owners)
