"""The value types every config model shares: durations, sizes, the strict base (pure).

In a module of their own so that config sections kept in their own modules (e.g.
``config.lifecycle``) and ``config.models`` both import them without a cycle.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = ["Bytes", "Duration", "PositiveInt", "Strict", "parse_bytes", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """``250ms``, ``60s``, ``5m``, ``1h``, ``2d`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 250ms, 60s or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 250ms, 60s or 1h, got {value!r}")
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d+\s*", str(value)) or int(value) < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(value: Any) -> int:
    """``64MB``, ``512KiB``, ``1GB`` or a number of bytes -> a positive number of bytes."""
    match = None if isinstance(value, bool) else _BYTES.match(str(value))
    unit = _BYTE_UNITS.get(match[2].lower()) if match else None
    if match is None or unit is None or float(match[1]) * unit < 1:
        raise ValueError(f"expected a positive size like 64MB, 512KiB or 1GB, got {value!r}")
    return int(float(match[1]) * unit)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as ``250ms``, ``60s``, ``1h`` or a plain number."""
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Bytes = Annotated[int, BeforeValidator(parse_bytes)]
"""A size in bytes, written as ``64MB``, ``512KiB``, ``1GB`` or a plain number."""


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def mask_password(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in user:
        return url
    return f"{scheme}://{user.partition(':')[0]}:***@{host}"
