"""Issue 4: the sync layer against a local channel server that answers at once.

* ``push``: ``SyncEngine.run_job("shop", "push")`` of ``--listings`` listings (one simple
  SKU each, all pending: the first push) to the testshop server of ``tests/plugins``,
  in the connector's batches of 50; listings/s and requests/s. The testshop connector
  declares ``RateLimit(rate=200, burst=50)``, which the framework obeys: 200 requests/s x
  50 listings = 10,000 listings/s is the ceiling of this figure, whatever the engine does.
* ``latency``: the real daemon (``python -m sellable --config CFG run``, a subprocess) with
  two testshop channels ``a`` and ``b`` selling from warehouse ``main``; an order placed on
  shop ``a`` until shop ``b`` shows the new quantity. Target: under 2 s plus ``a``'s order
  pull interval (2 s here).

The testshop package is installed with pip into ``DATA_DIR/plugins/`` (once per version of
its sources) and put on ``sys.path`` / ``PYTHONPATH``, as the tests do. The shop servers
run in this process (threads); the daemon of the latency figure in its own.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, update

from sellable.config import ChannelSettings, DatabaseSettings, Settings, WarehouseSettings
from sellable.store import schema
from sellable.store.db import create_db_engine, sync_warehouses, upgrade_schema

PROJECT = Path(__file__).resolve().parent.parent
TESTSHOP = PROJECT / "tests" / "plugins" / "testshop"
TOKEN = "bench-token"
PULL_INTERVAL_S = 2.0
LATENCY_SLACK_S = 2.0  # the target: under 2 s plus the pull interval
LATENCY_SKUS = 50
LATENCY_ON_HAND = 1_000
PIP_INSTALL = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps")


# -- the testshop plugin ------------------------------------------------------------------------


def ensure_plugin(data_dir: Path, log: Callable[[str], None], source: Path = TESTSHOP) -> Path:
    """pip-install the testshop package at ``source`` (default tests/plugins/testshop) into
    ``DATA_DIR/plugins/testshop-<hash of its sources>``, once per version of its sources."""
    digest = hashlib.blake2b(digest_size=6)
    sources = sorted((source / "sellable_testshop").glob("*.py"))
    for path in [source / "pyproject.toml", *sources]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    target = data_dir / "plugins" / f"testshop-{digest.hexdigest()}"
    if (target / "sellable_testshop").is_dir():
        return target
    log(f"  installing the testshop plugin from {source} into {target} (pip, cached) ...")
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [*PIP_INSTALL, "--target", str(tmp), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"pip install of the testshop plugin failed:\n{proc.stderr[-2000:]}")
    tmp.rename(target)
    return target


def activate_plugin(target: Path) -> None:
    """Make the installed plugin importable and discoverable in this process."""
    from sellable.sync.plugins import load_connector

    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
        importlib.invalidate_caches()
        load_connector.cache_clear()


def _env_with(plugin: Path) -> dict[str, str]:
    """This environment with the plugin on PYTHONPATH and no SELLABLE_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELLABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin), env.get("PYTHONPATH")) if p)
    return env


# -- a store of simple SKUs ---------------------------------------------------------------------


def simple_store(db: Engine, settings: Settings, on_hand: list[int]) -> list[str]:
    """Schema, warehouses, ``len(on_hand)`` simple SKUs ``SKU-nnnnnnn`` with stock in the
    first warehouse (and an opening Adjustment movement each). Returns the SKU codes."""
    upgrade_schema(db)
    warehouse_id = sync_warehouses(db, settings.warehouses)[settings.warehouses[0].code]
    codes = [f"SKU-{i:07d}" for i in range(len(on_hand))]
    now = datetime.now(UTC)
    with db.begin() as connection:
        connection.execute(
            schema.skus.insert(),
            [
                {"id": i + 1, "sku": code, "name": code, "kind": "simple"}
                for i, code in enumerate(codes)
            ],
        )
        connection.execute(
            schema.stock.insert(),
            [
                {
                    "sku_id": i + 1,
                    "warehouse_id": warehouse_id,
                    "on_hand": q,
                    "locked": 0,
                    "allocated": 0,
                }
                for i, q in enumerate(on_hand)
            ],
        )
        connection.execute(
            schema.movements.insert(),
            [
                {
                    "sku_id": i + 1,
                    "warehouse_id": warehouse_id,
                    "type": "Adjustment",
                    "quantity": q,
                    "on_hand_change": q,
                    "locked_change": 0,
                    "allocated_change": 0,
                    "reference": "opening balance (benchmark)",
                    "at": now,
                }
                for i, q in enumerate(on_hand)
            ],
        )
    return codes


