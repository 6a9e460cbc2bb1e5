"""Evidence recall of ``search_messages`` on LoCoMo (Maharana et al., ACL 2024).

    python benchmarks/locomo.py PATH [--config tiers/semantic.yaml] [--methods text,vector,hybrid]
        [--encrypt user|stack]

PATH is a LoCoMo JSON file (the dev split or the full release). Every turn is stored through
``store_messages`` as a plain message of its sample's conversation (one user per sample), as
an application would store it: its text "[<session date>] <speaker>: <text>" (plus the
caption of a shared image), its timestamp the session date (one second per turn), no
``parent_id``; every question with evidence is asked through ``search_messages`` scoped to
that user. Prints one
JSON line per method: evidence recall@1/5/10/20 over categories 1-4 (adversarial category 5
is reported per category only), per category, ingest messages/s and query p50/p99 in ms.
``--encrypt user|stack`` adds an ``encryption:`` section (a fresh key, a key store in the
temporary folder, ``index: user|stack``): full-text search then runs over the blind index.
``text`` and ``vector`` are the two halves of ``hybrid`` run alone, through the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bruno_core.models.message import Message, MessageRole  # noqa: E402

from bruno_memory import build_memory  # noqa: E402
from bruno_memory.config.encryption import EncryptionConfig  # noqa: E402
from bruno_memory.config.loader import load_config  # noqa: E402
from bruno_memory.config.models import StackConfig  # noqa: E402
from bruno_memory.stack import fusion as search  # noqa: E402

KS = (1, 5, 10, 20)
ROOT = Path(__file__).resolve().parents[1]


def parse_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> an aware datetime (UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def short_date(when: datetime) -> str:
    return f"{when.day} {when:%B %Y}"


def turns(sample: dict[str, Any]) -> list[tuple[str, Message]]:
    """(dia_id, message) for every turn of a sample, in order."""
    conv = sample["conversation"]
    out: list[tuple[str, Message]] = []
    n = 1
    while f"session_{n}" in conv:
        when = parse_date(conv[f"session_{n}_date_time"])
        for i, turn in enumerate(conv[f"session_{n}"]):
            text = f"[{short_date(when)}] {turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares {turn['blip_caption']}]"
            role = (
                MessageRole.USER if turn["speaker"] == conv["speaker_a"] else MessageRole.ASSISTANT
            )
            msg = Message(
                role=role,
                content=text,
                timestamp=when + timedelta(seconds=i),
                metadata={"dia_id": turn["dia_id"]},
            )
            out.append((turn["dia_id"], msg))
        n += 1
    return out


def evidence(qa: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for item in qa.get("evidence") or []:
        ids.update(part.strip() for part in str(item).replace(",", ";").split(";") if part.strip())
    return ids


async def ingest(memory: Any, data: list[dict[str, Any]]) -> tuple[dict[str, str], int, float]:
    """Store every turn; returns message id -> dia id, the count and the seconds taken."""
    ids: dict[str, str] = {}
    sessions = []
    for sample in data:
        session = await memory.create_session(f"locomo-{sample['sample_id']}")
        sessions.append((session.conversation_id, turns(sample)))
    count, start = 0, time.perf_counter()
    for conversation_id, pairs in sessions:
        for i in range(0, len(pairs), 32):
            chunk = pairs[i : i + 32]
            await memory.store_messages([m for _, m in chunk], conversation_id)
            ids.update((str(m.id), d) for d, m in chunk)
            count += len(chunk)
    await memory.flush()
    return ids, count, time.perf_counter() - start


async def ask(
    memory: Any, method: str, question: str, user: str, fusion: search.Fusion
) -> list[Message]:
    if method == "hybrid" and fusion == search.DEFAULT:
        return list(await memory.search_messages(question, user_id=user, limit=max(KS)))
    mode = method if method in ("text", "vector") else "hybrid"
    found = await memory.search(question, user_id=user, limit=max(KS), mode=mode, fusion=fusion)
    return [h.item for h in found]


async def evaluate(
    memory: Any, data: list[dict[str, Any]], ids: dict[str, str], method: str, fusion: search.Fusion
) -> dict[str, Any]:
    per_cat: dict[int, list[list[float]]] = {}
    latencies: list[float] = []
    for sample in data:
        user = f"locomo-{sample['sample_id']}"
        for qa in sample["qa"]:
            gold = evidence(qa)
            if not gold:
                continue
            start = time.perf_counter()
            found = await ask(memory, method, qa["question"], user, fusion)
            latencies.append((time.perf_counter() - start) * 1000)
            got = [ids.get(str(m.id)) for m in found]
            per_cat.setdefault(int(qa["category"]), []).append(
                [len(gold & set(got[:k])) / len(gold) for k in KS]
            )
    return summary(method, per_cat, latencies)


def summary(
    method: str, per_cat: dict[int, list[list[float]]], latencies: list[float]
) -> dict[str, Any]:
    main = [row for cat, rows in per_cat.items() if cat != 5 for row in rows]
    out: dict[str, Any] = {"method": method, "questions": len(main)}
    out.update({f"recall@{k}": _mean(main, i) for i, k in enumerate(KS)})
    out["per_category"] = {
        str(cat): {
            "questions": len(rows),
            **{f"recall@{k}": _mean(rows, i) for i, k in enumerate(KS)},
        }
        for cat, rows in sorted(per_cat.items())
    }
    ordered = sorted(latencies)
    out["query_p50_ms"] = round(statistics.median(ordered), 2) if ordered else None
    out["query_p99_ms"] = (
        round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2) if ordered else None
    )
    return out


def _mean(rows: list[list[float]], i: int) -> float:
    return round(sum(r[i] for r in rows) / len(rows), 4) if rows else 0.0


def _fusions(text: str | None) -> list[tuple[str, search.Fusion]]:
    """``--fusion "k=2,vector_weight=0.5;rerank_weight=0"``: one Fusion per ';'-part."""
    if not text:
        return [("", search.DEFAULT)]
    out = []
    for part in text.split(";"):
        fields = {k.strip(): float(v) for k, v in (p.split("=") for p in part.split(","))}
        ints = {"neighbours", "before", "after", "rerank", "depth", "min_depth"}
        fields = {k: int(v) if k in ints else v for k, v in fields.items()}
        out.append((f"[{part}]", dataclasses.replace(search.DEFAULT, **fields)))
    return out


def encrypted(cfg: StackConfig, folder: Path, index: str) -> StackConfig:
    """``cfg`` with encryption at rest: a fresh master key, the key store in ``folder``."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    section = EncryptionConfig.model_validate(
        {"key": key, "keystore": str(folder / "keys.db"), "index": index})
    return cfg.model_copy(update={"encryption": section})


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="LoCoMo JSON file")
    parser.add_argument("--config", type=Path, default=ROOT / "tiers" / "semantic.yaml")
    parser.add_argument("--methods", default="text,vector,hybrid")
    parser.add_argument("--samples", type=int, default=None, help="only the first N samples")
    parser.add_argument(
        "--fusion",
        default=None,
        help='tuning: search.Fusion fields, e.g. "k=2,vector_weight=0.5;rerank_weight=0"',
    )
    parser.add_argument("--encrypt", choices=("user", "stack"), default=None,
                        help="with encryption at rest, the blind index keyed per user or stack")
    args = parser.parse_args(argv)
    data = json.loads(args.path.read_text())[: args.samples]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("BRUNO_MEMORY_DB", str(Path(tmp) / "memory.db"))
        os.environ.setdefault("BRUNO_MEMORY_DATA", str(Path(tmp) / "data"))
        cfg = load_config(args.config)
        if args.encrypt:
            cfg = encrypted(cfg, Path(tmp), args.encrypt)
        memory = await build_memory(cfg)
        try:
            ids, count, seconds = await ingest(memory, data)
            for method in args.methods.split(","):
                for label, fusion in (
                    _fusions(args.fusion) if method == "hybrid" else [("", search.DEFAULT)]
                ):
                    for tier in memory.tiers:  # time each method's query embedding, not a cache hit
                        getattr(getattr(tier, "embedding", None), "clear", lambda: None)()
                    row = await evaluate(memory, data, ids, method, fusion)
                    row["method"] += label
                    row["ingest_messages_per_s"] = round(count / seconds, 1)
                    print(json.dumps(row), flush=True)
        finally:
            await memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
