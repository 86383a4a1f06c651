"""The daemon end to end: ``python -m sellable --config CFG run`` in subprocesses that find
the pip-installed testshop plugin, against the shop on loopback.

Nothing here waits a fixed time: each step polls for the state it needs (the shop's
quantities, rows in the store, a line in the daemon's log) within a bounded deadline.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from sellable.imports import import_stock
from sellable.store import schema
from sellable.sync.engine import SyncEngine
from sellable.sync.status import channel_status
from tests.imports import WAREHOUSES_TOML, Store, open_store
from tests.sync.test_sync_engine import (
    LISTED,
    SELLABLE,
    TOKEN,
    allocation_moves,
    channel_toml,
    levels,
    listing,
    sellable_cli,
    sellable_of,
    subprocess_env,
)

if TYPE_CHECKING:
    from sellable_testshop.server import TestShopServer

T = TypeVar("T")

FAST_CHANNEL = """
pull_orders_every = "1s"
push_every = "1s"
refresh_listings_every = "1s"
reconcile_every = "1h"
"""
DAEMON_TOML = """
[daemon]
http_listen = "127.0.0.1:0"
push_debounce = "0s"
jitter = "{jitter}"
shutdown_timeout = "{shutdown}"
"""
EXIT_WITHIN = 10.0  # seconds a signalled daemon may take to exit


def wait_for(what: str, condition: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


class Daemon:
    """One ``sellable run`` subprocess; its stderr and stdout go to ``log``."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sellable", "--config", str(config), "run"],
                env=subprocess_env(env),
                cwd=config.parent,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self.url = ""
        self.stopped = False  # set once we stop or kill it on purpose

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def running(self) -> bool:
        """True while it runs; fails the test when it died on its own."""
        if not self.stopped and not self.alive():
            pytest.fail(f"daemon exited with {self.process.returncode}:\n{self.output()}")
        return True

    def wait_running(self) -> str:
        """Wait for the daemon's "running" line; returns the health server's base URL."""

        def address() -> str | None:
            found = re.search(r"health and metrics on (http://\S+)", self.output())
            return found.group(1) if self.running() and found else None

        self.url = wait_for("the daemon to run", address)
        return self.url

    def get(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) of GET ``path`` on the health server."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read()
        except OSError as err:  # refused or cut: the daemon is going or gone
            return 0, "", str(err).encode()

    def send(self, sig: int) -> float:
        """Send ``sig``; returns when, for :meth:`wait_exit`."""
        self.stopped = True
        sent = time.monotonic()
        self.process.send_signal(sig)
        return sent

    def wait_exit(self, sent: float) -> tuple[int, float]:
        """(exit code, seconds since ``sent``)."""
        try:
            code = self.process.wait(timeout=EXIT_WITHIN + 5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon did not exit after a signal:\n{self.output()}")
        return code, time.monotonic() - sent

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """Send ``sig`` and wait for the exit: (exit code, seconds it took)."""
        return self.wait_exit(self.send(sig))

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        self.stopped = True
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=30)


@dataclass
class Site:
    """A store with the example catalog, the shop, and a daemon configuration for both."""

    store: Store
    shop: TestShopServer
    config: Path
    env: dict[str, str]
    started: list[Daemon]

    def daemon(self) -> Daemon:
        daemon = Daemon(
            self.config, self.env, self.config.parent / f"daemon-{len(self.started)}.log"
        )
        self.started.append(daemon)
        return daemon

    def quantities(self) -> dict[str, int]:
        with self.shop.state.lock:
            return {lid: item["quantity"] for lid, item in self.shop.state.listings.items()}

    def quantities_become(self, expected: dict[str, int]) -> dict[str, int]:
        """Wait until the shop shows ``expected`` (for the listings it names)."""

        def converged() -> bool:
            for daemon in self.started:
                daemon.running()
            shown = self.quantities()
            return all(shown.get(lid) == q for lid, q in expected.items())

        wait_for(f"the shop to show {expected} (shows {self.quantities()})", converged)
        return self.quantities()

    def count(self, table: Any) -> int:
        with self.store.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    def job_runs(self) -> list[tuple[str, str, datetime, datetime | None]]:
        """(channel, job, started at, finished at) of every recorded run."""
        runs = schema.job_runs.c
        with self.store.engine.connect() as connection:
            return [
                (r.channel, r.job, r.started_at, r.finished_at)
                for r in connection.execute(
                    select(runs.channel, runs.job, runs.started_at, runs.finished_at)
                )
            ]


