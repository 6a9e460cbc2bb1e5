"""Opaque page cursors: a position in an ordering, as a URL-safe string (pure).

A cursor is the base64url of a JSON list (``[ts, seq]`` for a message, ``[started,
session_id]`` for a session); callers pass a page's ``next`` or ``prev`` back unchanged.
``START`` is the cursor before the first message of a conversation (``after=START``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from bruno_memory.core.errors import InvalidInput

START = "start"
"""``after=START``: page forwards from a conversation's first message."""

MessagePosition = tuple[float, int]
"""(ts, seq): a message's place in its conversation."""
SessionPosition = tuple[float, str]
"""(started, session_id): a session's place among its user's."""


def encode(*parts: float | int | str) -> str:
    """The cursor of a position."""
    raw = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parts(cursor: Any, name: str, arity: int) -> list[Any]:
    bad = InvalidInput(
        f"{name} is not a cursor this memory gave out: pass a page's next or prev "
        "unchanged (or leave it out for the first page)"
    )
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 2048:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(parts, list) or len(parts) != arity:
        raise bad
    return parts


def message_position(cursor: Any, name: str) -> MessagePosition:
    """A message cursor's (ts, seq); ``InvalidInput`` for anything else."""
    ts, seq = _parts(cursor, name, 2)
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or type(seq) is not int:
        raise InvalidInput(f"{name} is not a message cursor: pass a message page's next or prev")
    return float(ts), seq


def session_position(cursor: Any, name: str) -> SessionPosition:
    """A session cursor's (started, session_id); ``InvalidInput`` for anything else."""
    started, session_id = _parts(cursor, name, 2)
    if (
        isinstance(started, bool)
        or not isinstance(started, (int, float))
        or not isinstance(session_id, str)
    ):
        raise InvalidInput(f"{name} is not a session cursor: pass a session page's next")
    return float(started), session_id


Edge = Literal["start", "end"]
BranchPosition = tuple[int, "MessagePosition | Edge"]
"""(part, place) in a branch's messages: part ``i`` of its shared prefixes (the branch's
own messages are the last part), at a message's (ts, seq) or at the part's start or end."""


def branch(part: int, place: MessagePosition | Edge) -> str:
    """The cursor of a place in a branch's messages."""
    return encode(part, place) if isinstance(place, str) else encode(part, *place)


def branch_position(cursor: Any, name: str, parts: int) -> BranchPosition:
    """A branch cursor's (part, place); ``InvalidInput`` for anything else, or a part
    beyond ``parts``."""
    bad = InvalidInput(f"{name} is not a cursor of this branch: pass a page's next or prev")
    try:
        part, *place = _parts(cursor, name, 3)
    except InvalidInput:
        part, *place = _parts(cursor, name, 2)
    if type(part) is not int or not 0 <= part < parts:
        raise bad
    if len(place) == 1:
        if place[0] not in ("start", "end"):
            raise bad
        return part, place[0]
    ts, seq = place
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or type(seq) is not int:
        raise bad
    return part, (float(ts), seq)
