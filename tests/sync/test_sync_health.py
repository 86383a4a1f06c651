"""Health per (channel, job) through the engine, against the test shop: failures logged
once, recovery logged once, one job's success leaving another's failures, refused
credentials, ``status`` in words, ``/healthz`` and its metric, the health port in use,
stopping retries at shutdown, and the job table."""

# ruff: noqa: F811  (the tests take open_sync, a fixture imported from test_sync_engine)

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, select, text

from sellable.config import ChannelSettings, Settings
from sellable.errors import ConfigError
from sellable.sdk import Capability
from sellable.store import schema
from sellable.sync.engine import SyncEngine
from sellable.sync.health import Health
from sellable.sync.jobs import JOB_TABLE, job_spec
from sellable.sync.locks import JobLocks, SingleInstance, run_is_live
from sellable.sync.metrics import Metrics
from sellable.sync.scheduler import Scheduler
from sellable.sync.service import HealthServer
from sellable.sync.state import AUTH_REFUSED, SyncState
from sellable.sync.status import channel_status, open_runs, render_status
from tests.sync.test_daemon import wait_for
from tests.sync.test_health import WALL, FakeClock
from tests.sync.test_sync_engine import (  # noqa: F401  (open_sync is a fixture)
    LISTED,
    SQLITE_ONLY,
    TOKEN,
    OpenSync,
    Sync,
    open_sync,
    sellable_cli,
    sellable_of,
    subprocess_env,
)

FAULT_500 = {"status": 500}


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engines() -> Iterator[list[SyncEngine]]:
    opened: list[SyncEngine] = []
    yield opened
    for engine in opened:
        engine.close()


def engine_on(
    sync: Sync,
    fake: FakeClock,
    engines: list[SyncEngine],
    settings: Settings | None = None,
    **http_options: Any,
) -> SyncEngine:
    """Another engine on the sync's store and shop, whose health reads the fake clock."""
    engine = SyncEngine(
        sync.store.engine,
        settings or sync.store.settings,
        http_options={"sleep": lambda _s: None, "backoff_base": 0.0, "max_attempts": 2}
        | http_options,
        health=Health(timedelta(seconds=60), clock=fake.clock, wall=fake.wall),
        now=fake.wall,
    )
    engines.append(engine)
    return engine


def fail_next(sync: Sync, requests: int = 2) -> None:
    """The next ``requests`` requests to the shop answer HTTP 500 (outlasting 2 attempts)."""
    sync.state.faults.extend(dict(FAULT_500) for _ in range(requests))


def sample(engine: SyncEngine, name: str, **labels: str) -> float | None:
    return engine.metrics.registry.get_sample_value(name, labels)


# -- one job's success does not hide another job's failure (defects 3 and 6) ---------------------


