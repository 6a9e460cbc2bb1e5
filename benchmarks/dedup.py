"""Dedup of memories on a generated set of paraphrases, near-duplicates, value updates and
distinct facts (issue 12): near-duplicates must be merged, value updates superseded
(never merged), distinct facts added. Prints precision and recall as JSON.

    python benchmarks/dedup.py [--embed hashing|local] [--groups 12]

Each case is one user holding a base fact and three unrelated facts; the variant is added
through ``add_memory`` and its verdict (and the memory it names) compared with the label.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bruno_core.models.memory import MemoryEntry, MemoryType

from bruno_memory import build_memory
from bruno_memory.config.models import EmbeddingConfig
from bruno_memory.managers.lifecycle.supersede import add_memory
from bruno_memory.providers.embedding import create_embedding

SLOTS = [
    ("User lives in {v}", ["Porto", "Lisbon", "Berlin", "Madrid", "Oslo"]),
    ("User works at {v} as an engineer", ["Acme", "Globex", "Initech", "Umbrella"]),
    ("User's favourite colour is {v}", ["blue", "green", "red", "yellow"]),
    ("User {v} Chinese food", ["loves", "hates", "dislikes"]),
    ("User is {v} years old", ["31", "32", "45", "58"]),
    ("User drives a {v} car", ["red", "blue", "silver"]),
    ("User's dog is called {v}", ["Rex", "Bella", "Max", "Luna"]),
    ("User speaks {v} at home", ["Welsh", "Spanish", "German"]),
    ("User prefers {v} in the morning", ["coffee", "tea", "juice"]),
    ("User's partner is named {v}", ["Sam", "Alex", "Jo", "Kim"]),
    ("User supports {v} football club", ["Porto", "Benfica", "Arsenal"]),
    ("User's phone is an {v}", ["iPhone", "Android", "old Nokia"]),
]
DISTINCT = [
    "User plays tennis on Sundays", "User has two brothers", "User is learning Japanese",
    "User lives with two cats", "User works night shifts", "User's sister is a nurse",
    "User collects vinyl records", "User is afraid of flying", "User grew up in a village",
    "User drinks no alcohol", "User runs a small bakery", "User volunteers at a shelter",
]
FILLERS = ["really", "actually", "definitely"]


def paraphrases(base: str, rng: random.Random) -> list[str]:
    """Restatements of ``base`` that must be merged into it."""
    words = base.split()
    out = [base.lower() + "!", "The " + base[0].lower() + base[1:] + ".",
           " ".join([words[0], rng.choice(FILLERS), *words[1:]])]
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    if len(words[longest]) >= 6:  # a typo: one letter dropped
        w = words[longest]
        cut = rng.randrange(1, len(w) - 1)
        out.append(" ".join([*words[:longest], w[:cut] + w[cut + 1 :], *words[longest + 1 :]]))
    return out


def cases(groups: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for g in range(groups):
        template, values = SLOTS[g % len(SLOTS)]
        v, other = rng.sample(values, 2)
        base = template.format(v=v)
        background = rng.sample([d for d in DISTINCT], 3)
        for text in paraphrases(base, rng):
            out.append({"base": base, "background": background, "text": text,
                        "label": "duplicate"})
        out.append({"base": base, "background": background, "text": template.format(v=other),
                    "label": "update"})
        fresh = rng.choice([d for d in DISTINCT if d not in background])
        out.append({"base": base, "background": background, "text": fresh, "label": "new"})
    return out


def pr(pairs: list[tuple[str, str, bool]], cls: str) -> dict[str, float]:
    """Precision and recall of ``cls``; a hit must also name the base memory."""
    predicted = [p for p in pairs if p[1] == cls]
    actual = [p for p in pairs if p[0] == cls]
    tp = sum(1 for label, got, right in pairs if label == got == cls and right)
    return {"precision": round(tp / len(predicted), 3) if predicted else 1.0,
            "recall": round(tp / len(actual), 3) if actual else 1.0,
            "predicted": len(predicted), "actual": len(actual)}


async def run(groups: int, embed_provider: str | None) -> dict[str, Any]:
    embedder = create_embedding(EmbeddingConfig(provider=embed_provider)) \
        if embed_provider else None
    embed = embedder.embed_texts if embedder is not None else None
    data = cases(groups)
    pairs: list[tuple[str, str, bool]] = []
    wrong: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        memory = await build_memory({"tiers": [{"kind": "sqlite",
                                                "path": str(Path(tmp) / "d.db")}]})
        started = time.perf_counter()
        async with memory:
            for i, case in enumerate(data):
                user = f"u{i}"
                base = None
                for text in [case["base"], *case["background"]]:
                    e = MemoryEntry(content=text, memory_type=MemoryType.FACT, user_id=user)
                    got = await add_memory(memory, e, embed=embed)
                    base = base or got.kept
                new = MemoryEntry(content=case["text"], memory_type=MemoryType.FACT, user_id=user)
                out = await add_memory(memory, new, embed=embed)
                named = out.superseded if out.verdict == "update" else out.kept
                right = out.verdict == "new" or (named is not None and base is not None
                                                  and named.id == base.id)
                pairs.append((case["label"], out.verdict, right))
                if case["label"] != out.verdict or not right:
                    wrong.append({"base": case["base"], "text": case["text"],
                                  "label": case["label"], "got": out.verdict})
        seconds = time.perf_counter() - started
    return {
        "embedding": embed_provider,
        "cases": len(pairs),
        "merge_near_duplicates": pr(pairs, "duplicate"),
        "supersede_value_updates": pr(pairs, "update"),
        "add_distinct": pr(pairs, "new"),
        "value_updates_merged": sum(1 for label, got, _ in pairs
                                    if label == "update" and got == "duplicate"),
        "accuracy": round(sum(1 for label, got, right in pairs if label == got and right)
                          / len(pairs), 3),
        "adds_per_s": round(len(pairs) * 5 / seconds, 1),
        "errors": wrong[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed", choices=["hashing", "local"], default=None)
    parser.add_argument("--groups", type=int, default=48)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.groups, args.embed)), indent=2))


if __name__ == "__main__":
    main()
