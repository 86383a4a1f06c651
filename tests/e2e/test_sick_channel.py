"""A sick channel, end to end (issue 18, "waiting and recovering as the channel asks"): the
daemon's SyncEngine against the WooCommerce emulator over loopback, on one manual clock,
with the jobs run when the schedule says (a small deterministic stand-in for APScheduler).

The faults are the emulator's: a 429 with ``Retry-After``, a stretch of 500s, refused
connections, credentials revoked then restored. What is measured: requests sent while the
channel asked for quiet, time to recovery after a 401, requests while failing, log lines
per fault, and ``/healthz`` against ``sellable status``. ``FIGURES`` collects what the
tests measured; ``-s`` prints them.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sellable.config import load_settings
from sellable.emulators import ManualClock
from sellable.emulators.woocommerce import API, WooCommerceEmulator
from sellable.imports import import_products, import_stock
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.health import Health
from sellable.sync.jobs import JOB_TABLE
from sellable.sync.service import HealthServer
from sellable.sync.status import channel_status
from tests.imports import Store, open_store

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PULL_EVERY = 30.0
INTERVALS = (
    f'pull_orders_every = "{PULL_EVERY:.0f}s"\npush_every = "60s"\n'
    'refresh_listings_every = "1h"\nreconcile_every = "24h"\n'
)
PRODUCTS = "sku,name,kind\nMUG,Mug,simple\n"
STOCK = "sku,warehouse,on_hand,locked\nMUG,main,10,0\n"
ORDERS = f"{API}/orders"
FIGURES: dict[str, Any] = {}


@dataclass
class Run:
    at: float  # the manual clock when the run started
    result: JobResult


@dataclass
class Daemon:
    """The engine, its jobs due at their intervals on the manual clock, and what ran."""

    engine: SyncEngine
    clock: ManualClock
    shop: WooCommerceEmulator
    due: dict[str, float]
    every: dict[str, float]
    runs: list[Run] = field(default_factory=list)

    def until(self, end: float) -> list[Run]:
        """Run every job that falls due up to the clock reading ``end``, in time order."""
        ran: list[Run] = []
        while True:
            job = min(self.due, key=lambda name: (self.due[name], list(self.due).index(name)))
            if self.due[job] > end:
                break
            if self.due[job] > self.clock.monotonic():
                self.clock.advance(self.due[job] - self.clock.monotonic())
            at = self.clock.monotonic()
            run = Run(at, self.engine.run_job("woo", job))
            ran.append(run)
            while self.due[job] <= self.clock.monotonic():  # missed runs coalesce
                self.due[job] += self.every[job]
        if end > self.clock.monotonic():
            self.clock.advance(end - self.clock.monotonic())
        self.runs.extend(ran)
        return ran

    def requests_between(self, start: float, end: float) -> list[float]:
        """When the channel's API was asked, from ``start`` (included) to ``end`` (not)."""
        return [t for t in self.shop.request_times if start <= t < end]


@dataclass
class Harness:
    config: Path
    store: Store
    shop: WooCommerceEmulator
    clock: ManualClock
    engines: list[SyncEngine] = field(default_factory=list)

    def daemon(self) -> Daemon:
        clock = self.clock
        settings = load_settings(self.config)
        engine = SyncEngine(
            self.store.engine,
            settings,
            http_options={
                "clock": clock.monotonic,
                "sleep": clock.advance,
                "wall": clock.now,
                "jitter": lambda: 0.5,  # the backoff is exactly 0.5, 1, 2, 4 s
            },
            now=clock.now,
            health=Health(settings.daemon.degraded_after, clock=clock.monotonic, wall=clock.now),
        )
        self.engines.append(engine)
        (channel,) = settings.channels
        can = engine.channels["woo"].connector.capabilities
        specs = [s for s in JOB_TABLE if s.capability in can]
        every = {s.name: getattr(channel, s.interval_key).total_seconds() for s in specs}
        now = clock.monotonic()
        due = {s.name: now + s.first_delay for s in specs}
        return Daemon(engine, clock, self.shop, due, every)


