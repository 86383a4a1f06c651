"""The bulk path end to end against the Shopify emulator over loopback HTTP: it finds exactly
what the paged path finds (listings and quantities), through the daemon's jobs too, and a
drift on the shop is repaired by a reconcile read through a bulk operation. One
ManualClock drives the emulator and the HTTP client's waits: no sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sellable_shopify.connector import ShopifyConnector, ShopifySettings

from sellable.emulators import ManualClock
from sellable.emulators.shopify import BULK_WINDOW, ShopifyEmulator
from sellable.sdk import ChannelHttp, ConnectorContext, Listing
from tests.connectors.shopify.test_shopify_e2e import (  # noqa: F401 (fixtures)
    LISTED,
    SELLABLE,
    OpenSync,
    open_sync,
)

L1, L2 = "gid://shopify/Location/1", "gid://shopify/Location/2"


@pytest.fixture
def shop() -> Iterator[tuple[ShopifyEmulator, ManualClock]]:
    clock = ManualClock()
    emulator = ShopifyEmulator(clock=clock, locations=("Main", "Outlet", "Popup"))
    # more variants than one window of the emulator's bulk execution: the rest of the
    # operation runs while the connector polls
    for n in range(BULK_WINDOW + 300):
        if n % 5 == 0:
            emulator.add_variant(f"SKU-{n}", {1: n % 13}, stocked_at=[1, 3])
        elif n % 7 == 0:
            emulator.add_variant(None, {1: 1, 2: 2})  # no SKU
        else:
            emulator.add_variant(f"SKU-{n}", {1: n % 17, 2: -(n % 3)})
    emulator.start()
    yield emulator, clock
    emulator.stop()


def connector(emulator: ShopifyEmulator, clock: ManualClock, **settings: Any) -> ShopifyConnector:
    http = ChannelHttp("shopify", clock=clock.monotonic, sleep=clock.advance, backoff_base=0.0)
    made = ShopifyConnector(
        ShopifySettings(
            **emulator.connector_settings(), locations={L1: "main", L2: "outlet"}, **settings
        ),
        ConnectorContext("shopify", ("main", "outlet"), http),
    )
    http.set_base_url(made.base_url())
    http.authenticate = made.authenticate
    return made


def every_listing(made: ShopifyConnector) -> list[Listing]:
    found: list[Listing] = []
    cursor: str | None = None
    while True:
        page = made.list_listings(cursor)
        found.extend(page.listings)
        cursor = page.next_cursor
        if cursor is None:
            return found


def test_shopify_bulk_and_paged_read_the_same_listings_and_quantities(
    shop: tuple[ShopifyEmulator, ManualClock],
) -> None:
    emulator, clock = shop
    paged = connector(emulator, clock, bulk_operations=False)
    bulk = connector(emulator, clock)
    try:
        check_the_same(emulator, paged, bulk)
    finally:
        paged.http.close()
        bulk.http.close()


def check_the_same(
    emulator: ShopifyEmulator, paged: ShopifyConnector, bulk: ShopifyConnector
) -> None:
    by_pages = every_listing(paged)
    by_bulk = every_listing(bulk)

    assert sorted(by_bulk, key=lambda x: x.listing_id) == sorted(
        by_pages, key=lambda x: x.listing_id
    )
    # 560 variants stocked at Main and the unmapped Popup, 2,240 at Main and Outlet
    assert len(by_bulk) == 560 + 2 * 2240
    assert {x.quantity for x in by_bulk if x.listing_id.endswith(L2)} == {0, -1, -2, 2}
    assert len(emulator.bulk_runs) == 1
    # the reconcile's batches of 250: one bulk operation answers them all
    quantities: dict[str, int] = {}
    for start in range(0, len(by_bulk), 250):
        quantities.update(bulk.read_quantities(by_bulk[start : start + 250]))
    assert len(emulator.bulk_runs) == 2
    assert quantities == paged.read_quantities(by_pages)
    assert quantities == {x.listing_id: x.quantity for x in by_pages}
    assert emulator.bulk_downloads_with_token == 0


def test_shopify_daemon_refreshes_and_reconciles_through_bulk_operations(
    open_sync: OpenSync,  # noqa: F811
) -> None:
    sync = open_sync()

    first = sync.run_once()
    sync.shop.set_available("MUG-CERAMIC", 99)  # the merchant edits it on Shopify
    reconciled = sync.run("reconcile")

    assert first["listings"].counts["listings"] == len(LISTED)
    assert reconciled.counts["drifted"] == 1
    assert reconciled.counts["pushed"] == 1
    assert sync.shown(*LISTED) == {sku: SELLABLE[sku] for sku in LISTED}
    # the refresh, the first reconcile and this one: one operation each
    assert len(sync.shop.bulk_runs) == 3
    assert sync.shop.throttled_count == 0
