"""The Shopify connector end to end: the daemon's own jobs (SyncEngine.run_once/run_job)
against the Shopify emulator over loopback HTTP, with the example catalog.

The emulator, the HTTP client's limiter and its retry sleeps share one ManualClock: a wait
moves the clock, so the cost bucket refills exactly as it would in real time and no test
sleeps. Quantities are exact: warehouse ``main`` of the example catalog gives
:data:`SELLABLE`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.sync.engine import JobResult, SyncEngine
from sellable.sync.status import channel_status
from tests.imports import Store, open_store

SELLABLE = {
    "BEANS-12OZ": 50,
    "MUG-CERAMIC": 30,
    "SCOOP-WOOD": 100,
    "GIFT-SET-COFFEE": 40,  # 10 prepackaged + min(50, 30, 100) from components
    "GIFT-KIT-COFFEE": 30,  # min(50, 30, 100)
    "COMP-A": 50,
    "COMP-B": 30,
    "FAQ-KIT": 30,
    "FAQ-ASSEMBLY": 25,
    "ABC": 120,
    "DEF": 50,
    "GHI": 75,
    "ALPHABET-BUNDLE": 50,  # from components in main; its 8 prepackaged are in fba-us
    "DSLR-CAMERA-BLACK": 10,
    "LENS-18-55": 4,
    "LENS-18-135": 3,
    "CAMERA-BAG": 20,
    "CAMERA-STARTER-KIT": 7,
}
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
    """``open_sync(listed=..., warehouses=..., locations=..., **emulator options)``: the
    example catalog, a Shopify emulator listing ``listed`` at 0, and an engine on it."""
    opened: list[tuple[Sync, ShopifyEmulator]] = []

    def open_(
        *,
        listed: tuple[str, ...] = LISTED,
        warehouses: tuple[str, ...] = ("main",),
        locations: dict[str, str] | None = None,
        **options: Any,
    ) -> Sync:
        clock = ManualClock(START)
        shop = ShopifyEmulator(clock=clock, **options).start()
        assert isinstance(shop, ShopifyEmulator)
        for sku in listed:
            shop.add_listing(sku, 0)
        settings = shop.connector_settings()
        table = "".join(f'"{gid}" = "{code}", ' for gid, code in (locations or {}).items())
        with config_file.open("a") as handle:
            handle.write(
                '\n[[channels]]\ncode = "shopify"\nconnector = "shopify"\n'
                f"warehouses = {list(warehouses)!r}\n".replace("'", '"')
                + "[channels.settings]\n"
                + f'shop_url = "{settings["shop_url"]}"\n'
                + f'access_token = "{settings["access_token"]}"\n'
                + (f"locations = {{ {table.rstrip(', ')} }}\n" if locations else "")
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
