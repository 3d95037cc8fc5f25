"""Circuit breaker for a served model or the chat upstream: stop sending traffic that fails.

After `failures` consecutive errors (transport errors, unreadable answers, 5xx, model errors) the
circuit opens: requests are refused at once with 503 for `cooldown` seconds instead of piling up on
timeouts. Then one trial request is let through (half-open); its success closes the circuit, its
failure reopens it for another cooldown.

Besides errors, a circuit can be *held* open for a named reason (`drift`, `budget`): no trial
request passes while a hold lasts; a hold ends when its deadline passes, when it is released (drift
cleared) or when an administrator resets the circuit. A `CostBudget` counts units (prediction rows,
chat tokens) in fixed windows and tells when the budget is spent.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, failures: int = 5, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.failures, self.cooldown, self.clock = failures, cooldown, clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self._trial = False
        self.holds: dict[str, float] = {}  # reason -> deadline (clock), math.inf = until released

    def allow(self) -> bool:
        """May a request go to the dependency now?"""
        if self.holds and self._held():
            return False
        if self.opened_at is None:
            return True
        if self.clock() - self.opened_at >= self.cooldown and not self._trial:
            self._trial = True  # half-open: exactly one request tests the dependency
            return True
        return False

    def _held(self) -> bool:
        now = self.clock()
        for reason, until in list(self.holds.items()):
            if now >= until:
                self.holds.pop(reason, None)
        return bool(self.holds)

    def retry_after(self, unknown: int = 60) -> int:
        """Seconds a client should wait; `unknown` when a hold has no deadline (drift)."""
        waits = [until - self.clock() for until in self.holds.values()]
        if self.opened_at is not None:
            waits.append(self.cooldown - (self.clock() - self.opened_at))
        if not waits:
            return 0
        longest = max(waits)
        return unknown if math.isinf(longest) else max(1, int(longest) + 1)

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

    def hold(self, reason: str, seconds: float = math.inf) -> bool:
        """Hold the circuit open for `reason`; True when this opened a circuit that was closed."""
        was_open = self.state != "closed"
        self.holds[reason] = self.clock() + seconds
        return not was_open

    def release(self, reason: str) -> bool:
        """End the hold for `reason`; True when it was held."""
        return self.holds.pop(reason, None) is not None

    def reset(self) -> None:
        """Close the circuit: an administrator's decision, every hold and failure forgotten."""
        self.holds.clear()
        self.consecutive, self.opened_at, self._trial = 0, None, False

    @property
    def state(self) -> str:
        if self.holds and self._held():
            return "open"
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooldown else "open"

    def describe(self) -> dict[str, object]:
        """State for the admin endpoint."""
        return {"state": self.state, "holds": sorted(self.holds),
                "consecutive_failures": self.consecutive}  # fmt: skip


class CostBudget:
    """Units spent in fixed windows of `window` seconds; thread-safe, O(1) per spend."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        self._start = clock()
        self.spent = 0

    def spend(self, units: int) -> bool:
        """Charge `units`; True when this charge crossed the limit of the current window."""
        with self._lock:
            self._roll()
            before = self.spent
            self.spent += units
            return before <= self.limit < self.spent

    def remaining_window(self) -> float:
        with self._lock:
            self._roll()
            return self.window - (self.clock() - self._start)

    def reset(self) -> None:
        with self._lock:
            self._start, self.spent = self.clock(), 0

    def _roll(self) -> None:
        elapsed = self.clock() - self._start
        if elapsed >= self.window:
            self._start += self.window * (elapsed // self.window)
            self.spent = 0