def answer_at_once(shop: Any) -> Any:
    """TCP_NODELAY on the shop's connections. Its ``http.server`` handler writes a response's
    headers and body in two sends: with Nagle's algorithm on, the body waits for the client's
    delayed ACK of the headers, about 40 ms per request on Linux loopback, which would be
    the shop's latency, not ours. Real channel APIs do not answer that way."""
    shop._server.RequestHandlerClass.disable_nagle_algorithm = True
    return shop


def listing_id(sku: str) -> str:
    return f"L-{sku}"


@contextmanager
def _work_dir(data_dir: Path, name: str) -> Iterator[Path]:
    path = data_dir / f"{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Daemon:
    """``python -m sellable --config CONFIG run`` in a subprocess, its output in
    ``WORK/daemon.log``. ``alive()`` raises with the log's tail once it has exited;
    ``stop()`` sends SIGTERM and waits ``stop_timeout`` s, then kills it."""

    def __init__(
        self,
        config: Path,
        work: Path,
        env: dict[str, str] | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        self.log_path = work / "daemon.log"
        self.stop_timeout = stop_timeout
        with self.log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sellable", "--config", str(config), "run"],
                env=env,
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the daemon exited with {self.process.returncode}:\n"
                f"{self.log_path.read_text()[-3000:]}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- push throughput ----------------------------------------------------------------------------


def bench_push(runner: Any) -> None:
    args = runner.args
    n = args.listings
    plugin = ensure_plugin(runner.data_dir, runner.log, Path(args.testshop))
    activate_plugin(plugin)
    from sellable_testshop.connector import TestShopConnector  # type: ignore[import-not-found, unused-ignore]
    from sellable_testshop.server import ShopState, TestShopServer  # type: ignore[import-not-found, unused-ignore]

    from sellable.sync.engine import SyncEngine

    limit = TestShopConnector.rate_limit
    assert limit is not None
    batch = TestShopConnector.max_push_batch
    ceiling = limit.rate * batch
    runner.log(
        f"push: first push of {n:,} listings (one simple SKU each) to a testshop on loopback; "
        f"connector limits: {limit.rate:g} requests/s (burst {limit.burst}), "
        f"{batch} listings per request -> at most {ceiling:,.0f} listings/s"
    )
    rng = random.Random(f"sellable-bench:push:{args.seed}:{n}")
    on_hand = [rng.randrange(0, 1000) for _ in range(n)]
    state = ShopState(token=TOKEN)
    with _work_dir(runner.data_dir, "push") as work, answer_at_once(TestShopServer(state)) as shop:
        settings = Settings(
            database=DatabaseSettings(url=SecretStr(f"sqlite:///{work / 'push.db'}")),
            warehouses=[WarehouseSettings(code="main")],
            channels=[
                ChannelSettings(
                    code="shop",
                    connector="testshop",
                    warehouses=["main"],
                    settings={"base_url": shop.url, "token": TOKEN, "page_size": 500},
                )
            ],
        )
        db = create_db_engine(settings)
        engine = None
        try:
            start = time.perf_counter()
            codes = simple_store(db, settings, on_hand)
            state.listings = {
                listing_id(code): {"id": listing_id(code), "sku": code, "quantity": 0}
                for code in codes
            }
            engine = SyncEngine(db, settings)
            runner.log(
                f"  store with {n:,} SKUs and stock, shop with {n:,} listings, SyncEngine "
                f"loaded: {time.perf_counter() - start:.1f} s (not measured)"
            )
            start = time.perf_counter()
            listed = engine.run_job("shop", "listings")
            if not listed.ok or listed.counts.get("listings") != n:
                raise RuntimeError(f"listings job: {listed.describe()}")
            runner.log(
                f"  listings job (200 pages of 500; the shop sorts all listings per page): "
                f"{time.perf_counter() - start:.1f} s (not measured)"
            )
            channel = engine.channels["shop"]
            bucket = channel.http.bucket
            assert bucket is not None
            requests_before, waited_before = state.requests, bucket.waited
            start = time.perf_counter()
            pushed = engine.run_job("shop", "push")
            seconds = time.perf_counter() - start
            requests = state.requests - requests_before
            waited = bucket.waited - waited_before
            if not pushed.ok:
                raise RuntimeError(f"push job: {pushed.describe()}")
            ok = pushed.counts.get("pushed", 0)
            runner.log(f"  {pushed.describe()}")
            runner.log(
                f"  {requests:,} requests in {seconds:.2f} s, of which {waited:.2f} s waiting on "
                f"the connector's rate limit (token bucket)"
            )
            desired = engine.desired_quantities("shop")
            wrong = sum(1 for lid, q in desired.items() if state.listings[lid]["quantity"] != q)
            if ok != n or wrong:
                runner.figure(
                    "push",
                    "every listing pushed with the right quantity",
                    f"{ok:,} pushed, {wrong:,} wrong on the shop",
                    f"{n:,}, 0 wrong",
                    "MISS",
                )
            else:
                runner.log(f"  check: the shop shows the sellable quantity of all {n:,} listings")
            rate = ok / seconds
            runner.figure(
                "push",
                f"push {n:,} listings (batches of {batch})",
                f"{rate:,.0f} listings/s ({seconds:.1f} s)",
                f"(ceiling {ceiling:,.0f} /s)",
                "info",
                rate,
            )
            runner.figure(
                "push",
                "push requests/s",
                f"{requests / seconds:,.0f} requests/s ({waited / seconds:.0%} of the time "
                "in the rate limiter)",
                f"(limit {limit.rate:g} /s)",
                "info",
                requests / seconds,
            )
            if args.profile:
                listings = schema.listings
                with db.begin() as connection:
                    connection.execute(update(listings).values(last_pushed=None))
                runner.profile("push", engine.run_job, "shop", "push")
        finally:
            if engine is not None:
                engine.close()
            db.dispose()


# -- order -> other channel latency -------------------------------------------------------------


def _config_toml(url: str, shops: dict[str, str]) -> str:
    lines = [
        "[database]",
        f'url = "{url}"',
        "",
        "[[warehouses]]",
        'code = "main"',
        'kind = "own"',
        "",
        "[daemon]",
        'http_listen = "127.0.0.1:0"',
        'jitter = "0s"',
        "",
    ]
    for code, shop_url in shops.items():
        lines += [
            "[[channels]]",
            f'code = "{code}"',
            'connector = "testshop"',
            'warehouses = ["main"]',
        ]
        if code == "a":
            lines.append(f'pull_orders_every = "{PULL_INTERVAL_S:g}s"')
        lines += [
            "[channels.settings]",
            f'base_url = "{shop_url}"',
            f'token = "{TOKEN}"',
            "",
        ]
    return "\n".join(lines)


def _wait(
    what: str, condition: Callable[[], bool], timeout: float, alive: Callable[[], None]
) -> float:
    """Poll every 5 ms until ``condition()``; returns the perf_counter when it held."""
    deadline = time.perf_counter() + timeout
    while True:
        if condition():
            return time.perf_counter()
        alive()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


# "2026-11-23 03:45:01,123 INFO sellable.sync: channel=a job=orders ok orders=1 ... changed=3 ..."
_JOB_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO sellable\.sync: "
    r"channel=a job=orders ok .*\bchanged=(\d+)"
)