OpenSite = Callable[..., Site]


@pytest.fixture
def open_site(
    tmp_path: Path, testshop: TestShopServer, plugin_env: dict[str, str]
) -> Iterator[OpenSite]:
    """``open_site(database_url, options=..., settings=..., listed=..., jitter=...)``: a
    configuration for the shop with fast intervals and the health server on a free port,
    the example catalog in its database, the shop listing ``listed``; ``site.daemon()``
    starts a daemon, and every daemon still running at the end is killed."""
    sites: list[Site] = []

    def open_(
        database_url: str,
        *,
        options: str = FAST_CHANNEL,
        settings: str = "",
        token: str = TOKEN,
        listed: tuple[str, ...] = LISTED,
        jitter: str = "0s",
        shutdown: str = "5s",
    ) -> Site:
        config = tmp_path / "sellable.toml"
        config.write_text(
            f'[database]\nurl = "{database_url}"\n{WAREHOUSES_TOML}'
            + channel_toml(testshop.url, token=token, options=options, settings=settings)
            + DAEMON_TOML.format(jitter=jitter, shutdown=shutdown)
        )
        store = open_store(config)
        store.load_examples()
        for sku in listed:
            testshop.state.add_listing(listing(sku), sku)
        site = Site(store, testshop, config, plugin_env, [])
        sites.append(site)
        return site

    yield open_
    for site in sites:
        for daemon in site.started:
            daemon.kill()
        site.store.engine.dispose()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sellable.db'}"


def metric_samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from Prometheus text."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


# -- health, metrics and pushing -----------------------------------------------------------------


def test_daemon_serves_health_and_metrics_and_keeps_the_shop_in_step(
    open_site: OpenSite, database_url: str
) -> None:
    site = open_site(database_url)
    daemon = site.daemon()
    daemon.wait_running()

    site.quantities_become(sellable_of(*LISTED))
    site.shop.state.place_order("1", [("MUG-CERAMIC", 3)])
    shown = site.quantities_become(
        sellable_of(*LISTED, MUG_CERAMIC=27, GIFT_SET_COFFEE=37, GIFT_KIT_COFFEE=27)
    )
    health = daemon.get("/healthz")
    shop = (("channel", "shop"),)

    def settled_metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        found = metric_samples(daemon.get("/metrics")[2])
        pushed = found.get(("sellable_pushed_listings_total", (*shop, ("outcome", "ok"))), 0)
        if (
            found.get(("sellable_orders_pulled_total", shop), 0) >= 1
            and pushed >= len(LISTED) + 3
            and found.get(("sellable_push_queue_depth", shop)) == 0
        ):
            return found
        return None

    metrics = wait_for("the order, the pushes and an empty queue in /metrics", settled_metrics)
    status, content_type, _ = daemon.get("/metrics")
    missing = daemon.get("/nothing-here")
    code, seconds = daemon.stop()

    assert shown == sellable_of(*LISTED, MUG_CERAMIC=27, GIFT_SET_COFFEE=37, GIFT_KIT_COFFEE=27)
    assert levels(site.store, "MUG-CERAMIC") == (30, 3)
    assert health[:2] == (200, "application/json")
    answer = json.loads(health[2])
    assert answer["status"] == "ok"
    assert answer["channels"]["shop"]["status"] == "healthy"
    assert answer["channels"]["shop"]["authentication_refused_since"] is None
    jobs = answer["channels"]["shop"]["jobs"]
    assert set(jobs) == {"listings", "orders", "push", "reconcile"}
    for job in jobs.values():
        assert (job["ok"], job["backing_off"], job["failures_in_a_row"]) == (True, False, 0)
        assert (job["failing_since"], job["last_error"]) == (None, None)
    assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert metrics[("sellable_channel_circuit_open", shop)] == 0
    for job in ("listings", "orders", "reconcile"):
        key = ("sellable_job_runs_total", (("channel", "shop"), ("job", job), ("outcome", "ok")))
        assert metrics[key] >= 1, job
    assert ("sellable_push_batch_seconds_count", shop) in metrics
    assert missing[0] == 404
    assert (code, seconds < EXIT_WITHIN) == (0, True)
    assert "sellable daemon stopped" in daemon.output()


