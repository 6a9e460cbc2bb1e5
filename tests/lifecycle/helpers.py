"""Conversations for the lifecycle tests: sessions of turns, hours apart."""

from __future__ import annotations

from typing import Any

from bruno_core.models.message import Message, MessageRole

from tests.lifecycle.conftest import at

TOPICS = [
    "I adopted a grey cat named Pixel from the shelter last week.",
    "The marathon training plan has me running forty miles every week now.",
    "My sister Clara moved to Lisbon for a job at a robotics startup.",
    "We booked the cabin near Lake Tahoe for the second week of July.",
    "The pottery class on Thursdays is teaching me to throw bowls on the wheel.",
    "I finally finished reading the trilogy about the desert planet.",
]


def session_turns(session: int, turns: int = 6) -> list[Message]:
    """``turns`` messages of session ``session`` (sessions start 10 hours apart)."""
    out = []
    for i in range(turns):
        topic = TOPICS[(session + i) % len(TOPICS)]
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        out.append(Message(
            role=role,
            content=f"Session {session} turn {i}. {topic} It matters to me a lot, honestly.",
            timestamp=at(session * 600 + i),
        ))
    return out


async def converse(memory: Any, user: str, sessions: int, turns: int = 6) -> str:
    """A conversation of ``user`` with ``sessions`` sessions; returns its id."""
    session = await memory.create_session(user)
    for s in range(sessions):
        await memory.store_messages(session_turns(s, turns), session.conversation_id)
    return str(session.conversation_id)
