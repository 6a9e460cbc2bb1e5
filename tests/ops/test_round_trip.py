"""Every model variant and every transferable tombstone, written through the API on a
laptop stack, moved to a single-node stack (Redis and PostgreSQL) by export and import,
and by copy: the exports match once sorted and every API read matches."""

from __future__ import annotations

from pathlib import Path

from bruno_memory.managers.archive import copy, export, import_file
from bruno_memory.stack.facade import MemoryStack
from tests.ops.store import HEADER, reads_all, sorted_body


async def test_export_import_export_on_the_real_servers(
    source: MemoryStack, server: MemoryStack, tmp_path: Path
) -> None:
    """laptop -> file -> single-node -> file: equal files (header aside), equal reads; the
    tombstones travel and are applied; importing again changes nothing it holds."""
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl"
    done = await export(source, first, header=HEADER, embeddings=True)
    assert done.kinds["tombstone"]["count"] == 3  # a memory, two cleared conversations
    imported = await import_file(server, first)
    assert imported.erased == 3
    await export(server, second, header=HEADER, embeddings=True)
    assert sorted_body(first) == sorted_body(second)
    assert await reads_all(source) == await reads_all(server)
    again = await import_file(server, first)
    assert again.written == 0 and again.erased == 3
    assert await reads_all(source) == await reads_all(server)


async def test_copy_on_the_real_servers(
    source: MemoryStack, server: MemoryStack, tmp_path: Path
) -> None:
    """``copy`` carries the tombstones too, verifies, and reads match."""
    done = await copy(source, server)
    assert done.verified, done.differences
    assert done.erased == 3 and done.source.counts["tombstone"] == 3
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    await export(source, a, header=HEADER, embeddings=True)
    await export(server, b, header=HEADER, embeddings=True)
    assert sorted_body(a) == sorted_body(b)
    assert await reads_all(source) == await reads_all(server)