# -- signals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_daemon_stops_cleanly_on_a_signal_in_the_middle_of_work(
    open_site: OpenSite, tmp_path: Path, sig: int
) -> None:
    # 2000 listings one per page: the listing refresh pages for seconds.
    site = open_site(sqlite_url(tmp_path), settings="page_size = 1", listed=())
    for n in range(2000):
        site.shop.state.add_listing(f"P-{n:04d}", "BEANS-12OZ")
    daemon = site.daemon()
    daemon.wait_running()
    wait_for(
        "the listing refresh to page",
        lambda: daemon.running() and site.shop.state.requests >= 30,
    )

    code, seconds = daemon.stop(sig)

    output = daemon.output()
    assert (code, seconds < EXIT_WITHIN) == (0, True), output
    assert site.shop.state.requests < 2000  # it stopped paging, it did not finish
    assert f"received {signal.Signals(sig).name}: stopping" in output
    assert "sellable daemon stopped" in output
    assert "Traceback" not in output


def test_daemon_abandons_a_hung_request_at_shutdown_and_exits_0(
    open_site: OpenSite, tmp_path: Path
) -> None:
    site = open_site(sqlite_url(tmp_path), shutdown="3s")
    site.shop.state.faults.append({"kind": "timeout", "seconds": 25.0})  # the first request hangs
    daemon = site.daemon()
    daemon.wait_running()
    wait_for("the hung request", lambda: daemon.running() and site.shop.state.requests >= 1)

    def health_while_stopping() -> tuple[int, str, bytes] | None:
        answer = daemon.get("/healthz")
        return answer if answer[0] == 503 or not daemon.alive() else None

    sent = daemon.send(signal.SIGTERM)
    # While it waits for the hung job, the health check says it is going away.
    stopping = wait_for(
        "/healthz to answer 503 or the daemon to exit", health_while_stopping, EXIT_WITHIN
    )
    code, seconds = daemon.wait_exit(sent)

    assert stopping[:2] == (503, "application/json"), stopping
    assert json.loads(stopping[2])["status"] == "stopping"
    assert (code, seconds < EXIT_WITHIN) == (0, True), daemon.output()
    assert "abandoning them and exiting" in daemon.output()


def test_daemon_stops_without_waiting_out_the_retries_of_a_dead_channel(
    open_site: OpenSite, tmp_path: Path
) -> None:
    site = open_site(sqlite_url(tmp_path))
    site.shop.state.faults.extend({"status": 500} for _ in range(1000))  # every answer fails
    # retries are logged at DEBUG (the engine logs a failing channel once, at ERROR)
    site.config.write_text('log_level = "DEBUG"\n' + site.config.read_text())
    daemon = site.daemon()
    daemon.wait_running()
    # After the third failed attempt the client backs off 1-3 s, then 2-6 s: a shutdown
    # that waited for the retries would run a fourth attempt. The log says which happened
    # (no wall-clock bound: a loaded machine can take seconds just to exit a process).
    wait_for(
        "a job backing off after its third attempt",
        lambda: daemon.running() and "attempt 3 failed" in daemon.output(),
    )

    code, seconds = daemon.stop()

    output = daemon.output()
    assert (code, seconds < EXIT_WITHIN) == (0, True), f"took {seconds:.1f}s\n{output}"
    assert "request abandoned at shutdown" in output, output
    assert "attempt 4 failed" not in output, output
    assert "abandoning them" not in output
    assert "sellable daemon stopped" in daemon.output()


