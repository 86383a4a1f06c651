"""Health per (channel, job), kept by the engine while it runs.

Each job of each channel has its own record: failures in a row, since when it fails, its
last error, when it last succeeded, and its own back-off (a job that failed ``threshold``
times in a row is skipped for a fixed cooldown; it never grows, so nothing waits longer
than the cooldown or, for the probe, its interval). One job's success never resets another
job's failures, so a push with nothing to send does not hide an order pull that cannot
reach the channel.

The probe (the order pull) is never backed off: it runs at its usual interval while the
channel fails, so a channel that heals is seen within one pull interval, and its success
lifts the other jobs' back-off.

A channel whose credentials were refused is marked *authentication refused*: its jobs are
skipped (no point retrying a refused key) except the probe, which clears the mark when it
succeeds. A restart with a changed configuration clears it too (see
:mod:`sellable.sync.state`).

A channel's *outage* (:class:`Outage`) is what its log follows: one line when it breaks,
at most one summary line every :data:`SUMMARY_EVERY` seconds while it lasts, and one line
when a job that failed succeeds again.

Usage::

    health = Health(degraded_after=timedelta(seconds=60))
    job = health.job("shop", "orders")
    change = job.record_failure("HTTP 500")
    health.note_failure("shop", "orders", "HTTP 500")   # "break": log it once
    job.record_success()                                # True: the job recovered
    health.end_outage("shop")                           # the Outage: log recovery once
    health.degraded("shop")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sellable.store.sql import utcnow

Clock = Callable[[], float]

#: Seconds between two summary lines of a channel's outage, at most.
SUMMARY_EVERY = 60.0


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


@dataclass(slots=True)
class Outage:
    """A channel failing, from its first failed run to the first success of a job that
    failed: what its break, summary and recovery lines say."""

    since: datetime
    started: float  # monotonic clock
    last_job: str
    last_error: str
    failed_runs: int = 1
    summarized: float = 0.0  # monotonic clock of the break or the last summary line
    jobs: frozenset[str] = frozenset()


class JobHealth:
    """One job of one channel: failing or not, and its back-off."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Clock = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
        created: float | None = None,
    ) -> None:
        self.threshold = threshold
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
        #: What :meth:`seconds_since_success` counts from before the first success: when
        #: the engine (its :class:`Health`) started.
        self._created = clock() if created is None else created

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
        self.opened_at = self._clock()  # the same cooldown again: it never grows
        return FailureChange(started=started, backing_off=first_open)

    def lift_backoff(self) -> None:
        """Run at the next turn (the channel answered again)."""
        self.opened_at = None

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
    ) -> None:
        self.degraded_after = degraded_after.total_seconds()
        self._clock = clock
        self._wall = wall
        self._options = {"threshold": threshold, "cooldown": cooldown}
        self._jobs: dict[tuple[str, str], JobHealth] = {}
        self._auth: dict[str, AuthRefusal] = {}
        self._outages: dict[str, Outage] = {}
        self._lock = threading.Lock()
        self._started = clock()

    def clock(self) -> float:
        """The monotonic clock health reads (a fake one in tests)."""
        return self._clock()

    def job(self, channel: str, job: str) -> JobHealth:
        with self._lock:
            found = self._jobs.get((channel, job))
            if found is None:
                found = self._jobs[(channel, job)] = JobHealth(
                    clock=self._clock,
                    wall=self._wall,
                    threshold=int(self._options["threshold"]),
                    cooldown=self._options["cooldown"],
                    created=self._started,
                )
            return found

    def jobs(self, channel: str) -> dict[str, JobHealth]:
        with self._lock:
            return {job: health for (code, job), health in self._jobs.items() if code == channel}

    # -- outages (what the log says) ------------------------------------------------------------

    def outage(self, channel: str) -> Outage | None:
        return self._outages.get(channel)

    def note_failure(
        self, channel: str, job: str, error: str
    ) -> tuple[Outage, Literal["break", "summary"] | None]:
        """Count a failed run in the channel's outage: ``"break"`` when it starts one,
        ``"summary"`` when the last line about it is :data:`SUMMARY_EVERY` seconds old."""
        now = self._clock()
        with self._lock:
            found = self._outages.get(channel)
            if found is None:
                found = self._outages[channel] = Outage(
                    self._wall(), now, job, error, summarized=now, jobs=frozenset({job})
                )
                return found, "break"
            found.failed_runs += 1
            found.last_job, found.last_error = job, error
            found.jobs = found.jobs | {job}
            if now - found.summarized >= SUMMARY_EVERY:
                found.summarized = now
                return found, "summary"
            return found, None

    def end_outage(self, channel: str) -> Outage | None:
        """The channel answers again: the outage that ended, if there was one."""
        with self._lock:
            return self._outages.pop(channel, None)

    def lift_backoff(self, channel: str) -> None:
        for health in self.jobs(channel).values():
            health.lift_backoff()

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
        """``healthy`` or ``failing``: the latest run of some job failed, or the channel's
        credentials were refused (``authentication_refused_since`` in :meth:`describe`
        says so; ``sellable status`` says it in words). :meth:`describe` adds ``stale``."""
        if channel in self._auth:
            return "failing"
        if any(job.failing for job in self.jobs(channel).values()):
            return "failing"
        return "healthy"

    def overdue(
        self,
        channel: str,
        due: Mapping[str, float],
        succeeds_for: Callable[[str], tuple[str, ...]] = lambda job: (job,),
    ) -> dict[str, dict[str, float]]:
        """The jobs of ``due`` (name: seconds) without a success for longer than their
        seconds (counted from the engine's start before the first success; the successes
        of ``succeeds_for(job)`` count): a run that hangs, a scheduler that stopped, a
        channel that keeps asking for quiet. Such a channel does not sync, whatever its
        last finished runs said."""
        found: dict[str, dict[str, float]] = {}
        for job, limit in due.items():
            since = min(self.job(channel, j).seconds_since_success() for j in succeeds_for(job))
            if since > limit:
                found[job] = {
                    "seconds_since_success": round(since, 3),
                    "due_within_seconds": round(limit, 3),
                }
        return found

    def describe(
        self,
        channel: str,
        due: Mapping[str, float] | None = None,
        succeeds_for: Callable[[str], tuple[str, ...]] = lambda job: (job,),
    ) -> dict[str, object]:
        """The channel's part of ``/healthz``: ``status`` is ``failing`` (see
        :meth:`state`), else ``stale`` when a job of ``due`` is overdue (see
        :meth:`overdue`), else ``healthy``; a stale channel is degraded at once (it has
        already gone a pull interval and more without syncing)."""
        refusal = self._auth.get(channel)
        overdue = self.overdue(channel, due or {}, succeeds_for)
        status = self.state(channel)
        if status == "healthy" and overdue:
            status = "stale"
        return {
            "status": status,
            "degraded": self.degraded(channel) or bool(overdue),
            "authentication_refused_since": None if refusal is None else refusal.since.isoformat(),
            "overdue_jobs": overdue,
            "jobs": {job: health.describe() for job, health in sorted(self.jobs(channel).items())},
        }


__all__ = ["SUMMARY_EVERY", "AuthRefusal", "FailureChange", "Health", "JobHealth", "Outage"]
