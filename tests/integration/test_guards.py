"""The boundary checks: the common case's quick look (``guards._plain_*``) accepts only
what the full checks accept, and every field a caller can spoil (bruno-core does not
validate assignment) is still refused by name."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryType
from bruno_core.models.message import Message, MessageRole

from bruno_memory.core import guards
from bruno_memory.core.errors import InvalidInput


def _message(**fields: Any) -> Message:
    return Message(**{"role": MessageRole.USER, "content": "plain words", **fields})


def _memory(**fields: Any) -> MemoryEntry:
    return MemoryEntry(content="plain words", memory_type=MemoryType.FACT, user_id="ann",
                       **fields)


def _set(obj: Any, path: str, value: Any) -> Any:
    target = obj
    *parents, name = path.split(".")
    for parent in parents:
        target = getattr(target, parent)
    object.__setattr__(target, name, value)  # as an app's assignment: nothing validates it
    return obj


SPOILED_MESSAGES: list[tuple[str, Any, str]] = [
    ("id", "not-a-uuid", r"message\.id must be a UUID"),
    ("role", "hacker", r"message\.role must be a MessageRole"),
    ("message_type", None, r"message\.message_type must be a MessageType"),
    ("timestamp", "yesterday", r"message\.timestamp must be a datetime"),
    ("content", "", r"message\.content must be a non-empty string"),
    ("content", 42, r"message\.content must be a non-empty string"),
    ("content", "lone \ud800", r"message\.content must be valid UTF-8"),
    ("parent_id", "p", r"message\.parent_id must be a UUID or None"),
    ("conversation_id", "c\x00", r"message\.conversation_id must be a non-empty string"),
    ("conversation_id", "c" * 513, r"message\.conversation_id must be a non-empty string"),
    ("metadata", [], r"message\.metadata must be a dict"),
    ("metadata", {"o": {1}}, r"message\.metadata\['o'\] holds a set"),
    ("metadata", {"n": float("nan")}, r"message\.metadata\['n'\] holds nan"),
    ("metadata", {"user_id": "u\x00"}, r"message\.metadata\['user_id'\] must be"),
]

SPOILED_MEMORIES: list[tuple[str, Any, str]] = [
    ("id", "m", r"memory_entry\.id must be a UUID"),
    ("content", "", r"memory_entry\.content must be a non-empty string"),
    ("memory_type", "fact", r"memory_entry\.memory_type must be a MemoryType"),
    ("user_id", "", r"memory_entry\.user_id must be a non-empty string"),
    ("conversation_id", "x" * 513, r"memory_entry\.conversation_id must be"),
    ("created_at", None, r"memory_entry\.created_at must be a datetime"),
    ("last_accessed", 0, r"memory_entry\.last_accessed must be a datetime"),
    ("expires_at", "soon", r"memory_entry\.expires_at must be a datetime or None"),
    ("metadata", {}, r"memory_entry\.metadata must be a MemoryMetadata"),
    ("metadata.source", None, r"metadata\.source must be a string"),
    ("metadata.source", "s\x00", r"metadata\.source must be at most 512"),
    ("metadata.category", "", r"metadata\.category must be a non-empty string"),
    ("metadata.tags", ["ok", ""], r"metadata\.tags\[1\] must be a non-empty string"),
    ("metadata.tags", "a,b", r"metadata\.tags must be a list of strings"),
    ("metadata.confidence", 1.5, r"metadata\.confidence must be a number from 0 to 1"),
    ("metadata.importance", float("nan"), r"metadata\.importance must be a number"),
    ("metadata.access_count", -1, r"metadata\.access_count must be a non-negative integer"),
    ("metadata.access_count", True, r"metadata\.access_count must be a non-negative integer"),
    ("metadata.embedding", [0.1, float("inf")], r"metadata\.embedding must be a list of"),
    ("metadata.related_memories", ["x"], r"metadata\.related_memories must be a list of"),
    ("metadata.custom_fields", {"when": datetime(2024, 1, 1)}, r"custom_fields\['when'\]"),
]


@pytest.mark.parametrize(("field", "value", "error"), SPOILED_MESSAGES)
def test_a_spoiled_message_field_is_refused_by_name(field: str, value: Any, error: str) -> None:
    spoiled = _set(_message(), field, value)
    assert not guards._plain_message(spoiled)
    with pytest.raises(InvalidInput, match=error):
        guards.message(spoiled)
    with pytest.raises(InvalidInput, match=error.replace(r"message\.", r"messages\[0\]\.")):
        guards.messages([spoiled])


@pytest.mark.parametrize(("field", "value", "error"), SPOILED_MEMORIES)
def test_a_spoiled_memory_field_is_refused_by_name(field: str, value: Any, error: str) -> None:
    spoiled = _set(_memory(), field, value)
    assert not guards._plain_memory(spoiled)
    with pytest.raises(InvalidInput, match=error):
        guards.memory(spoiled)


class _Note(Message):
    pass


UNUSUAL: list[tuple[str, Callable[[], Any], Callable[[Any], None]]] = [
    ("non-ASCII content", lambda: _message(content="café ☕"), guards.message),
    ("a subclass", lambda: _Note(role=MessageRole.USER, content="x"), guards.message),
    ("nested metadata", lambda: _message(metadata={"a": [{"b": None, "ü": 2}]}),
     guards.message),
    ("an owner in metadata", lambda: _message(metadata={"user_id": "ann"}), guards.message),
    ("a parent", lambda: _message(parent_id=uuid.uuid4()), guards.message),
    ("a memory with an embedding and links",
     lambda: _memory(metadata=MemoryMetadata(embedding=[0.5, 1], related_memories=[uuid.uuid4()],
                                             tags=["été"], custom_fields={"k": [1, "v"]})),
     guards.memory),
    ("a memory expiring", lambda: _memory(expires_at=datetime(2030, 1, 1)), guards.memory),
]


@pytest.mark.parametrize(("what", "make", "check"), UNUSUAL, ids=[u[0] for u in UNUSUAL])
def test_valid_input_off_the_quick_look_is_still_accepted(
    what: str, make: Callable[[], Any], check: Callable[[Any], None]
) -> None:
    check(make())  # the full checks accept what the quick look left to them


def test_the_quick_look_takes_the_common_case() -> None:
    assert guards._plain_message(_message(metadata={"user_id": "ann", "n": 1}))
    assert guards._plain_memory(_memory(metadata=MemoryMetadata(tags=["a"], category="c")))
