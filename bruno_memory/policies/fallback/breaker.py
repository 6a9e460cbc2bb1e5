"""A circuit breaker (closed -> open -> half-open probe -> closed), on an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class State(str, Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until ``reset`` has passed
    HALF_OPEN = "half-open"  # one probe is running; everyone else is still refused


class Breaker:
    """Opens after ``failures`` failed calls in a row; after ``reset`` seconds one probe may run.

    Args:
        failures: consecutive failures that open the circuit.
        reset: seconds the circuit stays open before a probe.
        clock: monotonic seconds.
    """

    def __init__(
        self, failures: int, reset: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures, self.reset, self._clock = failures, reset, clock
        self.state = State.CLOSED
        self.failed = 0
        self.opened_at = 0.0
        self.opened = 0  # how many times it opened

    def __repr__(self) -> str:
        return f"Breaker({self.state.value}, failures={self.failures}, reset={self.reset})"

    def probe_due(self) -> bool:
        """Open long enough that one probe may try the tier."""
        return self.state is State.OPEN and self._clock() - self.opened_at >= self.reset

    def start_probe(self) -> None:
        self.state = State.HALF_OPEN

    def retry_in(self) -> float:
        """Seconds until a probe may run (0 when closed or due)."""
        if self.state is State.CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.reset - self._clock())

    def trip(self) -> None:
        """Open now (the tier is known to be down), a probe due after ``reset``."""
        if self.state is not State.OPEN:
            self.opened += 1
        self.state, self.opened_at = State.OPEN, self._clock()

    def success(self) -> None:
        self.state, self.failed = State.CLOSED, 0

    def failure(self) -> None:
        self.failed += 1
        if self.state is State.HALF_OPEN or self.failed >= self.failures:
            if self.state is not State.OPEN:
                self.opened += 1
            self.state, self.opened_at = State.OPEN, self._clock()
