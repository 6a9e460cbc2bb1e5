"""Session summaries on LoCoMo (Maharana et al., ACL 2024): compression, recall, throughput.

    python benchmarks/lifecycle.py PATH [--config tiers/laptop.yaml] [--budget 2048]
        [--session-tokens 128] [--summary-tokens 153] [--samples N]

PATH is a LoCoMo JSON file. Every turn is stored as ``benchmarks/locomo.py`` stores it; then
the ``summarize`` step writes one offline extractive summary per session (a pause over 30
minutes), and the hierarchy above them. Prints one JSON object:

- ``compression``: the tokens of a conversation's whole history (every message, exact
  cl100k_base) against the tokens of the session summaries that cover it; per conversation
  and overall (the ratio is history / summaries: how many times fewer tokens);
- ``throughput``: turns summarised per second, offline (extractive, lexical);
- ``recall``: evidence recall of the context builder at ``--budget`` tokens for every
  question with evidence (categories 1-4), alone and with the session summaries in its
  summary section (``StoredSummaries(max_tokens=N)`` for each N of ``--summary-tokens``),
  measured as ``benchmarks/context.py`` measures it (evidence turns present verbatim);
  also with a turn counted when every sentence of it is quoted in the summary, and how
  many contexts held a summary;
- ``llm``: the LLM path on the same turns with the recording LLM of ``bruno_memory.testing``
  (which echoes its prompt): calls and tokens per 1,000 turns, and a second run's calls.

Only the public API is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bruno_core.models.message import Message  # noqa: E402
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
from bruno_memory.managers.lifecycle.provider import HEADER  # noqa: E402
from bruno_memory.testing.llm import RecordingLLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
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


def quoted(bench: Bench, messages: list[Message], gold: set[str]) -> float:
    """Evidence recall counting a turn also when every sentence of it is quoted in a
    summary message of the context (extractive summaries quote sentences verbatim)."""
    summaries = "\n".join(m.content for m in messages if str(m.id) not in bench.stored)
    found = {bench.stored[str(m.id)] for m in messages
             if str(m.id) in bench.stored and bench.text.get(str(m.id)) == m.content}
    for mid, dia in bench.stored.items():
        if dia in gold and dia not in found and summaries:
            parts = [p.strip() for p in SENTENCE.split(bench.text.get(mid, "")) if p.strip()]
            if parts and all(p in summaries for p in parts):
                found.add(dia)
    return len(gold & found) / len(gold)


async def run_quoted(bench: Bench, budget: int) -> tuple[float, float, int]:
    """(strict evidence recall, recall with quoted turns, contexts holding a summary)."""
    strict, loose, with_summary = [], [], 0
    for user, question, gold in bench.questions():
        messages = await bench.context("builder", user, question, budget)
        strict.append(bench.recall(messages, gold))
        loose.append(quoted(bench, messages, gold))
        with_summary += any(m.content.startswith(HEADER) for m in messages)
    return statistics.fmean(strict), statistics.fmean(loose), with_summary


async def recall(memory: Any, data: list[dict[str, Any]], ids: dict[str, str],
                 budget: int, sizes: list[int]) -> dict[str, Any]:
    """The builder alone, then with ``StoredSummaries(max_tokens=size)`` for each size."""
    bench = Bench(memory, data, ids)
    for user in users(data):
        ctx = await memory.get_context(user)
        bench.conversations[user] = ctx.conversation_id
        for m in await memory.retrieve_messages(ctx.conversation_id):
            bench.text[str(m.id)] = m.content
    alone, _, _ = await run_quoted(bench, budget)
    out: dict[str, Any] = {"budget": budget, "questions": len(bench.questions()),
                           "builder": round(alone, 4)}
    rows = []
    for size in sizes:
        bench.builder = ContextBuilder(memory, system_prompt=SYSTEM,
                                       summaries=StoredSummaries(memory, max_tokens=size))
        strict, loose, holding = await run_quoted(bench, budget)
        rows.append({"summary_max_tokens": size, "evidence_recall": round(strict, 4),
                     "evidence_recall_with_quoted_turns": round(loose, 4),
                     "contexts_with_a_summary": holding})
    bench.builder = ContextBuilder(memory, system_prompt=SYSTEM)
    out["with_summaries"] = rows
    return out


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
    parser.add_argument("--session-tokens", type=int, default=128,
                        help="the longest session summary (ExtractiveSummarizer max_tokens)")
    parser.add_argument("--summary-tokens", default="153",
                        help="sizes of the summary message to try (StoredSummaries max_tokens; "
                        "153: what get_context gives it at 2,048 tokens)")
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
            step = SummarizeStep(ExtractiveSummarizer(max_tokens=args.session_tokens), SESSIONS)
            start = time.perf_counter()
            reports = [await step.run(memory, user) for user in users(data)]
            seconds = time.perf_counter() - start
            out["throughput"] = {"turns": turns, "seconds": round(seconds, 2),
                                 "turns_per_s": round(turns / seconds, 1),
                                 "summaries": sum(r.added for r in reports)}
            out["compression"] = await compression(memory, data)
            sizes = [int(x) for x in args.summary_tokens.split(",")]
            out["recall"] = await recall(memory, data, ids, args.budget, sizes)
        finally:
            await memory.close()
        os.environ["BRUNO_MEMORY_DB"] = str(Path(tmp) / "llm.db")
        os.environ["BRUNO_MEMORY_DATA"] = str(Path(tmp) / "llm-data")
        out["llm"] = await llm_path(load_config(args.config), data, turns)
    shown = [r for r in out["recall"]["with_summaries"] if r["contexts_with_a_summary"]]
    out["checks"] = {  # only sizes where a summary entered the context count
        "recall_not_lower": bool(shown) and all(
            r["evidence_recall"] >= out["recall"]["builder"] for r in shown),
        "recall_change": [round(r["evidence_recall"] - out["recall"]["builder"], 4)
                          for r in shown],
        "history_tokens_fall_5x": out["compression"]["min_ratio"] >= 5,
        "compression_ratio": out["compression"]["ratio"],
    }
    for row in out["compression"]["conversations"]:
        row.pop("user")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
