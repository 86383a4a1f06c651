"""Issue 14: the Shopify connector at 100,000 listings, against the Shopify emulator.

Three figures, each through the daemon's own jobs (``SyncEngine.run_job``), each as time
and as a ratio to the least time the channel's published limits allow with the method
used (least / measured: 100% is the limit itself):

* ``listings`` (listing refresh) and ``reconcile`` read every variant's inventory levels
  with one bulk operation (``bulkOperationRunQuery``). Shopify publishes no throughput
  for bulk operations; the emulator processes ``--bulk-speed`` objects (JSONL lines) per
  second of its clock, the figure every result here is "at". The query returns one object
  per variant and one per inventory level: with one location, 2 x 100,000 = 200,000
  objects, so the operation itself takes at least 200,000 / speed seconds (40 s at the
  default 5,000/s); that is the least time. Goal: the refresh within 2 minutes.
  For comparison, the paged method it replaces: pages of 249 variants at 998 points
  (2 + 249 x 4) from a bucket restored at 50 points/s: 100,000 / 249 = 402 pages x 998
  points / 50 = 8,024 s (2 h 14 min) at the least.
* ``push`` of all 100,000 changed quantities (the first push after the refresh): 250
  quantities per ``inventorySetQuantities``, a mutation costing 10 points whatever it
  carries, from an empty bucket restored at 50 points/s (1000 points at most): 100,000 /
  250 = 400 mutations x 10 points = 4,000 points / 50 points/s = 80 s at the least, a
  ceiling of 50 / 10 x 250 = 1,250 quantities/s. Goal: within 10% of it (ratio >= 90%)
  with 0 throttled answers (``THROTTLED`` or 429).

Run: ``.venv/bin/python benchmarks/bench_shopify_bulk.py [--listings 100000]
[--bulk-speed 5000]`` (or ``benchmarks/run.py --only shopify-100k``). Everything runs in
this process: the emulator in threads on loopback, the engine on an SQLite file in a
temporary directory. The figures depend on the machine's load: ``uptime`` is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_shopify import MUTATION_COST, PER_MUTATION, TARGET, _bench_push, _set_both_sides
from bench_sync import simple_store

from sellable.config import ChannelSettings, DatabaseSettings, Settings, WarehouseSettings
from sellable.emulators.shopify import BULK_SPEED, ShopifyEmulator
from sellable.sync.engine import JobResult, SyncEngine

REFRESH_GOAL_S = 120.0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--bulk-speed", type=float, default=BULK_SPEED)
    parser.add_argument("--restore-rate", type=float, default=50.0)
    parser.add_argument("--maximum", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n, speed, restore = args.listings, args.bulk_speed, args.restore_rate
    rng = random.Random(f"sellable-bench:shopify-bulk:{args.seed}:{n}")
    print(
        f"Shopify emulator: {n:,} variants at one location; bulk operations at {speed:,.0f} "
        f"objects/s of its clock; bucket {args.maximum:g} points restored at {restore:g}/s; "
        f"{_load()}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="sellable-bench-shopify-bulk-") as work:
        shop = ShopifyEmulator(maximum_available=args.maximum, restore_rate=restore)
        shop.set_bulk_speed(speed)
        shop.start()
        settings = Settings(
            database=DatabaseSettings(url=SecretStr(f"sqlite:///{Path(work) / 'bench.db'}")),
            warehouses=[WarehouseSettings(code="main")],
            channels=[
                ChannelSettings(
                    code="shopify",
                    connector="shopify",
                    warehouses=["main"],
                    settings=shop.connector_settings(),
                )
            ],
        )
        from sellable.store.db import create_db_engine

        db = create_db_engine(settings)
        engine: SyncEngine | None = None
        try:
            on_hand = [rng.randrange(1, 1000) for _ in range(n)]
            codes = simple_store(db, settings, on_hand)
            for code in codes:
                shop.add_listing(code, 0)
            engine = SyncEngine(db, settings)
            objects = 2 * n  # a variant and its one inventory level each
            least_read = objects / speed

            throttled = shop.throttled_count
            listed, seconds = _timed(engine, "listings")
            good = listed.counts.get("listings") == n and seconds <= REFRESH_GOAL_S
            ok &= good
            print(
                f"listing refresh: {listed.counts.get('listings', 0):,} listings in "
                f"{seconds:.2f} s; least {objects:,} objects / {speed:,.0f}/s = "
                f"{least_read:.2f} s -> {least_read / seconds:.1%} of the limit; goal <= "
                f"{REFRESH_GOAL_S:.0f} s: {'PASS' if good else 'MISS'} "
                f"(polls: {engine.channels['shopify'].connector.bulk.polls}, "  # type: ignore[attr-defined]
                f"THROTTLED/429: {shop.throttled_count - throttled}; {_load()})"
            )

            wanted = dict(zip(codes, on_hand, strict=True))
            ok &= _bench_push(engine, shop, n, restore, wanted)
            print(f"  ({_load()})")

            _set_both_sides(engine, shop, args.maximum)
            throttled = shop.throttled_count
            reconciled, seconds = _timed(engine, "reconcile")
            drifted = reconciled.counts.get("drifted", -1)
            good = drifted == 0 and reconciled.counts.get("pushed", -1) == 0
            ok &= good
            print(
                f"reconcile: {n:,} quantities read back in {seconds:.2f} s (drifted "
                f"{drifted}, pushed {reconciled.counts.get('pushed')}); least "
                f"{least_read:.2f} s -> {least_read / seconds:.1%} of the limit; "
                f"{'PASS' if good else 'MISS'} (THROTTLED/429: "
                f"{shop.throttled_count - throttled}; {_load()})"
            )
            print(
                f"bulk operations run: {len(shop.bulk_runs)}; result downloads carrying the "
                f"access token: {shop.bulk_downloads_with_token}; peak RSS of this process "
                "(emulator, engine and connector together): "
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
            )
            print(
                f"push limit: {n:,} / {PER_MUTATION} = {-(-n // PER_MUTATION)} mutations x "
                f"{MUTATION_COST} points / {restore:g} points/s; target >= {TARGET:.0%}"
            )
        finally:
            if engine is not None:
                engine.close()
            db.dispose()
            shop.stop()
    return 0 if ok else 1


def _timed(engine: SyncEngine, job: str) -> tuple[JobResult, float]:
    start = time.perf_counter()
    result = engine.run_job("shopify", job)
    seconds = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"{job} job: {result.describe()}")
    return result, seconds


if __name__ == "__main__":
    raise SystemExit(main())
