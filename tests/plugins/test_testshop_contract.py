"""The testshop plugin passes the connector contract suite (sellable.sdk.testing) against
its own shop on loopback, as a third party's connector would. The plugin is installed with
pip by the ``plugin_dir`` fixture, so its classes are imported inside the fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sellable.sdk import Connector, PushItem
from sellable.sdk.testing import ContractSetup, build_connector, connector_tests


class TestTestShopContract(connector_tests()):
    @pytest.fixture
    def connector_class(self, plugin_dir: Path) -> type[Connector]:
        from sellable_testshop.connector import TestShopConnector

        return TestShopConnector

    @pytest.fixture
    def contract(self, connector_class: type[Connector]) -> Iterator[ContractSetup]:
        from sellable_testshop.server import ShopState, TestShopServer

        state = ShopState(token="testshop-5ecr3t-token")
        for n in range(7):
            state.add_listing(f"L{n}", f"SKU-{n}", quantity=n)
        state.add_listing("L-unmatched", None)
        state.place_order("1001", [("SKU-1", 2)])
        state.place_order("1002", [("SKU-2", 1), ("SKU-3", 1)], status="completed")

        def refuse(item: PushItem) -> PushItem:
            state.refuse = {item.listing.listing_id}
            return item

        with TestShopServer(state) as shop:
            yield ContractSetup(
                settings={"base_url": shop.url, "token": state.token, "page_size": 3},
                build=lambda settings: build_connector(connector_class, settings),
                refuse=refuse,
                since=datetime.fromtimestamp(state.epoch, UTC),
                min_listings=8,
                min_orders=2,
            )