TGKILL = {"x86_64": 234, "aarch64": 131}  # syscall numbers (Linux)


def signal_thread(pid: int, tid: int, sig: int) -> None:
    """Send ``sig`` to one thread of another process, as the kernel may choose to for a
    process-directed signal (POSIX lets any thread that does not block it take it)."""
    number = TGKILL.get(platform.machine())
    if number is None or sys.platform != "linux":
        pytest.skip(f"tgkill is not known on {sys.platform} {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {sig})")


def test_daemon_stops_when_the_kernel_hands_sigterm_to_a_worker_thread(
    open_site: OpenSite, tmp_path: Path
) -> None:
    site = open_site(sqlite_url(tmp_path))
    daemon = site.daemon()
    daemon.wait_running()
    worker = min(int(t) for t in os.listdir(f"/proc/{daemon.pid}/task") if int(t) != daemon.pid)

    sent = time.monotonic()
    daemon.stopped = True
    signal_thread(daemon.pid, worker, signal.SIGTERM)
    try:
        code: int | None = daemon.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None

    assert code == 0, f"still running {time.monotonic() - sent:.0f}s after SIGTERM"
    assert "received SIGTERM: stopping" in daemon.output()


# -- crash and restart ---------------------------------------------------------------------------


def test_daemon_killed_during_an_order_pull_loses_and_doubles_nothing(
    open_site: OpenSite, database_url: str
) -> None:
    orders = 800
    site = open_site(database_url, settings="page_size = 20")
    stock = site.store.csv(
        "stock.csv",
        "sku,warehouse,on_hand\nBEANS-12OZ,main,100000\nMUG-CERAMIC,main,100000\n"
        "SCOOP-WOOD,main,100000\n",
    )
    import_stock(site.store.engine, site.store.settings, stock)
    for n in range(orders):
        site.shop.state.place_order(f"{n:05d}", [("GIFT-KIT-COFFEE", 1)])

    first = site.daemon()
    first.wait_running()
    committed = wait_for(
        "some orders to be committed",
        lambda: first.running() and site.count(schema.orders),
    )
    first.kill()
    at_kill = site.count(schema.orders)
    # With no daemon left, status says the pull was interrupted, not that all is well (on
    # PostgreSQL once the server has dropped the dead session and its job lock).
    killed = wait_for(
        "status to call the killed pull interrupted",
        lambda: (said := offline_status(site))["health"] == "failing" and said,
    )
    second = site.daemon()
    second.wait_running()
    wait_for(
        f"all {orders} orders",
        lambda: second.running() and site.count(schema.orders) == orders,
        timeout=120,
    )
    left = 100000 - orders
    shown = site.quantities_become(
        sellable_of(
            *LISTED,
            BEANS_12OZ=left,
            MUG_CERAMIC=left,
            SCOOP_WOOD=left,
            GIFT_KIT_COFFEE=left,
            GIFT_SET_COFFEE=10 + left,
        )
    )
    healed = offline_status(site)  # while the second daemon runs
    code, _ = second.stop()
    runs = schema.job_runs.c
    with site.store.engine.connect() as connection:
        closed = connection.execute(
            select(runs.job, runs.ok).where(runs.error.startswith("interrupted: "))
        ).all()

    assert 0 < committed <= at_kill < orders, "the kill must land in the middle of the pull"
    assert killed["failing_jobs"]["orders"]["interrupted"] is True
    assert killed["running_jobs"] == {}
    assert ("orders", False) in closed  # the second daemon closed the killed run at its start
    assert (healed["health"], healed["failing_jobs"], healed["stale_jobs"]) == ("healthy", {}, {})
    assert code == 0
    moves = allocation_moves(site.store)
    assert len(moves) == orders
    assert set(moves.values()) == {3}  # beans, mug, scoop: once per order
    for sku in ("BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD"):
        assert levels(site.store, sku) == (100000, orders), sku
    assert site.store.ledger_mismatches() == []
    assert shown[listing("GIFT-KIT-COFFEE")] == left


