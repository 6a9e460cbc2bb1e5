"""A restore batch larger than SQLite's old bound-parameter limit (999): looked up and
upserted in few large statements, still idempotent, versions respected, searchable."""

from __future__ import annotations

from pathlib import Path

from bruno_core.models.message import Message, MessageRole

from bruno_memory import build_memory
from bruno_memory.core.records import MessageRecord
from bruno_memory.tiers.sql.sqlite import MAX_VARIABLES

N = 5000


async def test_a_large_batch_restores_once_and_is_found(tmp_path: Path) -> None:
    cfg = {"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(tmp_path / "s.db")}]}
    assert MAX_VARIABLES >= 999
    texts = [*(f"note {i} about rye" for i in range(N)), "one pumpernickel"]
    records = [
        MessageRecord(Message(role=MessageRole.USER, content=t, conversation_id="c-1"), "c-1", "u")
        for t in texts
    ]
    async with await build_memory(cfg) as memory:
        first = await memory.restore(records)
        assert (first.written, first.unchanged, first.kept) == (N + 1, 0, 0)
        again = await memory.restore(records)
        assert (again.written, again.unchanged, again.kept) == (0, N + 1, 0)
        changed = [
            MessageRecord(r.message.model_copy(update={"content": "changed"}), "c-1", "u")
            for r in records[:1500]
        ]
        skipped = await memory.restore(changed, on_conflict="skip")
        assert (skipped.written, skipped.kept) == (0, 1500)
        taken = await memory.restore(changed, on_conflict="overwrite")
        assert taken.written == 1500
        hits = await memory.search("pumpernickel", user_id="u", mode="text")
        assert [h.item.content for h in hits] == ["one pumpernickel"]
    async with await build_memory(cfg) as reopened:
        window = await reopened.retrieve_messages("c-1", limit=N + 1)
        assert len(window) == N + 1
        assert sum(m.content == "changed" for m in window) == 1500
