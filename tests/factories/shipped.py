"""Every YAML stack shipped in ``tiers/``, run against the contract suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.factories import StackFactory

ROOT = Path(__file__).resolve().parents[2]
SERVER_KINDS = {"redis", "postgres"}


def shipped_files() -> list[Path]:
    return sorted((ROOT / "tiers").glob("*.yaml"))


def servers_of(path: Path) -> set[str]:
    """The servers a shipped stack needs (tests supply their URLs through the env)."""
    tiers = yaml.safe_load(path.read_text()).get("tiers", [])
    kinds = {t.get("kind") for t in tiers} & SERVER_KINDS
    if any(t.get("kind") == "redis" and t.get("cluster") for t in tiers):
        kinds.add("redis-cluster")
    return kinds


def _env_for(request: pytest.FixtureRequest, ns: str, tmp: Path, kinds: set[str]) -> dict[str, str]:
    env = {
        "BRUNO_MEMORY_DB": str(tmp / "memory.db"),
        "BRUNO_MEMORY_DATA": str(tmp / "data"),
        "BRUNO_MEMORY_NAMESPACE": ns,
    }
    if "redis" in kinds:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    if "redis-cluster" in kinds:
        from tests.redis_servers import cluster_url

        env["REDIS_CLUSTER_URL"] = cluster_url(request)
    if "postgres" in kinds:
        env["DATABASE_URL"] = request.getfixturevalue("postgres_dsn")
    return env


def _loader(path: Path, kinds: set[str]) -> Callable[[pytest.FixtureRequest, str, Path], Any]:
    def config(request: pytest.FixtureRequest, ns: str, tmp: Path) -> Any:
        env = _env_for(request, ns, tmp, kinds)
        with _patched_env(env):
            from bruno_memory.config.loader import load_config

            return load_config(path)

    return config


class _patched_env:
    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.saved = env, {k: os.environ.get(k) for k in env}

    def __enter__(self) -> None:
        os.environ.update(self.env)

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def shipped_stacks(*, needs_server: bool) -> Iterator[StackFactory]:
    """Factories for the shipped files that do (or do not) need a server."""
    for path in shipped_files():
        kinds = servers_of(path)
        if bool(kinds) == needs_server:
            marks = [getattr(pytest.mark, k) for k in kinds if k in SERVER_KINDS]
            cleanup = None
            if kinds:
                from tests.factories.redis import clear_stack as cleanup
            yield StackFactory(f"tiers/{path.name}", _loader(path, kinds), marks, cleanup)


STACKS = list(shipped_stacks(needs_server=True))
