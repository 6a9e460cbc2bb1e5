"""An injectable clock for tests: time moves only when the test says so."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds under the test's control; call it like ``time.monotonic``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
