"""Health per (channel, job) on its own, with a fake clock: the back-off each job keeps
(the circuit breaker's tests, moved here from the HTTP module), failing and recovering,
degraded after a while, refused credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sellable.sync.health import FailureChange, Health, JobHealth

WALL = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock and a wall clock that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.now - 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


def job(fake: FakeClock, **options: float) -> JobHealth:
    return JobHealth(clock=fake.clock, wall=fake.wall, **options)  # type: ignore[arg-type]


# -- the back-off (was the per-channel circuit breaker) -----------------------------------------


def test_health_job_stays_running_below_threshold(fake: FakeClock) -> None:
    health = job(fake, threshold=3, cooldown=30)

    changes = [health.record_failure("e"), health.record_failure("e")]

    assert [c.backing_off for c in changes] == [False, False]
    assert not health.is_open


def test_health_job_backs_off_at_threshold_and_reports_it_once(fake: FakeClock) -> None:
    health = job(fake, threshold=3, cooldown=30)

    changes = [health.record_failure("e") for _ in range(5)]

    assert [c.backing_off for c in changes] == [False, False, True, False, False]
    assert health.is_open


def test_health_job_back_off_ends_after_cooldown(fake: FakeClock) -> None:
    health = job(fake, threshold=2, cooldown=30)
    health.record_failure("e")
    health.record_failure("e")
    fake.advance(29)
    assert health.is_open
    fake.advance(2)
    assert not health.is_open


def test_health_job_back_off_never_grows_while_failing(fake: FakeClock) -> None:
    # A doubling cool-down kept a healed channel waiting for minutes (issue 18, item 5).
    health = job(fake, threshold=2, cooldown=30)
    health.record_failure("e")
    health.record_failure("e")
    fake.advance(31)
    assert not health.is_open

    again = health.record_failure("e")  # the trial run failed: back off again, as long

    assert again == FailureChange(started=False, backing_off=False)
    assert health.cooldown == 30
    fake.advance(29)
    assert health.is_open
    fake.advance(2)
    assert not health.is_open


def test_health_outage_breaks_once_summarizes_once_a_minute_and_ends_once(
    fake: FakeClock,
) -> None:
    health = Health(clock=fake.clock, wall=fake.wall)
    events = []
    for _ in range(13):  # a failed run every 10 s for 120 s
        events.append(health.note_failure("shop", "orders", "HTTP 500")[1])
        fake.advance(10)

    outage = health.end_outage("shop")

    assert events == ["break", *[None] * 5, "summary", *[None] * 5, "summary"]
    assert outage is not None
    assert (outage.since, outage.failed_runs, outage.jobs) == (WALL, 13, frozenset({"orders"}))
    assert health.end_outage("shop") is None
    assert health.note_failure("shop", "push", "HTTP 500")[1] == "break"


def test_health_job_success_reports_recovery_and_resets(fake: FakeClock) -> None:
    health = job(fake, threshold=2, cooldown=30)
    for _ in range(3):
        health.record_failure("e")

    assert health.record_success() is True
    assert not health.is_open
    assert (health.failures, health.opened_at) == (0, None)
    assert (health.failing_since, health.last_error) == (None, None)
    assert health.record_success() is False
    assert [health.record_failure("e").backing_off, health.record_failure("e").backing_off] == [
        False,
        True,
    ]
    assert health.cooldown == 30


# -- failing, recovering, degraded ---------------------------------------------------------------


def test_health_job_first_failure_starts_failing_once_and_keeps_the_last_error(
    fake: FakeClock,
) -> None:
    health = job(fake)

    first = health.record_failure("HTTP 500")
    fake.advance(10)
    second = health.record_failure("timed out")

    assert (first.started, second.started) == (True, False)
    assert health.failing_since == WALL
    assert health.last_error == "timed out"
    assert health.failing_for() == 10


def test_health_one_jobs_success_leaves_another_jobs_failures(fake: FakeClock) -> None:
    health = Health(clock=fake.clock, wall=fake.wall)
    for _ in range(4):
        health.job("shop", "orders").record_failure("HTTP 500")

    health.job("shop", "push").record_success()  # a push with nothing to send

    assert health.job("shop", "orders").failures == 4
    assert health.state("shop") == "failing"


def test_health_channel_is_degraded_once_a_job_failed_longer_than_the_threshold(
    fake: FakeClock,
) -> None:
    health = Health(timedelta(seconds=60), clock=fake.clock, wall=fake.wall)
    health.job("shop", "push").record_success()
    health.job("shop", "orders").record_failure("HTTP 500")
    health.job("other", "orders").record_success()

    fake.advance(60)
    at_threshold = health.degraded("shop")
    fake.advance(1)

    assert at_threshold is False
    assert health.degraded("shop") is True
    assert health.state("shop") == "failing"
    assert health.describe("shop")["degraded"] is True
    assert (health.degraded("other"), health.state("other")) == (False, "healthy")
    health.job("shop", "orders").record_success()
    assert health.state("shop") == "healthy"


def test_health_seconds_since_success_counts_from_the_start_until_a_success(
    fake: FakeClock,
) -> None:
    health = job(fake)
    fake.advance(5)
    assert health.seconds_since_success() == 5
    health.record_success()
    fake.advance(2)
    health.record_failure("e")

    assert health.seconds_since_success() == 2


def test_health_refused_credentials_are_marked_once_and_cleared(fake: FakeClock) -> None:
    health = Health(clock=fake.clock, wall=fake.wall)

    first = health.refuse_auth("shop", "HTTP 401")
    second = health.refuse_auth("shop", "HTTP 401 again")

    assert (first, second) == (True, False)
    refusal = health.auth_refused("shop")
    assert refusal is not None and (refusal.since, refusal.error) == (WALL, "HTTP 401")
    assert health.state("shop") == "failing"
    assert health.describe("shop")["authentication_refused_since"] == WALL.isoformat()
    assert health.accept_auth("shop") is True
    assert health.accept_auth("shop") is False
    assert health.state("shop") == "healthy"


def test_health_refused_credentials_make_the_channel_degraded_after_the_threshold(
    fake: FakeClock,
) -> None:
    health = Health(timedelta(seconds=60), clock=fake.clock, wall=fake.wall)
    health.refuse_auth("shop", "HTTP 401", since=WALL - timedelta(seconds=30))

    soon = health.degraded("shop")
    fake.advance(31)

    assert (soon, health.degraded("shop")) == (False, True)
