"""Tier kinds by name: built-in ones, plus third-party kinds from the ``bruno_memory.tiers``
entry-point group. Drivers are imported only when a kind is used."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from bruno_memory.config.models import TierConfig
from bruno_memory.core.errors import MissingDependency, UnknownKind

ENTRY_POINT_GROUP = "bruno_memory.tiers"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Where a kind's tier class lives and which extra installs its driver."""

    target: str  # "module:Class"; the class has a ``config_model``
    extra: str | None = None


BUILTIN: dict[str, KindSpec] = {
    "lru": KindSpec("bruno_memory.tiers.lru:LRUTier"),
    "sqlite": KindSpec("bruno_memory.tiers.sql.sqlite:SQLiteTier"),
    "redis": KindSpec("bruno_memory.tiers.redis.tier:RedisTier", "redis"),
    "postgres": KindSpec("bruno_memory.tiers.sql.postgres:PostgresTier", "postgres"),
    "qdrant": KindSpec("bruno_memory.tiers.vector.qdrant:QdrantTier", "qdrant"),
    "chroma": KindSpec("bruno_memory.tiers.vector.chroma:ChromaTier", "chroma"),
}


@cache
def kinds() -> dict[str, KindSpec]:
    """Every known kind: third-party entry points may add kinds but not replace built-ins."""
    found = {ep.name: KindSpec(ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN}


def tier_class(kind: str, *, path: str = "kind", source: str = "") -> Any:
    """Import the tier class of ``kind``; errors name the known kinds or the extra to install."""
    spec = kinds().get(kind)
    if spec is None:
        known = ", ".join(sorted(kinds()))
        raise UnknownKind(
            f"unknown tier kind {kind!r}; known kinds: {known}", path=path, source=source
        )
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'bruno-memory[{spec.extra}]'" if spec.extra else "check the install"
        raise MissingDependency(
            f"tier kind {kind!r} needs the driver {exc.name or module_name!r}, "
            f"which is not installed: {hint}",
            path=path,
            source=source,
        ) from exc
    return getattr(module, attr)


def require(module: str, kind: str) -> Any:
    """Import a driver module a tier of ``kind`` needs only when it opens (e.g. ``chromadb``);
    a missing one raises ``MissingDependency`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        spec = kinds().get(kind)
        extra = spec.extra if spec is not None and spec.extra else kind
        raise MissingDependency(
            f"tier kind {kind!r} needs the driver {exc.name or module!r}, which is not "
            f"installed: pip install 'bruno-memory[{extra}]'",
            path="kind",
        ) from exc


def tier_config_model(kind: str, *, path: str = "kind", source: str = "") -> type[TierConfig]:
    """The config model a kind validates its YAML with."""
    model: type[TierConfig] = tier_class(kind, path=path, source=source).config_model
    return model
