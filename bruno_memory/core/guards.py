"""Argument checks at the API boundary: bad input fails before anything is touched.

bruno-core's models do not validate on assignment, so a model may hold anything by the time
it reaches us; every model is checked field by field (``isinstance``, no re-validation: the
hot path stays cheap). Strings must be valid UTF-8 (no lone surrogates); metadata must be
JSON-native, so that it comes out of every tier as it went in. The caps below are the
documented limits of one call (README, "Input limits").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from bruno_core.models.memory import MemoryEntry, MemoryMetadata, MemoryQuery, MemoryType
from bruno_core.models.message import Message, MessageRole, MessageType

from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.records import timestamp_key

T = TypeVar("T")

MAX_ID = 512
"""Characters of an id (user, session, conversation, memory)."""
MAX_LIMIT = 10_000
"""Largest ``limit`` of a read (``retrieve_memories`` keeps bruno-core's 1,000)."""
MAX_BATCH = 10_000
"""Messages in one ``store_messages`` call."""
MAX_FILTER = 1_000
"""Items in each list of a ``MemoryQuery`` (``memory_types``, ``categories``, ``tags``)."""
MAX_DEPTH = 32
"""Nesting of metadata (dicts and lists inside one another)."""
MAX_TAGS = 1_000
"""Tags and related memories of one memory."""
INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers in metadata: signed 64-bit, as every JSON store reads them back."""


def identifier(value: Any, name: str) -> str:
    """A non-empty string id of at most 512 characters without NUL bytes."""
    if (
        type(value) is not str
        or not value
        or len(value) > MAX_ID
        or "\x00" in value
        or not _utf8(value)
    ):
        raise InvalidInput(
            f"{name} must be a non-empty string of at most {MAX_ID} characters without NUL "
            f"bytes or lone surrogates, got {_show(value)}"
        )
    return value


def conversation_id(value: Any) -> str:
    return identifier(value, "conversation_id")


def limit(value: Any, *, allow_none: bool = False, maximum: int = MAX_LIMIT) -> None:
    """A non-negative integer of at most ``maximum`` (or ``None`` meaning everything, where
    allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidInput(
            f"limit must be an integer from 0 to {maximum}"
            f"{' (or None for all)' if allow_none else ''}, got {_show(value)}"
        )


def watermark(value: Any, name: str = "since") -> int:
    """A write version as ``watermark()`` returns it: an int from 0."""
    if type(value) is not int or value < 0 or value >= 1 << 63:
        raise InvalidInput(
            f"{name} must be a watermark (an integer from 0, as watermark() returns), "
            f"got {_show(value)}"
        )
    return value


def query(value: Any) -> str:
    """Search text: a string of valid UTF-8."""
    if not isinstance(value, str):
        raise InvalidInput(f"query must be a string, got {_show(value)}")
    if not _utf8(value):
        raise InvalidInput("query must be valid UTF-8 text: it holds a lone surrogate")
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


def messages(values: Any) -> None:
    """A list (or tuple) of at most ``MAX_BATCH`` valid messages."""
    if isinstance(values, Message):
        raise InvalidInput(
            "messages must be a list of Message, got one Message: pass [message] "
            "(or call store_message)"
        )
    if not isinstance(values, (list, tuple)):
        raise InvalidInput(f"messages must be a list of Message, got {type(values).__name__}")
    if len(values) > MAX_BATCH:
        raise InvalidInput(
            f"messages holds {len(values)} messages; store at most {MAX_BATCH} per call"
        )
    for i, m in enumerate(values):
        if not _plain_message(m):
            message(m, f"messages[{i}]")


def message(m: Any, name: str = "message") -> None:
    """Every field of a ``Message`` holds what its model declares (assignment is not
    validated by bruno-core), its text is valid UTF-8 and its metadata JSON-native."""
    if _plain_message(m):
        return
    if not isinstance(m, Message):
        raise InvalidInput(f"{name} must be a Message, got {type(m).__name__}")
    f = m.__dict__
    _typed(f.get("id"), UUID, f"{name}.id", "a UUID")
    _typed(f.get("role"), MessageRole, f"{name}.role", MessageRole)
    _typed(f.get("message_type"), MessageType, f"{name}.message_type", MessageType)
    _typed(f.get("timestamp"), datetime, f"{name}.timestamp", "a datetime")
    text(f.get("content"), f"{name}.content")
    parent = f.get("parent_id")
    if parent is not None:
        _typed(parent, UUID, f"{name}.parent_id", "a UUID or None")
    conv = f.get("conversation_id")
    if conv is not None:
        identifier(conv, f"{name}.conversation_id")
    meta = f.get("metadata")
    metadata(meta, f"{name}.metadata")
    user = meta.get("user_id")
    if isinstance(user, str) and user:
        identifier(user, f"{name}.metadata['user_id']")


def memory(e: Any, name: str = "memory_entry") -> None:
    """Every field of a ``MemoryEntry`` and of its ``MemoryMetadata`` holds what its model
    declares; custom fields are JSON-native."""
    if _plain_memory(e):
        return
    if not isinstance(e, MemoryEntry):
        raise InvalidInput(f"{name} must be a MemoryEntry, got {type(e).__name__}")
    f = e.__dict__
    _typed(f.get("id"), UUID, f"{name}.id", "a UUID")
    text(f.get("content"), f"{name}.content")
    _typed(f.get("memory_type"), MemoryType, f"{name}.memory_type", MemoryType)
    identifier(f.get("user_id"), f"{name}.user_id")
    if f.get("conversation_id") is not None:
        identifier(f["conversation_id"], f"{name}.conversation_id")
    for stamp in ("created_at", "updated_at", "last_accessed"):
        _typed(f.get(stamp), datetime, f"{name}.{stamp}", "a datetime")
    if f.get("expires_at") is not None:
        _typed(f["expires_at"], datetime, f"{name}.expires_at", "a datetime or None")
    md = f.get("metadata")
    where = f"{name}.metadata"
    _typed(md, MemoryMetadata, where, "a MemoryMetadata")
    g = md.__dict__
    label(g.get("source"), f"{where}.source", empty=True)
    if g.get("category") is not None:
        label(g["category"], f"{where}.category")
    _labels(g.get("tags"), f"{where}.tags", MAX_TAGS)
    for score in ("confidence", "importance"):
        _unit(g.get(score), f"{where}.{score}")
    count = g.get("access_count")
    if type(count) is not int or not 0 <= count <= INT_RANGE[1]:
        raise InvalidInput(
            f"{where}.access_count must be a non-negative integer, got {_show(count)}"
        )
    vector = g.get("embedding")
    if vector is not None and (
        type(vector) is not list
        or not all(type(x) in (float, int) and math.isfinite(x) for x in vector)
    ):
        raise InvalidInput(f"{where}.embedding must be a list of finite numbers or None")
    related = g.get("related_memories")
    if (
        type(related) is not list
        or len(related) > MAX_TAGS
        or not all(isinstance(r, UUID) for r in related)
    ):
        raise InvalidInput(f"{where}.related_memories must be a list of at most {MAX_TAGS} UUIDs")
    metadata(g.get("custom_fields"), f"{where}.custom_fields")


# -- the common case at a glance: exact types, ASCII text, JSON-native metadata. These
# accept only what the checks above accept; anything else (a subclass, non-ASCII text,
# an error) goes through them, which name the field at fault. No message is formatted.


def _ascii_id(v: Any) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID and v.isascii() and "\x00" not in v


def _json_native(v: Any) -> bool:
    if type(v) is not dict:
        return False
    if not v:
        return True
    try:
        _json(v, 1)
    except _Bad:
        return False
    return True


def _plain_message(m: Any) -> bool:
    if type(m) is not Message:
        return False
    f = m.__dict__
    content, meta = f.get("content"), f.get("metadata")
    conv, parent = f.get("conversation_id"), f.get("parent_id")
    if not (
        type(f.get("id")) is UUID
        and type(f.get("role")) is MessageRole
        and type(f.get("message_type")) is MessageType
        and type(f.get("timestamp")) is datetime
        and type(content) is str and content and content.isascii()
        and (parent is None or type(parent) is UUID)
        and (conv is None or _ascii_id(conv))
        and _json_native(meta)
    ):
        return False
    user = meta.get("user_id")
    return not (isinstance(user, str) and user) or _ascii_id(user)


_STAMPS = ("created_at", "updated_at", "last_accessed")


def _plain_memory(e: Any) -> bool:
    if type(e) is not MemoryEntry:
        return False
    f = e.__dict__
    content, md, conv, expires = (f.get("content"), f.get("metadata"),
                                  f.get("conversation_id"), f.get("expires_at"))
    if not (
        type(f.get("id")) is UUID
        and type(content) is str and content and content.isascii()
        and type(f.get("memory_type")) is MemoryType
        and _ascii_id(f.get("user_id"))
        and (conv is None or _ascii_id(conv))
        and all(type(f.get(s)) is datetime for s in _STAMPS)
        and (expires is None or type(expires) is datetime)
        and type(md) is MemoryMetadata
    ):
        return False
    g = md.__dict__
    source, category, tags = g.get("source"), g.get("category"), g.get("tags")
    confidence, importance, count = g.get("confidence"), g.get("importance"), g.get("access_count")
    return (
        type(source) is str and len(source) <= MAX_ID and source.isascii() and "\x00" not in source
        and (category is None or _ascii_id(category))
        and type(tags) is list and len(tags) <= MAX_TAGS and all(_ascii_id(t) for t in tags)
        and type(confidence) in (float, int) and 0.0 <= confidence <= 1.0
        and type(importance) in (float, int) and 0.0 <= importance <= 1.0
        and type(count) is int and 0 <= count <= INT_RANGE[1]
        and g.get("embedding") is None
        and type(g.get("related_memories")) is list and not g["related_memories"]
        and _json_native(g.get("custom_fields"))
    )


def memory_query(q: Any, name: str = "query") -> None:
    """Every field of a ``MemoryQuery`` holds what its model declares, lists within
    ``MAX_FILTER`` items."""
    if not isinstance(q, MemoryQuery):
        raise InvalidInput(f"{name} must be a MemoryQuery, got {type(q).__name__}")
    f = q.__dict__
    identifier(f.get("user_id"), f"{name}.user_id")
    if f.get("query_text") is not None:
        text(f["query_text"], f"{name}.query_text", empty=True)
    types_ = f.get("memory_types")
    if type(types_) is not list or not all(isinstance(t, MemoryType) for t in types_):
        raise InvalidInput(
            f"{name}.memory_types must be a list of MemoryType ({_options(MemoryType)}), "
            f"got {_show(types_)}"
        )
    if len(types_) > MAX_FILTER:
        raise InvalidInput(f"{name}.memory_types holds more than {MAX_FILTER} items")
    _labels(f.get("categories"), f"{name}.categories", MAX_FILTER)
    _labels(f.get("tags"), f"{name}.tags", MAX_FILTER)
    for score in ("min_confidence", "min_importance", "similarity_threshold"):
        _unit(f.get(score), f"{name}.{score}")
    n = f.get("limit")
    if type(n) is not int or not 1 <= n <= 1000:
        raise InvalidInput(f"{name}.limit must be an integer from 1 to 1000, got {_show(n)}")
    if type(f.get("include_expired")) is not bool:
        raise InvalidInput(f"{name}.include_expired must be a bool")


def between(start: Any, end: Any) -> tuple[float, float]:
    """Two datetimes (naive ones read as UTC, as stored), ``start`` not after ``end``, as
    epoch seconds."""
    for value, name in ((start, "start"), (end, "end")):
        if not isinstance(value, datetime):
            raise InvalidInput(f"{name} must be a datetime, got {_show(value)}")
    lo, hi = timestamp_key(start), timestamp_key(end)
    if lo > hi:
        raise InvalidInput(
            f"start ({start.isoformat()}) is after end ({end.isoformat()}): the range is "
            "[start, end); swap them"
        )
    return lo, hi


def phrase(value: Any) -> str:
    """An exact-phrase query: text holding at least one word."""
    query(value)
    if not any(ch.isalnum() for ch in value):
        raise InvalidInput(
            f"phrase must hold at least one word (letters or digits), got {_show(value)}"
        )
    return str(value)


def text(value: Any, name: str, *, empty: bool = False) -> str:
    """A (non-empty unless ``empty``) string of valid UTF-8."""
    if type(value) is not str or not (value or empty):
        raise InvalidInput(
            f"{name} must be a {'' if empty else 'non-empty '}string, got {_show(value)}"
        )
    if not _utf8(value):
        raise InvalidInput(f"{name} must be valid UTF-8 text: it holds a lone surrogate")
    return value


def label(value: Any, name: str, *, empty: bool = False) -> str:
    """A short stored column value (category, tag, source): text without NUL bytes."""
    text(value, name, empty=empty)
    if "\x00" in value or len(value) > MAX_ID:
        raise InvalidInput(
            f"{name} must be at most {MAX_ID} characters without NUL bytes, got {_show(value)}"
        )
    return str(value)


def metadata(value: Any, name: str = "metadata") -> dict[str, Any]:
    """A dict of JSON-native values: str keys; str, int (64-bit), finite float, bool, None,
    list and dict values, nested at most ``MAX_DEPTH`` deep. Sets, tuples, datetimes and
    other objects are refused: they would not come back from a store as they went in."""
    if type(value) is not dict:
        raise InvalidInput(f"{name} must be a dict, got {type(value).__name__}")
    try:
        _json(value, 1)
    except _Bad as bad:
        path = [f"[{_show(p)}]" for p in reversed(bad.path)]
        if len(path) > 6:  # deep nesting: the first levels and the depth say enough
            path = [*path[:3], f"...({len(path) - 5} more)...", *path[-2:]]
        where = name + "".join(path)
        raise InvalidInput(
            f"{where} {bad.reason}; metadata must be JSON-native (str keys; str, int, float, "
            f"bool, None, list, dict values, at most {MAX_DEPTH} deep)"
        ) from None
    return value


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[Any] = []


def _json(value: Any, depth: int) -> None:
    kind = type(value)
    if kind is dict:
        if depth > MAX_DEPTH:
            raise _Bad(f"nests deeper than {MAX_DEPTH} levels (or refers to itself)")
        for k, v in value.items():
            if type(k) is not str:
                raise _Bad(f"has a key of type {type(k).__name__}, not str")
            if not _utf8(k):
                raise _Bad("has a key with a lone surrogate")
            if type(v) not in _SCALARS:
                try:
                    _json(v, depth + 1)
                except _Bad as bad:
                    bad.path.append(k)
                    raise
    elif kind is list:
        if depth > MAX_DEPTH:
            raise _Bad(f"nests deeper than {MAX_DEPTH} levels (or refers to itself)")
        for i, v in enumerate(value):
            if type(v) not in _SCALARS:
                try:
                    _json(v, depth + 1)
                except _Bad as bad:
                    bad.path.append(i)
                    raise
    elif kind is str:
        if not _utf8(value):
            raise _Bad("holds a string with a lone surrogate")
    elif kind is int:
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise _Bad("holds an integer outside the signed 64-bit range")
    elif kind is float:
        if not math.isfinite(value):
            raise _Bad(f"holds {value!r}, which JSON cannot hold")
    elif kind is not bool and value is not None:
        raise _Bad(f"holds a {kind.__name__}")


_SCALARS = frozenset({bool, type(None)})  # values needing no check at all


def _utf8(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _typed(value: Any, cls: type, name: str, expected: str | type[Enum]) -> None:
    if not isinstance(value, cls):
        what = expected if isinstance(expected, str) else _options(expected)
        raise InvalidInput(f"{name} must be {what}, got {_show(value)}")


def _unit(value: Any, name: str) -> None:
    if type(value) not in (float, int) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{name} must be a number from 0 to 1, got {_show(value)}")


def _labels(values: Any, name: str, cap: int) -> None:
    if type(values) is not list:
        raise InvalidInput(f"{name} must be a list of strings, got {_show(values)}")
    if len(values) > cap:
        raise InvalidInput(f"{name} holds {len(values)} items; at most {cap} are allowed")
    for i, v in enumerate(values):
        label(v, f"{name}[{i}]")


def _options(enum: type[Enum]) -> str:
    return f"a {enum.__name__}: one of " + ", ".join(repr(e.value) for e in enum)


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > 8:
        return f"a {type(value).__name__} of {len(value)} items"
    try:
        text = repr(value)
    except Exception:  # a repr that fails or recurses: describe the type instead
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."
