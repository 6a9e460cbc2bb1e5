"""The maintenance runner's plug: one additive, resumable step over one user's data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Step", "StepReport"]


@dataclass
class StepReport:
    """What a step did (or, on a dry run, would do) for one user."""

    step: str
    user_id: str
    dry_run: bool
    added: int = 0
    changed: int = 0
    archived: int = 0
    deleted: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    """One entry per record touched: its id, what happens to it and why."""

    def summary(self) -> dict[str, Any]:
        """The counts, for ``--json``."""
        return {
            "step": self.step,
            "user_id": self.user_id,
            "dry_run": self.dry_run,
            "added": self.added,
            "changed": self.changed,
            "archived": self.archived,
            "deleted": self.deleted,
        }


@runtime_checkable
class Step(Protocol):
    """One maintenance step (summarize, consolidate, prune), run per user by the runner.

    A step only adds records or marks existing ones; a rerun with nothing new does
    nothing, and a run cut short resumes where it stopped.
    """

    name: str

    async def run(self, memory: Any, user_id: str, *, dry_run: bool = False) -> StepReport:
        """Apply (or on ``dry_run`` only report) this step for ``user_id``."""
        ...
