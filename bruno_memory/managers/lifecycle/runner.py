"""The maintenance runner: runs steps (summarize, archive, and the others) per user.

Steps are named in a registry (``STEPS``: name -> factory taking the ``lifecycle:``
config and the options the application passes, e.g. an LLM); a new step is one line.
Each step is incremental, so a run cut short resumes on the next one. One run at a time
per namespace: pass a lease (``bruno_memory.drivers.lease``), held for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

from bruno_memory.config.lifecycle import LifecycleConfig
from bruno_memory.core.errors import InvalidInput
from bruno_memory.core.logs import get_logger
from bruno_memory.core.queries import every
from bruno_memory.managers.lifecycle.archival import ArchiveStep
from bruno_memory.managers.lifecycle.lease import Lease, held
from bruno_memory.managers.lifecycle.step import Step, StepReport

__all__ = ["STEPS", "Periodic", "Runner", "make_steps"]

log = get_logger(__name__)
Progress = Callable[[str, str], None]  # (step, user) after each step of each user


def _summarize(config: LifecycleConfig, options: dict[str, Any]) -> Step:
    from bruno_memory.managers.lifecycle.extractive import ExtractiveSummarizer
    from bruno_memory.managers.lifecycle.llm import LLMSummarizer
    from bruno_memory.managers.lifecycle.summarize import SummarizeStep

    s = config.summaries
    if s.summarizer == "llm":
        llm = options.get("llm")
        if llm is None:
            raise InvalidInput("lifecycle.summaries.summarizer is llm: pass llm= (an "
                               "LLMInterface) to the runner, or use summarizer: extractive")
        return SummarizeStep(LLMSummarizer(llm, tracker=options.get("tracker")), s)
    embedder = options.get("embedder")
    return SummarizeStep(ExtractiveSummarizer(embedder, ratio=s.ratio, max_tokens=s.max_tokens), s)


def _archive(config: LifecycleConfig, options: dict[str, Any]) -> Step:
    return ArchiveStep(config.archive)


def _consolidate(config: LifecycleConfig, options: dict[str, Any]) -> Step:
    """Long-term memories extracted through the application's LLM (``llm=``; ``pricing``,
    ``batch``, ``template``, ``judge``, ``embed`` go to ``Consolidate``)."""
    from bruno_memory.managers.lifecycle.calls import LLMCalls
    from bruno_memory.managers.lifecycle.consolidate import Consolidate

    llm = options.get("llm")
    if llm is None:
        raise InvalidInput("the consolidate step extracts memories through an LLM: pass llm= "
                           "(an LLMInterface) to the runner, or leave consolidate out of steps")
    calls = LLMCalls(llm, pricing=options.get("pricing") or {}, tracker=options.get("tracker"))
    wanted = ("batch", "template", "judge", "embed")
    return Consolidate(calls, **{k: options[k] for k in wanted if k in options})


def _prune(config: LifecycleConfig, options: dict[str, Any]) -> Step:
    from bruno_memory.managers.lifecycle.prune import Prune

    return Prune(config.prune, config.importance.weights())


STEPS: dict[str, Callable[[LifecycleConfig, dict[str, Any]], Step]] = {
    "summarize": _summarize,
    "archive": _archive,
    "consolidate": _consolidate,
    "prune": _prune,
}
"""Step name -> factory(config, options)."""


def make_steps(config: LifecycleConfig, names: Sequence[str] | None = None,
               **options: Any) -> list[Step]:
    """The steps ``names`` (default: the config's ``steps``), built from the config; the
    archive step only when the config has an ``archive:`` section."""
    chosen = list(names) if names is not None else list(config.steps)
    unknown = [n for n in chosen if n not in STEPS]
    if unknown:
        raise InvalidInput(f"unknown maintenance step(s) {unknown}: known are {sorted(STEPS)}")
    if config.archive is None:
        chosen = [n for n in chosen if n != "archive"]
    return [STEPS[n](config, options) for n in chosen]


class Runner:
    """Runs maintenance steps over users, under a lease.

    Args:
        memory: the ``MemoryStack``.
        steps: the steps, run in order for each user.
        lease: held for the whole run (``drivers.lease``); ``None``: no cross-process guard.
        progress: called after each step of each user.
    """

    def __init__(self, memory: Any, steps: Sequence[Step], *, lease: Lease | None = None,
                 progress: Progress | None = None) -> None:
        self.memory = memory
        self.steps = list(steps)
        self.lease = lease
        self.progress = progress

    def __repr__(self) -> str:
        return f"Runner(steps={[s.name for s in self.steps]}, lease={self.lease!r})"

    async def users(self) -> list[str]:
        """Every user with a session (each conversation has one)."""
        found: dict[str, None] = {}
        async for session in every(partial(self.memory.scan, "session", limit=500)):
            found.setdefault(session.user_id, None)
        return list(found)

    async def run(self, users: Sequence[str] | None = None, *,
                  dry_run: bool = False) -> list[StepReport]:
        """Run every step for every user (default: all users); the reports, in order."""
        async with self._held():
            targets = list(users) if users is not None else await self.users()
            reports: list[StepReport] = []
            for user in targets:
                for step in self.steps:
                    report = await step.run(self.memory, user, dry_run=dry_run)
                    reports.append(report)
                    log.info("maintenance step done", **report.summary())
                    if self.progress is not None:
                        self.progress(step.name, user)
            return reports

    async def every(self, interval: float, stop: asyncio.Event) -> None:
        """Run every ``interval`` seconds until ``stop`` is set (an in-process task); a
        run that fails or finds the lease taken is logged and retried next time."""
        while not stop.is_set():
            try:
                await self.run()
            except Exception as exc:
                log.error("maintenance run failed; retried next interval", error=repr(exc),
                          interval=interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    @contextlib.asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        if self.lease is None:
            yield
            return
        async with held(self.lease):
            yield


class Periodic:
    """The runner as an in-process background task, every ``interval`` seconds.

    ::

        periodic = Periodic.from_config(memory, cfg.lifecycle)   # every lifecycle.interval
        periodic.start()
        ...
        await periodic.stop()   # before memory.close()
    """

    def __init__(self, runner: Runner, interval: float) -> None:
        if interval <= 0:
            raise InvalidInput(f"interval must be positive seconds, got {interval!r}")
        self.runner = runner
        self.interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, memory: Any, config: LifecycleConfig, *, lease: Lease | None = None,
                    **options: Any) -> Periodic:
        """The config's steps every ``interval`` (``options``: as for ``make_steps``)."""
        if config.interval is None:
            raise InvalidInput("lifecycle.interval is not set: give the periodic runs an "
                               "interval (e.g. interval: 1h)")
        return cls(Runner(memory, make_steps(config, **options), lease=lease), config.interval)

    def start(self) -> None:
        """Start the task (the first run starts at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self.runner.every(self.interval, self._stop))

    async def stop(self) -> None:
        """Stop after the run in progress, if any."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
