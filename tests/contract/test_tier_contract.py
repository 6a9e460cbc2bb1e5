"""The tier contract, run against every tier kind (see tests/factories)."""

from bruno_memory.testing.tier_contract import *  # noqa: F403