@pytest.fixture
def harness(config_file: Path) -> Iterator[Harness]:
    clock = ManualClock(START)
    shop = WooCommerceEmulator(clock=clock).start()
    assert isinstance(shop, WooCommerceEmulator)
    with config_file.open("a") as handle:
        handle.write(
            '\n[[channels]]\ncode = "woo"\nconnector = "woocommerce"\nwarehouses = ["main"]\n'
            + INTERVALS
            + "[channels.settings]\n"
            + "".join(f'{key} = "{value}"\n' for key, value in shop.connector_settings().items())
        )
    store = open_store(config_file)
    import_products(store.engine, store.csv("p.csv", PRODUCTS))
    import_stock(store.engine, store.settings, store.csv("s.csv", STOCK))
    shop.add_listing("MUG", 0)
    made = Harness(config_file, store, shop, clock)
    try:
        yield made
    finally:
        for engine in made.engines:
            engine.close()
        shop.stop()
        store.engine.dispose()


def started(harness: Harness) -> Daemon:
    """A daemon after its first healthy pass (every job once; t = 2.0)."""
    daemon = harness.daemon()
    first = daemon.until(2.0)
    assert [(r.result.job, r.result.ok) for r in first] == [
        ("listings", True),
        ("orders", True),
        ("reconcile", True),
        ("push", True),
    ], [r.result.describe() for r in first]
    return daemon


# -- 4. Retry-After belongs to the channel ------------------------------------------------------


@SQLITE_ONLY
def test_sick_channel_retry_after_90_holds_every_job_for_90_seconds(harness: Harness) -> None:
    daemon = started(harness)
    harness.shop.place_order([("MUG", 1)])  # a push will be due once the order is pulled
    harness.shop.inject({"status": 429, "retry_after": "90", "path": ORDERS})

    daemon.until(31.0)  # the order pull at 31 s is throttled
    (throttled_at,) = [t for t in harness.shop.request_times if 30.0 < t < 32.0]
    at_once = daemon.engine.run_job("woo", "listings")  # another job, right after
    ran = daemon.until(throttled_at + 90.0 + PULL_EVERY)
    during = daemon.requests_between(throttled_at + 0.001, throttled_at + 90.0)
    first_after = min(daemon.requests_between(throttled_at + 0.001, 10_000.0))

    FIGURES["requests during Retry-After: 90 (all jobs)"] = len(during)
    assert during == []
    until = (START + timedelta(seconds=throttled_at + 90)).isoformat()
    assert at_once.skipped == (
        f"waiting until {until} (Retry-After): the channel asked for quiet; nothing sent"
    )
    assert first_after == throttled_at + 90.0
    # the pull due at 61 s waits out the last 60 s (no longer than backoff_max), then sends;
    # the push due at 62 s runs when the worker is free (121 s) and again at its turn
    assert [(r.at, r.result.job, r.result.ok, r.result.skipped) for r in ran] == [
        (61.0, "orders", True, None),
        (121.0, "push", True, None),
        (122.0, "push", True, None),
        (151.0, "orders", True, None),
    ]
    assert ran[0].result.counts["orders"] == 1
    assert harness.shop.quantities() == {"MUG": 9}


# -- 5. recovery after a 401 ---------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("revoked_for", [40.0, 95.0], ids=["40s", "95s"])
def test_sick_channel_recovers_within_one_pull_interval_after_a_401_and_asks_gently(
    harness: Harness, revoked_for: float
) -> None:
    daemon = started(harness)
    revoked_at = 10.0
    daemon.until(revoked_at)
    harness.shop.inject({"status": 401, "for": revoked_for})  # revoked, then restored
    healed_at = revoked_at + revoked_for

    daemon.until(healed_at)
    while_failing = daemon.requests_between(revoked_at, healed_at)
    after = daemon.until(healed_at + PULL_EVERY + 5.0)
    back = min(r.at for r in after if r.result.job == "orders" and r.result.ok)
    recovery = back - healed_at

    FIGURES[f"401 for {revoked_for:.0f}s: seconds to the first good pull"] = recovery
    FIGURES[f"401 for {revoked_for:.0f}s: requests while failing"] = len(while_failing)
    assert recovery <= PULL_EVERY
    # one request per order pull (every 30 s), none from the other jobs
    assert len(while_failing) == int((healed_at - 1.0) // PULL_EVERY) - int(
        (revoked_at - 1.0) // PULL_EVERY
    )
    assert harness.engines[0].health.state("woo") == "healthy"


# -- 6. once on break, once on recovery ----------------------------------------------------------


