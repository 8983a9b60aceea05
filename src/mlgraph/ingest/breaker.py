"""A circuit breaker per source: stop calling a source that keeps failing."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed → open after ``threshold`` failures in a row → half-open after ``cooldown_s``.

    While open, callers are told how long to wait instead of calling. Half-open
    lets one trial call through: success closes the circuit, failure opens it
    again for twice as long (up to ``max_cooldown_s``).
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown_s
        self.max_cooldown = max_cooldown_s
        self.clock = clock
        self.failures = 0
        self.cooldown = cooldown_s
        self.opened_at: float | None = None
        self.trial_in_flight = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.cooldown else "open"

    def wait_s(self) -> float | None:
        """None if a call may go ahead now, else seconds until one may."""
        if self.opened_at is None:
            return None
        remaining = self.opened_at + self.cooldown - self.clock()
        if remaining > 0:
            return remaining
        if self.trial_in_flight:
            return min(self.cooldown, 0.5)
        self.trial_in_flight = True
        return None

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown
        self.trial_in_flight = False

    def release_trial(self) -> None:
        """The trial call got no verdict (e.g. a 429): let another call try."""
        self.trial_in_flight = False

    def failure(self) -> None:
        self.failures += 1
        if self.trial_in_flight:
            self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self.opened_at = self.clock()
            self.trial_in_flight = False
        elif self.failures >= self.threshold and self.opened_at is None:
            self.opened_at = self.clock()
