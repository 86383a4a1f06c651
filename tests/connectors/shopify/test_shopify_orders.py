"""The Shopify order pull with respx: where an order is booked (the location Shopify
assigned, when it maps to one of the channel's warehouses; else routed) and the options
read from the line item properties ``_sellable_option:<slot>``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import respx
from sellable_shopify.client import order_lines_query, orders_query
from sellable_shopify.connector import ShopifyConnector, ShopifySettings

from sellable.sdk import ChannelHttp, ChannelOrderLine, ConnectorContext
from tests.connectors.shopify.test_shopify_client import ENDPOINT, Clock, cost

MakeConnector = Callable[..., ShopifyConnector]


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


@pytest.fixture
def make_connector() -> Iterator[MakeConnector]:
    made: list[ChannelHttp] = []
    clock = Clock()

    def make(warehouses: tuple[str, ...] = ("main",), **settings: Any) -> ShopifyConnector:
        http = ChannelHttp("shopify", clock=clock.monotonic, sleep=clock.sleep, backoff_base=0.0)
        made.append(http)
        values = {"shop_url": "example-shop.myshopify.com", "access_token": "shpat_secret"}
        connector = ShopifyConnector(
            ShopifySettings(**{**values, **settings}),
            ConnectorContext("shopify", warehouses, http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return connector

    yield make
    for http in made:
        http.close()


def order(
    number: int, location: str | None = None, lines: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    assigned = [{"assignedLocation": {"location": {"id": location}}}] if location else []
    return {
        "id": f"gid://shopify/Order/{number}",
        "createdAt": "2026-11-01T10:00:00Z",
        "updatedAt": "2026-11-01T10:00:00Z",
        "cancelledAt": None,
        "closed": False,
        "displayFulfillmentStatus": "UNFULFILLED",
        "lineItems": {
            "nodes": lines
            or [{"id": f"L{number}", "sku": "MUG", "quantity": 1, "currentQuantity": 1}],
            "pageInfo": {"hasNextPage": False, "endCursor": None},
        },
        "fulfillmentOrders": {"nodes": assigned},
    }


def answer(*orders: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {
            "orders": {
                "nodes": list(orders),
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            }
        },
        "extensions": cost(902, 62, 938.0),
    }


def test_an_order_is_booked_at_its_assigned_location_only_when_the_channel_lists_it(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    route = api.post(ENDPOINT).respond(
        200,
        json=answer(
            order(1, "gid://shopify/Location/2"),  # outlet: one of the channel's warehouses
            order(2, "gid://shopify/Location/7"),  # not mapped
            order(3),  # no fulfilment order yet
            order(4, "gid://shopify/Location/3"),  # mapped to a warehouse the channel lacks
        ),
    )
    connector = make_connector(
        warehouses=("main", "outlet"),
        locations={
            "gid://shopify/Location/1": "main",
            "gid://shopify/Location/2": "outlet",
            "gid://shopify/Location/3": "tpl",
        },
    )

    page = connector.pull_orders(datetime(2026, 11, 1, tzinfo=UTC), None)

    # None: the framework routes the order across the channel's warehouses in order.
    assert [o.warehouse for o in page.orders] == ["outlet", None, None, None]
    (call,) = route.calls
    body = json.loads(call.request.content)
    assert (
        "fulfillmentOrders(first: 1) { nodes { assignedLocation { location { id } } } }"
        in body["query"]
    )
    assert body["variables"]["first"] == 10  # 2 + 10 x 98 = 982 points, under the cap


def test_line_options_come_from_the_sellable_option_properties(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    properties = [
        {"key": "_sellable_option:mug", "value": "MUG-RED"},
        {"key": "Engraving", "value": "For Ada"},  # the storefront's own: left alone
        {"key": "_sellable_option:beans", "value": " BEANS-DECAF "},
        {"key": "_sellable_option:mug", "value": "MUG-BLUE"},  # repeated: the first wins
        {"key": "_sellable_option:", "value": "X"},  # no slot
        {"key": "_sellable_option:scoop", "value": ""},  # no SKU
    ]
    lines = [
        {"id": "L1", "sku": "SET", "quantity": 2, "currentQuantity": 2, "customAttributes": []},
        {
            "id": "L2",
            "sku": "SET",
            "quantity": 1,
            "currentQuantity": 1,
            "customAttributes": properties,
        },
    ]
    route = api.post(ENDPOINT).respond(200, json=answer(order(1, lines=lines)))
    connector = make_connector(line_options=True)

    page = connector.pull_orders(datetime(2026, 11, 1, tzinfo=UTC), None)

    (pulled,) = page.orders
    assert pulled.lines == (
        ChannelOrderLine("L1", "SET", 2),
        ChannelOrderLine("L2", "SET", 1, options=(("mug", "MUG-RED"), ("beans", "BEANS-DECAF"))),
    )
    body = json.loads(route.calls[0].request.content)
    assert "customAttributes { key value }" in body["query"]
    assert body["variables"]["first"] == 9  # 2 + 9 x 103 = 929 points, under the cap


def test_without_line_options_the_properties_are_not_asked_for(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    route = api.post(ENDPOINT).respond(200, json=answer(order(1)))

    make_connector().pull_orders(datetime(2026, 11, 1, tzinfo=UTC), None)

    body = json.loads(route.calls[0].request.content)
    assert "customAttributes" not in body["query"]


@pytest.mark.parametrize(
    ("with_location", "with_options", "first", "requested"),
    [
        # per line: 1, its money 8 (originalTotalSet, discountAllocations, taxLines), 1 for
        # its properties; per order 3, 1 for its shipping address and 5 for its location
        pytest.param(False, False, 10, 942, id="plain"),
        pytest.param(True, False, 10, 992, id="location"),
        pytest.param(False, True, 9, 938, id="options"),
        pytest.param(True, True, 9, 983, id="location-and-options"),
    ],
)
def test_order_pages_stay_under_the_single_query_cap(
    with_location: bool, with_options: bool, first: int, requested: int
) -> None:
    _document, size, cost_ = orders_query(with_location, with_options)
    assert (size, cost_) == (first, requested)
    assert cost_ <= 1000


def test_the_further_line_items_query_asks_for_properties_only_with_line_options() -> None:
    plain, plain_cost = order_lines_query(False)
    with_options, options_cost = order_lines_query(True)
    # as many lines as fit under the 1000-point cap: 110 x 9 + 3, 99 x 10 + 3
    assert ("customAttributes" in plain, plain_cost) == (False, 993)
    assert ("lineItems(first: 110," in plain) is True
    assert ("customAttributes { key value }" in with_options, options_cost) == (True, 993)
    assert ("lineItems(first: 99," in with_options) is True
