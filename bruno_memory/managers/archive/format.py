"""The portable format: JSONL, one record a line, canonical.

The first line is the header::

    {"kind": "header", "format": 1, "namespace": "bruno", "embedding": {"model": ...,
     "dimension": ...} | null, "watermark": 1718000000000000000, "user": null,
     "embeddings": false, "anonymized": false, "exported_at": "2024-...Z",
     "since": null}

then ``tombstone`` lines (deletes the store remembers: a reader applies them before the
records, which may be newer), then ``user``, ``session``, ``message`` and ``memory`` lines,
in that order (a reader restores an owner before what it owns)::

    {"kind": "tombstone", "scope": "memory" | "clear" | ..., "id": "..."}
    {"kind": "user", "record": {...UserContext...}}
    {"kind": "session", "record": {...SessionContext...}}
    {"kind": "message", "conversation_id": "c1", "owner": "ada" | null, "record": {...Message...}}
    {"kind": "memory", "record": {...MemoryEntry...}}

``record`` is the model's own JSON as every tier stores it (``core.codec``): ids, enums,
metadata, parent ids, timestamps with their offsets. Lines are orjson with sorted keys and
no whitespace, so the same data exported from any stack gives the same lines once sorted
(the header aside). A file whose name ends in ``.gz`` is gzip-compressed.

An incremental export (``since``: the watermark of an earlier export) holds the records
written after it and the tombstones left after it; applied in order to a copy of the
earlier export, it gives the store as it is now.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, cast

import orjson

from bruno_memory.core import codec
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.ops import Value
from bruno_memory.core.queries import TOMBSTONE_SCOPES, ScanKind, StoredPayload, Tombstone
from bruno_memory.core.records import MessageRecord

FORMAT = 1
"""The format version this code writes and reads."""
KINDS: tuple[ScanKind, ...] = ("user", "session", "message", "memory")
"""Record kinds, in the order an export writes them."""
TOMBSTONE = "tombstone"
DIGEST_KINDS = (TOMBSTONE, *KINDS)
"""Every kind of line but the header, in the order an export writes them."""
_OPTIONS = orjson.OPT_SORT_KEYS


class ArchiveError(InvalidInput):
    """A line of an archive is not valid: the message names the line and what is wrong."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Header:
    """What the first line of an archive says of the store and the export."""

    namespace: str
    watermark: int = 0
    embedding_model: str | None = None
    embedding_dimension: int | None = None
    user: str | None = None
    embeddings: bool = False
    anonymized: bool = False
    exported_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    format: int = FORMAT
    since: int | None = None

    def line(self) -> dict[str, Any]:
        embedding = None
        if self.embedding_model is not None or self.embedding_dimension is not None:
            embedding = {"model": self.embedding_model, "dimension": self.embedding_dimension}
        return {
            "kind": "header",
            "format": self.format,
            "namespace": self.namespace,
            "embedding": embedding,
            "watermark": self.watermark,
            "user": self.user,
            "embeddings": self.embeddings,
            "anonymized": self.anonymized,
            "exported_at": self.exported_at,
            "since": self.since,
        }

    @classmethod
    def of_line(cls, obj: dict[str, Any]) -> Header:
        """The header of a parsed first line; raises ``ArchiveError`` (line 1)."""
        if obj.get("kind") != "header":
            raise ArchiveError('the first line must be the header ({"kind": "header", ...})', 1)
        version = obj.get("format")
        if version != FORMAT:
            raise ArchiveError(
                f"format {version!r} is not one this version reads (it reads {FORMAT}); "
                "export again with this version, or upgrade bruno-memory",
                1,
            )
        embedding = obj.get("embedding") or {}
        try:
            return cls(
                namespace=str(obj.get("namespace", "")),
                watermark=int(obj.get("watermark") or 0),
                embedding_model=embedding.get("model"),
                embedding_dimension=embedding.get("dimension"),
                user=obj.get("user"),
                embeddings=bool(obj.get("embeddings")),
                anonymized=bool(obj.get("anonymized")),
                exported_at=str(obj.get("exported_at", "")),
                since=None if obj.get("since") is None else int(obj["since"]),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"the header is not valid: {exc}", 1) from exc


def to_line(record: Value, *, embeddings: bool = True) -> dict[str, Any]:
    """A record as a line object (``embeddings=False`` leaves embeddings out: a memory's
    ``metadata.embedding`` becomes null, a message's ``metadata["embedding"]`` goes)."""
    if isinstance(record, MessageRecord):
        stored = StoredPayload(codec.payload(record), record.conversation_id, record.user_id)
    else:
        stored = StoredPayload(codec.payload(record))
    return stored_line(codec.key_of(record).ns, stored, embeddings=embeddings)