def _pulls_with_changes(log_text: str) -> list[datetime]:
    """When (local wall clock, as the daemon logs) channel a's order pulls that changed a
    sellable quantity finished."""
    found = []
    for line in log_text.splitlines():
        match = _JOB_LINE.match(line)
        if match and int(match.group(2)) > 0:
            found.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"))
    return found


def bench_latency(runner: Any) -> None:
    args = runner.args
    rounds = args.latency_rounds
    target = LATENCY_SLACK_S + PULL_INTERVAL_S
    plugin = ensure_plugin(runner.data_dir, runner.log, Path(args.testshop))
    activate_plugin(plugin)
    from sellable_testshop.server import ShopState, TestShopServer  # type: ignore[import-not-found, unused-ignore]

    runner.log(
        f"latency: daemon with channels a and b (both warehouse main, order pull every "
        f"{PULL_INTERVAL_S:g} s on a, push debounce 1 s, jitter 0 s): order on shop a until "
        f"shop b shows the new quantity, {rounds} rounds"
    )
    states = {code: ShopState(token=TOKEN) for code in ("a", "b")}
    rng = random.Random(f"sellable-bench:latency:{args.seed}")
    with (
        _work_dir(runner.data_dir, "latency") as work,
        answer_at_once(TestShopServer(states["a"])) as shop_a,
        answer_at_once(TestShopServer(states["b"])) as shop_b,
    ):
        db_url = f"sqlite:///{work / 'daemon.db'}"
        config = work / "sellable.toml"
        config.write_text(_config_toml(db_url, {"a": shop_a.url, "b": shop_b.url}))
        settings = Settings(
            database=DatabaseSettings(url=SecretStr(db_url)),
            warehouses=[WarehouseSettings(code="main")],
        )
        db = create_db_engine(settings)
        try:
            codes = simple_store(db, settings, [LATENCY_ON_HAND] * LATENCY_SKUS)
        finally:
            db.dispose()
        for state in states.values():
            for code in codes:
                state.add_listing(listing_id(code), code, 0)
        b = states["b"]

        def quantity(state: Any, lid: str) -> int:
            with state.lock:
                return int(state.listings[lid]["quantity"])

        daemon = Daemon(config, work, env=_env_with(plugin))
        log_path, alive = daemon.log_path, daemon.alive

        latencies: list[float] = []
        placed_at: list[datetime] = []
        try:
            started = time.perf_counter()
            _wait(
                "shop b to show the initial quantities",
                lambda: all(quantity(b, listing_id(c)) == LATENCY_ON_HAND for c in codes),
                60,
                alive,
            )
            runner.log(
                f"  daemon up; shop b shows the initial quantities after "
                f"{time.perf_counter() - started:.1f} s"
            )
            for n in range(rounds):
                # A random phase against the pull schedule, else every round would place its
                # order at the same point of the interval (just after b's previous update).
                time.sleep(rng.uniform(0, PULL_INTERVAL_S))
                sku = codes[n]
                lid = listing_id(sku)
                before = quantity(b, lid)
                placed = time.perf_counter()
                placed_at.append(datetime.now())
                states["a"].place_order(f"A-{n + 1}", [(sku, 1)])
                arrived = _wait(
                    f"round {n + 1}: shop b to change {lid}",
                    lambda lid=lid, before=before: quantity(b, lid) != before,  # type: ignore[misc]
                    60,
                    alive,
                )
                seconds = arrived - placed
                latencies.append(seconds)
                now = quantity(b, lid)
                note = "" if now == before - 1 else f" (expected {before - 1}!)"
                runner.log(
                    f"  round {n + 1}: {lid} {before} -> {now} on b after {seconds:.2f} s{note}"
                )
        finally:
            daemon.stop()
            runner.log(f"  daemon stopped (exit code {daemon.returncode})")
        pulls = _pulls_with_changes(log_path.read_text())
    # Split each round at the end of the first order pull on a that changed something.
    waits = []
    for when in placed_at:
        later = [p for p in pulls if p >= when]
        if later:
            waits.append((later[0] - when).total_seconds())
    if len(waits) == len(latencies):
        rest = [t - w for t, w in zip(latencies, waits, strict=True)]
        runner.log(
            f"  of which: order placed -> pull on a applied it: median "
            f"{statistics.median(waits):.2f} s [{', '.join(f'{w:.2f}' for w in waits)}]; "
            f"then -> quantity on b (debounce 1 s + push): median "
            f"{statistics.median(rest):.2f} s [{', '.join(f'{r:.2f}' for r in rest)}]"
        )
    median, worst = statistics.median(latencies), max(latencies)
    runner.figure(
        "latency",
        "order on a -> quantity on b, median",
        f"{median:.2f} s (of {len(latencies)}: {', '.join(f'{t:.2f}' for t in latencies)})",
        f"< {target:g} s (2 s + pull {PULL_INTERVAL_S:g} s)",
        "PASS" if median < target else "MISS",
        median,
    )
    runner.figure(
        "latency",
        "order on a -> quantity on b, max",
        f"{worst:.2f} s",
        f"< {target:g} s",
        "PASS" if worst < target else "MISS",
        worst,
    )
