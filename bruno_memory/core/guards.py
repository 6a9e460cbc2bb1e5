"""Argument checks at the API boundary: bad input fails before anything is touched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from bruno_core.models.message import Message

from bruno_memory.core.errors import InvalidInput

T = TypeVar("T")
MAX_ID = 512


def identifier(value: Any, name: str) -> str:
    """A non-empty string id of at most 512 characters without NUL bytes."""
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_ID:
        raise InvalidInput(
            f"{name} must be a non-empty string of at most {MAX_ID} characters without NUL "
            f"bytes, got {_show(value)}"
        )
    return str(value)


def conversation_id(value: Any) -> str:
    return identifier(value, "conversation_id")


def limit(value: Any, *, allow_none: bool = False) -> None:
    """A non-negative integer (or ``None`` meaning everything, where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"limit must be a non-negative integer, got {_show(value)}")


def query(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"query must be a string, got {_show(value)}")
    return value


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """One of ``options``."""
    if value not in options:
        raise InvalidInput(f"{name} must be one of {', '.join(options)}, got {_show(value)}")
    return str(value)


def model(value: Any, cls: type[T], name: str) -> T:
    if not isinstance(value, cls):
        raise InvalidInput(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value


def messages(values: Sequence[Any]) -> None:
    for i, m in enumerate(values):
        if not isinstance(m, Message):
            raise InvalidInput(f"messages[{i}] must be a Message, got {type(m).__name__}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
