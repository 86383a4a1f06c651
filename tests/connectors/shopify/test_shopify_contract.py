"""The Shopify connector passes the connector contract suite (sellable.sdk.testing) against
the Shopify emulator on loopback, both on one manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sellable_shopify.connector import ShopifyConnector

from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.sdk import PushItem
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests

LISTINGS = 300  # two pages of 249 variants (one location)


class TestShopifyContract(connector_tests(ShopifyConnector)):
    @pytest.fixture
    def contract(self) -> Iterator[ContractSetup]:
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        since = clock.now() - timedelta(minutes=1)
        shop = ShopifyEmulator(clock=clock)
        for n in range(LISTINGS):
            shop.add_listing(f"V-{n:03d}", 10)
        shop.place_order([("V-001", 1), ("V-002", 2)])
        clock.advance(5)
        shop.place_order([("V-003", 1)])

        def refuse(item: PushItem) -> PushItem:
            assert item.listing.sku is not None
            shop.variant_by_sku(item.listing.sku).mutable = False
            return item

        with shop:
            yield ContractSetup(
                settings=shop.connector_settings(),
                build=lambda settings: build_connector(
                    ShopifyConnector,
                    settings,
                    clock=clock.monotonic,
                    sleep=clock.advance,
                    backoff_base=0.0,
                ),
                refuse=refuse,
                since=since,
                min_listings=LISTINGS,
                min_orders=2,
                bad_settings={"api_version": "2020-01"},
            )
