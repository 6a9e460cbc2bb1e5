"""Export: a store (or one user's part of it) streamed into a portable JSONL file, a page
at a time through the façade's ``scan`` (constant memory)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bruno_memory.core import audit
from bruno_memory.core.ops import Value
from bruno_memory.core.queries import Tombstone, every
from bruno_memory.managers.archive.anonymize import Anonymizer
from bruno_memory.managers.archive.format import (
    KINDS,
    TOMBSTONE,
    Digest,
    Header,
    dumps,
    open_write,
    stored_line,
    to_line,
    tombstone_line,
)
from bruno_memory.stack.facade import MemoryStack

Progress = Callable[[int], None]
"""Told how many more records were written (a progress bar's ``update``)."""
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Exported:
    """What an export wrote: the file, its header, and per kind a count and checksum."""

    path: str
    header: Header
    kinds: dict[str, dict[str, Any]]

    @property
    def records(self) -> int:
        return sum(k["count"] for k in self.kinds.values())

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "watermark": self.header.watermark,
            "kinds": self.kinds,
        }


async def tombstones(
    memory: MemoryStack, *, since: int | None = None, page: int = PAGE
) -> AsyncIterator[Tombstone]:
    """Every transferable tombstone of the store (left after ``since`` when given)."""
    async for item in every(partial(memory.tombstones, since=since or 0, limit=page)):
        yield item


async def records(
    memory: MemoryStack,
    *,
    user_id: str | None = None,
    page: int = PAGE,
    since: int | None = None,
) -> AsyncIterator[Value]:
    """Every record of the store (only ``user_id``'s when given; only those written after
    ``since`` when given), users first, then sessions, messages and memories, a page at a
    time."""
    for kind in KINDS:
        scan = partial(memory.scan, kind, user_id=user_id, limit=page, since=since)
        async for item in every(scan):
            yield item


async def lines(
    memory: MemoryStack,
    *,
    user_id: str | None = None,
    embeddings: bool = False,
    anonymizer: Anonymizer | None = None,
    page: int = PAGE,
    since: int | None = None,
    sealed: bool = False,
) -> AsyncIterator[tuple[str, bytes]]:
    """(kind, canonical line) of every tombstone (not in one user's export: they are the
    store's) and every record, as ``export`` writes them; ``sealed``: records as an
    encrypted stack stores them (ciphertext)."""
    if user_id is None:
        async for tombstone in tombstones(memory, since=since, page=page):
            line = tombstone_line(tombstone)
            if anonymizer is not None:
                line = anonymizer.line(line)
            yield TOMBSTONE, dumps(line)
    if await memory.encrypted():  # stored payloads are ciphertext: through the models
        async for record in records(memory, user_id=user_id, page=page, since=since):
            if sealed:
                (record,) = await memory.seal([record])
            obj = to_line(record, embeddings=embeddings)
            if anonymizer is not None:
                obj = anonymizer.line(obj)
            yield obj["kind"], dumps(obj)
        return
    for kind in KINDS:  # as stored: no model round trip
        scan = partial(memory.scan_payloads, kind, user_id=user_id, limit=page, since=since)
        async for stored in every(scan):
            obj = stored_line(kind, stored, embeddings=embeddings)
            if anonymizer is not None:
                obj = anonymizer.line(obj)
            yield kind, dumps(obj)


async def export(
    memory: MemoryStack,
    path: str | Path,
    *,
    header: Header,
    user_id: str | None = None,
    embeddings: bool = False,
    anonymizer: Anonymizer | None = None,
    progress: Progress | None = None,
    page: int = PAGE,
    since: int | None = None,
    decrypt: bool = False,
) -> Exported:
    """Write the store to ``path`` (gzip if it ends in ``.gz``) in the portable format.

    Args:
        header: what the header says of the store (its namespace, embedding model and
            dimension); the watermark, user, embeddings and anonymized flags are filled in.
        user_id: only this user's records (her profile, sessions, messages, memories).
        embeddings: keep embeddings (a memory's ``metadata.embedding``, a message's
            ``metadata["embedding"]``); left out by default.
        anonymizer: pseudonymize ids and redact text (``Anonymizer``).
        since: an incremental export: only what was written or deleted after this
            watermark (the header's ``watermark`` of an earlier export).
        decrypt: from an encrypted stack, write plain records; by default they stay
            sealed (readable only through the stack's key store, shredded with their
            users). An anonymized export is always plain.
    """
    sealed = not decrypt and anonymizer is None and await memory.encrypted()
    header = dataclasses.replace(
        header,
        watermark=await memory.watermark(),
        user=anonymizer.pseudonym(user_id) if anonymizer and user_id else user_id,
        embeddings=embeddings,
        anonymized=anonymizer is not None,
        since=since,
    )
    stream = lines(
        memory,
        user_id=user_id,
        embeddings=embeddings,
        anonymizer=anonymizer,
        page=page,
        since=since,
        sealed=sealed,
    )
    done = await write(path, header, stream, progress=progress)
    await recorded(memory, path, user_id, records=done.records,
                   anonymized=anonymizer is not None, embeddings=embeddings,
                   watermark=header.watermark, since=since)
    return done


async def write(
    path: str | Path,
    header: Header,
    stream: AsyncIterable[tuple[str, bytes]],
    *,
    progress: Progress | None = None,
) -> Exported:
    """Write ``header`` then every (kind, canonical line) of ``stream`` to ``path``."""
    digest = Digest()
    with open_write(path) as out:
        out.write(dumps(header.line()))
        done = 0
        async for kind, line in stream:
            out.write(line)
            digest.add(kind, line)
            done += 1
            if progress is not None and done % 100 == 0:
                progress(100)
        if progress is not None and done % 100:
            progress(done % 100)
    return Exported(str(path), header, digest.summary())


async def recorded(memory: MemoryStack, path: str | Path, user_id: str | None,
                   **detail: Any) -> None:
    """Record an export in the stack's audit trail (when it keeps one)."""
    await memory.record_event(audit.EXPORT, "store", subject=user_id, targets=(str(path),),
                              detail=detail)


async def canonical(
    gone: AsyncIterable[Tombstone], held: AsyncIterable[Value]
) -> AsyncIterator[tuple[str, bytes]]:
    """(kind, canonical line) of tombstones then records (embeddings kept), as a reader
    applies them: for exports read some other way than through a stack."""
    async for tombstone in gone:
        yield TOMBSTONE, dumps(tombstone_line(tombstone))
    async for record in held:
        obj = to_line(record)
        yield obj["kind"], dumps(obj)


async def digest(memory: MemoryStack, *, page: int = PAGE) -> Digest:
    """Counts and checksums per kind of everything in the store (embeddings included)."""
    out = Digest()
    async for kind, line in lines(memory, embeddings=True, page=page):
        out.add(kind, line)
    return out
