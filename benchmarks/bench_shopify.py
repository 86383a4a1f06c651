"""Issue 5: the Shopify connector against the Shopify emulator at its published limits.

* ``push``: ``SyncEngine.run_job("shopify", "push")`` of ``--listings`` changed listings (one
  simple SKU each, at the shop's primary location). Shopify paces by query cost: a bucket of
  ``maximumAvailable`` points (1000) restored at ``restoreRate`` points/s (50, the standard
  figures the emulator publishes by default), and every mutation costs 10 points whatever it
  carries, up to 250 quantities. The sustained ceiling is therefore
  ``restore rate / 10 x 250`` listings/s (1,250/s = 75,000/min at 50 points/s). The push
  starts with the bucket empty on both sides (as after the listing refresh of the same
  cycle), so the figure is the sustained rate and not the 1000-point burst (which alone
  holds 100 mutations = 25,000 listings); the full-bucket time is printed for information.
* ``orders``: ``run_job("shopify", "orders")`` of ``--orders`` orders (one line each), from an
  empty bucket. A query may only start when its *requested* cost (652 points for a page of
  50 orders with 10 line items each) is in the bucket; what it did not use (its actual cost
  is 2 + 50 x (1 + 2 + 1) = 202 points for one-line orders) is refunded. The least time
  those rules allow is (the actual costs of all pages but the last + the requested cost of
  the last) / restore rate; the figure is that time over the measured one.

Run: ``.venv/bin/python benchmarks/bench_shopify.py [--listings 10000] [--orders 500]``.
Everything runs in this process: the emulator in threads on loopback, the engine on an
SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sync import simple_store

from sellable.config import ChannelSettings, DatabaseSettings, Settings, WarehouseSettings
from sellable.emulators.shopify import ShopifyEmulator
from sellable.store import schema
from sellable.sync.engine import SyncEngine

TARGET = 0.90
MUTATION_COST = 10
PER_MUTATION = 250


def _set_both_sides(engine: SyncEngine, shop: ShopifyEmulator, points: float) -> None:
    """The shop's bucket at ``points``, and the connector told so (as the last answer of a
    previous query would have told it)."""
    from sellable_shopify.client import LIMITER

    shop.bucket.set(points)
    http = engine.channels["shopify"].http
    bucket = http.limiter(LIMITER, rate=shop.bucket.restore_rate, burst=int(shop.bucket.maximum))
    bucket.observe(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--restore-rate", type=float, default=50.0)
    parser.add_argument("--maximum", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n, restore = args.listings, args.restore_rate
    rng = random.Random(f"sellable-bench:shopify:{args.seed}:{n}")
    print(
        f"Shopify emulator: bucket {args.maximum:g} points, restored at {restore:g} points/s; "
        f"a mutation costs {MUTATION_COST} points and carries up to {PER_MUTATION} quantities"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="sellable-bench-shopify-") as work:
        shop = ShopifyEmulator(maximum_available=args.maximum, restore_rate=restore)
        # http.server sends headers and body in two writes: without TCP_NODELAY the body
        # waits ~40 ms for the client's delayed ACK, a latency of the emulator, not ours.
        shop._httpd.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
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
            # The listing refresh is not measured: run it with the bucket out of the way.
            shop.bucket.restore_rate, shop.bucket.maximum = 1e9, 1e9
            listed = engine.run_job("shopify", "listings")
            if not listed.ok or listed.counts.get("listings") != n:
                raise RuntimeError(f"listings job: {listed.describe()}")
            shop.bucket.restore_rate, shop.bucket.maximum = restore, args.maximum
            ok &= _bench_push(engine, shop, n, restore, dict(zip(codes, on_hand, strict=True)))
            # For information: the same push from a full bucket (the burst).
            with db.begin() as connection:
                connection.execute(update(schema.listings).values(last_pushed=None))
            _set_both_sides(engine, shop, args.maximum)
            start = time.perf_counter()
            again = engine.run_job("shopify", "push")
            seconds = time.perf_counter() - start
            repushed = again.counts.get("pushed", 0)
            print(
                f"push from a full bucket (information): {repushed:,} listings re-pushed in "
                f"{seconds:.2f} s = {repushed / seconds * 60:,.0f}"
                f"/min (the {args.maximum:g}-point burst holds {args.maximum / MUTATION_COST:g} "
                "mutations)"
            )
            ok &= _bench_orders(engine, shop, codes, args.orders, restore)
        finally:
            if engine is not None:
                engine.close()
            db.dispose()
            shop.stop()
    return 0 if ok else 1


def _bench_push(
    engine: SyncEngine, shop: ShopifyEmulator, n: int, restore: float, wanted: dict[str, int]
) -> bool:
    mutations = -(-n // PER_MUTATION)
    ceiling = restore / MUTATION_COST * PER_MUTATION  # listings/s
    least = mutations * MUTATION_COST / restore  # seconds, from an empty bucket
    _set_both_sides(engine, shop, 0)
    throttled_before = shop.throttled_count
    start = time.perf_counter()
    pushed = engine.run_job("shopify", "push")
    seconds = time.perf_counter() - start
    if not pushed.ok:
        raise RuntimeError(f"push job: {pushed.describe()}")
    shown = shop.quantities()
    wrong = sum(1 for sku, q in wanted.items() if shown.get(sku) != q)
    count = pushed.counts.get("pushed", 0)
    per_minute = count / seconds * 60
    fraction = per_minute / (ceiling * 60)
    print(
        f"push: {count:,} of {n:,} changed listings in {seconds:.2f} s "
        f"({mutations} mutations of <= {PER_MUTATION}; {wrong} wrong on the shop; "
        f"THROTTLED/429: {shop.throttled_count - throttled_before})"
    )
    print(
        f"  theoretical maximum: {restore:g} points/s / {MUTATION_COST} points per mutation "
        f"x {PER_MUTATION} listings = {ceiling:,.0f} listings/s = {ceiling * 60:,.0f}/min; "
        f"{mutations} mutations x {MUTATION_COST} points / {restore:g} points/s = "
        f"{least:.2f} s at the least"
    )
    good = count == n and wrong == 0 and fraction >= TARGET
    print(
        f"  listings pushed per minute: {per_minute:,.0f} = {fraction:.1%} of the theoretical "
        f"maximum (target >= {TARGET:.0%}): {'PASS' if good else 'MISS'}"
    )
    return good


def _bench_orders(
    engine: SyncEngine, shop: ShopifyEmulator, codes: list[str], count: int, restore: float
) -> bool:
    from sellable_shopify.client import ORDER_LINES, ORDER_PAGE, ORDERS_COST

    rng = random.Random(f"sellable-bench:shopify-orders:{count}")
    for _ in range(count):
        while True:
            try:
                shop.place_order([(rng.choice(codes), 1)])
                break
            except ValueError:  # that one is sold out on the shop: another
                continue
    pages = -(-count // ORDER_PAGE)
    sizes = [ORDER_PAGE] * (pages - 1) + [count - ORDER_PAGE * (pages - 1)]
    actual = [2 + size * (1 + 2 + 1) for size in sizes]  # one line item per order
    least = (sum(actual[:-1]) + ORDERS_COST) / restore
    _set_both_sides(engine, shop, 0)
    throttled_before = shop.throttled_count
    start = time.perf_counter()
    pulled = engine.run_job("shopify", "orders")
    seconds = time.perf_counter() - start
    if not pulled.ok:
        raise RuntimeError(f"orders job: {pulled.describe()}")
    got = pulled.counts.get("orders", 0)
    per_minute = got / seconds * 60
    best = count / least * 60
    print(
        f"orders: {got:,} of {count:,} orders pulled in {seconds:.2f} s ({pages} pages of "
        f"<= {ORDER_PAGE}, {ORDER_LINES} line items asked per order; THROTTLED/429: "
        f"{shop.throttled_count - throttled_before})"
    )
    print(
        f"  least time: (actual costs of the first {pages - 1} pages {sum(actual[:-1]):,} + "
        f"requested cost of the last {ORDERS_COST}) points / {restore:g} points/s = "
        f"{least:.2f} s -> at most {best:,.0f} orders/min"
    )
    fraction = per_minute / best
    good = got == count and fraction >= TARGET
    print(
        f"  orders pulled per minute: {per_minute:,.0f} = {fraction:.1%} of that maximum: "
        f"{'PASS' if good else 'MISS'}"
    )
    return good


if __name__ == "__main__":
    raise SystemExit(main())
