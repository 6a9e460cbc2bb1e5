"""Export: a store (or one user's part of it) streamed into a portable JSONL file, a page
at a time through the façade's ``scan`` (constant memory)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bruno_memory.core import audit
from bruno_memory.core.ops import Value
from bruno_memory.managers.archive.anonymize import Anonymizer
from bruno_memory.managers.archive.format import (
    KINDS,
    Digest,
    Header,
    dumps,
    open_write,
    to_line,
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


async def records(
    memory: MemoryStack, *, user_id: str | None = None, page: int = PAGE
) -> AsyncIterator[Value]:
    """Every record of the store (only ``user_id``'s when given), users first, then
    sessions, messages and memories, a page at a time."""
    for kind in KINDS:
        after: str | None = None
        while True:
            found = await memory.scan(kind, user_id=user_id, after=after, limit=page)
            for item in found.items:
                yield item
            if found.next is None:
                break
            after = found.next


async def lines(
    memory: MemoryStack,
    *,
    user_id: str | None = None,
    embeddings: bool = False,
    anonymizer: Anonymizer | None = None,
    page: int = PAGE,
) -> AsyncIterator[tuple[str, bytes]]:
    """(kind, canonical line) of every record, as ``export`` writes them."""
    async for record in records(memory, user_id=user_id, page=page):
        obj = to_line(record, embeddings=embeddings)
        if anonymizer is not None:
            obj = anonymizer.line(obj)
        yield obj["kind"], dumps(obj)


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
) -> Exported:
    """Write the store to ``path`` (gzip if it ends in ``.gz``) in the portable format.

    Args:
        header: what the header says of the store (its namespace, embedding model and
            dimension); the watermark, user, embeddings and anonymized flags are filled in.
        user_id: only this user's records (her profile, sessions, messages, memories).
        embeddings: keep embeddings (a memory's ``metadata.embedding``, a message's
            ``metadata["embedding"]``); left out by default.
        anonymizer: pseudonymize ids and redact text (``Anonymizer``).
    """
    header = dataclasses.replace(
        header,
        watermark=await memory.watermark(),
        user=anonymizer.pseudonym(user_id) if anonymizer and user_id else user_id,
        embeddings=embeddings,
        anonymized=anonymizer is not None,
    )
    digest = Digest()
    with open_write(path) as out:
        out.write(dumps(header.line()))
        done = 0
        async for kind, line in lines(
            memory, user_id=user_id, embeddings=embeddings, anonymizer=anonymizer, page=page
        ):
            out.write(line)
            digest.add(kind, line)
            done += 1
            if progress is not None and done % 100 == 0:
                progress(100)
        if progress is not None and done % 100:
            progress(done % 100)
    await recorded(memory, path, user_id, records=done, anonymized=anonymizer is not None,
                   embeddings=embeddings, watermark=header.watermark)
    return Exported(str(path), header, digest.summary())


async def recorded(memory: MemoryStack, path: str | Path, user_id: str | None,
                   **detail: Any) -> None:
    """Record an export in the stack's audit trail (when it keeps one)."""
    await memory.record_event(audit.EXPORT, "store", subject=user_id, targets=(str(path),),
                              detail=detail)


async def digest(memory: MemoryStack, *, page: int = PAGE) -> Digest:
    """Counts and checksums per kind of everything in the store (embeddings included)."""
    out = Digest()
    async for kind, line in lines(memory, embeddings=True, page=page):
        out.add(kind, line)
    return out
