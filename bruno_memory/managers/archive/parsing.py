"""Reading an archive's lines many at a time: one pydantic call validates a chunk of lines
straight from their JSON into models (no per-line ``orjson`` round trip). A chunk it
refuses is read again line by line (``format.from_line``), which names the first bad line
after handing over the good ones before it, exactly as a line-by-line reader would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from bruno_core.models.context import SessionContext, UserContext
from bruno_core.models.memory import MemoryEntry
from bruno_core.models.message import Message
from pydantic import Field, Strict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from bruno_memory.core.ops import Value
from bruno_memory.core.queries import Tombstone
from bruno_memory.core.records import MessageRecord
from bruno_memory.managers.archive.format import TOMBSTONE, from_line, loads, tombstone_of_line

Item = tuple[int, str, Value | Tombstone]
"""(line number, kind, its record or tombstone)."""
_Id = Annotated[str, Strict(), Field(min_length=1)]


class _MessageLine(TypedDict):
    kind: Literal["message"]
    conversation_id: _Id
    owner: NotRequired[Annotated[str | None, Strict()]]
    record: Message


class _SessionLine(TypedDict):
    kind: Literal["session"]
    record: SessionContext


class _UserLine(TypedDict):
    kind: Literal["user"]
    record: UserContext


class _MemoryLine(TypedDict):
    kind: Literal["memory"]
    record: MemoryEntry


class _TombstoneLine(TypedDict):
    kind: Literal["tombstone"]
    scope: str
    id: str


_LINES: TypeAdapter[list[Any]] = TypeAdapter(
    list[
        Annotated[
            _MessageLine | _SessionLine | _UserLine | _MemoryLine | _TombstoneLine,
            Field(discriminator="kind"),
        ]
    ]
)
_NOT_JSON = (b"NaN", b"Infinity")
"""Tokens pydantic's parser takes as floats where JSON (and ``orjson``) has none: a chunk
holding them is read line by line, which refuses them as before."""


def items(chunk: list[tuple[int, bytes]]) -> Iterator[Item]:
    """The items of ``chunk`` ((line number, line) pairs, none the header) in order;
    raises ``ArchiveError`` naming the first bad line once those before it are yielded."""
    joined = b"[" + b",".join(data for _, data in chunk) + b"]"
    if any(token in joined for token in _NOT_JSON):
        yield from _one_by_one(chunk)
        return
    try:
        lines = _LINES.validate_json(joined)
    except ValidationError:
        yield from _one_by_one(chunk)
        return
    for (number, _), line in zip(chunk, lines, strict=True):
        kind = line["kind"]
        if kind == "message":
            record = MessageRecord(line["record"], line["conversation_id"], line.get("owner"))
            yield number, kind, record
        elif kind == TOMBSTONE:
            yield number, kind, tombstone_of_line(line, number)
        else:
            yield number, kind, line["record"]


def _one_by_one(chunk: list[tuple[int, bytes]]) -> Iterator[Item]:
    for number, data in chunk:
        obj = loads(data, number)
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if kind == TOMBSTONE:
            yield number, kind, tombstone_of_line(obj, number)
        else:
            yield number, str(kind), from_line(obj, number)

