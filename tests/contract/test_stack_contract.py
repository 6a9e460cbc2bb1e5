"""The MemoryInterface contract, run against every stack (see tests/factories)."""

from bruno_memory.testing.stack_contract import *  # noqa: F403
