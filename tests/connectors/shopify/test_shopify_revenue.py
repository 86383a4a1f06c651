"""What a Shopify line item earned: ``originalTotalSet`` less its ``discountAllocations``
(order-level discounts included), less its ``taxLines`` when the order's ``taxesIncluded``,
in the shop currency (``shopMoney``), exact to the cent; None where the line does not say."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import respx
from sellable_shopify.connector import ShopifyConnector, ShopifySettings

from sellable.emulators.base import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.sdk import ChannelHttp, ConnectorContext
from tests.connectors.shopify.test_shopify_client import ENDPOINT
from tests.connectors.shopify.test_shopify_orders import (  # noqa: F401 - fixtures
    MakeConnector,
    answer,
    api,
    make_connector,
    order,
)

# The fixtures of test_shopify_orders.py are imported, and named again as test parameters.
# ruff: noqa: F811

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def bag(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def line(
    original: str | None,
    discounts: Sequence[str] = (),
    taxes: Sequence[str] = (),
    *,
    quantity: int = 3,
    current: int = 3,
    **fields: Any,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": "gid://shopify/LineItem/1",
        "sku": "KIT",
        "quantity": quantity,
        "currentQuantity": current,
        "discountAllocations": [{"allocatedAmountSet": bag(d)} for d in discounts],
        "taxLines": [{"priceSet": bag(t)} for t in taxes],
        **fields,
    }
    if original is not None:
        node.setdefault("originalTotalSet", bag(original))
    return node


def pulled(
    api: respx.MockRouter,
    connector: Any,
    lines: list[dict[str, Any]],
    *,
    taxes_included: Any = False,
    currency: Any = "USD",
) -> Any:
    node = order(1, lines=lines)
    node.update(taxesIncluded=taxes_included, currencyCode=currency)
    route = api.post(ENDPOINT).respond(200, json=answer(node))
    page = connector.pull_orders(SINCE, None)
    query = json.loads(route.calls[0].request.content)["query"]
    assert "originalTotalSet { shopMoney { amount currencyCode } }" in query
    assert "taxesIncluded" in query
    assert not page.rejected
    return page.orders[0].lines


@pytest.mark.parametrize(
    ("node", "taxes_included", "expected"),
    [
        # 3 x 12.34 = 37.02; a 10 % order-level code allocates 3.70; 20 % tax of 6.66 on top
        (line("37.02", ["3.70"], ["6.66"]), False, Decimal("33.32")),
        # prices include tax: 37.02 less 3.70 is 33.32 paid, of which 5.55 is tax
        (line("37.02", ["3.70"], ["5.55"]), True, Decimal("27.77")),
        # a line-level and an order-level discount, two taxes (state and county)
        (line("37.02", ["1.00", "3.60"], ["4.00", "1.49"]), True, Decimal("26.93")),
        (line("37.02", ["1.00", "3.60"], ["4.00", "1.49"]), False, Decimal("32.42")),
        (line("37.02"), False, Decimal("37.02")),
        # one of 3 units refunded: its share goes, rounded to the cent (33.32 x 2 / 3)
        (line("37.02", ["3.70"], ["6.66"], current=2), False, Decimal("22.21")),
        (line("37.02", ["3.70"], ["6.66"], current=0), False, Decimal("0.00")),
    ],
    ids=[
        "tax-added",
        "tax-included",
        "two-discounts-two-taxes-included",
        "two-discounts-two-taxes-added",
        "no-discount-no-tax",
        "units-refunded",
        "all-refunded",
    ],
)
def test_shopify_line_revenue_is_after_every_discount_and_without_tax(
    api: respx.MockRouter,
    make_connector: MakeConnector,
    node: dict[str, Any],
    taxes_included: bool,
    expected: Decimal,
) -> None:
    (read,) = pulled(api, make_connector(), [node], taxes_included=taxes_included)

    assert (read.revenue, read.currency) == (expected, "USD")
    assert str(read.revenue) == str(expected)


@pytest.mark.parametrize(
    ("node", "taxes_included", "currency", "expected"),
    [
        (line(None), False, "USD", (None, "USD")),
        (line("thirty"), False, "USD", (None, "USD")),
        (
            line("37.02", originalTotalSet={"shopMoney": {"amount": 37.02}}),
            False,
            "USD",
            (None, "USD"),
        ),
        (line("37.02", originalTotalSet={}), False, "USD", (None, "USD")),
        (line("37.02", ["3.70"], discountAllocations=None), False, "USD", (None, "USD")),
        (line("37.02", ["40.00"]), False, "USD", (None, "USD")),
        (line("37.02", originalTotalSet=bag("37.02", "EUR")), False, "USD", (None, "USD")),
        (line("37.02"), None, "USD", (None, "USD")),
        (line("37.02"), False, None, (Decimal("37.02"), None)),
        (line("37.02"), False, "dollars", (Decimal("37.02"), None)),
    ],
    ids=[
        "no-original-total",
        "not-an-amount",
        "json-number",
        "no-shop-money",
        "allocations-not-a-list",
        "discount-above-price",
        "other-currency",
        "no-taxes-included",
        "no-currency",
        "bad-currency",
    ],
)
def test_shopify_a_line_without_readable_amounts_has_no_revenue_and_still_imports(
    api: respx.MockRouter,
    make_connector: MakeConnector,
    node: dict[str, Any],
    taxes_included: Any,
    currency: Any,
    expected: tuple[Decimal | None, str | None],
) -> None:
    good = line("37.02", ["3.70"], ["6.66"], id="gid://shopify/LineItem/2")

    first, second = pulled(
        api, make_connector(), [node, good], taxes_included=taxes_included, currency=currency
    )

    assert (first.revenue, first.currency) == expected
    assert first.quantity == 3
    assert second.revenue == (Decimal("33.32") if taxes_included is False else None)


@pytest.mark.parametrize(
    ("taxes_included", "expected"),
    [(False, Decimal("33.32")), (True, Decimal("27.77"))],
    ids=["tax-added", "tax-included"],
)
def test_shopify_emulator_order_gives_the_connector_its_revenue_in_the_shop_currency(
    taxes_included: bool, expected: Decimal
) -> None:
    clock = ManualClock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    with ShopifyEmulator(
        clock=clock,
        tax_rate="0.20",
        taxes_included=taxes_included,
        presentment_currency="EUR",
        presentment_rate="0.9",
        maximum_available=100_000,
    ) as shop:
        shop.add_listing("KIT", 10, price="12.34")
        shop.place_order([("KIT", 3)], discount_percent="10")
        http = ChannelHttp("shopify", sleep=lambda _s: None, backoff_base=0.0)
        connector = ShopifyConnector(
            ShopifySettings.model_validate(shop.connector_settings()),
            ConnectorContext("shopify", ("main",), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        try:
            page = connector.pull_orders(SINCE, None)
        finally:
            http.close()

    (read,) = page.orders[0].lines
    assert (read.revenue, read.currency) == (expected, "USD")
