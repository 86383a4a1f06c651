"""The WooCommerce order pull with respx: the options a customer chose, read from the line
item ``meta_data`` entries keyed ``_sellable_option:<slot>``; an order names no warehouse
(it is routed across the channel's warehouses by the framework)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

from sellable.sdk import ChannelHttp, ChannelOrderLine, ConnectorContext
from tests.connectors.woocommerce.test_woocommerce_connector import (
    API,
    KEY,
    ORDERS,
    SECRET,
    SITE,
    pages,
)


@pytest.fixture
def shop() -> Iterator[tuple[WooCommerceConnector, respx.MockRouter]]:
    with respx.mock(assert_all_called=True) as router:
        http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
        settings = WooCommerceSettings(base_url=SITE, consumer_key=KEY, consumer_secret=SECRET)  # type: ignore[arg-type]
        connector = WooCommerceConnector(settings, ConnectorContext("woo", ("main", "tpl"), http))
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        yield connector, router
        http.close()


def meta(entry_id: int, key: str, value: Any) -> dict[str, Any]:
    """A line item meta entry as the REST API v3 gives it."""
    return {
        "id": entry_id,
        "key": key,
        "value": value,
        "display_key": key,
        "display_value": value,
    }


def test_line_options_come_from_the_sellable_option_meta(
    shop: tuple[WooCommerceConnector, respx.MockRouter],
) -> None:
    connector, router = shop
    order = dict(ORDERS[0])
    order["line_items"] = [
        {
            "id": 315,
            "quantity": 2,
            "sku": "SET",
            "meta_data": [
                meta(1, "_sellable_option:mug", "MUG-RED"),
                meta(2, "_reduced_stock", "2"),  # core's own hidden meta: left alone
                meta(3, "pa_colour", "red"),  # a variation attribute: left alone
                meta(4, "_sellable_option:beans", " BEANS-DECAF "),
                meta(5, "_sellable_option:mug", "MUG-BLUE"),  # repeated: the first wins
                meta(6, "_sellable_option:scoop", ["SCOOP"]),  # not text: ignored
                meta(7, "_sellable_option:", "X"),  # no slot: ignored
            ],
        },
        {"id": 316, "quantity": 1, "sku": "MUG", "meta_data": []},
        {"id": 317, "quantity": 1, "sku": "BEANS"},  # no meta_data at all
    ]
    router.get(f"{API}/orders").mock(
        side_effect=[
            httpx.Response(200, json=[order], headers=pages(1, 1)),
            httpx.Response(200, json=[], headers=pages(0, 0)),
        ]
    )

    page = connector.pull_orders(datetime(2017, 3, 1, tzinfo=UTC), None)

    (pulled,) = page.orders
    assert pulled.lines == (
        ChannelOrderLine("315", "SET", 2, options=(("mug", "MUG-RED"), ("beans", "BEANS-DECAF"))),
        ChannelOrderLine("316", "MUG", 1),
        ChannelOrderLine("317", "BEANS", 1),
    )
    assert pulled.warehouse is None