def stored_line(kind: str, stored: StoredPayload, *, embeddings: bool = True) -> dict[str, Any]:
    """A record as its store holds it (``MemoryStack.scan_payloads``) as a line object;
    the same object ``to_line`` makes of the decoded record."""
    body = orjson.loads(stored.payload)
    if not embeddings:
        if kind == "memory":
            body["metadata"]["embedding"] = None
        elif kind == "message":
            body["metadata"].pop("embedding", None)
    if kind == "message":
        return {
            "kind": "message",
            "conversation_id": stored.conversation_id,
            "owner": stored.user_id,
            "record": body,
        }
    return {"kind": kind, "record": body}


def tombstone_line(tombstone: Tombstone) -> dict[str, Any]:
    """A tombstone as a line object (its version is the store's own: left out)."""
    return {"kind": TOMBSTONE, "scope": tombstone.scope, "id": tombstone.id}


def tombstone_of_line(obj: dict[str, Any], line: int | None = None) -> Tombstone:
    """The tombstone of a parsed ``tombstone`` line; raises ``ArchiveError`` naming it."""
    scope, id_ = obj.get("scope"), obj.get("id")
    if scope not in TOMBSTONE_SCOPES:
        raise ArchiveError(f"a tombstone's scope is one of {', '.join(TOMBSTONE_SCOPES)}", line)
    if not isinstance(id_, str) or not id_:
        raise ArchiveError("a tombstone line needs an 'id' string", line)
    return Tombstone(scope, id_)


def from_line(obj: Any, line: int | None = None) -> Value:
    """The record of a parsed line; raises ``ArchiveError`` naming ``line``."""
    if not isinstance(obj, dict):
        raise ArchiveError("a line must be a JSON object", line)
    kind, body = obj.get("kind"), obj.get("record")
    if kind not in KINDS:
        raise ArchiveError(f"kind {kind!r} is not one of {', '.join(KINDS)}", line)
    if not isinstance(body, dict):
        raise ArchiveError(f"a {kind} line needs a 'record' object", line)
    text = orjson.dumps(body)
    try:
        if kind == "message":
            conversation, owner = obj.get("conversation_id"), obj.get("owner")
            if not isinstance(conversation, str) or not conversation:
                raise ArchiveError("a message line needs a 'conversation_id' string", line)
            if owner is not None and not isinstance(owner, str):
                raise ArchiveError("a message line's 'owner' is a string or null", line)
            return codec.message_from_row(text, conversation, owner)
        value: Value = codec.from_payload(kind, text)
        return value
    except codec.DecodeError as exc:
        raise ArchiveError(str(exc), line) from exc


def dumps(obj: dict[str, Any]) -> bytes:
    """One canonical line: sorted keys, no whitespace, a newline."""
    return orjson.dumps(obj, option=_OPTIONS) + b"\n"


def loads(data: bytes, line: int) -> Any:
    """A line's JSON; raises ``ArchiveError`` naming ``line``."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"not valid JSON: {exc}", line) from exc


def open_write(path: str | Path) -> IO[bytes]:
    """A binary file to write (gzip when the name ends in ``.gz``)."""
    target = Path(path)
    if target.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(target, "wb", compresslevel=6))
    return target.open("wb")


def open_read(path: str | Path) -> IO[bytes]:
    """A binary file to read (gzip when the name ends in ``.gz``)."""
    source = Path(path)
    if source.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(source, "rb"))
    return source.open("rb")


def numbered(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, line) for every non-blank line."""
    for number, data in enumerate(stream, 1):
        if data.strip():
            yield number, data


class Digest:
    """Counts and an order-free checksum per kind: the sum (mod 2**256) of the SHA-256 of
    each canonical line, so two stores compare equal whatever order they page in."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(DIGEST_KINDS, 0)
        self._sums: dict[str, int] = dict.fromkeys(DIGEST_KINDS, 0)

    def add(self, kind: str, line: bytes) -> None:
        self.counts[kind] += 1
        digest = int.from_bytes(hashlib.sha256(line).digest(), "big")
        self._sums[kind] = (self._sums[kind] + digest) % (1 << 256)

    def checksums(self) -> dict[str, str]:
        return {k: f"{v:064x}" for k, v in self._sums.items()}

    def summary(self) -> dict[str, dict[str, Any]]:
        sums = self.checksums()
        return {k: {"count": self.counts[k], "checksum": sums[k]} for k in DIGEST_KINDS}

    def differences(self, other: Digest) -> list[str]:
        """The kinds whose counts or checksums differ, said for a person."""
        out = []
        mine, theirs = self.checksums(), other.checksums()
        for k in DIGEST_KINDS:
            if self.counts[k] != other.counts[k]:
                out.append(f"{k}: {self.counts[k]} records, {other.counts[k]} in the copy")
            elif mine[k] != theirs[k]:
                out.append(f"{k}: same count ({self.counts[k]}), different checksum")
        return out
