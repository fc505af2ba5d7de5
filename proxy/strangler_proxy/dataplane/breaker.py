"""A per-module circuit breaker: stop sending to a failing service for a cool-down.

closed --(N consecutive failures)--> open --(cool-down elapsed)--> half-open
half-open: one trial request; success closes, failure opens again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    __slots__ = ("failures", "cooldown", "clock", "on_change", "state", "_count", "_opened_at", "_trial")

    def __init__(
        self,
        failures: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self.on_change = on_change
        self.state: BreakerState = "closed"
        self._count = 0
        self._opened_at = 0.0
        self._trial = False

    def _set(self, state: BreakerState) -> None:
        old, self.state = self.state, state
        if old != state and self.on_change is not None:
            self.on_change(old, state)

    def allow(self) -> bool:
        """Whether a request may go to the service now."""
        if self.state == "closed":
            return True
        if self.state == "open" and self.clock() - self._opened_at >= self.cooldown:
            self._set("half_open")
            self._trial = False
        if self.state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._count = 0
        if self.state != "closed":
            self._set("closed")

    def failure(self) -> None:
        if self.state == "half_open":
            self._open()
            return
        self._count += 1
        if self.state == "closed" and self._count >= self.failures:
            self._open()

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._trial = False
        self._set("open")
