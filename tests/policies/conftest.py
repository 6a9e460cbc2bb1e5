"""Fixtures of the policy tests: durable tiers of each kind, opened in a fresh namespace."""

from __future__ import annotations

from tests.factories import TierFactory, opened
from tests.factories.postgres import MARKS as PG_MARKS
from tests.factories.postgres import _drop_tier, postgres

DURABLE = [
    TierFactory("sqlite", lambda r, ns, tmp: {"kind": "sqlite", "path": str(tmp / "d.db")}),
    TierFactory("postgres", lambda r, ns, tmp: postgres(r, ns), PG_MARKS, _drop_tier),
]


durable = opened(
    "durable", DURABLE, "An authoritative tier (sqlite, postgres) in a fresh namespace."
)
