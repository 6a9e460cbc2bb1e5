"""Tier and stack factories, collected from the modules of this package.

Each module defines ``TIERS`` and/or ``STACKS`` lists; a new tier kind adds a module.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bruno_memory.build import build_memory, create_tier
from bruno_memory.config.loader import load_config
from bruno_memory.policies.base import PolicyTier
from bruno_memory.tiers.base import TierContext


def layers(tier: Any) -> list[Any]:
    """A tier and every tier its policies wrap, outermost first."""
    out = [tier]
    while isinstance(out[-1], PolicyTier):
        out.append(out[-1].inner)
    return out


def attribute(tier: Any, name: str) -> Any:
    """``name`` of the first layer of ``tier`` that has it (a schema, a journal...)."""
    return next((vars(t)[name] for t in layers(tier) if name in vars(t)), None)


@dataclass(frozen=True)
class TierFactory:
    """Makes one opened tier; ``config`` gets (request, namespace, tmp_path) -> tier config dict."""

    id: str
    config: Callable[[pytest.FixtureRequest, str, Path], dict[str, Any]]
    marks: Sequence[Any] = field(default_factory=tuple)
    cleanup: Callable[[Any], Any] | None = None  # async, gets the open tier

    @contextlib.asynccontextmanager
    async def open(self, request: pytest.FixtureRequest, ns: str, tmp: Path) -> AsyncIterator[Any]:
        raw = self.config(request, ns, tmp)
        cfg = load_config({"namespace": ns, "tiers": [raw]}).tiers[0]
        tier = create_tier(cfg, TierContext(namespace=ns, base_dir=tmp))
        await tier.open()
        async with _closing(tier, self.cleanup, tier.aclose):
            yield tier


@dataclass(frozen=True)
class StackFactory:
    """Makes one opened stack from a config dict or a YAML file (env applied by ``env``)."""

    id: str
    config: Callable[[pytest.FixtureRequest, str, Path], Any]
    marks: Sequence[Any] = field(default_factory=tuple)
    cleanup: Callable[[Any], Any] | None = None  # async, gets the open stack

    @contextlib.asynccontextmanager
    async def open(self, request: pytest.FixtureRequest, ns: str, tmp: Path) -> AsyncIterator[Any]:
        memory = await build_memory(self.config(request, ns, tmp))
        async with _closing(memory, self.cleanup, memory.close):
            yield memory


@contextlib.asynccontextmanager
async def _closing(
    thing: Any, cleanup: Callable[[Any], Any] | None, close: Callable[[], Any]
) -> AsyncIterator[None]:
    """Run the test, then its cleanup, then close, whatever fails."""
    try:
        yield
    finally:
        try:
            if cleanup is not None:
                await cleanup(thing)
        finally:
            await close()


def opened(name: str, factories: Sequence[TierFactory | StackFactory], doc: str) -> Any:
    """A fixture named ``name`` yielding each factory's opened tier or stack in turn."""

    @pytest.fixture(name=name, params=[pytest.param(f, id=f.id, marks=f.marks) for f in factories])
    async def fixture(
        request: pytest.FixtureRequest, namespace: str, tmp_path: Path
    ) -> AsyncIterator[Any]:
        async with request.param.open(request, namespace, tmp_path) as thing:
            yield thing

    fixture.__doc__ = doc
    return fixture


def _collect() -> tuple[list[TierFactory], list[StackFactory]]:
    tiers: list[TierFactory] = []
    stacks: list[StackFactory] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        tiers += getattr(module, "TIERS", [])
        stacks += getattr(module, "STACKS", [])
    return tiers, stacks


TIERS, STACKS = _collect()