def fault_lines(caplog: pytest.LogCaptureFixture, start: int) -> list[str]:
    """What Sellable logged at WARNING and above since record ``start``."""
    return [
        r.getMessage()
        for r in caplog.records[start:]
        if r.name.startswith("sellable") and r.levelno >= logging.WARNING
    ]


FAULTS = {
    "500": ({"status": 500}, 40.0),
    "connection refused": (None, 40.0),
    "401": ({"status": 401}, 40.0),
    "429 storm": ({"status": 429, "retry_after": "5"}, 25.0),
    "500 for 200s": ({"status": 500}, 200.0),
}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("fault", "lasting", "summaries"),
    [
        pytest.param(*FAULTS["500"], 0, id="500"),
        pytest.param(*FAULTS["connection refused"], 0, id="connection-refused"),
        pytest.param(*FAULTS["401"], 0, id="401"),
        pytest.param(*FAULTS["429 storm"], 0, id="429-storm"),
        pytest.param(*FAULTS["500 for 200s"], 2, id="500-for-200s"),
    ],
)
def test_sick_channel_logs_once_on_break_once_a_minute_and_once_on_recovery(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    fault: dict[str, Any] | None,
    lasting: float,
    summaries: int,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sellable")
    daemon = started(harness)
    daemon.until(30.0)  # the fault starts a second before an order pull
    mark = len(caplog.records)
    if fault is None:
        harness.shop.go_offline()
    else:
        harness.shop.inject({**fault, "for": lasting})
    daemon.until(30.0 + lasting)
    if fault is None:
        harness.shop.go_online()
    during = fault_lines(caplog, mark)
    daemon.until(30.0 + lasting + PULL_EVERY)
    lines = fault_lines(caplog, mark)
    info = [
        r.getMessage()
        for r in caplog.records[mark:]
        if r.name.startswith("sellable") and r.levelno == logging.INFO
    ]

    FIGURES[f"log lines, {request.node.callspec.id}"] = len(lines)
    assert len(during) == 1 + summaries, during
    assert during[0].startswith("channel=woo job=orders failing: ")
    assert all(line.startswith("channel=woo still failing after ") for line in during[1:])
    assert len(lines) == 2 + summaries, lines
    assert lines[-1].startswith("channel=woo recovered: job=orders succeeds again after ")
    assert all(" ok " in line for line in info), info  # no retry or "failed again" line


# -- 7. /healthz says what status says -----------------------------------------------------------


def healthz(address: str, query: str = "") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{address}/healthz{query}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@SQLITE_ONLY
@pytest.mark.parametrize("fault", ["500", "connection refused"])
def test_sick_channel_healthz_and_status_say_failing_within_one_interval(
    harness: Harness, fault: str
) -> None:
    daemon = started(harness)
    server = HealthServer("127.0.0.1:0", daemon.engine, daemon.engine.metrics)
    server.start()
    try:
        healthy = healthz(server.address, "?strict=1")
        if fault == "500":
            harness.shop.inject({"status": 500, "for": 60.0})
        else:
            harness.shop.go_offline()
        daemon.until(2.0 + PULL_EVERY)  # one pull interval
        (status,) = channel_status(daemon.engine)
        lax, strict = healthz(server.address), healthz(server.address, "?strict=1")
        daemon.until(62.0)
        if fault != "500":
            harness.shop.go_online()
        daemon.until(62.0 + PULL_EVERY)
        (recovered,) = channel_status(daemon.engine)
        after = healthz(server.address, "?strict=1")
    finally:
        server.stop()

    assert (healthy[0], healthy[1]["status"]) == (200, "ok")
    assert status["health"] == "failing"
    assert status["failing_jobs"]["orders"]["failures_in_a_row"] == 1
    assert (lax[0], lax[1]["status"]) == (200, "failing")
    assert (strict[0], strict[1]["status"]) == (503, "failing")
    woo = strict[1]["channels"]["woo"]
    assert (woo["status"], woo["degraded"]) == (status["health"], False)
    assert woo["jobs"]["orders"]["last_error"] == status["last_error"]["error"]
    assert (recovered["health"], after[0], after[1]["status"]) == ("healthy", 200, "ok")


@pytest.fixture(scope="module", autouse=True)
def print_figures() -> Iterator[None]:
    yield
    if FIGURES:
        print("\nissue 18 figures:")
        for name, value in FIGURES.items():
            print(f"  {name}: {value}")
