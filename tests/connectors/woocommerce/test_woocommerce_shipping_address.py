"""The WooCommerce connector reads an order's ``shipping`` object (REST API v3, "Order -
Shipping properties") into a ShippingAddress, for a fulfilment provider; it never logs it.
Payload: the docs' "Create an order" example."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

from sellable.sdk import ChannelHttp, ConnectorContext, ShippingAddress
from sellable.sync.jobs.orders import order_in_for

SITE = "https://example.com"
API = SITE + "/wp-json/wc/v3"

DOCS_SHIPPING = {
    "first_name": "John",
    "last_name": "Doe",
    "company": "",
    "address_1": "969 Market",
    "address_2": "",
    "city": "San Francisco",
    "state": "CA",
    "postcode": "94103",
    "country": "US",
}
DOCS_BILLING = {**DOCS_SHIPPING, "email": "john.doe@example.com", "phone": "(555) 555-5555"}


def order(**fields: Any) -> dict[str, Any]:
    return {
        "id": 727,
        "status": "processing",
        "date_created_gmt": "2017-03-22T19:28:02",
        "date_modified_gmt": "2017-03-22T19:28:08",
        "line_items": [{"id": 315, "quantity": 2, "sku": "A"}],
        **fields,
    }


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def connector(router: respx.MockRouter) -> Iterator[WooCommerceConnector]:
    http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
    settings = WooCommerceSettings(base_url=SITE, consumer_key="ck", consumer_secret="cs")  # type: ignore[arg-type]
    shop = WooCommerceConnector(settings, ConnectorContext("woo", ("main",), http))
    http.set_base_url(shop.base_url())
    http.authenticate = shop.authenticate
    yield shop
    http.close()


def pulled(router: respx.MockRouter, connector: WooCommerceConnector, raw: dict[str, Any]) -> Any:
    router.get(f"{API}/orders", params={"status": "trash"}).mock(
        return_value=httpx.Response(200, json=[], headers={"X-WP-TotalPages": "1"})
    )
    router.get(f"{API}/orders").mock(
        return_value=httpx.Response(200, json=[raw], headers={"X-WP-TotalPages": "1"})
    )
    [found] = connector.pull_orders(datetime(2017, 3, 20, tzinfo=UTC), None).orders
    return found


def test_woocommerce_reads_the_docs_shipping_address(
    router: respx.MockRouter, connector: WooCommerceConnector
) -> None:
    found = pulled(router, connector, order(shipping=DOCS_SHIPPING, billing=DOCS_BILLING))

    assert found.shipping_address == ShippingAddress(
        name="John Doe",
        address1="969 Market",
        city="San Francisco",
        country="US",
        state="CA",
        zip_code="94103",
        email="john.doe@example.com",
    )


@pytest.mark.parametrize(
    "shipping",
    [
        pytest.param({name: "" for name in DOCS_SHIPPING}, id="all-empty-virtual-order"),
        pytest.param(None, id="absent"),
        pytest.param("969 Market", id="not-an-object"),
    ],
)
def test_woocommerce_an_order_with_nothing_to_ship_to_has_no_address(
    router: respx.MockRouter, connector: WooCommerceConnector, shipping: Any
) -> None:
    found = pulled(router, connector, order(shipping=shipping))

    assert found.shipping_address is None
    assert [line.sku for line in found.lines] == ["A"]  # the order itself is read


def test_woocommerce_a_field_of_the_wrong_type_is_left_out_not_fatal(
    router: respx.MockRouter, connector: WooCommerceConnector
) -> None:
    found = pulled(
        router, connector, order(shipping={**DOCS_SHIPPING, "postcode": 94103, "country": "us"})
    )

    assert found.shipping_address.zip_code is None
    assert found.shipping_address.country == "US"


def test_woocommerce_the_address_reaches_the_order_book_and_never_a_log_or_repr(
    router: respx.MockRouter,
    connector: WooCommerceConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sellable.config import ChannelSettings

    with caplog.at_level(logging.DEBUG):
        found = pulled(router, connector, order(shipping=DOCS_SHIPPING, billing=DOCS_BILLING))
        logging.getLogger("sellable.sync").info("pulled %r", found)

    settings = ChannelSettings(code="woo", connector="woocommerce", warehouses=["main"])
    assert order_in_for(settings, found).shipping_address == found.shipping_address
    for secret in ("969 Market", "John", "94103", "john.doe@example.com"):
        assert secret not in caplog.text
        assert secret not in repr(found)
        assert secret not in str(found.shipping_address)


def test_woocommerce_reads_the_emulated_orders_shipping_address() -> None:
    from sellable.emulators import ManualClock
    from sellable.emulators.woocommerce import WooCommerceEmulator

    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    shop = WooCommerceEmulator(clock=ManualClock(start))
    shop.start()
    http = ChannelHttp("woo", rate=None, sleep=lambda _s: None, backoff_base=0.0)
    try:
        shop.add_listing("A", 5)
        shop.place_order([("A", 1)], shipping=DOCS_SHIPPING, email="john.doe@example.com")
        shop.place_order([("A", 1)])  # a made-up address
        made = WooCommerceConnector(
            WooCommerceSettings(**shop.connector_settings()),
            ConnectorContext("woo", ("main",), http),
        )
        http.set_base_url(made.base_url())
        http.authenticate = made.authenticate
        orders, cursor = [], None
        while True:
            page = made.pull_orders(start - timedelta(days=1), cursor)
            orders.extend(page.orders)
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        http.close()
        shop.stop()

    first, second = sorted(orders, key=lambda o: int(o.order_id))
    assert first.shipping_address == ShippingAddress(
        name="John Doe",
        address1="969 Market",
        city="San Francisco",
        country="US",
        state="CA",
        zip_code="94103",
        email="john.doe@example.com",
    )
    assert second.shipping_address is not None
    assert second.shipping_address.country == "US" and not second.shipping_address.missing
