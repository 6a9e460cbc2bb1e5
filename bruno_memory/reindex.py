"""``bruno-memory reindex CONFIG``: re-embed every message and memory of the authoritative
tier into the semantic tiers with the configured embedding model, then drop the vectors
of the previous model. Run it after changing ``embedding.model`` (the semantic tiers
refuse to open until then)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bruno_memory.build import _embedding, check_config
from bruno_memory.config.loader import Source, load_config
from bruno_memory.config.models import StackConfig
from bruno_memory.config.registry import tier_class
from bruno_memory.core import codec
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import Put, Value
from bruno_memory.tiers.base import TierContext

# keyset pages over the authoritative tier (``?`` placeholders: both SQL tiers accept them)
SCAN = {
    "message": "SELECT id, conversation_id, user_id, payload FROM messages WHERE id > ? "
    "ORDER BY id LIMIT ?",
    "memory": "SELECT id, payload FROM memories WHERE id > ? ORDER BY id LIMIT ?",
}
COUNT = "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM memories)"


async def reindex(
    source: Source | StackConfig = None, *, batch: int = 256, progress: bool = True
) -> dict[str, Any]:
    """Re-embed everything into every semantic tier of the stack; returns counts.

    Args:
        source: the stack's config (YAML path, text, dict or ``StackConfig``).
        batch: records read, embedded and upserted per step.
        progress: show a tqdm progress bar on stderr.
    """
    cfg = source if isinstance(source, StackConfig) else load_config(source)
    check_config(cfg)
    context = TierContext(namespace=cfg.namespace, base_dir=Path.cwd(), embedding=_embedding(cfg))
    durable, vectors = _tiers(cfg, context)
    opened: list[Any] = []
    try:
        for tier in (durable, *vectors):
            tier.reindexing = tier in vectors
            await tier.open()
            opened.append(tier)
        total = sum(int(c) for c in (await durable._fetch(COUNT, (), "reindex"))[0])
        done = 0
        with _bar(total, progress) as bar:
            async for records in _scan(durable, batch):
                ops = [Put(codec.key_of(r), r) for r in records]
                for tier in vectors:
                    await tier.write(ops)
                done += len(records)
                bar.update(len(records))
        dropped = [r.name for tier in vectors for r in await tier.drop_stale()]
        return {"records": done, "tiers": [t.name for t in vectors], "dropped": dropped}
    finally:
        for tier in reversed(opened):
            await tier.aclose()


def _tiers(cfg: StackConfig, context: TierContext) -> tuple[Any, list[Any]]:
    """The authoritative tier and the semantic tiers, unwrapped (no policies)."""
    made = [(tier_class(t.kind), t) for t in cfg.tiers]
    durable = next(c(t, context) for c, t in made if Capability.DURABLE in c.capabilities)
    vectors = [c(t, context) for c, t in made if Capability.VECTOR_SEARCH in c.capabilities]
    return durable, vectors


async def _scan(durable: Any, batch: int) -> AsyncIterator[list[Value]]:
    for ns, sql in SCAN.items():
        after = ""
        while rows := await durable._fetch(sql, (after, batch), "reindex"):
            after = rows[-1][0]
            if ns == "message":
                yield [codec.message_from_row(p, c, u) for _, c, u, p in rows]
            else:
                yield [codec.from_payload("memory", p) for _, p in rows]


def _bar(total: int, enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the semantic extras
        import contextlib

        return contextlib.nullcontext(type("NoBar", (), {"update": lambda self, n: None})())
    return tqdm(total=total, unit="rec", desc="reindex", disable=not enabled, file=sys.stderr)
