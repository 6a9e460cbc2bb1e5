"""The error hierarchy; every error is a bruno-core ``MemoryError`` or ``ConfigError``.

::

    bruno_core MemoryError
    └── BrunoMemoryError
        ├── TierError (.tier, .op)
        │   ├── TierUnavailable   retryable: connect, timeout, pool, dropped connection
        │   │   └── CircuitOpen
        │   └── CorruptRecord     a stored value could not be decoded; never retried
        ├── Backpressure          write-behind queue full
        ├── CapabilityMissing     no tier serves this call
        ├── InvalidInput          a call's argument cannot be stored or searched
        ├── NotFound              e.g. end_session(unknown id)
        ├── AccessDenied          the app's access hook refused an admin call
        └── Closed                the stack was closed; build a new one
    bruno_core ConfigError
    └── BrunoMemoryConfigError (.path, .expected)
        ├── UnknownKind           lists the known kinds
        └── MissingDependency     names the extra to install
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from bruno_core.utils.exceptions import ConfigError, MemoryError

__all__ = [
    "AccessDenied",
    "Backpressure",
    "BrunoMemoryConfigError",
    "BrunoMemoryError",
    "CapabilityMissing",
    "CircuitOpen",
    "Closed",
    "CorruptRecord",
    "InvalidInput",
    "MissingDependency",
    "NotFound",
    "TierError",
    "TierUnavailable",
    "UnknownKind",
    "translate_errors",
]


class BrunoMemoryError(MemoryError):
    """Base of every runtime error bruno-memory raises."""


class TierError(BrunoMemoryError):
    """A tier failed an operation."""

    def __init__(self, message: str, *, tier: str, op: str, cause: Exception | None = None):
        super().__init__(f"tier {tier!r} failed {op}: {message}", {"tier": tier, "op": op}, cause)
        self.tier = tier
        self.op = op


class TierUnavailable(TierError):
    """The tier could not be reached (connect, timeout, pool); retrying may help."""


class CircuitOpen(TierUnavailable):
    """The tier's circuit breaker is open; calls are refused without trying."""


class CorruptRecord(TierError):
    """A stored value could not be decoded."""


class Backpressure(BrunoMemoryError):
    """A write-behind queue is full and its policy is to reject."""


class CapabilityMissing(BrunoMemoryError):
    """No tier in the stack can serve this call."""


class InvalidInput(BrunoMemoryError):
    """An argument cannot be stored or searched as given."""


class NotFound(BrunoMemoryError):
    """The addressed session, conversation or record does not exist."""


class AccessDenied(BrunoMemoryError):
    """The app's access hook refused an operation across users (``MemoryStack.admin``)."""


class Closed(BrunoMemoryError):
    """The stack was closed: every call is refused (build a new stack to go on)."""


class BrunoMemoryConfigError(ConfigError):
    """A configuration is invalid; ``path`` names the key, e.g. ``tiers[1].url``."""

    def __init__(self, message: str, *, path: str = "", expected: str = "", source: str = ""):
        where = ": ".join(p for p in (source, path) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.expected = expected
        self.source = source


class UnknownKind(BrunoMemoryConfigError):
    """A tier or policy kind that no registry entry provides."""


class MissingDependency(BrunoMemoryConfigError):
    """A tier's driver is not installed; the message names the extra."""


@contextlib.contextmanager
def translate_errors(
    tier: str, op: str, mapping: Mapping[type[BaseException], type[TierError]]
) -> Iterator[None]:
    """Re-raise driver exceptions as our own, once, at the tier boundary.

    Args:
        tier: name of the tier, carried by the raised error.
        op: the operation, e.g. ``"write"``.
        mapping: driver exception class -> our error class; first match wins.
    """
    try:
        yield
    except BrunoMemoryError:
        raise
    except Exception as exc:
        for driver_exc, ours in mapping.items():
            if isinstance(exc, driver_exc):
                raise ours(_describe(exc), tier=tier, op=op, cause=exc) from exc
        raise


def _describe(exc: BaseException) -> str:
    text: Any = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
