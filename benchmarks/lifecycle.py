"""Session summaries on LoCoMo (Maharana et al., ACL 2024): compression, recall, throughput.

    python benchmarks/lifecycle.py PATH [--config tiers/laptop.yaml] [--budget 2048]

PATH is a LoCoMo JSON file. Every turn is stored as ``benchmarks/locomo.py`` stores it; then
the ``summarize`` step writes one offline extractive summary per session (a pause over 30
minutes), and the hierarchy above them. Prints one JSON object:

- ``compression``: the tokens of a conversation's whole history (every message, exact
  cl100k_base) against the tokens of the session summaries that cover it; per conversation
  and overall (the ratio is history / summaries: how many times fewer tokens);
- ``throughput``: turns summarised per second, offline (extractive, lexical);
- ``recall``: evidence recall of the context builder at ``--budget`` tokens for every
  question with evidence (categories 1-4), alone and with the session summaries in its
  summary section (``StoredSummaries``), measured as ``benchmarks/context.py`` measures it
  (evidence turns present verbatim);
- ``llm``: the LLM path on the same turns with the recording LLM of ``bruno_memory.testing``
  (which echoes its prompt): calls and tokens per 1,000 turns, and a second run's calls.

Only the public API is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from context import SYSTEM, Bench  # noqa: E402
from locomo import ingest  # noqa: E402

from bruno_memory import build_memory  # noqa: E402
from bruno_memory.config.lifecycle import SummariesConfig  # noqa: E402
from bruno_memory.config.loader import load_config  # noqa: E402
from bruno_memory.managers.context import ContextBuilder, default_counter  # noqa: E402
from bruno_memory.managers.lifecycle import (  # noqa: E402
    ExtractiveSummarizer,
    LLMSummarizer,
    StoredSummaries,
    SummarizeStep,
    info_of,
    summaries_of,
)
from bruno_memory.testing.llm import RecordingLLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = SummariesConfig(segment={"by": "session", "gap": "30m"})  # type: ignore[arg-type]


def users(data: list[dict[str, Any]]) -> list[str]:
    return [f"locomo-{s['sample_id']}" for s in data]


async def compression(memory: Any, data: list[dict[str, Any]]) -> dict[str, Any]:
    counter = default_counter()
    rows = []
    for user in users(data):
        ctx = await memory.get_context(user)
        history = await memory.retrieve_messages(ctx.conversation_id)
        full = sum(counter.count_tokens(m.content) for m in history)
        level0 = [e for e in await summaries_of(memory, user) if info_of(e).level == 0]
        short = sum(counter.count_tokens(e.content) for e in level0)
        rows.append({"user": user, "turns": len(history), "sessions": len(level0),
                     "history_tokens": full, "summary_tokens": short,
                     "ratio": round(full / max(short, 1), 2)})
    full = sum(r["history_tokens"] for r in rows)
    short = sum(r["summary_tokens"] for r in rows)
    return {"ratio": round(full / max(short, 1), 2), "history_tokens": full,
            "summary_tokens": short, "min_ratio": min(r["ratio"] for r in rows),
            "conversations": rows}


async def recall(memory: Any, data: list[dict[str, Any]], ids: dict[str, str],
                 budget: int) -> dict[str, Any]:
    plain = Bench(memory, data, ids)
    with_summaries = Bench(memory, data, ids)
    provider = StoredSummaries(memory, max_tokens=budget // 12)
    with_summaries.builder = ContextBuilder(memory, system_prompt=SYSTEM, summaries=provider)
    for bench in (plain, with_summaries):
        for user in users(data):
            ctx = await memory.get_context(user)
            bench.conversations[user] = ctx.conversation_id
            for m in await memory.retrieve_messages(ctx.conversation_id):
                bench.text[str(m.id)] = m.content
    alone = await plain.run("builder", budget)
    summed = await with_summaries.run("builder", budget)
    built = await with_summaries.builder.build(
        users(data)[0], with_summaries.conversations[users(data)[0]], query="what happened?",
        max_tokens=budget)
    in_context = any(item.section == "summary" for item in built.items)
    return {"budget": budget, "builder": alone["evidence_recall"],
            "builder_with_summaries": summed["evidence_recall"],
            "over_budget": summed["over_budget"], "questions": summed["questions"],
            "summary_in_context": in_context,
            "build_p50_ms": {"builder": alone["build_p50_ms"],
                             "with_summaries": summed["build_p50_ms"]}}


async def llm_path(config: Any, data: list[dict[str, Any]], turns: int) -> dict[str, Any]:
    memory = await build_memory(config)
    try:
        await ingest(memory, data)
        llm = RecordingLLM()
        summarizer = LLMSummarizer(llm)
        step = SummarizeStep(summarizer, SESSIONS)
        for user in users(data):
            await step.run(memory, user)
        calls = len(llm.inputs)
        for user in users(data):
            await step.run(memory, user)
        tokens = summarizer.tracker.get_total_tokens()
        per = 1000 / turns
        return {"calls": calls, "calls_per_1000_turns": round(calls * per, 1),
                "input_tokens_per_1000_turns": round(tokens["input"] * per),
                "output_tokens_per_1000_turns": round(tokens["output"] * per),
                "rerun_calls": len(llm.inputs) - calls}
    finally:
        await memory.close()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="LoCoMo JSON file")
    parser.add_argument("--config", type=Path, default=ROOT / "tiers" / "laptop.yaml")
    parser.add_argument("--budget", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=None, help="only the first N samples")
    args = parser.parse_args(argv)
    data = json.loads(args.path.read_text())[: args.samples]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "memory.db")
        os.environ["BRUNO_MEMORY_DATA"] = str(Path(tmp) / "data")
        memory = await build_memory(load_config(args.config))
        try:
            ids, turns, _ = await ingest(memory, data)
            step = SummarizeStep(ExtractiveSummarizer(), SESSIONS)
            start = time.perf_counter()
            reports = [await step.run(memory, user) for user in users(data)]
            seconds = time.perf_counter() - start
            out["throughput"] = {"turns": turns, "seconds": round(seconds, 2),
                                 "turns_per_s": round(turns / seconds, 1),
                                 "summaries": sum(r.added for r in reports)}
            out["compression"] = await compression(memory, data)
            out["recall"] = await recall(memory, data, ids, args.budget)
        finally:
            await memory.close()
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "llm.db")
        os.environ["BRUNO_MEMORY_DATA"] = str(Path(tmp) / "llm-data")
        out["llm"] = await llm_path(load_config(args.config), data, turns)
    ratio = out["compression"]["ratio"]
    out["checks"] = {
        "recall_not_lower": out["recall"]["builder_with_summaries"] >= out["recall"]["builder"],
        "history_tokens_fall_5x": out["compression"]["min_ratio"] >= 5,
        "compression_ratio": ratio,
    }
    for row in out["compression"]["conversations"]:
        row.pop("user")
    out["recall"]["median_turns"] = statistics.median(
        r["turns"] for r in out["compression"]["conversations"])
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