@SQLITE_ONLY
def test_sync_health_failing_order_pull_makes_the_channel_degraded_whatever_push_does(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    engine.run_job("shop", "listings")
    fail_next(sync)

    failed = engine.run_job("shop", "orders")
    pushes = [engine.run_job("shop", "push") for _ in range(3)]  # nothing to send: ok
    fake.advance(60)
    within = engine.health_report()
    fake.advance(1)
    report = engine.health_report()

    assert not failed.ok and all(p.ok for p in pushes)
    assert (within["status"], within["channels"]["shop"]["status"]) == ("failing", "failing")
    assert within["channels"]["shop"]["degraded"] is False
    assert report["status"] == "degraded"
    shop = report["channels"]["shop"]
    assert (shop["status"], shop["degraded"]) == ("failing", True)
    orders = shop["jobs"]["orders"]
    assert (orders["ok"], orders["failures_in_a_row"]) == (False, 1)
    assert "HTTP 500" in orders["last_error"]
    assert orders["failing_since"] == WALL.isoformat()
    assert shop["jobs"]["push"]["ok"] is True
    assert sample(engine, "sellable_job_seconds_since_success", channel="shop", job="orders") == 61
    assert sample(engine, "sellable_job_seconds_since_success", channel="shop", job="push") == 61

    assert engine.run_job("shop", "orders").ok
    assert engine.health_report()["status"] == "ok"
    assert sample(engine, "sellable_job_seconds_since_success", channel="shop", job="orders") == 0


@SQLITE_ONLY
def test_sync_health_logs_a_failing_job_once_and_its_recovery_once(
    open_sync: OpenSync,
    fake: FakeClock,
    engines: list[SyncEngine],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    caplog.set_level(logging.DEBUG, logger="sellable")

    fail_next(sync)  # 2 attempts while healthy
    engine.run_job("shop", "orders")
    for _ in range(2):
        fail_next(sync, 1)  # then one attempt per run while the channel fails
        engine.run_job("shop", "orders")
    engine.run_job("shop", "orders")
    engine.run_job("shop", "orders")

    mine = [r for r in caplog.records if r.name.startswith("sellable")]
    told = [r.getMessage() for r in mine if r.levelno >= logging.INFO]
    assert len(told) == 4, told
    assert told[0].startswith("channel=shop job=orders failing: shop: GET /orders: HTTP 500")
    assert told[1].startswith("channel=shop job=orders ok ")
    assert told[2] == (
        "channel=shop recovered: job=orders succeeds again after 0s and 3 failed run(s) since "
        f"{WALL.isoformat()}"
    )
    assert told[3].startswith("channel=shop job=orders ok ")
    assert [r.levelno for r in mine if "failed again" in r.getMessage()] == [logging.DEBUG] * 2
    ok_lines = [r for r in mine if " ok " in r.getMessage()]
    assert (ok_lines[0].channel, ok_lines[0].job) == ("shop", "orders")  # type: ignore[attr-defined]
    assert ok_lines[0].counts["orders"] == 0  # type: ignore[attr-defined]


# -- refused credentials -------------------------------------------------------------------------


def test_sync_health_refused_credentials_stop_the_channels_jobs_but_the_order_probe(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync()
    sync.state.token = "rotated"  # our key is refused: HTTP 401

    listings = sync.run("listings")
    skipped = [sync.run("push"), sync.run("reconcile"), sync.run("listings")]
    probe = sync.run("orders")
    requests = sync.state.requests
    (report,) = channel_status(sync.engine)
    text_status = sellable_cli(config_file, plugin_env, "status")
    restarted = open_sync()  # same configuration: still refused
    still = restarted.run("push")

    assert (listings.ok, probe.ok) == (False, False)
    assert "HTTP 401" in str(probe.error)
    for result in (*skipped, still):
        assert str(result.skipped).startswith("authentication refused since "), result
    assert requests == 2  # the refused listing refresh and the probe, nothing in between
    # "failing" like any channel that does not sync; the flag and the words say why.
    assert (report["health"], report["authentication_refused"]) == ("failing", True)
    assert report["healthy"] is False
    line = next(x for x in text_status.stdout.splitlines() if "authentication refused" in x)
    assert line.startswith(f"  authentication refused since {report['failing_since']} (")
    assert "credentials refused" in line

    sync.state.token = TOKEN  # the shop takes our key again
    accepted = restarted.run("orders")
    runs = [restarted.run(job) for job in ("listings", "reconcile", "push")]

    assert accepted.ok, accepted.error
    assert [(r.ok, r.skipped) for r in runs] == [(True, None)] * 3
    (report,) = channel_status(restarted.engine)
    assert (report["health"], report["last_error"], report["failing_jobs"]) == ("healthy", None, {})
    assert "  healthy" in render_status([report]).splitlines()


@SQLITE_ONLY
def test_sync_health_a_changed_configuration_clears_refused_credentials(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync()
    sync.state.token = "rotated"
    sync.run("listings")
    assert sync.engine.health.auth_refused("shop") is not None

    channel = sync.store.settings.channels[0]
    changed = channel.model_copy(update={"settings": {**channel.settings, "token": "rotated"}})
    settings = sync.store.settings.model_copy(update={"channels": [changed]})
    same = engine_on(sync, fake, engines)
    restarted = engine_on(sync, fake, engines, settings=settings)

    assert same.health.auth_refused("shop") is not None
    assert restarted.health.auth_refused("shop") is None
    assert restarted.state.auth_refused_mark("shop") is None  # forgotten in the store too
    result = restarted.run_job("shop", "listings")
    assert (result.ok, result.skipped) == (True, None), result


# -- status in words -----------------------------------------------------------------------------


@SQLITE_ONLY
def test_sync_status_says_failing_since_with_the_last_error_and_clears_it_on_recovery(
    open_sync: OpenSync,
) -> None:
    sync = open_sync(max_attempts=2)
    sync.run_once()
    (healthy,) = channel_status(sync.engine)
    fail_next(sync)
    sync.run("orders")
    fail_next(sync, 1)  # a failing channel gets one attempt per run
    sync.run("orders")
    (failing,) = channel_status(sync.engine)
    sync.run("orders")
    (recovered,) = channel_status(sync.engine)

    assert (healthy["health"], healthy["last_error"]) == ("healthy", None)
    assert failing["health"] == "failing" and failing["healthy"] is False
    (orders,) = failing["failing_jobs"].values()
    assert orders["failures_in_a_row"] == 2
    assert failing["failing_since"] == orders["since"]
    error = failing["last_error"]
    assert error["job"] == "orders" and "HTTP 500" in error["error"]
    assert (
        f"  failing since {orders['since']} (last error orders: {error['error']} at {error['at']})"
        in render_status([failing]).splitlines()
    )
    assert (recovered["health"], recovered["last_error"], recovered["healthy"]) == (
        "healthy",
        None,
        True,
    )
    assert "  healthy" in render_status([recovered]).splitlines()


# -- /healthz and the health port ----------------------------------------------------------------


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@SQLITE_ONLY
@pytest.mark.parametrize(("strict", "expected"), [(False, 200), (True, 503)], ids=["lax", "strict"])
def test_sync_healthz_says_failing_then_degraded_and_answers_503_only_when_strict(
    open_sync: OpenSync,
    fake: FakeClock,
    engines: list[SyncEngine],
    strict: bool,
    expected: int,
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    server = HealthServer("127.0.0.1:0", engine, engine.metrics, strict=strict)
    server.start()
    try:
        fail_next(sync)
        engine.run_job("shop", "orders")
        before = get(f"http://{server.address}/healthz")
        fake.advance(61)
        degraded = get(f"http://{server.address}/healthz")
    finally:
        server.stop()

    assert (before[0], before[1]["status"]) == (expected, "failing")
    assert (degraded[0], degraded[1]["status"]) == (expected, "degraded")
    assert degraded[1]["channels"]["shop"]["jobs"]["orders"]["failures_in_a_row"] == 1


@SQLITE_ONLY
def test_sync_health_port_in_use_is_a_configuration_error_naming_address_and_key(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as raised:
            HealthServer(f"127.0.0.1:{port}", sync.engine, Metrics())
        with config_file.open("a") as handle:
            handle.write(f'\n[daemon]\nhttp_listen = "127.0.0.1:{port}"\n')
        cli = sellable_cli(config_file, plugin_env, "run")

    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message and "daemon.http_listen" in message
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"127.0.0.1:{port}" in cli.stderr and "daemon.http_listen" in cli.stderr
    assert "Traceback" not in cli.stdout + cli.stderr


# -- shutdown ------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_sync_stopping_engine_starts_no_http_retry(open_sync: OpenSync) -> None:
    sync: Sync

    def stop_at_first_answer(response: httpx.Response) -> None:
        sync.engine.stopping.set()  # SIGTERM arrives while the request is in flight

    sync = open_sync(on_response=stop_at_first_answer)
    fail_next(sync, 5)
    before = sync.state.requests

    result = sync.run("orders")

    assert result.ok is False
    assert sync.state.requests - before == 1  # not 5 attempts
    assert sync.engine.channels["shop"].http.retries == 0


# -- the scheduler -------------------------------------------------------------------------------


@SQLITE_ONLY
def test_scheduler_logs_a_run_failing_outside_its_job_at_error_with_the_traceback(
    open_sync: OpenSync, caplog: pytest.LogCaptureFixture
) -> None:
    sync = open_sync()
    with sync.store.engine.begin() as connection:  # the store cannot record runs any more
        connection.execute(text(f"DROP TABLE {schema.job_runs.name}"))
    scheduler = Scheduler(sync.engine, sync.store.settings)

    with caplog.at_level(logging.DEBUG, logger="sellable.scheduler"):
        scheduler.run("shop", "push")

    (record,) = [r for r in caplog.records if r.name == "sellable.scheduler"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "channel=shop job=push: run failed outside the job"
    assert record.exc_info is not None and "job_runs" in str(record.exc_info[1])


# -- the job table, the page limit, manual channels ----------------------------------------------


def test_sync_job_table_names_each_job_once_with_its_capability_and_interval() -> None:
    assert [(s.name, s.capability, s.interval_key) for s in JOB_TABLE] == [
        ("listings", Capability.LIST_LISTINGS, "refresh_listings_every"),
        ("stock", Capability.PULL_STOCK, "pull_stock_every"),
        ("orders", Capability.PULL_ORDERS, "pull_orders_every"),
        ("fulfil", Capability.FULFIL_ORDERS, "fulfil_every"),
        ("shipments", Capability.FULFIL_ORDERS, "pull_shipments_every"),
        ("reconcile", Capability.PUSH_QUANTITIES, "reconcile_every"),
        ("push", Capability.PUSH_QUANTITIES, "push_every"),
    ]
    assert [s.first_delay for s in JOB_TABLE] == sorted(s.first_delay for s in JOB_TABLE)
    for spec in JOB_TABLE:
        assert spec.interval_key in ChannelSettings.model_fields
    with pytest.raises(ConfigError, match=r"unknown job 'nope' \(known: listings, stock, "):
        job_spec("nope")


@SQLITE_ONLY
def test_sync_job_the_connector_cannot_do_is_skipped_saying_so(open_sync: OpenSync) -> None:
    sync = open_sync()

    assert sync.run("stock").skipped == "connector cannot pull stock"


@SQLITE_ONLY
def test_sync_order_pull_stopped_by_the_page_limit_keeps_the_cursor(open_sync: OpenSync) -> None:
    sync = open_sync(settings="page_size = 1")
    for n in range(3):
        sync.state.place_order(str(n), [("MUG-CERAMIC", 1)])
    sync.engine.max_pages = 2

    limited = sync.run("orders")
    limited_cursor = sync.cursor()
    sync.engine.max_pages = SyncEngine.max_pages
    full = sync.run("orders")

    assert limited.ok, limited.error
    assert (limited.counts["orders"], limited.counts["page_limit"]) == (2, 2)
    assert limited_cursor is None
    assert full.counts["orders"] == 3 and "page_limit" not in full.counts
    assert sync.cursor() is not None
    assert sync.levels("MUG-CERAMIC") == (30, 3)


@SQLITE_ONLY
def test_sync_engine_leaves_manual_channels_alone(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync()
    settings = sync.store.settings
    manual = ChannelSettings(code="phone", connector="manual", warehouses=["main"])
    with_manual = settings.model_copy(update={"channels": [*settings.channels, manual]})

    engine = engine_on(sync, fake, engines, settings=with_manual)

    assert list(engine.channels) == ["shop"]
    assert {r.channel for r in engine.run_once()} == {"shop"}


@SQLITE_ONLY
def test_sync_auth_mark_is_kept_in_the_store(open_sync: OpenSync) -> None:
    sync = open_sync()
    sync.state.token = "rotated"
    sync.run("listings")

    with sync.store.engine.connect() as connection:
        c = schema.channel_cursors.c
        jobs = [
            row.job
            for row in connection.execute(
                schema.channel_cursors.select().where(c.channel == "shop")
            )
        ]

    assert AUTH_REFUSED in jobs
    mark = sync.engine.state.auth_refused_mark("shop")
    assert mark is not None and "HTTP 401" in mark[1]
    assert TOKEN not in json.dumps(mark[1]) and "rotated" not in json.dumps(mark[1])


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("strict", "query", "expected"),
    [
        pytest.param(False, "?strict=1", 503, id="lax-asked-strict"),
        pytest.param(True, "?strict=0", 200, id="strict-asked-lax"),
        pytest.param(False, "", 200, id="lax"),
        pytest.param(False, "?strict=yes", 400, id="unreadable"),
    ],
)
def test_sync_healthz_strict_query_overrides_the_setting_for_one_request(
    open_sync: OpenSync,
    fake: FakeClock,
    engines: list[SyncEngine],
    strict: bool,
    query: str,
    expected: int,
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    server = HealthServer("127.0.0.1:0", engine, engine.metrics, strict=strict)
    server.start()
    try:
        fail_next(sync)
        engine.run_job("shop", "orders")
        try:
            with urllib.request.urlopen(
                f"http://{server.address}/healthz{query}", timeout=10
            ) as response:
                code, body = response.status, response.read()
        except urllib.error.HTTPError as err:
            code, body = err.code, err.read()
    finally:
        server.stop()

    assert code == expected
    if expected == 400:
        assert body == b"strict must be 0 or 1\n"
    else:
        assert json.loads(body)["status"] == "failing"


@SQLITE_ONLY
def test_sync_health_a_restarted_engine_says_failing_as_status_does_until_the_job_succeeds(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync(max_attempts=2)
    sync.run_once()
    fail_next(sync)
    sync.run("orders")
    (before,) = channel_status(sync.engine)
    assert before["health"] == "failing"

    restarted = engine_on(sync, fake, engines)

    # Before any run: /healthz's view (the engine's health) agrees with status (the store).
    assert restarted.health.state("shop") == "failing"
    assert restarted.health.job("shop", "orders").failing
    assert restarted.health.job("shop", "listings").failing is False
    (after,) = channel_status(restarted)
    assert after["health"] == "failing"
    result = restarted.run_job("shop", "orders")
    assert result.ok, result
    assert restarted.health.state("shop") == "healthy"


# -- a channel that does not sync never looks healthy ---------------------------------------------

#: The default intervals (pull 2 min, push 5 min) twice, plus degraded_after (60 s).
ORDERS_DUE, PUSH_DUE = 2 * 120 + 60, 2 * 300 + 60


@SQLITE_ONLY
def test_sync_health_a_pull_that_stops_succeeding_goes_stale_without_any_failed_run(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    assert all(r.ok for r in engine.run_once())
    fake.advance(ORDERS_DUE)
    within = engine.health_report()
    (said_within,) = channel_status(engine)
    fake.advance(1)  # a hung pull, a stopped scheduler: no run ends, none fails
    stale = engine.health_report()
    (said,) = channel_status(engine)

    assert (within["status"], within["channels"]["shop"]["overdue_jobs"]) == ("ok", {})
    assert (said_within["health"], said_within["stale_jobs"]) == ("healthy", {})
    assert stale["status"] == "degraded"
    shop = stale["channels"]["shop"]
    assert (shop["status"], shop["degraded"], shop["jobs"]["orders"]["ok"]) == ("stale", True, True)
    assert shop["overdue_jobs"] == {
        "orders": {"seconds_since_success": ORDERS_DUE + 1, "due_within_seconds": ORDERS_DUE}
    }
    assert (said["health"], said["healthy"], said["failing_jobs"]) == ("stale", False, {})
    assert said["stale_jobs"] == {
        "orders": {
            "last_success": WALL.isoformat(),
            "never_ran": False,
            "due_within_seconds": ORDERS_DUE,
        }
    }
    assert render_status([said]).splitlines()[3] == (
        f"  not syncing: its order pull has not succeeded since {WALL.isoformat()} (due "
        "within 5m); is the daemon running?"
    )

    # The pull succeeds again: healthy; the reconcile's push at the start still counts
    # for the push, until it too is overdue.
    assert engine.run_job("shop", "orders").ok
    assert engine.health_report()["status"] == "ok"
    assert channel_status(engine)[0]["health"] == "healthy"
    fake.advance(PUSH_DUE - ORDERS_DUE)
    assert engine.run_job("shop", "orders").ok
    late = engine.health_report()["channels"]["shop"]
    (said_late,) = channel_status(engine)
    assert (late["status"], list(late["overdue_jobs"])) == ("stale", ["push"])
    assert (said_late["health"], list(said_late["stale_jobs"])) == ("stale", ["push"])
    assert engine.run_job("shop", "push").ok
    assert engine.health_report()["status"] == "ok"
    assert channel_status(engine)[0]["health"] == "healthy"


@SQLITE_ONLY
def test_sync_health_a_daemon_that_never_pulls_is_stale_counted_from_its_start(
    open_sync: OpenSync, fake: FakeClock, engines: list[SyncEngine]
) -> None:
    sync = open_sync()
    engine = engine_on(sync, fake, engines)
    fake.advance(ORDERS_DUE)
    starting = engine.health_report()
    fake.advance(1)
    report = engine.health_report()

    assert starting["status"] == "ok"
    assert report["status"] == "degraded"
    assert report["channels"]["shop"]["overdue_jobs"] == {
        "orders": {"seconds_since_success": ORDERS_DUE + 1, "due_within_seconds": ORDERS_DUE}
    }


def test_sync_status_of_a_channel_that_never_ran_says_it_does_not_sync(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()

    (never,) = channel_status(sync.engine)

    assert (never["health"], never["healthy"], never["last_successful_pull"]) == (
        "stale",
        False,
        None,
    )
    assert never["stale_jobs"] == {
        "orders": {"last_success": None, "never_ran": True, "due_within_seconds": ORDERS_DUE},
        "push": {"last_success": None, "never_ran": True, "due_within_seconds": PUSH_DUE},
    }
    assert render_status([never]).splitlines()[3] == (
        "  not syncing: its order pull has never run (due within 5m); its push has never "
        "run (due within 11m); is the daemon running?"
    )
    sync.run_once()
    assert channel_status(sync.engine)[0]["health"] == "healthy"


def test_sync_status_calls_a_run_left_open_by_a_dead_daemon_interrupted_and_a_start_closes_it(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    assert all(r.ok for r in sync.run_once().values())
    # What a daemon killed during an order pull leaves: a run that started, never finished.
    run_id = sync.engine.state.start_run("shop", "orders")

    (left,) = channel_status(sync.engine)
    live = lambda _code, _job: True  # noqa: E731
    running, interrupted = open_runs_of(sync, live)
    closed = sync.engine.state.close_interrupted(live)
    closed_dead = sync.engine.state.close_interrupted(lambda _code, _job: False)
    (after,) = channel_status(sync.engine)
    restarted = SyncEngine(sync.store.engine, sync.store.settings)
    try:
        restarted_state = restarted.health.state("shop")
        recovered = restarted.run_job("shop", "orders")
        (healed,) = channel_status(restarted)
    finally:
        restarted.close()

    # No daemon holds the database (SQLite) / no session holds the job's lock (PostgreSQL).
    assert (left["health"], left["running_jobs"]) == ("failing", {})
    orders = left["failing_jobs"]["orders"]
    assert orders["interrupted"] is True and orders["failures_in_a_row"] == 1
    assert orders["error"].startswith("interrupted: the run started at ")
    assert left["last_error"]["job"] == "orders"
    assert list(running) == ["orders"] and interrupted == {}
    assert closed == [] and closed_dead == [("shop", "orders")]
    with sync.store.engine.connect() as connection:
        row = connection.execute(
            schema.job_runs.select().where(schema.job_runs.c.id == run_id)
        ).one()
    assert (row.ok, row.finished_at is not None) == (False, True)
    assert row.error.startswith("interrupted: the run started at ")
    assert after["health"] == "failing" and "interrupted" not in after["failing_jobs"]["orders"]
    assert restarted_state == "failing"  # a restarted daemon says so until the pull succeeds
    assert recovered.ok and healed["health"] == "healthy"


def open_runs_of(sync: Sync, live: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    with sync.store.engine.connect() as connection:
        return open_runs(connection, "shop", live)


@pytest.mark.postgres
def test_sync_run_is_live_on_postgresql_while_a_session_holds_its_job_lock(
    postgres_url: str,
) -> None:
    db = create_engine(postgres_url)
    try:
        locks = JobLocks(db)
        live = run_is_live(db)
        before = live("shop", "orders")
        with locks.hold("shop:orders") as acquired:
            during = (live("shop", "orders"), live("shop", "push"), live("other", "orders"))
        after = live("shop", "orders")
    finally:
        db.dispose()

    assert acquired is True
    assert (before, during, after) == (False, (True, False, False), False)


def test_sync_run_is_live_on_sqlite_only_while_a_live_daemon_holds_the_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "s.db"
    db = create_engine(f"sqlite:///{database}")
    try:
        nobody = run_is_live(db)("shop", "orders")
        single = SingleInstance(str(database))
        single.acquire()
        held = run_is_live(db)("shop", "orders")
        single.release()
        # What a SIGKILL leaves: the pid file of a process that is gone.
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(f"{database}.pid").write_text(dead)
        killed = run_is_live(db)("shop", "orders")
    finally:
        db.dispose()

    assert (nobody, held, killed) == (False, True, False)


def test_sync_prune_runs_keeps_each_jobs_latest_run_and_latest_success(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    moment = [WALL - timedelta(days=200)]
    state = SyncState(sync.store.engine, lambda: moment[0])

    def run(job: str, ok: bool) -> int:
        run_id = state.start_run("shop", job)
        state.finish_run(run_id, ok, {}, None if ok else "HTTP 500")
        moment[0] += timedelta(days=1)
        return run_id

    old_ok = run("orders", True)
    old_failed = [run("orders", False) for _ in range(3)]
    pushes = [run("push", True) for _ in range(5)]
    moment[0] = WALL
    recent = run("listings", True)

    deleted = state.prune_runs(WALL - timedelta(days=90), batch=2)
    again = state.prune_runs(WALL - timedelta(days=90))
    with sync.store.engine.connect() as connection:
        left = set(connection.execute(select(schema.job_runs.c.id)).scalars())

    assert (deleted, again) == (6, 0)
    assert left == {old_ok, old_failed[-1], pushes[-1], recent}


@SQLITE_ONLY
def test_scheduler_housekeeping_deletes_old_runs_and_logs_how_many(
    open_sync: OpenSync, caplog: pytest.LogCaptureFixture
) -> None:
    sync = open_sync()
    old = SyncState(sync.store.engine, lambda: sync.engine.now() - timedelta(days=91))
    for ok in (True, True, True):
        old.finish_run(old.start_run("shop", "orders"), ok, {}, None)
    scheduler = Scheduler(sync.engine, sync.store.settings)

    with caplog.at_level(logging.INFO, logger="sellable.scheduler"):
        scheduler.housekeeping()
        scheduler.housekeeping()

    said = [r.getMessage() for r in caplog.records if r.name == "sellable.scheduler"]
    assert len(said) == 1 and said[0].startswith("housekeeping: 2 job run(s) started before ")


@SQLITE_ONLY
def test_sync_once_holds_the_sqlite_database_so_its_run_reads_running_and_a_daemon_waits(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    """A one-pass ``sellable sync --once`` holds the SQLite database as the daemon does:
    while it runs, ``status`` shows its run as running (not "interrupted", as when nobody
    held the database), a daemon started meanwhile refuses to run beside it, and once it
    is done the database is free again."""
    sync = open_sync()
    database = make_url(sync.store.settings.database.url.get_secret_value()).database
    assert database is not None
    holder = SingleInstance(database)
    command = [sys.executable, "-m", "sellable", "--config", str(config_file), "sync", "--once"]
    env = subprocess_env(plugin_env)
    with sync.state.lock:  # every shop request waits: the one pass stops in its first job
        one_pass = subprocess.Popen(
            command, env=env, cwd=config_file.parent, stdout=subprocess.PIPE, text=True
        )

        def first_run() -> tuple[dict[str, Any], dict[str, Any]] | None:
            with sync.store.engine.connect() as connection:
                found = open_runs(connection, "shop", run_is_live(sync.store.engine))
            return found if any(found) or one_pass.poll() is not None else None

        running, interrupted = wait_for("the one pass to start its first job", first_run)
        (shop,) = json.loads(sellable_cli(config_file, plugin_env, "status", "--json").stdout)
        daemon = sellable_cli(config_file, plugin_env, "run")
        held_by = holder.holder()
    out, _ = one_pass.communicate(timeout=120)

    assert list(running) == ["listings"] and interrupted == {}
    assert list(shop["running_jobs"]) == ["listings"]
    assert "listings" not in shop["failing_jobs"]
    assert held_by == one_pass.pid
    assert daemon.returncode == 2
    assert (
        f"another sellable sync --once (pid {one_pass.pid}) already runs on this SQLite "
        "database" in daemon.stderr
    )
    assert "wait for it to finish" in daemon.stderr
    assert one_pass.returncode == 0, out
    assert holder.holder() is None  # released: the pid file is gone
    assert sync.quantities() == sellable_of(*LISTED)


@SQLITE_ONLY
def test_sync_once_refuses_to_run_beside_a_daemon_on_sqlite(
    open_sync: OpenSync, config_file: Path, plugin_env: dict[str, str]
) -> None:
    sync = open_sync()
    database = make_url(sync.store.settings.database.url.get_secret_value()).database
    assert database is not None
    daemon = SingleInstance(database)  # this process holds it, as a daemon would
    daemon.acquire()
    try:
        refused = sellable_cli(config_file, plugin_env, "sync", "--once")
    finally:
        daemon.release()

    assert refused.returncode == 2
    assert (
        f"another sellable daemon (pid {os.getpid()}) already runs on this SQLite database"
        in refused.stderr
    )
    assert "stop it to run them from here, or use PostgreSQL" in refused.stderr
    assert sync.pushes() == []  # nothing ran
    assert sellable_cli(config_file, plugin_env, "sync", "--once").returncode == 0
