"""Evidence recall of token-budgeted contexts on LoCoMo (Maharana et al., ACL 2024).

    python benchmarks/context.py PATH [--config tiers/semantic.yaml] [--budgets 512,1024,2048,4096]

PATH is a LoCoMo JSON file. Every turn is stored as ``benchmarks/locomo.py`` stores it (one
user and one conversation per sample). Then, for every question with evidence (categories
1-4) and every budget, three contexts are built for the question in that conversation:

- ``builder``: ``ContextBuilder(memory, system_prompt=...).build(user, conversation,
  query=question, max_tokens=budget)``: a system prompt, the latest turns (at least 6) and
  whatever else the builder chooses, all within the budget;
- ``recent``: the last messages of the conversation that fit;
- ``search``: ``search_messages(question, user_id=user)`` packed in rank order (a hit that
  does not fit is skipped, the next ones are tried);
- ``expand`` (only when asked for with ``--methods``): the builder with
  ``expand=--expand`` (a second, words-only search seeded by the top hits).
- ``ceiling`` (only when asked for): what a perfect re-ranker of the builder's search
  candidates would reach: the system prompt and the latest 6 turns (what the builder always
  spends), then ``search_messages`` at the builder's default limit with the question's
  evidence moved to the front, packed like ``search``. A diagnostic: it reads the answers.

Every context is counted with the same counter (exact cl100k_base: a message costs
``len(encode(content)) + 4``). Evidence recall: the share of a question's evidence turns
present in the context *verbatim*: a message with the stored turn's id and its stored text
unchanged. Prints one JSON line per method and budget: evidence recall, how many contexts
were over budget, and the build time p50/p99 in ms. Before the timed runs, every question
is searched once (so each method is timed with the query's embedding cached alike).
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

from bruno_core.models.message import Message, MessageRole  # noqa: E402
from locomo import evidence, ingest  # noqa: E402

from bruno_memory import build_memory  # noqa: E402
from bruno_memory.config.loader import load_config  # noqa: E402
from bruno_memory.managers.context import ContextBuilder, default_counter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "You are a helpful assistant. Answer using the conversation below."
METHODS = ("builder", "recent", "search")


class Bench:
    def __init__(
        self, memory: Any, data: list[dict[str, Any]], stored: dict[str, str], expand: int = 3
    ):
        self.memory = memory
        self.data = data
        self.stored = stored  # message id -> dia id
        self.text: dict[str, str] = {}
        self.conversations: dict[str, str] = {}
        self.counter = default_counter()
        self.builder = ContextBuilder(memory, system_prompt=SYSTEM)
        self.expanding = ContextBuilder(memory, system_prompt=SYSTEM, expand=expand)

    def questions(self) -> list[tuple[str, str, set[str]]]:
        out = []
        for sample in self.data:
            user = f"locomo-{sample['sample_id']}"
            for qa in sample["qa"]:
                gold = evidence(qa)
                if gold and int(qa["category"]) != 5:
                    out.append((user, qa["question"], gold))
        return out

    async def context(
        self, method: str, user: str, question: str, budget: int, gold: frozenset[str] = frozenset()
    ) -> list[Message]:
        conversation = self.conversations[user]
        if method in ("builder", "expand"):
            builder = self.builder if method == "builder" else self.expanding
            ctx = await builder.build(user, conversation, query=question, max_tokens=budget)
            return ctx.messages
        if method == "recent":
            newest = await self.memory.retrieve_messages(conversation, limit=budget // 5 + 1)
            return list(reversed(self._pack(newest, budget, stop=True)))
        limit = max(20, min(200, budget // 24))  # the builder's default search limit
        hits = await self.memory.search_messages(question, user_id=user, limit=limit)
        if method == "ceiling":
            return await self._ceiling(conversation, hits, budget, gold)
        return self._pack(hits, budget, stop=False)

    async def _ceiling(
        self, conversation: str, hits: list[Message], budget: int, gold: frozenset[str]
    ) -> list[Message]:
        fixed = [Message(role=MessageRole.SYSTEM, content=SYSTEM)]
        latest = list(reversed(await self.memory.retrieve_messages(conversation, limit=6)))
        fixed += latest
        left = budget - self.counter.count_messages_tokens(fixed)
        seen = {m.id for m in latest}
        fresh = [m for m in hits if m.id not in seen]
        ranked = sorted(fresh, key=lambda m: self.stored.get(str(m.id)) not in gold)
        return [fixed[0], *self._pack(ranked, left, stop=False), *latest]

    def _pack(self, messages: list[Message], budget: int, *, stop: bool) -> list[Message]:
        out, left = [], budget
        for m in messages:
            cost = self.counter.count_messages_tokens([m])
            if cost > left:
                if stop:
                    break
                continue
            out.append(m)
            left -= cost
        return out

    def recall(self, messages: list[Message], gold: set[str]) -> float:
        found = {
            self.stored[str(m.id)]
            for m in messages
            if str(m.id) in self.stored and self.text.get(str(m.id)) == m.content
        }
        return len(gold & found) / len(gold)

    async def run(self, method: str, budget: int) -> dict[str, Any]:
        recalls, times, over = [], [], 0
        for user, question, gold in self.questions():
            start = time.perf_counter()
            messages = await self.context(method, user, question, budget, frozenset(gold))
            times.append((time.perf_counter() - start) * 1000)
            if self.counter.count_messages_tokens(messages) > budget:
                over += 1
            recalls.append(self.recall(messages, gold))
        times.sort()
        return {
            "method": method,
            "budget": budget,
            "evidence_recall": round(statistics.fmean(recalls), 4),
            "over_budget": over,
            "build_p50_ms": round(statistics.median(times), 2),
            "build_p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
            "questions": len(recalls),
        }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="LoCoMo JSON file")
    parser.add_argument("--config", type=Path, default=ROOT / "tiers" / "semantic.yaml")
    parser.add_argument("--budgets", default="512,1024,2048,4096")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--samples", type=int, default=None, help="only the first N samples")
    parser.add_argument("--expand", type=int, default=3, help="seeds of the expand method")
    args = parser.parse_args(argv)
    data = json.loads(args.path.read_text())[: args.samples]
    budgets = [int(b) for b in args.budgets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BRUNO_MEMORY_DB", str(Path(tmp) / "memory.db"))
        os.environ.setdefault("BRUNO_MEMORY_DATA", str(Path(tmp) / "data"))
        memory = await build_memory(load_config(args.config))
        try:
            stored, _, _ = await ingest(memory, data)
            bench = Bench(memory, data, stored, args.expand)
            for sample in data:  # each user has one session: its conversation
                user = f"locomo-{sample['sample_id']}"
                ctx = await memory.get_context(user)
                bench.conversations[user] = ctx.conversation_id
                for m in await memory.retrieve_messages(ctx.conversation_id):
                    bench.text[str(m.id)] = m.content
            for user, question, _ in bench.questions():  # warm: query embeddings cached
                await memory.search_messages(question, user_id=user, limit=20)
            for budget in budgets:
                for method in args.methods.split(","):
                    print(json.dumps(await bench.run(method, budget)), flush=True)
        finally:
            await memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
