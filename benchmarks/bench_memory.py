"""Issue 14: the daemon's memory with 100,000 listings on each channel.

The real daemon (``python -m sellable --config CFG run``, a subprocess) sells one catalog of
``--memory-listings`` simple SKUs (warehouse ``main``) on each channel of
``--memory-channels`` (default: all four, WooCommerce, Shopify and Amazon on their
emulators, Vendure on a real Vendure 3.7.3 server, as in its end-to-end tests). Each
channel lists every SKU. The daemon starts, refreshes every listing map and pushes every
quantity; the figure is its peak resident set (``VmHWM`` of /proc/PID/status) once every
channel shows every pushed quantity, and its RSS then: the daemon process only, not the
emulators (in this process) nor Vendure's Node.js and PostgreSQL. Goal: at most 1 GiB.

The emulators run in this process with their limits raised (this measures memory, not
speed: the channel speed figures are the per-connector benchmarks). Vendure is seeded with
SQL (tests/connectors/vendure/vendure_server.py ``seed_variants``) already holding our
quantity for 9 SKUs in 10: its server writes 8 to 133 variants a second on our shared
machine, as its load goes, so a push of all 100,000 takes 12.5 minutes to hours
(benchmarks/bench_vendure_100k.py measures that). The daemon still reads every variant
back in the push, 100 a request, and writes the 10,000 that differ.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from sellable.config import DatabaseSettings, Settings, WarehouseSettings
from sellable.demo import toml_value
from sellable.store.db import create_db_engine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # tests.connectors.vendure.vendure_server

from bench_sync import Daemon, _wait, _work_dir, simple_store  # noqa: E402

GOAL_BYTES = 1 << 30
FAST = {
    "woocommerce": {"rate_limit": 0},
    "shopify": {"maximum_available": 1_000_000, "restore_rate": 1_000_000},
}
FAST_CONNECTOR = {"woocommerce": {"requests_per_second": 100}}


class VendureChannel:
    """A real Vendure server seeded with ``codes``, in the shape the benchmark asks of an
    emulator: ``connector``, ``connector_settings()``, ``quantities()``, ``stop()``."""

    connector = "vendure"
    #: The global out-of-stock threshold vendure_server.py sets: stockOnHand = saleable + 1.
    threshold = 1

    def __init__(self, postgres_url: str) -> None:
        from tests.connectors.vendure.vendure_server import running_vendure

        self.postgres_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        self._work = tempfile.TemporaryDirectory(prefix="sellable-bench-memory-vendure-")
        self._running = running_vendure(self.postgres_url, Path(self._work.name))
        self.server = self._running.__enter__()
        self._checked = 0.0
        self._last: dict[str, int] = {}

    def seed(self, quantities: list[int]) -> None:
        from tests.connectors.vendure.vendure_server import seed_variants

        seed_variants(self.server, self.postgres_url, [q + self.threshold for q in quantities])

    def connector_settings(self) -> dict[str, Any]:
        from tests.connectors.vendure.vendure_server import SYNC_USER

        user, password = SYNC_USER
        return {"admin_api_url": self.server.admin_api_url, "username": user, "password": password}

    def quantities(self) -> dict[str, int]:
        """SKU -> saleable stock in Vendure, read with SQL at most every 5 s."""
        if time.monotonic() - self._checked < 5:
            return self._last
        info = psycopg.conninfo.conninfo_to_dict(self.postgres_url)
        info["dbname"] = self.server.database
        with psycopg.connect(**info) as db:  # type: ignore[arg-type]
            rows = db.execute(
                'SELECT v.sku, s."stockOnHand" - s."stockAllocated" FROM product_variant v '
                'JOIN stock_level s ON s."productVariantId" = v.id WHERE v."deletedAt" IS NULL'
            ).fetchall()
        self._last = {sku: quantity - self.threshold for sku, quantity in rows}
        self._checked = time.monotonic()
        return self._last

    def stop(self) -> None:
        try:
            self._running.__exit__(None, None, None)
        finally:
            self._work.cleanup()


def _emulator(name: str) -> Any:
    from sellable.emulators import emulator_class

    options: dict[str, Any] = dict(FAST.get(name, {}))
    if name == "amazon":
        options.update(patch_delay=0.0, feed_queue_seconds=0.0, feed_base_seconds=0.0)
    return emulator_class(name)(port=0, **options)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def bench_memory(runner: Any) -> None:
    args = runner.args
    n = args.memory_listings
    names = [c.strip() for c in args.memory_channels.split(",") if c.strip()]
    runner.log(
        f"memory: daemon with {len(names)} channel(s) ({', '.join(names)}) x {n:,} listings "
        "each; peak RSS after every listing refresh and push"
    )
    emulators: dict[str, Any] = {}
    try:
        for name in names:
            if name == "vendure":
                emulators[name] = VendureChannel(args.postgres_url)
            else:
                emulators[name] = _emulator(name).start()
        with _work_dir(runner.data_dir, "memory") as work:
            url = f"sqlite:///{work / 'daemon.db'}"
            settings = Settings(
                database=DatabaseSettings(url=SecretStr(url)),
                warehouses=[WarehouseSettings(code="main")],
            )
            db = create_db_engine(settings)
            try:
                codes = simple_store(db, settings, [1_000 + i % 500 for i in range(n)])
            finally:
                db.dispose()
            started = time.perf_counter()
            for emulator in emulators.values():
                if isinstance(emulator, VendureChannel):
                    # Every 10th SKU differs from ours; the others are in step already.
                    emulator.seed([0 if i % 10 == 0 else 1_000 + i % 500 for i in range(n)])
                    continue
                for code in codes:
                    emulator.add_listing(code, 0, code)
            runner.log(f"  emulators list {n:,} SKUs each ({time.perf_counter() - started:.0f} s)")
            text = (
                f'[database]\nurl = "{url}"\n\n[[warehouses]]\ncode = "main"\n\n'
                '[daemon]\nhttp_listen = "127.0.0.1:0"\njitter = "0s"\n'
            )
            for name, emulator in emulators.items():
                text += (
                    f'\n[[channels]]\ncode = "{name}"\nconnector = "{emulator.connector}"\n'
                    'warehouses = ["main"]\npull_orders_every = "1h"\n\n[channels.settings]\n'
                )
                for key, value in {
                    **emulator.connector_settings(),
                    **FAST_CONNECTOR.get(name, {}),
                }.items():
                    text += f"{key} = {toml_value(value)}\n"
            config = work / "sellable.toml"
            config.write_text(text)
            daemon = Daemon(config, work, stop_timeout=60.0)
            alive = daemon.alive

            expected = {code: 1_000 + i % 500 for i, code in enumerate(codes)}
            try:
                started = time.perf_counter()
                for name, emulator in emulators.items():
                    _wait(
                        f"{name} to show every pushed quantity",
                        lambda emulator=emulator: emulator.quantities() == expected,  # type: ignore[misc]
                        3600,
                        alive,
                    )
                    runner.log(
                        f"  {name} shows all {n:,} quantities after "
                        f"{time.perf_counter() - started:.0f} s"
                    )
                peak = _status_kib(daemon.pid, "VmHWM") * 1024
                now = _status_kib(daemon.pid, "VmRSS") * 1024
            finally:
                daemon.stop()
    finally:
        for emulator in emulators.values():
            emulator.stop()
    runner.figure(
        "memory",
        f"daemon peak RSS, {len(names)} channels x {n:,} listings",
        f"{peak / 2**20:,.0f} MiB (RSS after the pushes {now / 2**20:,.0f} MiB)",
        "<= 1 GiB",
        "PASS" if peak <= GOAL_BYTES else "MISS",
        peak / 2**20,
    )
