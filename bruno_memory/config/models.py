"""The configuration models; every model forbids unknown keys."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as ``250ms``, ``60s``, ``1h`` or a plain number."""
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TierConfig(Strict):
    """Fields every tier has; each kind adds its own."""

    kind: str
    name: str | None = None
    write: Literal["write-through", "write-behind"] = "write-through"


class EmbeddingConfig(Strict):
    """Which embedding provider feeds the semantic tiers."""

    provider: str = "hashing"
    model: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    dimension: PositiveInt | None = None  # hashing: vector length; others: skip the probe
    cache_size: int = Field(default=10_000, ge=0)  # cached (model, text) vectors


class StackConfig(Strict):
    """A whole stack: tiers from fastest (first) to authoritative (last)."""

    namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")] = "bruno"
    embedding: EmbeddingConfig | None = None
    context_messages: PositiveInt = 20
    tiers: list[TierConfig]
