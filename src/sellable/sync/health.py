"""Health per (channel, job), kept by the engine while it runs.

Each job of each channel has its own record: failures in a row, since when it fails, its
last error, when it last succeeded, and its own back-off (a job that failed ``threshold``
times in a row is skipped for a cooldown that doubles while it keeps failing). One job's
success never resets another job's failures, so a push with nothing to send does not hide
an order pull that cannot reach the channel.

A channel whose credentials were refused is marked *authentication refused*: its jobs are
skipped (no point retrying a refused key) except its order pull, which runs at its usual
interval as the probe that clears the mark when it succeeds. A restart with a changed
configuration clears it too (see :mod:`sellable.sync.state`).

Usage::

    health = Health(degraded_after=timedelta(seconds=60))
    job = health.job("shop", "orders")
    change = job.record_failure("HTTP 500")   # change.started: log "started failing" once
    job.record_success()                      # True: log "recovered" once
    health.degraded("shop")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sellable.store.sql import utcnow

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class FailureChange:
    """What one failure changed: ``started`` (the first in a row) and ``backing_off``
    (the job reached the threshold and its runs are now skipped for a while)."""

    started: bool
    backing_off: bool


@dataclass(frozen=True, slots=True)
class AuthRefusal:
    """The channel refused our credentials at ``since``."""

    since: datetime
    error: str


class JobHealth:
    """One job of one channel: failing or not, and its back-off."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 900.0,
        clock: Clock = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._wall = wall
        self.failures = 0
        self.cooldown = cooldown
        self.opened_at: float | None = None
        self.failing_since: datetime | None = None
        self._failing_since_clock: float | None = None
        self.last_error: str | None = None
        self.last_success: datetime | None = None
        self._last_success_clock: float | None = None
        self._created = clock()

    @property
    def is_open(self) -> bool:
        """True while the job is backed off after ``threshold`` failures in a row."""
        if self.opened_at is None:
            return False
        return self._clock() - self.opened_at < self.cooldown

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failing_for(self) -> float:
        """Seconds since the first failure in a row (0 when the job is not failing)."""
        if self._failing_since_clock is None:
            return 0.0
        return self._clock() - self._failing_since_clock

    def seconds_since_success(self) -> float:
        """Seconds since the last success (since the engine started, when none yet)."""
        since = self._last_success_clock
        return self._clock() - (self._created if since is None else since)

    def record_success(self) -> bool:
        """Returns True when this success ends a run of failures (the job recovered)."""
        recovered = self.failures > 0
        self.failures = 0
        self.opened_at = None
        self.cooldown = self.base_cooldown
        self.failing_since = None
        self._failing_since_clock = None
        self.last_error = None
        self.last_success = self._wall()
        self._last_success_clock = self._clock()
        return recovered

    def record_failure(self, error: str | None = None) -> FailureChange:
        self.failures += 1
        self.last_error = error
        started = self.failures == 1
        if started:
            self.failing_since = self._wall()
            self._failing_since_clock = self._clock()
        if self.failures < self.threshold:
            return FailureChange(started=started, backing_off=False)
        first_open = self.opened_at is None
        if not first_open:
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
        self.opened_at = self._clock()
        return FailureChange(started=started, backing_off=first_open)

    def describe(self) -> dict[str, object]:
        return {
            "ok": not self.failing,
            "failing_since": None if self.failing_since is None else self.failing_since.isoformat(),
            "failures_in_a_row": self.failures,
            "last_error": self.last_error,
            "backing_off": self.is_open,
            "seconds_since_success": round(self.seconds_since_success(), 3),
        }


class Health:
    """Every (channel, job) record and the channels whose credentials were refused."""

    def __init__(
        self,
        degraded_after: timedelta = timedelta(seconds=60),
        *,
        clock: Clock = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
        threshold: int = 5,
        cooldown: float = 30.0,
        max_cooldown: float = 900.0,
    ) -> None:
        self.degraded_after = degraded_after.total_seconds()
        self._clock = clock
        self._wall = wall
        self._options = {"threshold": threshold, "cooldown": cooldown, "max_cooldown": max_cooldown}
        self._jobs: dict[tuple[str, str], JobHealth] = {}
        self._auth: dict[str, AuthRefusal] = {}
        self._lock = threading.Lock()

    def job(self, channel: str, job: str) -> JobHealth:
        with self._lock:
            found = self._jobs.get((channel, job))
            if found is None:
                found = self._jobs[(channel, job)] = JobHealth(
                    clock=self._clock,
                    wall=self._wall,
                    threshold=int(self._options["threshold"]),
                    cooldown=self._options["cooldown"],
                    max_cooldown=self._options["max_cooldown"],
                )
            return found

    def jobs(self, channel: str) -> dict[str, JobHealth]:
        with self._lock:
            return {job: health for (code, job), health in self._jobs.items() if code == channel}

    # -- authentication -------------------------------------------------------------------------

    def auth_refused(self, channel: str) -> AuthRefusal | None:
        return self._auth.get(channel)

    def refuse_auth(self, channel: str, error: str, since: datetime | None = None) -> bool:
        """Mark the channel's credentials refused; True when it was not marked yet."""
        with self._lock:
            if channel in self._auth:
                return False
            self._auth[channel] = AuthRefusal(since or self._wall(), error)
            return True

    def accept_auth(self, channel: str) -> bool:
        """Clear the mark (the probe succeeded); True when there was one."""
        with self._lock:
            return self._auth.pop(channel, None) is not None

    # -- the verdicts ---------------------------------------------------------------------------

    def degraded(self, channel: str) -> bool:
        """Some job of the channel has failed, or its credentials have been refused, for
        longer than ``degraded_after``."""
        refusal = self._auth.get(channel)
        if refusal is not None and (self._wall() - refusal.since).total_seconds() > (
            self.degraded_after
        ):
            return True
        return any(
            job.failing and job.failing_for() > self.degraded_after
            for job in self.jobs(channel).values()
        )

    def state(self, channel: str) -> str:
        """``healthy``, ``failing``, ``degraded`` or ``authentication refused``."""
        if channel in self._auth:
            return "authentication refused"
        if self.degraded(channel):
            return "degraded"
        if any(job.failing for job in self.jobs(channel).values()):
            return "failing"
        return "healthy"

    def describe(self, channel: str) -> dict[str, object]:
        refusal = self._auth.get(channel)
        return {
            "status": self.state(channel),
            "authentication_refused_since": None if refusal is None else refusal.since.isoformat(),
            "jobs": {job: health.describe() for job, health in sorted(self.jobs(channel).items())},
        }


__all__ = ["AuthRefusal", "FailureChange", "Health", "JobHealth"]
