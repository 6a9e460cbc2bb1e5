"""Never destructive: any mix of summarize and archive runs keeps every original."""

from __future__ import annotations

import asyncio
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bruno_memory import build_memory
from bruno_memory.config.lifecycle import ArchiveConfig, SummariesConfig
from bruno_memory.core.archived import ARCHIVED
from bruno_memory.managers.archive import Header, export
from bruno_memory.managers.lifecycle import ExtractiveSummarizer, SummarizeStep, is_summary
from bruno_memory.managers.lifecycle.archival import ArchiveStep, unarchive
from bruno_memory.testing.llm import RecordingLLM
from tests.lifecycle.conftest import at
from tests.lifecycle.helpers import session_turns

NOW = at(20 * 600).timestamp()
RUNS = st.lists(
    st.sampled_from(["extractive", "llm", "archive", "unarchive", "more"]), min_size=1,
    max_size=6,
)


async def _everything(memory: Any, path: Path) -> dict[str, Any]:
    """The store as an export writes it (JSONL), keyed by kind and id, archive flags out."""
    await export(memory, path, header=Header(namespace="nd"))
    out: dict[str, Any] = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "header":
                continue
            record = row["record"]
            if row["kind"] == "message":
                record["metadata"].pop(ARCHIVED, None)
            out[f"{row['kind']}:{record.get('id') or record.get('session_id')}"] = row
    return out


async def _scenario(runs: list[str], turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        memory = await build_memory({"namespace": "nd", "tiers": [
            {"kind": "lru"}, {"kind": "sqlite", "path": str(Path(tmp) / "m.db")}]})
        try:
            session = await memory.create_session("nora")
            conv = session.conversation_id
            for s in range(3):
                await memory.store_messages(session_turns(s, turns), conv)
            before = await _everything(memory, Path(tmp) / "before.jsonl.gz")
            extra = 3
            for run in runs:
                if run == "extractive":
                    await SummarizeStep(ExtractiveSummarizer(), SummariesConfig(fanout=2),
                                        clock=lambda: NOW).run(memory, "nora")
                elif run == "llm":
                    from bruno_memory.managers.lifecycle import LLMSummarizer

                    await SummarizeStep(LLMSummarizer(RecordingLLM()), SummariesConfig(fanout=2),
                                        clock=lambda: NOW).run(memory, "nora")
                elif run == "archive":
                    await ArchiveStep(ArchiveConfig(after=0, keep_recent=2),
                                      clock=lambda: NOW).run(memory, "nora")
                elif run == "unarchive":
                    await unarchive(memory, conv)
                else:
                    new = session_turns(extra, turns)
                    await memory.store_messages(new, conv)
                    extra += 1
                    now = await _everything(memory, Path(tmp) / "more.jsonl.gz")
                    before.update({k: v for k, v in now.items()
                                   if k.startswith("message:") and k not in before})
            after = await _everything(memory, Path(tmp) / "after.jsonl.gz")
            added = {k for k in after if k not in before}
            assert all(k.startswith("memory:") for k in added)
            for k in added:
                found = await memory.get_memory(k.split(":", 1)[1])
                assert found is not None and is_summary(found)
            assert {k: after[k] for k in before} == before
        finally:
            await memory.close()


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(runs=RUNS, turns=st.integers(min_value=1, max_value=7))
def test_any_mix_of_runs_keeps_every_original(runs: list[str], turns: int) -> None:
    """Exports before and after compare equal apart from archive flags and added summaries."""
    asyncio.run(_scenario(runs, turns))
