"""Fixtures of the policy tests: durable tiers of each kind, opened in a fresh namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import TierFactory
from tests.factories.postgres import MARKS as PG_MARKS
from tests.factories.postgres import _drop_tier, postgres

DURABLE = [
    TierFactory("sqlite", lambda r, ns, tmp: {"kind": "sqlite", "path": str(tmp / "d.db")}),
    TierFactory("postgres", lambda r, ns, tmp: postgres(r, ns), PG_MARKS, _drop_tier),
]


@pytest.fixture(params=[pytest.param(f, id=f.id, marks=f.marks) for f in DURABLE])
async def durable(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """An authoritative tier (sqlite, postgres), opened in its own namespace."""
    factory: TierFactory = request.param
    async with factory.open(request, namespace, tmp_path) as tier:
        yield tier

