"""What an Amazon order item earned: its ``proceeds`` ``ITEM`` breakdown less the
``DISCOUNT`` breakdown's ``ITEM`` part, without ``TAX`` (Orders API 2026-01-01,
``includedData=PROCEEDS``), exact to the cent, in the breakdown's currency."""

# The fixtures of test_connector.py are imported, and named again as test parameters.
# ruff: noqa: F811

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from sellable_amazon.connector import AmazonConnector, AmazonSettings

from sellable.emulators.amazon import AmazonEmulator
from sellable.emulators.base import ManualClock
from sellable.sdk import ChannelHttp, ChannelOrderLine, ConnectorContext
from tests.connectors.amazon.test_connector import (  # noqa: F401 - fixtures
    ENDPOINT,
    MakeConnector,
    api,
    fake_time,
    make_connector,
    model,
)

SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currencyCode": currency}


def order(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "orders": [
            {
                "orderId": "113-0000001-0000001",
                "createdTime": "2026-03-01T10:00:00Z",
                "lastUpdatedTime": "2026-03-01T10:05:00Z",
                "salesChannel": {"channelName": "AMAZON", "marketplaceId": "A1VC38T7YXB528"},
                "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
                "orderItems": [
                    {
                        "orderItemId": f"0000001000000{n}",
                        "quantityOrdered": 3,
                        "product": {"asin": "B000000001", "sellerSku": f"SKU-{n}"},
                        **item,
                    }
                    for n, item in enumerate(items)
                ],
            }
        ]
    }


# 3 x 12.34 = 37.02 (ITEM), a 10 % promotion of 3.70 (DISCOUNT, negative as the
# breakdowns sum to proceedsTotal), 20 % tax on 33.32 = 6.66 (TAX): 39.98 in all.
DISCOUNTED_TAXED = {
    "proceeds": {
        "proceedsTotal": money("39.98"),
        "breakdowns": [
            {"type": "ITEM", "subtotal": money("37.02")},
            {
                "type": "DISCOUNT",
                "subtotal": money("-3.70"),
                "detailedBreakdowns": [{"subtype": "ITEM", "value": money("-3.70")}],
            },
            {
                "type": "TAX",
                "subtotal": money("6.66"),
                "detailedBreakdowns": [
                    {"subtype": "ITEM", "value": money("7.40")},
                    {"subtype": "DISCOUNT", "value": money("-0.74")},
                ],
            },
        ],
    }
}


def lines(api: respx.MockRouter, connector: Any, items: list[dict[str, Any]]) -> Any:
    api.get(f"{ENDPOINT}/orders/2026-01-01/orders").mock(
        return_value=httpx.Response(200, json=order(items))
    )
    page = connector.pull_orders(SINCE, None)
    assert not page.rejected
    return page.orders[0].lines


def test_amazon_revenue_is_item_less_the_item_discount_without_tax(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    (line,) = lines(api, make_connector(), [DISCOUNTED_TAXED])

    assert (line.revenue, line.currency) == (Decimal("33.32"), "USD")
    assert str(line.revenue) == "33.32"


def test_amazon_revenue_of_the_models_get_order_example_leaves_shipping_and_tax_out(
    api: respx.MockRouter, make_connector: MakeConnector
) -> None:
    # getOrder's example item: ITEM 89.97 + SHIPPING 10.00 + TAX 4.00 = proceedsTotal 103.97
    example = model("orders_2026-01-01.json")["paths"]["/orders/2026-01-01/orders/{orderId}"]
    item = example["get"]["responses"]["200"]["examples"]["application/json"]["order"][
        "orderItems"
    ][0]

    (line,) = lines(api, make_connector(), [{"proceeds": item["proceeds"]}])

    assert (line.revenue, line.currency) == (Decimal("89.97"), "GBP")


@pytest.mark.parametrize(
    ("discount", "expected"),
    [
        (
            {
                "type": "DISCOUNT",
                "subtotal": money("-5.00"),
                "detailedBreakdowns": [
                    {"subtype": "ITEM", "value": money("-3.70")},
                    {"subtype": "SHIPPING", "value": money("-1.30")},
                ],
            },
            Decimal("33.32"),
        ),
        ({"type": "DISCOUNT", "subtotal": money("-3.70")}, Decimal("33.32")),
        ({"type": "DISCOUNT", "subtotal": money("3.70")}, Decimal("33.32")),
    ],
    ids=["item-part-only", "no-details", "positive-sign"],
)
def test_amazon_revenue_takes_the_items_share_of_a_discount(
    api: respx.MockRouter,
    make_connector: MakeConnector,
    discount: dict[str, Any],
    expected: Decimal,
) -> None:
    proceeds = {"breakdowns": [{"type": "ITEM", "subtotal": money("37.02")}, discount]}

    (line,) = lines(api, make_connector(), [{"proceeds": proceeds}])

    assert line.revenue == expected


@pytest.mark.parametrize(
    "proceeds",
    [
        None,
        "39.98",
        {"proceedsTotal": money("39.98")},
        {"breakdowns": [{"type": "TAX", "subtotal": money("6.66")}]},
        {"breakdowns": [{"type": "ITEM", "subtotal": money("thirty")}]},
        {"breakdowns": [{"type": "ITEM", "subtotal": {"amount": 37.02, "currencyCode": "USD"}}]},
        {"breakdowns": [{"type": "ITEM", "subtotal": money("37.02", "dollars")}]},
        {"breakdowns": [{"type": "ITEM", "subtotal": {"amount": "37.02"}}]},
        {
            "breakdowns": [
                {"type": "ITEM", "subtotal": money("37.02")},
                {"type": "DISCOUNT", "subtotal": money("-3.70", "EUR")},
            ]
        },
        {
            "breakdowns": [
                {"type": "ITEM", "subtotal": money("3.00")},
                {"type": "DISCOUNT", "subtotal": money("-5.00")},
            ]
        },
    ],
    ids=[
        "no-proceeds",
        "not-an-object",
        "no-breakdowns",
        "no-item",
        "not-an-amount",
        "json-number",
        "bad-currency",
        "no-currency",
        "mixed-currencies",
        "discount-above-price",
    ],
)
def test_amazon_an_item_without_readable_proceeds_has_no_revenue_and_still_imports(
    api: respx.MockRouter, make_connector: MakeConnector, proceeds: Any
) -> None:
    item = {} if proceeds is None else {"proceeds": proceeds}

    first, second = lines(api, make_connector(), [item, DISCOUNTED_TAXED])

    assert (first.revenue, first.currency) == (None, None)
    assert first.quantity == 3
    assert second.revenue == Decimal("33.32")


def test_amazon_emulator_serves_proceeds_the_connector_reads_exactly() -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with AmazonEmulator(clock=clock, tax_rate="0.20") as amazon:
        amazon.add_listing("KIT", 10, price="12.34")
        amazon.place_order([("KIT", 3)], promotion_percent="10")
        http = ChannelHttp("amazon", sleep=lambda _s: None, backoff_base=0.0)
        connector = AmazonConnector(
            AmazonSettings.model_validate(amazon.connector_settings()),
            ConnectorContext("amazon", ("main",), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        try:
            page = connector.pull_orders(datetime(2026, 2, 28, tzinfo=UTC), None)
        finally:
            http.close()

    assert [line for order in page.orders for line in order.lines] == [
        ChannelOrderLine(
            page.orders[0].lines[0].line_id, "KIT", 3, revenue=Decimal("33.32"), currency="USD"
        )
    ]
