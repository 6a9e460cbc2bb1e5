"""Write ops <-> bytes, for journals and invalidation messages (pure).

An encoded op is a JSON header line (``[tag, version, ...fields]``), then, for a put,
the record as ``codec.encode`` writes it; a window fill carries its records each
prefixed by its length.
"""

from __future__ import annotations

from typing import get_args

import orjson

from bruno_memory.core import codec
from bruno_memory.core.codec import DecodeError
from bruno_memory.core.ops import (
    ClaimConversation,
    ClearHistory,
    Delete,
    FillWindow,
    Key,
    Namespace,
    PurgeUser,
    Put,
    WriteOp,
)
from bruno_memory.core.records import MessageRecord

__all__ = ["DecodeError", "decode_op", "encode_op", "frame", "unframe"]


def encode_op(op: WriteOp) -> bytes:
    """The bytes of one write op."""
    if isinstance(op, Put):
        return _head("p", op.version, op.key.ns, op.key.id) + codec.encode(op.value)
    if isinstance(op, Delete):
        return _head("d", op.version, op.key.ns, op.key.id)
    if isinstance(op, ClearHistory):
        return _head("c", op.version, op.conversation_id, op.keep_system)
    if isinstance(op, PurgeUser):
        return _head("u", op.version, op.user_id)
    if isinstance(op, ClaimConversation):
        return _head("o", op.version, op.conversation_id, op.user_id)
    if isinstance(op, FillWindow):
        body = frame([codec.encode(m) for m in op.messages])
        return _head("f", 0, op.conversation_id, op.complete) + body
    raise TypeError(f"not a write op: {op!r}")


def decode_op(data: bytes) -> WriteOp:
    """Inverse of ``encode_op``; raises ``DecodeError`` on anything else."""
    head, sep, body = data.partition(b"\n")
    try:
        tag, version, *fields = orjson.loads(head)
        if not sep or not isinstance(version, int):
            raise ValueError("bad header")
        return _build(tag, version, fields, body)
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"not an encoded write op: {data[:60]!r}") from exc


def _build(tag: str, version: int, fields: list[object], body: bytes) -> WriteOp:
    if tag == "p":
        return Put(_key(*fields), codec.decode(body), version)
    if tag == "d":
        return Delete(_key(*fields), version)
    if tag == "c":
        conversation_id, keep_system = fields
        return ClearHistory(str(conversation_id), bool(keep_system), version)
    if tag == "u":
        (user_id,) = fields
        return PurgeUser(str(user_id), version)
    if tag == "o":
        conversation_id, user_id = fields
        return ClaimConversation(str(conversation_id), str(user_id), version)
    if tag == "f":
        conversation_id, complete = fields
        return FillWindow(str(conversation_id), _unframed(body), bool(complete))
    raise ValueError(f"unknown op tag {tag!r}")


def _key(ns: object, id_: object) -> Key:
    if ns not in get_args(Namespace):
        raise ValueError(f"unknown namespace {ns!r}")
    return Key(ns, str(id_))  # type: ignore[arg-type]


def _head(tag: str, version: int, *fields: object) -> bytes:
    return orjson.dumps([tag, version, *fields]) + b"\n"


def frame(parts: list[bytes]) -> bytes:
    """Parts joined, each prefixed by its length (4 bytes)."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def unframe(body: bytes) -> list[bytes]:
    """Inverse of ``frame``; raises ``DecodeError`` on a truncated body."""
    out, at = [], 0
    while at < len(body):
        size = int.from_bytes(body[at : at + 4], "big")
        if at + 4 + size > len(body):
            raise DecodeError("truncated frame")
        out.append(body[at + 4 : at + 4 + size])
        at += 4 + size
    return out


def _unframed(body: bytes) -> tuple[MessageRecord, ...]:
    out: list[MessageRecord] = []
    for part in unframe(body):
        value = codec.decode(part)
        if not isinstance(value, MessageRecord):
            raise ValueError("a window fill holds messages only")
        out.append(value)
    return tuple(out)