# -- more than one daemon ------------------------------------------------------------------------


def test_daemon_second_one_on_the_same_sqlite_file_refuses_to_start(
    open_site: OpenSite, tmp_path: Path
) -> None:
    site = open_site(sqlite_url(tmp_path))
    first = site.daemon()
    first.wait_running()

    second = site.daemon()
    code = second.process.wait(timeout=60)

    assert code != 0
    assert (
        f"error: another sellable daemon (pid {first.pid}) already runs on this SQLite database"
        in second.output()
    )
    assert "use PostgreSQL" in second.output()
    assert first.alive()
    assert first.get("/healthz")[0] == 200
    assert first.stop()[0] == 0


@pytest.mark.postgres
def test_daemon_replicas_on_postgresql_run_each_job_in_one_place_and_log_no_secret(
    open_site: OpenSite, postgres_url: str, plugin_env: dict[str, str]
) -> None:
    # The test server trusts loopback, so a made-up password is accepted (and unused).
    given = make_url(postgres_url)
    password, token = given.password or "pw-SECRET-123", "tok-SECRET-456"
    url = given.set(password=password).render_as_string(hide_password=False)
    assert password in url
    site = open_site(url, token=token, settings="page_size = 5", jitter="1s")
    site.shop.state.token = token
    for n in range(100):
        site.shop.state.add_listing(f"X-{n:03d}", list(SELLABLE)[n % len(SELLABLE)])
    for n in range(30):
        site.shop.state.place_order(str(n), [("MUG-CERAMIC", 1)])
    daemons = [site.daemon(), site.daemon()]
    for daemon in daemons:
        daemon.wait_running()

    def enough_runs() -> bool:
        for daemon in daemons:
            daemon.running()
        jobs = [job for _c, job, _s, finished in site.job_runs() if finished is not None]
        return all(jobs.count(job) >= 3 for job in ("listings", "orders", "push"))

    wait_for("several runs of every job", enough_runs)
    site.quantities_become(
        sellable_of(*LISTED, MUG_CERAMIC=0, GIFT_KIT_COFFEE=0, GIFT_SET_COFFEE=10)
    )
    stops = [daemon.stop() for daemon in daemons]
    cli = sellable_cli(site.config, plugin_env, "-v", "sync", "--once")

    assert [code for code, _ in stops] == [0, 0]
    assert cli.returncode == 0, cli.stdout + cli.stderr
    by_job: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for channel, job, started, finished in site.job_runs():
        assert finished is not None, f"{channel} {job} run started {started} never finished"
        by_job.setdefault((channel, job), []).append((started, finished))
    for key, spans in by_job.items():
        spans.sort()
        for (_, finished), (started, _) in itertools.pairwise(spans):
            assert finished <= started, f"{key}: a run started at {started} before the last ended"
    for daemon in daemons:
        assert re.search(r"channel=shop job=\w+ ok", daemon.output()), daemon.output()
    # 30 mugs sold once each, whichever replica pulled them.
    assert levels(site.store, "MUG-CERAMIC") == (30, 30)
    assert allocation_moves(site.store) == {f"order shop:{n}": 1 for n in range(30)}
    logs = "".join(daemon.output() for daemon in daemons) + cli.stdout + cli.stderr
    assert "channel=shop" in logs
    for secret in (password, token):
        assert secret not in logs


def offline_status(site: Site) -> dict[str, Any]:
    """``sellable status``'s report of the shop, read from the store as the command does."""
    engine = SyncEngine(site.store.engine, site.store.settings)
    try:
        (report,) = channel_status(engine)
    finally:
        engine.close()
    return report
