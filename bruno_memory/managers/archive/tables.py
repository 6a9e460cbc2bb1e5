"""CSV for analysts: one row per message and per memory (users and sessions are not in it;
the JSONL export has everything)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from bruno_memory.managers.archive.anonymize import Anonymizer
from bruno_memory.managers.archive.export import PAGE, Progress, lines, recorded
from bruno_memory.managers.archive.format import open_write
from bruno_memory.stack.facade import MemoryStack

COLUMNS = (
    "kind",
    "id",
    "user_id",
    "conversation_id",
    "timestamp",
    "role",
    "type",
    "content",
    "parent_id",
    "category",
    "tags",
    "importance",
    "expires_at",
    "metadata",
)


def row(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The CSV row of an export line (``None``: not a message or a memory)."""
    body = obj.get("record") or {}
    if obj.get("kind") == "message":
        return {
            "kind": "message",
            "id": body["id"],
            "user_id": obj.get("owner") or "",
            "conversation_id": obj["conversation_id"],
            "timestamp": body["timestamp"],
            "role": body["role"],
            "type": body["message_type"],
            "content": body["content"],
            "parent_id": body.get("parent_id") or "",
            "metadata": orjson.dumps(body.get("metadata") or {}, option=orjson.OPT_SORT_KEYS),
        }
    if obj.get("kind") == "memory":
        md = body.get("metadata") or {}
        return {
            "kind": "memory",
            "id": body["id"],
            "user_id": body["user_id"],
            "conversation_id": body.get("conversation_id") or "",
            "timestamp": body["created_at"],
            "type": body["memory_type"],
            "content": body["content"],
            "category": md.get("category") or "",
            "tags": ";".join(md.get("tags") or []),
            "importance": md.get("importance", ""),
            "expires_at": body.get("expires_at") or "",
            "metadata": orjson.dumps(md, option=orjson.OPT_SORT_KEYS),
        }
    return None


async def export_csv(
    memory: MemoryStack,
    path: str | Path,
    *,
    user_id: str | None = None,
    embeddings: bool = False,
    anonymizer: Anonymizer | None = None,
    progress: Progress | None = None,
    page: int = PAGE,
) -> dict[str, int]:
    """Write the messages and memories (only ``user_id``'s when given) as CSV with a header
    row (UTF-8, gzip if ``path`` ends in ``.gz``); returns the rows written per kind."""
    counts = {"message": 0, "memory": 0}
    with open_write(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        writer = csv.DictWriter(text, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        async for kind, line in lines(
            memory, user_id=user_id, embeddings=embeddings, anonymizer=anonymizer, page=page
        ):
            if kind not in counts:
                continue
            out = row(orjson.loads(line))
            assert out is not None
            out["metadata"] = out["metadata"].decode()
            writer.writerow(out)
            counts[kind] += 1
            if progress is not None:
                progress(1)
    await recorded(memory, path, user_id, records=sum(counts.values()), format="csv",
                   anonymized=anonymizer is not None, embeddings=embeddings)
    return counts
