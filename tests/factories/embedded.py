"""The embedded tiers and the stacks that need no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import StackFactory, TierFactory
from tests.factories.shipped import shipped_stacks

TIERS = [
    TierFactory("lru", lambda r, ns, tmp: {"kind": "lru", "maxsize": 1000}),
    TierFactory("sqlite", lambda r, ns, tmp: {"kind": "sqlite", "path": str(tmp / "t.db")}),
]


def _sqlite(tmp: Path) -> dict[str, Any]:
    return {"name": "durable", "kind": "sqlite", "path": str(tmp / "memory.db")}


STACKS = [
    StackFactory("sqlite", lambda r, ns, tmp: {"namespace": ns, "tiers": [_sqlite(tmp)]}),
    StackFactory(
        "lru->sqlite",
        lambda r, ns, tmp: {"namespace": ns, "tiers": [{"kind": "lru"}, _sqlite(tmp)]},
    ),
    *shipped_stacks(needs_server=False),
]
