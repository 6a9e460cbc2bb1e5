"""Pruning by policy: archived by default (the memory leaves default retrieval, stays
stored, exportable and restorable), deleted only when asked; pinned memories never go.

::

    report = await Prune(PruneConfig(min_score=0.1, max_per_user=500)).run(memory, "ada",
                                                                          dry_run=True)
    report.details   # [{"id": ..., "action": "archive", "why": "expired at ..."}]
    await restore(memory, memory_id)                 # back into default retrieval

What goes, per user, in this order: memories whose own expiry has passed (``expired``);
memories older than ``min_age_days`` whose score (``core.salience``, no query) is under
``min_score``; then the lowest-scoring beyond ``max_per_user`` current memories.
Superseded memories (history) and the lifecycle's bookkeeping are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from bruno_core.models.memory import MemoryEntry

from bruno_memory.config.lifecycle import PruneConfig
from bruno_memory.core import lifetimes as lt
from bruno_memory.core.errors import InvalidInput, NotFound
from bruno_memory.core.salience import DEFAULT_WEIGHTS, Weights
from bruno_memory.core.summaries import SUMMARY_CATEGORY
from bruno_memory.managers.lifecycle import importance
from bruno_memory.managers.lifecycle.step import StepReport
from bruno_memory.managers.lifecycle.supersede import INTERNAL, all_memories

__all__ = ["Prune", "restore"]


class Prune:
    """A maintenance step pruning one user's memories by ``policy``.

    Args:
        policy: what goes and how (``PruneConfig``: the YAML ``lifecycle.prune``).
        weights: the score's weights (``lifecycle.importance``).
        clock: now, as an aware datetime (tests).
    """

    name = "prune"

    def __init__(
        self,
        policy: PruneConfig | None = None,
        weights: Weights = DEFAULT_WEIGHTS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.policy = policy or PruneConfig()
        self.weights = weights
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    async def run(self, memory: Any, user_id: str, *, dry_run: bool = False) -> StepReport:
        """Archive (or delete) what the policy takes; ``dry_run``: only say what and why."""
        report = StepReport(self.name, user_id, dry_run)
        now = lt.aware(self.clock())
        for entry, why in await self.plan(memory, user_id, now):
            action = "delete" if self.policy.mode == "delete" else "archive"
            report.details.append({"id": str(entry.id), "action": action, "why": why,
                                   "content": entry.content})
            if action == "delete":
                report.deleted += 1
                if not dry_run:
                    await memory.delete_memory(str(entry.id))
            else:
                report.archived += 1
                if not dry_run:
                    marks = {lt.ARCHIVED_AT: lt.iso(now), lt.ARCHIVE_REASON: why}
                    await memory.store_memory(lt.ended(entry, now, marks))
        return report

    async def plan(
        self, memory: Any, user_id: str, now: datetime
    ) -> list[tuple[MemoryEntry, str]]:
        """What the policy takes, with why."""
        p = self.policy
        live = [e for e in await all_memories(memory, user_id) if _prunable(e)]
        out: list[tuple[MemoryEntry, str]] = []
        rest: list[MemoryEntry] = []
        for e in live:
            expiry = lt.own_expiry(e)
            if p.expired and expiry is not None and expiry <= now:
                out.append((e, f"expired at {lt.iso(expiry)}"))
            elif expiry is None or expiry > now:
                rest.append(e)
        scored = await importance.scores(rest, now, self.weights)
        ranked = sorted(zip(scored, rest, strict=True), key=lambda se: se[0].score)
        old_enough = now - timedelta(days=p.min_age_days)
        kept: list[tuple[float, MemoryEntry]] = []
        for s, e in ranked:
            if p.min_score is not None and lt.aware(e.created_at) <= old_enough \
                    and s.score < p.min_score:
                out.append((e, f"score {s.score:.3f} < {p.min_score} after "
                               f"{p.min_age_days:g} days ({s.explain()})"))
            else:
                kept.append((s.score, e))
        if p.max_per_user is not None and len(kept) > p.max_per_user:
            for score, e in kept[: len(kept) - p.max_per_user]:
                out.append((e, f"over the cap of {p.max_per_user} memories "
                               f"(score {score:.3f}, among the lowest)"))
        return out


def _prunable(e: MemoryEntry) -> bool:
    """Not bookkeeping, not a summary (the summaries' own archival keeps them), not pinned,
    superseded or archived already."""
    return not (e.metadata.category in (INTERNAL, SUMMARY_CATEGORY) or lt.is_pinned(e)
                or lt.is_superseded(e) or lt.is_archived(e))


async def restore(memory: Any, memory_id: str) -> MemoryEntry:
    """Bring an archived memory back into default retrieval."""
    found = await memory.get_memory(memory_id)
    if not isinstance(found, MemoryEntry):
        raise NotFound(f"no memory {memory_id!r} to restore")
    if not lt.is_archived(found):
        raise InvalidInput(f"memory {memory_id!r} is not archived: nothing to restore")
    back = lt.restored(found)
    await memory.store_memory(back)
    return back
