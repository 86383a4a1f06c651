"""Issue 14: the daemon's memory with 100,000 listings on each emulated channel.

The real daemon (``python -m sellable --config CFG run``, a subprocess) sells one catalog of
``--memory-listings`` simple SKUs (warehouse ``main``) on each channel of
``--memory-channels`` (default: WooCommerce, Shopify and Amazon, the channels with an
emulator; Vendure is tested against a real Vendure server and has none). Each emulator
lists every SKU. The daemon starts, refreshes every listing map and pushes every
quantity; the figure is its peak resident set (``VmHWM`` of /proc/PID/status) once every
channel shows every pushed quantity, and its RSS then. Goal: at most 1 GiB.

The emulators run in this process with their limits raised (this measures memory, not
speed: the channel speed figures are the per-connector benchmarks).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sellable.config import DatabaseSettings, Settings, WarehouseSettings
from sellable.demo import toml_value
from sellable.store.db import create_db_engine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sync import Daemon, _wait, _work_dir, simple_store  # noqa: E402

GOAL_BYTES = 1 << 30
FAST = {
    "woocommerce": {"rate_limit": 0},
    "shopify": {"maximum_available": 1_000_000, "restore_rate": 1_000_000},
}
FAST_CONNECTOR = {"woocommerce": {"requests_per_second": 100}}


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
    emulators = {name: _emulator(name).start() for name in names}
    try:
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
