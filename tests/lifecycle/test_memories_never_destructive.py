"""Property: whatever mix of consolidation, dedup'd additions and pruning (archive mode)
runs, every original message and memory is still there, unchanged but for lifecycle marks."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryType
from bruno_core.models.message import Message, MessageRole
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bruno_memory import build_memory
from bruno_memory.config.lifecycle import PruneConfig
from bruno_memory.core import lifetimes as lt
from bruno_memory.core.records import MessageRecord
from bruno_memory.managers.archive import records
from bruno_memory.managers.lifecycle.calls import LLMCalls
from bruno_memory.managers.lifecycle.consolidate import Consolidate
from bruno_memory.managers.lifecycle.prune import Prune
from bruno_memory.managers.lifecycle.supersede import add_memory
from bruno_memory.testing.llm import RecordingLLM

TEXTS = ["I love Chinese food", "I hate Chinese food", "i love chinese food!",
         "I live in Porto", "I live in Lisbon", "I have a cat", "I do not have a cat"]
LINE = re.compile(r"^\[(\d+)\] user: (.*)$", re.MULTILINE)
MARKS = {lt.VALID_TO, lt.SUPERSEDED_BY, lt.ARCHIVED_AT, lt.ARCHIVE_REASON, lt.EXPIRES_BEFORE,
         lt.MERGED, lt.SOURCES, lt.PINNED}


class Echoing(RecordingLLM):
    """Extracts one memory per user message of the transcript, as an LLM would."""

    async def generate(self, messages: list[Message], temperature: float | None = None,
                       max_tokens: int | None = None, **kwargs: Any) -> str:
        await super().generate(messages, temperature, max_tokens, **kwargs)
        found = LINE.findall(messages[-1].content)
        return json.dumps([{"content": text, "kind": "preference", "sources": [int(n)]}
                           for n, text in found])


actions = st.lists(st.one_of(
    st.tuples(st.just("say"), st.sampled_from(TEXTS), st.sampled_from(["c1", "c2"])),
    st.tuples(st.just("remember"), st.sampled_from(TEXTS), st.just("")),
    st.tuples(st.just("consolidate"), st.integers(1, 3), st.just("")),
    st.tuples(st.just("prune"), st.integers(0, 3), st.sampled_from([None, 0.9])),
), min_size=1, max_size=12)


async def snapshot(memory: Any) -> tuple[dict[str, MessageRecord], dict[str, MemoryEntry]]:
    msgs: dict[str, MessageRecord] = {}
    mems: dict[str, MemoryEntry] = {}
    async for r in records(memory):
        if isinstance(r, MessageRecord):
            msgs[r.id] = r
        elif isinstance(r, MemoryEntry) and r.metadata.category != lt.INTERNAL:
            mems[str(r.id)] = r
    return msgs, mems


def same_memory(before: MemoryEntry, after: MemoryEntry) -> bool:
    """``after`` is ``before`` with lifecycle marks added, at most."""
    kept = ("content", "user_id", "memory_type", "conversation_id", "created_at")
    if any(getattr(before, f) != getattr(after, f) for f in kept):
        return False
    b, a = before.metadata.custom_fields, after.metadata.custom_fields
    unchanged = all(a.get(k) == v for k, v in b.items() if k not in MARKS)
    sources = set(b.get(lt.SOURCES) or []) <= set(a.get(lt.SOURCES) or [])
    return unchanged and sources and set(before.metadata.tags) <= set(after.metadata.tags)


async def run(steps: list[tuple[str, Any, Any]], db: Path) -> None:
    memory = await build_memory({"tiers": [{"kind": "lru"}, {"kind": "sqlite", "path": str(db)}]})
    seen_msgs: dict[str, MessageRecord] = {}
    seen_mems: dict[str, MemoryEntry] = {}
    try:
        for conv in ("c1", "c2"):
            await memory.get_context("pat", conv)
        for kind, a, b in steps:
            if kind == "say":
                await memory.store_message(Message(role=MessageRole.USER, content=a), b)
            elif kind == "remember":
                await add_memory(memory, MemoryEntry(content=a, memory_type=MemoryType.FACT,
                                                     user_id="pat"))
            elif kind == "consolidate":
                await Consolidate(LLMCalls(Echoing()), batch=a).run(memory, "pat")
            else:
                policy = PruneConfig(min_age_days=0, min_score=b, max_per_user=a or None)
                await Prune(policy).run(memory, "pat")
            msgs, mems = await snapshot(memory)
            for key, rec in {**seen_msgs}.items():
                assert msgs.get(key) == rec, "a message changed or went"
            for key, old in seen_mems.items():
                assert key in mems and same_memory(old, mems[key]), "a memory changed or went"
            seen_msgs.update(msgs)
            seen_mems.update({k: v for k, v in mems.items() if k not in seen_mems})
    finally:
        await memory.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_no_mix_of_lifecycle_steps_loses_or_rewrites_an_original(
    steps: list[tuple[str, Any, Any]],
) -> None:
    """Every message and memory ever stored is still stored after each step, with only
    lifecycle marks (validity, supersession, archival, merges) added."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(steps, Path(tmp) / "m.db"))
