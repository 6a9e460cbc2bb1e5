"""Redact on write: message and memory contents redacted before they reach any tier.

Turned on by a YAML ``redact:`` section (``redactor_of``). Every write through the façade
passes its messages' and memories' ``content`` through the stack's redactor first (the
same ``core.redact`` redactor the anonymized export uses), so no tier, journal or index
ever holds what it removes; searching for a redacted e-mail address finds nothing.
Metadata is left as the app wrote it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import Path

from bruno_core.models.memory import MemoryEntry

from bruno_memory.config.models import RedactConfig
from bruno_memory.core.errors import BrunoMemoryConfigError
from bruno_memory.core.ops import Put, WriteOp
from bruno_memory.core.records import MessageRecord
from bruno_memory.core.redact import Redactor, RegexRedactor
from bruno_memory.stack.plumbing import Plumbing

OFF_LOOP = 64 * 1024
"""Characters of content in one write past which redaction runs on a worker thread."""


def redactor_of(config: RedactConfig) -> RegexRedactor:
    """The redactor a ``redact:`` section describes (``names_file`` read now)."""
    names = list(config.names)
    if config.names_file is not None:
        names += names_from(config.names_file)
    return RegexRedactor(config.kinds, names)


def names_from(path: str | Path) -> list[str]:
    """The names in a file, one a line (blank lines and ``#`` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BrunoMemoryConfigError(
            f"cannot read the names file {str(path)!r}: {exc.strerror or exc}; give the path "
            "of a UTF-8 text file with one name a line", path="redact.names_file") from exc
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]


def redacted(ops: Sequence[WriteOp], redact: Redactor) -> list[WriteOp]:
    """``ops`` with every message's and memory's content redacted (new records)."""
    out: list[WriteOp] = []
    for op in ops:
        if isinstance(op, Put) and isinstance(op.value, MessageRecord):
            record = op.value
            message = record.message.model_copy(
                update={"content": redact(record.message.content)})
            op = Put(op.key, MessageRecord(message, record.conversation_id, record.user_id),
                     op.version)
        elif isinstance(op, Put) and isinstance(op.value, MemoryEntry):
            op = Put(op.key, op.value.model_copy(update={"content": redact(op.value.content)}),
                     op.version)
        out.append(op)
    return out


def _size(ops: Sequence[WriteOp]) -> int:
    return sum(len(op.value.message.content) if isinstance(op.value, MessageRecord)
               else len(op.value.content) if isinstance(op.value, MemoryEntry) else 0
               for op in ops if isinstance(op, Put))


class Redacting(Plumbing):
    """Redact-on-write for ``MemoryStack`` (mixed in)."""

    def _write(self, ops: list[WriteOp], touched: Sequence[object]) -> Awaitable[None]:
        engine = self._live()
        if engine is not None and engine.redactor is None:
            return super()._write(ops, touched)  # nothing to redact: no layer of our own
        return self._redacted(ops, touched)

    async def _redacted(self, ops: list[WriteOp], touched: Sequence[object]) -> None:
        redact = (await self._ready()).redactor
        if redact is not None:
            if _size(ops) > OFF_LOOP:
                ops = await asyncio.to_thread(redacted, ops, redact)
            else:
                ops = redacted(ops, redact)
        await super()._write(ops, touched)
