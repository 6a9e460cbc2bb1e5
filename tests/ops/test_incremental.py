"""Incremental exports: a full export and the increments after it, applied in order to
another store, give what a full export of the source gives now."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bruno_memory.cli import main
from bruno_memory.core.errors import InvalidInput
from bruno_memory.managers.archive import Anonymizer, Header, export, import_file, new_key
from bruno_memory.stack.facade import MemoryStack
from tests.ops.store import HEADER, first_changes, reads_all, second_changes, sorted_body


async def test_full_and_two_increments_equal_a_full_export(
    source: MemoryStack, server: MemoryStack, tmp_path: Path
) -> None:
    """full + increment + increment, imported into single-node, exports as the source's
    full export does now, and every read matches."""
    full = await export(source, tmp_path / "full.jsonl", header=HEADER, embeddings=True)
    await first_changes(source)
    one = await export(source, tmp_path / "one.jsonl", header=HEADER, embeddings=True,
                       since=full.header.watermark)
    assert one.header.since == full.header.watermark
    assert 0 < one.records < full.records
    assert one.kinds["tombstone"]["count"] == 2  # the deleted memory, the cleared chat
    await second_changes(source)
    two = await export(source, tmp_path / "two.jsonl.gz", header=HEADER, embeddings=True,
                       since=one.header.watermark)
    assert two.kinds["tombstone"]["count"] == 1 and two.kinds["memory"]["count"] == 1
    now = await export(source, tmp_path / "now.jsonl", header=HEADER, embeddings=True)

    for part in ("full.jsonl", "one.jsonl", "two.jsonl.gz"):
        await import_file(server, tmp_path / part)
    await export(server, tmp_path / "copy.jsonl", header=HEADER, embeddings=True)
    assert sorted_body(tmp_path / "copy.jsonl") == sorted_body(tmp_path / "now.jsonl")
    assert await reads_all(server) == await reads_all(source)
    assert now.records > 0


async def test_nothing_changed_gives_an_empty_increment(
    source: MemoryStack, tmp_path: Path
) -> None:
    """An increment since the current watermark holds nothing; a bad watermark is refused."""
    full = await export(source, tmp_path / "full.jsonl", header=HEADER)
    empty = await export(source, tmp_path / "none.jsonl", header=HEADER,
                         since=full.header.watermark)
    assert empty.records == 0
    assert Header.of_line({"kind": "header", "format": 1, "since": 5}).since == 5
    with pytest.raises(InvalidInput, match="watermark"):
        await export(source, tmp_path / "bad.jsonl", header=HEADER, since=-1)


def test_cli_incremental_export_and_import(tmp_path: Path) -> None:
    """``export --since`` writes the header's ``since``; ``import`` applies it."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"tiers:\n  - {{kind: sqlite, path: {tmp_path / 's.db'}}}\n")
    target = tmp_path / "t.yaml"
    target.write_text(f"tiers:\n  - {{kind: sqlite, path: {tmp_path / 't.db'}}}\n")
    assert main(["export", str(cfg), str(tmp_path / "f.jsonl")]) == 0
    assert main(["export", str(cfg), str(tmp_path / "i.jsonl"), "--since", "0"]) == 0
    assert main(["import", str(target), str(tmp_path / "i.jsonl")]) == 0
    assert main(["export", str(cfg), str(tmp_path / "c.csv"), "--format", "csv",
                 "--since", "0"]) == 2


async def test_anonymized_exports_pseudonymize_tombstones(
    source: MemoryStack, tmp_path: Path
) -> None:
    """An anonymized export carries the tombstones under the same pseudonyms as the
    records: a cleared conversation's id is the pseudonym its messages carry."""
    anonymizer = Anonymizer(new_key())
    path = tmp_path / "anon.jsonl"
    await export(source, path, header=HEADER, anonymizer=anonymizer)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()[1:]]
    gone = {(o["scope"], o["id"]) for o in lines if o["kind"] == "tombstone"}
    assert ("clear", anonymizer.pseudonym("cleared-keep")) in gone
    assert ("clear-all", anonymizer.pseudonym("cleared-all")) in gone
    assert not any("cleared" in o["id"] for o in lines if o["kind"] == "tombstone")
    kept = [o for o in lines if o["kind"] == "message" and o["record"]["content"] == "rules"]
    assert anonymizer.pseudonym("cleared-keep") in {o["conversation_id"] for o in kept}
