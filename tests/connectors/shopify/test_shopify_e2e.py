"""The Shopify connector end to end: the daemon's own jobs (SyncEngine.run_once/run_job)
against the Shopify emulator over loopback HTTP, with the example catalog.

The emulator, the HTTP client's limiter and its retry sleeps share one ManualClock: a wait
moves the clock, so the cost bucket refills exactly as it would in real time and no test
sleeps. Quantities are exact: warehouse ``main`` of the example catalog gives
:data:`SELLABLE`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.imports import import_stock
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.connectors.cogs import BOTH_DATABASES as BOTH_DATABASES_REVENUE
from tests.connectors.cogs import KIT, assert_kit_earned, cogs_line
from tests.imports import Store, open_store
from tests.sync.test_sync_engine import SELLABLE  # the example catalog's figures in main

LISTED = ("BEANS-12OZ", "MUG-CERAMIC", "SCOOP-WOOD", "GIFT-SET-COFFEE", "GIFT-KIT-COFFEE")
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Sync:
    store: Store
    shop: ShopifyEmulator
    clock: ManualClock
    engine: SyncEngine
    waits: list[float] = field(default_factory=list)

    def run(self, job: str) -> JobResult:
        result = self.engine.run_job("shopify", job)
        assert result.ok, result.error
        return result

    def run_once(self) -> dict[str, JobResult]:
        results = {r.job: r for r in self.engine.run_once()}
        assert all(r.ok for r in results.values()), {j: r.error for j, r in results.items()}
        return results

    def shown(self, *skus: str) -> dict[str, int]:
        quantities = self.shop.quantities()
        return {sku: quantities[sku] for sku in skus}


OpenSync = Callable[..., Sync]


@pytest.fixture
def open_sync(config_file: Path) -> Iterator[OpenSync]:
    """``open_sync(listed=..., warehouses=..., location_map=..., **emulator options)``: the
    example catalog, a Shopify emulator listing ``listed`` at 0, and an engine on it."""
    opened: list[tuple[Sync, ShopifyEmulator]] = []

    def open_(
        *,
        listed: tuple[str, ...] = LISTED,
        warehouses: tuple[str, ...] = ("main",),
        location_map: dict[str, str] | None = None,
        **options: Any,
    ) -> Sync:
        clock = ManualClock(START)
        shop = ShopifyEmulator(clock=clock, **options).start()
        assert isinstance(shop, ShopifyEmulator)
        for sku in listed:
            shop.add_listing(sku, 0)
        settings = shop.connector_settings()
        table = "".join(f'"{gid}" = "{code}", ' for gid, code in (location_map or {}).items())
        with config_file.open("a") as handle:
            handle.write(
                '\n[[channels]]\ncode = "shopify"\nconnector = "shopify"\n'
                f"warehouses = {list(warehouses)!r}\n".replace("'", '"')
                + "[channels.settings]\n"
                + f'shop_url = "{settings["shop_url"]}"\n'
                + f'access_token = "{settings["access_token"]}"\n'
                + (f"locations = {{ {table.rstrip(', ')} }}\n" if location_map else "")
            )
        store = open_store(config_file)
        store.load_examples()
        waits: list[float] = []

        def wait(seconds: float) -> None:
            waits.append(seconds)
            clock.advance(seconds)

        engine = SyncEngine(
            store.engine,
            store.settings,
            http_options={"clock": clock.monotonic, "sleep": wait, "backoff_base": 0.0},
            now=clock.now,
        )
        sync = Sync(store, shop, clock, engine, waits)
        opened.append((sync, shop))
        return sync

    yield open_
    for sync, shop in opened:
        sync.engine.close()
        sync.store.engine.dispose()
        shop.stop()


# -- listings and the first push -----------------------------------------------------------------


def test_shopify_sync_sets_the_primary_location_and_reports_unknown_variants(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.shop.add_listing("NOT-OURS", 4)
    sync.shop.add_variant(None, {1: 1}, title="Gift wrap")  # a variant without SKU

    results = sync.run_once()

    listings = results["listings"]
    assert listings.counts["listings"] == 7
    assert listings.reports["unmatched_listings"] == [
        "NOT-OURS",
        "gid://shopify/InventoryItem/7|gid://shopify/Location/1",
    ]
    assert "MUG-CERAMIC" not in listings.reports["missing_listings"]
    assert "CAMERA-BAG" in listings.reports["missing_listings"]
    assert results["reconcile"].counts["pushed"] == 5
    assert sync.shown(*LISTED) == {sku: SELLABLE[sku] for sku in LISTED}
    assert sync.shown("NOT-OURS") == {"NOT-OURS": 4}  # never touched
    (status,) = channel_status(sync.engine)
    assert status["unmatched_listings"] == {
        "count": 2,
        "skus": listings.reports["unmatched_listings"],
    }
    # every push carried an explicit changeFromQuantity: what the listing read said (0)
    assert sync.shop.stale_answers == 0
    assert sync.shop.mutations_applied == 1

    again = sync.run_once()
    assert again["reconcile"].counts["pushed"] == 0
    assert sync.shop.mutations_applied == 1


@SQLITE_ONLY
def test_shopify_sync_once_cli_reports_unknown_variants_and_sets_quantities(
    config_file: Path,
) -> None:
    with ShopifyEmulator() as shop:
        assert isinstance(shop, ShopifyEmulator)
        for sku in LISTED:
            shop.add_listing(sku, 0)
        shop.add_listing("NOT-OURS", 4)
        settings = shop.connector_settings()
        with config_file.open("a") as handle:
            handle.write(
                '\n[[channels]]\ncode = "shopify"\nconnector = "shopify"\nwarehouses = ["main"]\n'
                f'[channels.settings]\nshop_url = "{settings["shop_url"]}"\n'
                f'access_token = "{settings["access_token"]}"\n'
            )
        store = open_store(config_file)
        store.load_examples()
        store.engine.dispose()

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "sellable", "--config", str(config_file), *args],
                cwd=config_file.parent,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        once = cli("sync", "--once")
        status = cli("status", "--json")

        assert (once.returncode, status.returncode) == (0, 0), once.stdout + once.stderr
        assert "    unmatched listings: 1 (NOT-OURS)" in once.stdout.splitlines()
        (report,) = json.loads(status.stdout)
        assert report["unmatched_listings"] == {"count": 1, "skus": ["NOT-OURS"]}
        assert {sku: shop.quantities()[sku] for sku in LISTED} == {
            sku: SELLABLE[sku] for sku in LISTED
        }
        assert shop.throttled_count == 0
        assert "shpat_emulator" not in once.stdout + once.stderr


# -- many pages, paced by the cost bucket ---------------------------------------------------------


BOTH_DATABASES = pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)


@BOTH_DATABASES
def test_shopify_sync_pages_600_variants_and_120_orders_without_being_throttled(
    open_sync: OpenSync,
) -> None:
    sync = open_sync(listed=())
    skus = list(SELLABLE)
    for n in range(600):
        sync.shop.add_listing(skus[n % len(skus)], 0)

    results = sync.run_once()

    assert results["listings"].counts["listings"] == 600
    assert results["reconcile"].counts["pushed"] == 600
    expected = {sku: SELLABLE[sku] * len(range(n, 600, len(skus))) for n, sku in enumerate(skus)}
    assert sync.shop.quantities() == expected
    # 3 listing pages of 249 variants, then 3 mutations of 250, 250 and 100 quantities
    assert sync.shop.mutations_applied == 3

    for _ in range(120):  # a customer every minute buys one ABC
        sync.clock.advance(60)
        sync.shop.place_order([("ABC", 1)])
    orders = sync.run("orders")
    push = sync.run("push")

    assert orders.counts["orders"] == 120  # three pages of 50, 50 and 20
    sold_out = ("ABC", "ALPHABET-BUNDLE")  # the bundle is made of ABC, DEF and GHI
    assert push.counts["pushed"] == sum(len(range(skus.index(s), 600, len(skus))) for s in sold_out)
    assert sync.shop.quantities() == {**expected, "ABC": 0, "ALPHABET-BUNDLE": 0}
    assert (sync.shop.throttled_graphql, sync.shop.throttled_count) == (0, 0)
    assert sum(sync.waits) > 0  # the limiter waited for points instead of being refused


# -- throttles that do happen -------------------------------------------------------------------


@SQLITE_ONLY
def test_shopify_sync_recovers_from_throttled_and_429(open_sync: OpenSync) -> None:
    sync = open_sync()
    sync.run("listings")
    # Another app spent the bucket behind our back: our limiter believes it has points, the
    # shop answers THROTTLED (HTTP 200) once, then a 429 on the retry.
    sync.shop.bucket.set(4)
    sync.waits.clear()

    push = sync.run("push")

    assert push.counts["pushed"] == 5
    assert sync.shown(*LISTED) == {sku: SELLABLE[sku] for sku in LISTED}
    assert sync.shop.throttled_graphql == 1
    # the retry waited for the deficit (10 requested - 4 available) at 50 points/s
    assert sync.waits == [pytest.approx(0.12)]

    sync.shop.place_order([("MUG-CERAMIC", 1)])
    sync.shop.inject({"status": 429})
    sync.waits.clear()
    orders = sync.run("orders")
    assert orders.counts["orders"] == 1
    assert sync.shop.throttled_count == 2  # the THROTTLED answer and the 429
    # The push left the bucket empty: the orders query (requested 2 + 10 x (1 + 2 + 10 x
    # 9 + 1) = 942 points, each line 1 and 8 for its money, 1 for the shipping address)
    # waits 18.84 s at 50/s; the 429 drains the limiter, so after its Retry-After (2.0 s)
    # the retry waits for the other 16.84 s of its 942 points.
    assert sync.waits == [pytest.approx(18.84), 2.0, pytest.approx(16.84)]


# -- compare-and-swap ---------------------------------------------------------------------------


@BOTH_DATABASES
def test_shopify_sync_rereads_a_stale_quantity_retries_once_and_ends_right(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.run_once()
    sync.run("listings")
    assert sync.shown("MUG-CERAMIC") == {"MUG-CERAMIC": 30}
    # our stock changes (a delivery of 5 mugs arrives: the push is pending) ...
    sync.store.csv("more.csv", "sku,warehouse,on_hand,locked\nMUG-CERAMIC,main,35,0\n")
    import_stock(sync.store.engine, sync.store.settings, sync.store.dir / "more.csv")

    # ... and a customer buys 2 mugs on Shopify between our read and our push
    def customer_first(_variables: dict[str, Any]) -> None:
        sync.shop.before_mutation = None
        sync.shop.place_order([("MUG-CERAMIC", 2)])

    sync.shop.before_mutation = customer_first
    push = sync.run("push")

    # refused as stale (28 on Shopify, not 30), read again, pushed again: ours is the truth
    assert sync.shop.stale_answers == 1
    assert push.counts["pushed"] == 3  # the mug and both gift sets (made with mugs)
    assert sync.shown("MUG-CERAMIC") == {"MUG-CERAMIC": 35}
    # the next cycle pulls that order: 35 - 2
    sync.run_once()
    assert sync.shown(*LISTED) == {
        "BEANS-12OZ": 50,
        "MUG-CERAMIC": 33,
        "SCOOP-WOOD": 100,
        "GIFT-SET-COFFEE": 43,
        "GIFT-KIT-COFFEE": 33,
    }


@SQLITE_ONLY
def test_shopify_sync_isolates_a_refused_item_and_retries_it_next_cycle(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.shop.variant_by_sku("SCOOP-WOOD").mutable = False  # e.g. a bundle Shopify computes

    first = sync.run_once()["reconcile"]

    assert (first.counts["pushed"], first.counts["failed"]) == (4, 1)
    assert sync.shown(*LISTED) == {
        **{sku: SELLABLE[sku] for sku in LISTED},
        "SCOOP-WOOD": 0,
    }
    (status,) = channel_status(sync.engine)
    assert status["failing_listings"] == [
        {
            "listing_id": "gid://shopify/InventoryItem/3|gid://shopify/Location/1",
            "error": "NON_MUTABLE_INVENTORY_ITEM: The specified inventory item is not allowed "
            "to be adjusted via API.",
        }
    ]
    again = sync.run("push")
    assert (again.counts["pending"], again.counts["pushed"], again.counts["failed"]) == (1, 0, 1)

    sync.shop.variant_by_sku("SCOOP-WOOD").mutable = True
    fixed = sync.run("push")
    assert (fixed.counts["pushed"], fixed.counts["failed"]) == (1, 0)
    assert sync.shown(*LISTED) == {sku: SELLABLE[sku] for sku in LISTED}


# -- locations ----------------------------------------------------------------------------------


@BOTH_DATABASES
def test_shopify_sync_gives_each_location_the_sellable_of_its_warehouse(
    open_sync: OpenSync,
) -> None:
    sync = open_sync(
        listed=(),
        warehouses=("main", "fba-us"),
        location_map={"gid://shopify/Location/1": "main", "gid://shopify/Location/2": "fba-us"},
        locations=("Main", "FBA mirror"),
    )
    sync.shop.add_variant("ALPHABET-BUNDLE", {1: 0, 2: 0})
    sync.shop.add_variant("MUG-CERAMIC", {1: 0}, stocked_at=(1,))  # not stocked at 2

    results = sync.run_once()

    assert results["listings"].counts["listings"] == 3
    assert sync.shop.available("ALPHABET-BUNDLE", 1) == 50  # from components in main
    assert sync.shop.available("ALPHABET-BUNDLE", 2) == 8  # pre-packed in fba-us only
    assert sync.shop.available("MUG-CERAMIC", 1) == 30
    assert sync.shop.quantities() == {"ALPHABET-BUNDLE": 58, "MUG-CERAMIC": 30}

    # Orders take stock from the warehouse of the location Shopify assigned them to.
    sync.clock.advance(60)
    sync.shop.place_order([("ALPHABET-BUNDLE", 3)], location=2)  # pre-packed units at FBA
    sync.shop.place_order([("ALPHABET-BUNDLE", 2)], location=1)  # built from ABC, DEF, GHI
    sync.clock.advance(60)
    sync.run_once()

    assert sync.shop.available("ALPHABET-BUNDLE", 1) == 48  # min(120, 50, 75) - 2
    assert sync.shop.available("ALPHABET-BUNDLE", 2) == 5  # 8 - 3


# -- orders on Shopify ----------------------------------------------------------------------------


@BOTH_DATABASES
def test_shopify_order_lowers_kit_components_and_its_cancellation_releases_them(
    open_sync: OpenSync,
) -> None:
    sync = open_sync()
    sync.run_once()
    sync.clock.advance(60)
    order = sync.shop.place_order([("GIFT-KIT-COFFEE", 3)])  # a kit: 3 of each component

    sync.clock.advance(60)
    sync.run_once()

    assert sync.shown(*LISTED) == {
        "BEANS-12OZ": 47,
        "MUG-CERAMIC": 27,
        "SCOOP-WOOD": 97,
        "GIFT-SET-COFFEE": 37,  # 10 prepackaged + min(47, 27, 97)
        "GIFT-KIT-COFFEE": 27,
    }

    sync.clock.advance(60)
    sync.shop.cancel_order(order)
    sync.clock.advance(60)
    sync.run_once()

    assert sync.shown(*LISTED) == {sku: SELLABLE[sku] for sku in LISTED}


@SQLITE_ONLY
def test_shopify_order_edit_and_fulfilment_follow_current_quantity(open_sync: OpenSync) -> None:
    sync = open_sync()
    sync.run_once()
    sync.clock.advance(60)
    order = sync.shop.place_order([("MUG-CERAMIC", 3)])
    sync.clock.advance(60)
    sync.run_once()
    assert sync.shown("MUG-CERAMIC") == {"MUG-CERAMIC": 27}

    sync.clock.advance(60)
    sync.shop.remove_units(order, 0, 1)  # the customer keeps 2: currentQuantity 2
    sync.clock.advance(60)
    sync.run_once()
    assert sync.shown("MUG-CERAMIC") == {"MUG-CERAMIC": 28}

    sync.clock.advance(60)
    sync.shop.fulfill_order(order)  # shipped: stays sold, leaves our shelf
    sync.clock.advance(60)
    sync.run_once()
    assert sync.shown("MUG-CERAMIC", "GIFT-KIT-COFFEE") == {
        "MUG-CERAMIC": 28,
        "GIFT-KIT-COFFEE": 28,
    }
    row = sync.store.stock_row("MUG-CERAMIC", "main")
    assert row is not None
    assert (row[0], row[2]) == (28, 0)  # on hand 30 - 2 shipped, nothing allocated


# -- what a kit earned ---------------------------------------------------------------------------


@BOTH_DATABASES_REVENUE
def test_shopify_cogs_shows_what_a_kit_earned_without_the_included_tax(
    open_sync: OpenSync,
) -> None:
    # Prices include tax; the customer pays in EUR, the shop keeps its books in USD.
    sync = open_sync(
        listed=(),
        tax_rate="0.20",
        taxes_included=True,
        presentment_currency="EUR",
        presentment_rate="0.9",
    )
    sync.shop.add_listing(KIT, 0, price="27.00")
    sync.run_once()
    # 3 x 27.00 = 81.00 less a 10 % code = 72.90 paid, of which 12.15 is tax: 60.75
    order_id = sync.shop.place_order([(KIT, 3)], discount_percent="10")
    sync.shop.fulfill_order(order_id)
    sync.clock.advance(60)

    sync.run("orders")

    assert_kit_earned(cogs_line(sync.store.config, "shopify", order_id), "60.75", "USD", 3)
