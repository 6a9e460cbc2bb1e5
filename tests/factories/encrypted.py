"""Encrypted stacks (``encryption:``): the contract holds with every record sealed."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from tests.factories import StackFactory
from tests.factories.postgres import postgres
from tests.factories.redis import clear_stack, redis


def _encryption(tmp: Path) -> dict[str, Any]:
    return {"key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "keystore": str(tmp / "keys.db")}


def _laptop(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    tiers = [{"kind": "lru"}, {"name": "durable", "kind": "sqlite", "path": str(tmp / "m.db")}]
    return {"namespace": ns, "tiers": tiers, "encryption": _encryption(tmp)}


def _single_node(r: pytest.FixtureRequest, ns: str, tmp: Path) -> dict[str, Any]:
    tiers = [{"kind": "lru"}, redis(r, name="hot"), postgres(r, ns, name="durable")]
    return {"namespace": ns, "tiers": tiers, "encryption": _encryption(tmp)}


STACKS = [
    StackFactory("encrypted:lru->sqlite", _laptop),
    StackFactory("encrypted:lru->redis->postgres", _single_node,
                 [pytest.mark.redis, pytest.mark.postgres], clear_stack),
]
