"""The WooCommerce connector end to end: the daemon's own SyncEngine against the
WooCommerce emulator over real loopback HTTP, with the example catalog.

The emulator and the engine's HTTP client share one ManualClock: the client's rate
limiter "sleeps" by advancing it, the emulator's bucket refills by it, so throttling is
exercised at the emulator's default limit (25 requests per 10 s) without waiting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.emulators import ManualClock
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.imports import import_products, import_stock
from sellable.orders import list_orders
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.connectors.cogs import BOTH_DATABASES, KIT, assert_kit_earned, cogs_line
from tests.imports import Store, open_store
from tests.sync.test_sync_engine import (  # the example catalog's figures in main
    SELLABLE,
    sellable_cli,
)

SIMPLE = (
    "BEANS-12OZ",
    "MUG-CERAMIC",
    "SCOOP-WOOD",
    "GIFT-SET-COFFEE",
    "GIFT-KIT-COFFEE",
    "FAQ-KIT",
)
VARIATIONS = ("CAMERA-STARTER-KIT", "DSLR-CAMERA-BLACK")  # of one variable product "CAMERA"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Woo:
    store: Store
    shop: WooCommerceEmulator
    engine: SyncEngine
    clock: ManualClock

    def run(self, job: str) -> JobResult:
        return self.engine.run_job("woo", job)

    def run_once(self) -> dict[str, JobResult]:
        results = {r.job: r for r in self.engine.run_once()}
        assert all(r.ok for r in results.values()), results
        return results

    def quantities(self, *skus: str) -> dict[str, int]:
        found = self.shop.quantities()
        return {sku: found[sku] for sku in skus} if skus else found

    def orders(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as connection:
            return list_orders(connection)

    @property
    def http_throttled(self) -> int:
        return self.engine.channels["woo"].http.throttled


OpenWoo = Callable[..., Woo]


@pytest.fixture
def open_woo(config_file: Path) -> Iterator[OpenWoo]:
    """``open_woo(catalog=..., engine_clock=False, **emulator_options)``: the example
    catalog (plus the ``catalog`` SKUs, simple, with on hand = their number), a WooCommerce
    emulator on a manual clock, a channel ``woo`` on it and a SyncEngine whose HTTP client
    runs on that clock (and, with ``engine_clock``, its wall clock too)."""
    opened: list[tuple[WooCommerceEmulator, SyncEngine, Store]] = []

    def open_(
        *, catalog: dict[str, int] | None = None, engine_clock: bool = False, **options: Any
    ) -> Woo:
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        shop = WooCommerceEmulator(clock=clock, **options)
        shop.start()
        settings = shop.connector_settings()
        with config_file.open("a") as handle:
            handle.write(
                '\n[[channels]]\ncode = "woo"\nconnector = "woocommerce"\nwarehouses = ["main"]\n'
                "[channels.settings]\n"
                + "".join(f'{key} = "{value}"\n' for key, value in settings.items())
            )
        store = open_store(config_file)
        store.load_examples()
        if catalog:
            products = store.csv(
                "more.csv",
                "sku,name,kind,allow_backorder,price\n"
                + "".join(f"{sku},{sku},simple,false,1.00\n" for sku in catalog),
            )
            stock = store.csv(
                "more-stock.csv",
                "sku,warehouse,on_hand,locked\n"
                + "".join(f"{sku},main,{n},0\n" for sku, n in catalog.items()),
            )
            import_products(store.engine, products)
            import_stock(store.engine, store.settings, stock)
        engine = SyncEngine(
            store.engine,
            store.settings,
            http_options={"clock": clock.monotonic, "sleep": clock.advance, "backoff_base": 0.0},
            **({"now": clock.now} if engine_clock else {}),
        )
        opened.append((shop, engine, store))
        return Woo(store, shop, engine, clock)

    yield open_
    for shop, engine, store in opened:
        engine.close()
        shop.stop()
        store.engine.dispose()


def list_examples(shop: WooCommerceEmulator) -> dict[str, str]:
    """The example SKUs on the shop at 0 (six simple products, a variable product with two
    variations), a poster we do not sell and a product without SKU; SKU -> product id."""
    ids = {sku: shop.add_listing(sku, 0) for sku in SIMPLE}
    _, variations = shop.add_variable_product("CAMERA", [(sku, 0) for sku in VARIATIONS])
    ids.update({v.sku: str(v.id) for v in variations})
    ids["POSTER-A3"] = shop.add_listing("POSTER-A3", 3)
    ids[""] = str(shop.add_product("", 1).id)
    return ids


# -- the daemon's cycle ---------------------------------------------------------------------------


def test_woocommerce_sync_pushes_the_catalog_and_reports_unknown_and_missing_listings(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    ids = list_examples(woo.shop)

    results = woo.run_once()

    listed = (*SIMPLE, *VARIATIONS)
    assert woo.quantities() == {
        **{sku: SELLABLE[sku] for sku in listed},
        "POSTER-A3": 3,
    }
    assert results["listings"].counts == {
        "missing": 10,
        "listings": 10,
        "new": 10,
        "removed": 0,
        "unmatched": 2,
        "duplicates": 0,
    }
    assert results["listings"].reports["unmatched_listings"] == sorted(["POSTER-A3", ids[""]])
    assert results["listings"].reports["missing_listings"] == [
        "ABC",
        "ALPHABET-BUNDLE",
        "CAMERA-BAG",
        "COMP-A",
        "COMP-B",
        "DEF",
        "FAQ-ASSEMBLY",
        "GHI",
        "LENS-18-135",
        "LENS-18-55",
    ]
    reconcile = results["reconcile"].counts
    assert (reconcile["pushed"], reconcile["failed"], reconcile["retry"]) == (8, 0, 0)
    assert woo.shop.batch_sizes == [6, 2]  # products, then the variations of CAMERA
    (status,) = channel_status(woo.engine)
    assert status["unmatched_listings"] == {"count": 2, "skus": sorted(["POSTER-A3", ids[""]])}
    assert status["missing_listings"]["count"] == 10
    assert woo.shop.throttled_count == 0

    again = woo.run_once()
    assert again["reconcile"].counts["pushed"] == 0  # nothing changed, nothing sent
    assert woo.shop.batch_sizes == [6, 2]


@SQLITE_ONLY
def test_woocommerce_sync_once_and_status_json_report_unknown_listings_without_secrets(
    open_woo: OpenWoo, config_file: Path
) -> None:
    woo = open_woo()
    ids = list_examples(woo.shop)
    woo.engine.close()  # the command line opens its own

    cli = sellable_cli(config_file, dict(os.environ), "sync", "--once")
    status = sellable_cli(config_file, dict(os.environ), "status", "--json")

    assert (cli.returncode, status.returncode) == (0, 0), cli.stdout + cli.stderr
    unknown = sorted(["POSTER-A3", ids[""]])
    assert f"    unmatched listings: 2 ({', '.join(unknown)})" in cli.stdout.splitlines()
    (report,) = json.loads(status.stdout)
    assert report["unmatched_listings"] == {"count": 2, "skus": unknown}
    assert report["missing_listings"]["count"] == 10
    assert woo.quantities(*SIMPLE) == {sku: SELLABLE[sku] for sku in SIMPLE}
    for secret in (woo.shop.consumer_secret, woo.shop.consumer_key):
        assert secret not in cli.stdout + cli.stderr + status.stdout + status.stderr


def test_woocommerce_kit_order_lowers_kit_and_components_and_cancelling_gives_them_back(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    list_examples(woo.shop)
    woo.run_once()

    order_id = woo.shop.place_order([("GIFT-KIT-COFFEE", 2)])
    assert woo.quantities("GIFT-KIT-COFFEE") == {"GIFT-KIT-COFFEE": 28}  # WooCommerce's own
    results = woo.run_once()

    assert results["orders"].counts["orders"] == 1
    assert woo.quantities(*SIMPLE) == {
        "BEANS-12OZ": 48,
        "MUG-CERAMIC": 28,
        "SCOOP-WOOD": 98,
        "GIFT-SET-COFFEE": 38,  # 10 prepackaged + min(48, 28, 98)
        "GIFT-KIT-COFFEE": 28,
        "FAQ-KIT": 30,
    }
    assert results["reconcile"].counts["pushed"] == 5
    (order,) = woo.orders()
    assert (order["order_id"], order["status"]) == (order_id, "open")

    woo.shop.set_order_status(order_id, "cancelled")
    assert woo.quantities("GIFT-KIT-COFFEE") == {"GIFT-KIT-COFFEE": 30}
    results = woo.run_once()

    assert woo.quantities(*SIMPLE) == {sku: SELLABLE[sku] for sku in SIMPLE}
    (order,) = woo.orders()
    assert order["status"] == "cancelled"


@SQLITE_ONLY
def test_woocommerce_refused_item_fails_alone_and_is_pushed_next_cycle(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    ids = list_examples(woo.shop)
    woo.shop.failing_updates[int(ids["MUG-CERAMIC"])] = 1

    first = woo.run_once()["reconcile"].counts

    assert (first["pushed"], first["failed"]) == (7, 1)
    assert woo.quantities("MUG-CERAMIC", "BEANS-12OZ") == {"MUG-CERAMIC": 0, "BEANS-12OZ": 50}
    (status,) = channel_status(woo.engine)
    assert status["failing_listings"] == [
        {
            "listing_id": ids["MUG-CERAMIC"],
            "error": "db_update_error: Could not update post in the database.",
        }
    ]

    second = woo.run("push").counts

    assert (second["pending"], second["pushed"], second["failed"]) == (1, 1, 0)
    assert woo.quantities("MUG-CERAMIC") == {"MUG-CERAMIC": 30}
    (status,) = channel_status(woo.engine)
    assert status["failing_listings"] == []


# -- pages, batches, throttling ------------------------------------------------------------------

MANY = {f"P-{n:03d}": n for n in range(250)}
MANY_VARIANTS = {f"V-{n:03d}": 1000 + n for n in range(150)}


def test_woocommerce_pages_through_400_listings_and_pushes_them_in_batches_of_100(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo(catalog={**MANY, **MANY_VARIANTS})
    for sku in MANY:
        woo.shop.add_listing(sku, 0)
    woo.shop.add_variable_product("SHIRT", [(sku, 0) for sku in MANY_VARIANTS])

    results = woo.run_once()

    assert results["listings"].counts["listings"] == 400
    assert results["listings"].counts["unmatched"] == 0
    assert results["reconcile"].counts["pushed"] == 400
    # Engine batches of 100 in listing order: 100 + 100 products, then 50 products with 50
    # variations (one request each), then 100 variations. None over 100.
    assert woo.shop.batch_sizes == [100, 100, 50, 50, 100]
    assert woo.quantities(*MANY, *MANY_VARIANTS) == {**MANY, **MANY_VARIANTS}
    pages = [
        path for method, path, _ in woo.shop.request_log if method == "GET" and "variations" in path
    ]
    assert len(pages) == 2 + 2  # two pages of variations to list, two to read back
    assert woo.shop.throttled_count == 0


@SQLITE_ONLY
def test_woocommerce_push_splits_batches_for_a_site_with_a_lower_batch_limit(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo(catalog=dict(list(MANY.items())[:100]), batch_limit=30)
    for sku in list(MANY)[:100]:
        woo.shop.add_listing(sku, 0)

    result = woo.run_once()["reconcile"]

    assert (result.counts["pushed"], result.counts["failed"]) == (100, 0)
    assert woo.shop.batch_sizes == [25, 25, 25, 25]  # 100 and 50 were refused with 413
    statuses = [status for method, path, status in woo.shop.request_log if path.endswith("/batch")]
    assert statuses == [413, 413, 200, 200, 413, 200, 200]


@SQLITE_ONLY
def test_woocommerce_steady_state_at_the_emulators_limit_has_no_429_and_recovers_from_one(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo(catalog=MANY)  # the emulator's default: 25 requests per 10 s
    for sku in MANY:
        woo.shop.add_listing(sku, 0)

    for cycle in range(6):
        woo.run_once()
        woo.shop.place_order([(f"P-{100 + cycle:03d}", 1)])

    api_requests = sum(1 for _m, path, _s in woo.shop.request_log if path.startswith("/wp-json"))
    # Per cycle: 3 product pages, 2 order pages (status any, then trash), the reconcile's
    # read-back of 250 listings (3 requests of at most 100 ids); pushes: 3 batches in the
    # first cycle, then 1 (the SKU ordered in the previous cycle).
    assert api_requests == 6 * (3 + 2 + 3) + 3 + 5 * 1
    assert woo.shop.throttled_count == 0
    assert woo.http_throttled == 0
    # The client's bucket holds 20 and refills at 2.5/s: every request past the 20th waited
    # 0.4 s, and the manual clock moved only by those waits.
    assert woo.clock.monotonic() == pytest.approx((api_requests - 20) / 2.5)

    woo.shop.inject({"status": 429})
    before = woo.clock.monotonic()
    result = woo.run("listings")

    assert result.ok and result.counts["listings"] == 250
    assert (woo.shop.throttled_count, woo.http_throttled) == (1, 1)
    assert woo.clock.monotonic() - before >= 1.0  # Retry-After: 1 was honoured


# -- orders: pagination drift --------------------------------------------------------------------


def test_woocommerce_orders_changed_while_paging_are_neither_lost_nor_counted_twice(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo(rate_limit=0)
    woo.shop.add_listing("ABC", 0)
    woo.clock.advance(-3600)  # orders placed over the last hour, one per 10 s
    placed = []
    for _ in range(250):
        placed.append(woo.shop.place_order([("ABC", 1)], status="pending"))
        woo.clock.advance(10)
    woo.clock.advance(3600 - 2500)
    calls: list[int] = []

    def change_while_paging(path: str, page: int) -> None:
        if path.endswith("/orders"):
            calls.append(page)
            if len(calls) == 1:  # after the first page: two of its orders change
                woo.shop.set_order_status(placed[0], "cancelled")
                woo.shop.set_order_status(placed[1], "processing")

    woo.shop.after_page = change_while_paging

    result = woo.run("orders")

    assert result.ok, result.error
    orders = {o["order_id"]: o["status"] for o in woo.orders()}
    assert sorted(orders, key=int) == sorted(placed, key=int)  # all 250, each once
    assert (orders[placed[0]], orders[placed[1]], orders[placed[2]]) == (
        "cancelled",
        "open",
        "open",
    )
    # the two changed ones are read again and applied again, yet counted once each
    assert result.counts["orders"] == 250
    assert len(calls) == 4  # three pages of status any, one of trash


@SQLITE_ONLY
def test_woocommerce_an_open_order_moved_to_the_trash_releases_its_stock(open_woo: OpenWoo) -> None:
    woo = open_woo()
    list_examples(woo.shop)
    woo.run_once()
    order_id = woo.shop.place_order([("MUG-CERAMIC", 3)])
    woo.run_once()
    assert woo.quantities("MUG-CERAMIC") == {"MUG-CERAMIC": 27}

    woo.shop.set_order_status(order_id, "trash")  # not listed by status=any any more
    results = woo.run_once()

    assert results["orders"].counts["orders"] == 1
    (order,) = woo.orders()
    assert order["status"] == "cancelled"
    assert woo.quantities("MUG-CERAMIC") == {"MUG-CERAMIC": 30}


@SQLITE_ONLY
def test_woocommerce_sync_rides_out_injected_5xx_dropped_connections_and_malformed_json(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    list_examples(woo.shop)
    woo.shop.inject(
        {"status": 503, "path": "/wp-json/wc/v3/products"},
        {"kind": "reset", "path": "/wp-json/wc/v3/orders"},
        {"kind": "malformed", "path": "/wp-json/wc/v3/products/batch"},
    )

    results = woo.run_once()

    assert results["reconcile"].counts["pushed"] == 8
    assert woo.quantities(*SIMPLE) == {sku: SELLABLE[sku] for sku in SIMPLE}
    assert woo.engine.channels["woo"].http.retries == 3
    assert list(woo.shop.faults) == []


@SQLITE_ONLY
def test_woocommerce_orders_of_one_second_changed_while_paging_are_not_lost(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo(rate_limit=0)
    woo.shop.add_listing("ABC", 0)
    placed = [woo.shop.place_order([("ABC", 1)], status="pending") for _ in range(150)]
    woo.clock.advance(1)

    def change_after_first_page(path: str, page: int) -> None:
        if path.endswith("/orders") and woo.shop.after_page is not None:
            woo.shop.after_page = None
            for order_id in placed[:5]:  # five orders of page 1 move to the next second
                woo.shop.set_order_status(order_id, "cancelled")

    woo.shop.after_page = change_after_first_page

    result = woo.run("orders")

    assert result.ok, result.error
    statuses = {o["order_id"]: o["status"] for o in woo.orders()}
    assert sorted(statuses, key=int) == sorted(placed, key=int)
    assert [statuses[o] for o in placed[:6]] == ["cancelled"] * 5 + ["open"]
    offsets = [
        path for method, path, _ in woo.shop.request_log if method == "GET" and "orders" in path
    ]
    assert len(offsets) == 3  # the second: offset 90, read back 10 of the first page


@SQLITE_ONLY
def test_woocommerce_refused_keys_fail_the_job_with_the_shops_reason_and_no_secret(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    list_examples(woo.shop)
    secret = woo.shop.consumer_secret
    woo.shop.consumer_secret = "cs_rotated_by_the_merchant"

    result = woo.run("listings")

    assert not result.ok
    assert result.error == (
        "woo: GET /wp-json/wc/v3/products: HTTP 401: credentials refused "
        '({"code":"woocommerce_rest_authentication_error",'
        '"message":"Consumer secret is invalid.","data":{"status":401}})'
    )
    assert secret not in (result.error or "")
    assert woo.engine.channels["woo"].http.retries == 0  # refused keys are not retried


@SQLITE_ONLY
def test_woocommerce_order_with_a_product_we_do_not_sell_still_takes_ours(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    list_examples(woo.shop)
    woo.run_once()

    woo.shop.place_order([("POSTER-A3", 1), ("MUG-CERAMIC", 2)])
    results = woo.run_once()

    assert results["orders"].reports["unknown_skus"] == ["POSTER-A3"]
    assert results["orders"].reports["rejected_orders"] == []
    assert woo.quantities("MUG-CERAMIC", "GIFT-KIT-COFFEE") == {
        "MUG-CERAMIC": 28,
        "GIFT-KIT-COFFEE": 28,
    }


@SQLITE_ONLY
def test_woocommerce_a_sku_on_two_products_is_reported_by_the_engines_one_policy(
    open_woo: OpenWoo,
) -> None:
    woo = open_woo()
    ids = list_examples(woo.shop)
    copy = woo.shop.add_product("MUG-CERAMIC", 0, unique=False)  # an import bypassed the check

    results = woo.run_once()

    # The connector lists both as they are; the engine matches both, pushes both and
    # reports them (one policy for every connector: sync/jobs/listings.py).
    listed = sorted([ids["MUG-CERAMIC"], str(copy.id)])
    assert results["listings"].reports["duplicate_listings"] == [
        f"MUG-CERAMIC: {listed[1]} (as {listed[0]})"
    ]
    assert results["listings"].counts["duplicates"] == 1
    unmatched = results["listings"].reports["unmatched_listings"]
    assert unmatched == sorted(["POSTER-A3", ids[""]])
    assert "MUG-CERAMIC" not in results["listings"].reports["missing_listings"]
    assert woo.shop.products[copy.id].stock_quantity == 30
    assert woo.shop.products[int(ids["MUG-CERAMIC"])].stock_quantity == 30


# -- what a kit earned ---------------------------------------------------------------------------


@BOTH_DATABASES
def test_woocommerce_cogs_shows_the_line_total_a_kit_earned(open_woo: OpenWoo) -> None:
    woo = open_woo(tax_rate="0.20", currency="USD")
    woo.shop.add_product(KIT, 0, price="27.00")
    woo.run_once()
    # 3 x 27.00 = 81.00, a 10 % coupon: total 72.90, with 14.58 tax on top (not revenue)
    order_id = woo.shop.place_order([(KIT, 3)], discount_percent="10")
    woo.shop.set_order_status(order_id, "completed")

    assert woo.run("orders").ok

    assert_kit_earned(cogs_line(woo.store.config, "woo", order_id), "72.90", "USD", 3)
