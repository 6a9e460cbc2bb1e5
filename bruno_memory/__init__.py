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
    Closed,
    CorruptRecord,
    InvalidInput,
    MissingDependency,
    NotFound,
    TierError,
    TierUnavailable,
    UnknownKind,
)
from bruno_memory.core.queries import Page, Scored
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.fusion import Fusion
from bruno_memory.sync import SyncMemory

_LAZY = {"ContextBuilder": "bruno_memory.managers.context"}  # imports bruno-llm: on use


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bruno_memory' has no attribute {name!r}")

__all__ = [
    "Backpressure",
    "BrunoMemoryConfigError",
    "BrunoMemoryError",
    "CapabilityMissing",
    "CircuitOpen",
    "Closed",
    "ContextBuilder",
    "CorruptRecord",
    "Fusion",
    "InvalidInput",
    "MemoryStack",
    "MissingDependency",
    "NotFound",
    "Page",
    "Scored",
    "StackConfig",
    "SyncMemory",
    "TierError",
    "TierUnavailable",
    "UnknownKind",
    "__version__",
    "build_memory",
    "load_config",
]
