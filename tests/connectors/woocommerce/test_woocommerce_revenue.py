"""What a WooCommerce order line earned: ``line_items[].total`` (after discounts, excluding
tax) in the order's ``currency``, exact to the cent, and None where the line does not say.
Payload shapes from the REST API v3 docs ("Order - Line items properties")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

from sellable.emulators.base import ManualClock
from sellable.emulators.woocommerce import WooCommerceEmulator
from sellable.sdk import ChannelHttp, ConnectorContext, OrderPage

SITE = "https://example.com"
API = SITE + "/wp-json/wc/v3"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def order(lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": 727,
        "status": "processing",
        "currency": "USD",
        "prices_include_tax": False,
        "date_created_gmt": "2026-03-22T19:28:02",
        "date_modified_gmt": "2026-03-22T19:28:08",
        "line_items": lines,
        **fields,
    }


# 3 x 12.34 = 37.02 before the 10 % coupon (subtotal), 33.32 after it (total), 20 % tax
# on top: every candidate field differs, so only ``total`` gives 33.32.
DISCOUNTED_TAXED = {
    "id": 315,
    "product_id": 93,
    "variation_id": 0,
    "quantity": 3,
    "sku": "KIT",
    "price": 11.106667,
    "subtotal": "37.02",
    "subtotal_tax": "7.40",
    "total": "33.32",
    "total_tax": "6.66",
    "taxes": [{"id": 75, "total": "6.66", "subtotal": "7.40"}],
}


@pytest.fixture
def connector() -> Iterator[WooCommerceConnector]:
    http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
    settings = WooCommerceSettings(
        base_url=SITE,
        consumer_key="ck_docs",  # type: ignore[arg-type]
        consumer_secret="cs_docs",  # type: ignore[arg-type]
    )
    shop = WooCommerceConnector(settings, ConnectorContext("woo", ("main",), http))
    http.set_base_url(shop.base_url())
    http.authenticate = shop.authenticate
    yield shop
    http.close()


def pull(connector: WooCommerceConnector, orders: list[dict[str, Any]]) -> OrderPage:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/orders").mock(
            return_value=httpx.Response(
                200, json=orders, headers={"X-WP-Total": "1", "X-WP-TotalPages": "1"}
            )
        )
        return connector.pull_orders(SINCE, None)


def test_woocommerce_line_revenue_is_the_total_after_discounts_without_tax(
    connector: WooCommerceConnector,
) -> None:
    page = pull(connector, [order([DISCOUNTED_TAXED])])

    (line,) = page.orders[0].lines
    assert line.revenue == Decimal("33.32")
    assert str(line.revenue) == "33.32"  # exact text, never through a float
    assert line.currency == "USD"


def test_woocommerce_line_revenue_excludes_tax_when_prices_include_it(
    connector: WooCommerceConnector,
) -> None:
    # A shop whose prices include tax still gives ``total`` without it (the tax is
    # ``total_tax``): 29.99 paid = 24.99 + 5.00 tax.
    line = {**DISCOUNTED_TAXED, "subtotal": "24.99", "total": "24.99", "total_tax": "5.00"}

    page = pull(connector, [order([line], prices_include_tax=True, currency="eur")])

    (read,) = page.orders[0].lines
    assert (read.revenue, read.currency) == (Decimal("24.99"), "EUR")


@pytest.mark.parametrize(
    ("total", "currency", "expected"),
    [
        (None, "USD", (None, "USD")),
        ("", "USD", (None, "USD")),
        ("twelve", "USD", (None, "USD")),
        ("-3.00", "USD", (None, "USD")),
        (33.32, "USD", (None, "USD")),  # a JSON number: already a float, not exact
        ("33.32", None, (Decimal("33.32"), None)),
        ("33.32", "dollars", (Decimal("33.32"), None)),
    ],
    ids=[
        "no-total",
        "empty",
        "not-an-amount",
        "negative",
        "json-number",
        "no-currency",
        "bad-currency",
    ],
)
def test_woocommerce_a_line_without_a_readable_total_has_no_revenue_and_still_imports(
    connector: WooCommerceConnector,
    total: Any,
    currency: Any,
    expected: tuple[Decimal | None, str | None],
) -> None:
    line = {k: v for k, v in DISCOUNTED_TAXED.items() if k != "total"}
    if total is not None:
        line["total"] = total
    raw = order([line, {**DISCOUNTED_TAXED, "id": 316}])
    if currency is None:
        del raw["currency"]
    else:
        raw["currency"] = currency

    page = pull(connector, [raw])

    assert not page.rejected
    first, second = page.orders[0].lines
    assert (first.revenue, first.currency) == expected
    assert (first.sku, first.quantity) == ("KIT", 3)
    assert second.revenue == Decimal("33.32")


@pytest.mark.parametrize("prices_include_tax", [False, True], ids=["tax-added", "tax-included"])
def test_woocommerce_emulator_order_gives_the_connector_its_discounted_net_total(
    prices_include_tax: bool,
) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with WooCommerceEmulator(
        clock=clock, rate_limit=0, tax_rate="0.20", prices_include_tax=prices_include_tax
    ) as shop:
        shop.add_product("KIT", 10, price="12.34")
        shop.place_order([("KIT", 3)], discount_percent="10")
        http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
        connector = WooCommerceConnector(
            WooCommerceSettings.model_validate(shop.connector_settings()),
            ConnectorContext("woo", ("main",), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        try:
            page = connector.pull_orders(datetime(2026, 1, 1, tzinfo=UTC), None)
        finally:
            http.close()

    (line,) = page.orders[0].lines
    # tax added: 37.02 - 3.70; tax included: 37.02 / 1.2 = 30.85 - 3.09 (rounded half up)
    expected = Decimal("27.76") if prices_include_tax else Decimal("33.32")
    assert (line.revenue, line.currency) == (expected, "EUR")
