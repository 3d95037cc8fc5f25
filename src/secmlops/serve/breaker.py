"""Circuit breaker for the upstream model: stop sending traffic to a dependency that keeps failing.

After `failures` consecutive errors (transport errors, unreadable answers, 5xx) the circuit opens:
requests are refused at once with 503 for `cooldown` seconds instead of piling up on timeouts. Then
one trial request is let through (half-open); its success closes the circuit, its failure reopens
it for another cooldown.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, failures: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.failures, self.cooldown, self.clock = failures, cooldown, clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self._trial = False

    def allow(self) -> bool:
        """May a request go to the dependency now?"""
        if self.opened_at is None:
            return True
        if self.clock() - self.opened_at >= self.cooldown and not self._trial:
            self._trial = True  # half-open: exactly one request tests the dependency
            return True
        return False

    def retry_after(self) -> int:
        if self.opened_at is None:
            return 0
        return max(1, int(self.cooldown - (self.clock() - self.opened_at)) + 1)

    def record(self, ok: bool) -> bool:
        """Record an outcome; True when this failure has just opened the circuit."""
        was_trial, self._trial = self._trial, False
        if ok:
            self.consecutive, self.opened_at = 0, None
            return False
        self.consecutive += 1
        if was_trial or (self.opened_at is None and self.consecutive >= self.failures):
            self.opened_at = self.clock()
            return True
        return False
