"""The Amazon connector passes the connector contract suite (sellable.sdk.testing) against
the SP-API emulator on loopback, both on one manual clock. Amazon applies quantities later
(patches, feeds): the suite asks again after ``settle`` moves the clock on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sellable_amazon.connector import AmazonConnector

from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.sdk import PushItem
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests

LISTINGS = 45  # three pages of 20


class TestAmazonContract(connector_tests(AmazonConnector)):
    @pytest.fixture
    def contract(self) -> Iterator[ContractSetup]:
        clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
        since = clock.now() - timedelta(minutes=1)
        emulator = AmazonEmulator(clock=clock)
        for n in range(LISTINGS):
            emulator.add_listing(f"A-{n:03d}", 5)
        emulator.place_order([("A-001", 1), ("A-002", 2)])
        clock.advance(5)
        emulator.place_order([("A-003", 1)])

        def refuse(item: PushItem) -> PushItem:
            assert item.listing.sku is not None
            emulator.refuse(item.listing.sku)
            return item

        with emulator:
            yield ContractSetup(
                settings=emulator.connector_settings(),
                build=lambda settings: build_connector(
                    AmazonConnector,
                    settings,
                    clock=clock.monotonic,
                    sleep=clock.advance,
                    backoff_base=0.0,
                ),
                refuse=refuse,
                since=since,
                settle=lambda: clock.advance(60),
                min_listings=LISTINGS,
                min_orders=2,
            )
