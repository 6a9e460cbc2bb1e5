"""``bruno-memory reindex CONFIG``: re-embed every message and memory of the authoritative
tier into the semantic tiers with the configured embedding model, then drop the vectors
of the previous model. Run it after changing ``embedding.model`` (the semantic tiers
refuse to open until then)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from bruno_memory.build import _embedding, check_config, open_keyring
from bruno_memory.config.loader import Source, load_config
from bruno_memory.config.models import StackConfig
from bruno_memory.config.registry import tier_class
from bruno_memory.core import codec
from bruno_memory.core.capabilities import Capability
from bruno_memory.core.ops import Put, Value
from bruno_memory.core.queries import Count, Scan, ScanKind
from bruno_memory.tiers.base import Tier, TierContext
from bruno_memory.tiers.vector.base import VectorTier

KINDS: tuple[ScanKind, ...] = ("message", "memory")


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
    keyring = open_keyring(cfg, Path.cwd())  # encrypted: the records read are sealed
    context = TierContext(namespace=cfg.namespace, base_dir=Path.cwd(), embedding=_embedding(cfg),
                          opener=None if keyring is None else keyring.unseal)
    durable, vectors = _tiers(cfg, context)
    if keyring is not None and not keyring.vectors:
        vectors = []  # encryption.vectors: false keeps records out of the semantic tiers
    opened: list[Tier] = []
    if keyring is not None:
        await keyring.acquire()
    try:
        for tier in (durable, *vectors):
            await tier.open()
            opened.append(tier)
        total = sum([await durable.query(Count(kind)) for kind in KINDS])
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
        if keyring is not None:
            await keyring.release()


def _tiers(cfg: StackConfig, context: TierContext) -> tuple[Tier, list[VectorTier[Any]]]:
    """The authoritative tier and the semantic tiers, unwrapped (no policies); the
    semantic ones open the configured model's collection beside the old one."""
    made = [(tier_class(t.kind), t) for t in cfg.tiers]
    durable = next(c(t, context) for c, t in made if Capability.DURABLE in c.capabilities)
    renewing = dataclasses.replace(context, reindex=True)
    vectors = [
        cast(VectorTier[Any], c(t, renewing))
        for c, t in made
        if Capability.VECTOR_SEARCH in c.capabilities
    ]
    return durable, vectors


async def _scan(durable: Tier, batch: int) -> AsyncIterator[list[Value]]:
    """Every message and memory of the authoritative tier, a page at a time."""
    for kind in KINDS:
        after: str | None = None
        while True:
            page = await durable.query(Scan(kind, None, after, batch))
            if page.items:
                yield page.items
            if page.next is None:
                break
            after = page.next


def _bar(total: int, enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the semantic extras
        import contextlib

        return contextlib.nullcontext(type("NoBar", (), {"update": lambda self, n: None})())
    return tqdm(total=total, unit="rec", desc="reindex", disable=not enabled, file=sys.stderr)
