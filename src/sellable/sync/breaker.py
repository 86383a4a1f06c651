"""The per-channel circuit breaker of the sync engine (was in ``sellable.sync.http``).

It left the HTTP client when that moved behind :mod:`sellable.sdk`; the engine's health
per (channel, job) replaces it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class CircuitBreaker:
    """Opens after ``threshold`` failed jobs in a row; while open, the channel's jobs are
    skipped until ``cooldown`` seconds passed (doubling up to ``max_cooldown``)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 900.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.cooldown = cooldown

    @property
    def is_open(self) -> bool:
        if self.opened_at is None:
            return False
        return self._clock() - self.opened_at < self.cooldown

    def record_success(self) -> bool:
        """Returns True when this success closed an open breaker (the channel recovered)."""
        was_failing = self.failures >= self.threshold
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown
        return was_failing

    def record_failure(self) -> bool:
        """Returns True when this failure opened the breaker."""
        self.failures += 1
        if self.failures < self.threshold:
            return False
        first = self.opened_at is None
        if not first:
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
        self.opened_at = self._clock()
        return first
