"""bruno-memory: a tiered cache-and-store memory layer for Bruno assistants."""

from bruno_memory._version import __version__
from bruno_memory.build import build_memory
from bruno_memory.config import StackConfig, load_config
from bruno_memory.core.errors import (
    Backpressure,
    BrunoMemoryConfigError,
    BrunoMemoryError,
    CapabilityMissing,
    CircuitOpen,
    CorruptRecord,
    InvalidInput,
    MissingDependency,
    NotFound,
    TierError,
    TierUnavailable,
    UnknownKind,
)
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.sync import SyncMemory

__all__ = [
    "Backpressure",
    "BrunoMemoryConfigError",
    "BrunoMemoryError",
    "CapabilityMissing",
    "CircuitOpen",
    "CorruptRecord",
    "InvalidInput",
    "MemoryStack",
    "MissingDependency",
    "NotFound",
    "StackConfig",
    "SyncMemory",
    "TierError",
    "TierUnavailable",
    "UnknownKind",
    "__version__",
    "build_memory",
    "load_config",
]
