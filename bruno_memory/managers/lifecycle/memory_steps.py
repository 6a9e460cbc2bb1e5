"""The memory steps of the maintenance runner, configured from a stack's ``lifecycle:``:
consolidation (only with an LLM) and pruning."""

from __future__ import annotations

from typing import Any

from bruno_core.interfaces.llm import LLMInterface

from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.managers.lifecycle.consolidate import Consolidate
from bruno_memory.managers.lifecycle.llm import LLMCalls
from bruno_memory.managers.lifecycle.prune import Prune
from bruno_memory.managers.lifecycle.step import Step

__all__ = ["memory_steps"]


def memory_steps(
    config: LifecycleConfig | None = None, llm: LLMInterface | None = None, **options: Any
) -> list[Step]:
    """``[Consolidate, Prune]`` (``Consolidate`` only when ``llm`` is given; ``options``
    go to it: ``batch``, ``template``, ``judge``, ``embed``, ``pricing``)."""
    cfg = config or LifecycleConfig()
    steps: list[Step] = []
    if llm is not None:
        calls = LLMCalls(llm, pricing=options.pop("pricing", {}))
        steps.append(Consolidate(calls, **options))
    steps.append(Prune(cfg.prune, cfg.importance.weights()))
    return steps
