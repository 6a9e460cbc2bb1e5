"""A small deterministic LLM for tests and examples: it records every input it gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bruno_core.interfaces.llm import LLMInterface
from bruno_core.models.message import Message


class RecordingLLM(LLMInterface):
    """Answers ``echo #N: <last user message>`` and keeps each call's messages in ``inputs``."""

    def __init__(self) -> None:
        self.inputs: list[list[Message]] = []
        self._system: str | None = None

    async def generate(
        self,
        messages: list[Message],
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> str:
        self.inputs.append([m.model_copy(deep=True) for m in messages])
        last = next((m.content for m in reversed(messages) if m.role.value == "user"), "")
        return f"echo #{len(self.inputs)}: {last}"

    async def stream(
        self,
        messages: list[Message],
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        yield await self.generate(messages, temperature, max_tokens, **kwargs)

    def get_token_count(self, text: str) -> int:
        return len(text.split())

    async def check_connection(self) -> bool:
        return True

    async def list_models(self) -> list[str]:
        return ["recording"]

    def get_model_info(self) -> dict[str, Any]:
        return {"name": "recording", "provider": "bruno-memory testing"}

    def set_system_prompt(self, prompt: str) -> None:
        self._system = prompt

    def get_system_prompt(self) -> str | None:
        return self._system
