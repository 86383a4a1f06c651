"""The WooCommerce connector passes the connector contract suite (sellable.sdk.testing)
against the WooCommerce emulator on loopback, both on one manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sellable_woocommerce.connector import WooCommerceConnector

from sellable.emulators import ManualClock
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.sdk import PushItem, RateLimit
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests

LISTINGS = 130  # two pages of 100


class TestWooCommerceContract(connector_tests(WooCommerceConnector)):
    @pytest.fixture
    def contract(self) -> Iterator[ContractSetup]:
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        since = clock.now() - timedelta(minutes=1)
        shop = WooCommerceEmulator(clock=clock)
        for n in range(LISTINGS):
            shop.add_listing(f"P-{n:03d}", n)
        shop.place_order([("P-001", 1), ("P-002", 2)])
        corrupted = shop.place_order([("P-004", 1)])
        clock.advance(5)
        shop.place_order([("P-003", 1)], status="completed")

        def corrupt() -> str:
            shop.corrupt_order(corrupted, "line_items.0.quantity", "two")
            return corrupted

        def refuse(item: PushItem) -> PushItem:
            shop.failing_updates[int(item.listing.listing_id)] = 99
            return item

        with shop:
            yield ContractSetup(
                settings=shop.connector_settings(),
                build=lambda settings: build_connector(
                    WooCommerceConnector,
                    settings,
                    clock=clock.monotonic,
                    sleep=clock.advance,
                    backoff_base=0.0,
                ),
                refuse=refuse,
                since=since,
                min_listings=LISTINGS,
                min_orders=2,
                corrupt=corrupt,
                bad_settings={"base_url": "http://shop.example.com"},  # plain HTTP off loopback
            )


def test_requests_per_second_overrides_the_rate_through_rate_limits() -> None:
    settings = WooCommerceConnector.Settings.model_validate(
        {
            "base_url": "https://shop.example.com",
            "consumer_key": "ck_x",
            "consumer_secret": "cs_x",
            "requests_per_second": 5,
        }
    )
    assert WooCommerceConnector.rate_limits(settings) == {None: RateLimit(rate=5, burst=20)}
    default = WooCommerceConnector.Settings.model_validate(
        {"base_url": "https://shop.example.com", "consumer_key": "ck_x", "consumer_secret": "cs_x"}
    )
    assert WooCommerceConnector.rate_limits(default) == {None: RateLimit(rate=2.5, burst=20)}
    connector = build_connector(WooCommerceConnector, settings.model_dump(mode="python"))
    try:
        assert connector.http.bucket is not None
        assert (connector.http.bucket.rate, connector.http.bucket.burst) == (5, 20)
    finally:
        connector.http.close()
