"""The Shopify connector asks for each order's ``shippingAddress`` (a MailingAddress) and
its ``email``, and reads them into a ShippingAddress, for a fulfilment provider; the
emulator serves them per the Admin API schema. The address never reaches a log or a repr."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sellable_shopify.client import SHIPPING_ADDRESS, orders_query
from sellable_shopify.connector import ShopifyConnector, ShopifySettings, shipping_address

from sellable.emulators import ManualClock
from sellable.emulators.shopify import ShopifyEmulator
from sellable.sdk import ChannelHttp, ConnectorContext, ShippingAddress

START = datetime(2026, 11, 23, 9, tzinfo=UTC)
# The MailingAddress example of the Admin API docs (its fields as the schema names them).
DOCS_ADDRESS = {
    "firstName": "Bob",
    "lastName": "Norman",
    "company": "Acme",
    "address1": "Chestnut Street 92",
    "address2": "Apartment 2",
    "city": "Louisville",
    "province": "Kentucky",
    "provinceCode": "KY",
    "zip": "40202",
    "country": "United States",
    "countryCodeV2": "US",
    "phone": "+1(502)-459-2181",
}


@pytest.fixture
def shop() -> Iterator[ShopifyEmulator]:
    clock = ManualClock(START)
    emulator = ShopifyEmulator(clock=clock).start()
    assert isinstance(emulator, ShopifyEmulator)
    emulator.add_listing("A", 10)
    yield emulator
    emulator.stop()


@pytest.fixture
def connector(shop: ShopifyEmulator) -> Iterator[ShopifyConnector]:
    http = ChannelHttp("shopify", sleep=lambda _s: None, backoff_base=0.0)
    settings = ShopifySettings(**shop.connector_settings())
    made = ShopifyConnector(settings, ConnectorContext("shopify", ("main",), http))
    http.set_base_url(made.base_url())
    http.authenticate = made.authenticate
    yield made
    http.close()


def test_shopify_orders_query_asks_for_the_shipping_address_and_email() -> None:
    document, _first, _cost = orders_query(False)

    assert f"shippingAddress {{ {SHIPPING_ADDRESS} }}" in document
    assert "countryCodeV2" in SHIPPING_ADDRESS
    assert " email" in document


def test_shopify_reads_the_emulated_orders_shipping_address(
    shop: ShopifyEmulator, connector: ShopifyConnector, caplog: pytest.LogCaptureFixture
) -> None:
    shop.place_order([("A", 1)], shipping_address=DOCS_ADDRESS, email="bob@example.com")

    with caplog.at_level(logging.DEBUG):
        [order] = connector.pull_orders(START - timedelta(days=1), None).orders

    assert order.shipping_address == ShippingAddress(
        name="Bob Norman",
        address1="Chestnut Street 92",
        city="Louisville",
        country="US",
        address2="Apartment 2",
        state="KY",
        zip_code="40202",
        company="Acme",
        phone="+1(502)-459-2181",
        email="bob@example.com",
    )
    for secret in ("Chestnut", "Norman", "40202", "bob@example.com"):
        assert secret not in caplog.text
        assert secret not in repr(order)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param({"shippingAddress": None}, None, id="ships-nowhere"),
        pytest.param({}, None, id="absent"),
        pytest.param(
            {
                "shippingAddress": {
                    "name": None,
                    "firstName": "Ada",
                    "lastName": None,
                    "address1": "1 Row",
                    "city": "London",
                    "province": "Greater London",
                    "provinceCode": None,
                    "zip": 1,
                    "countryCodeV2": "gb",
                }
            },
            ShippingAddress(
                name="Ada", address1="1 Row", city="London", country="GB", state="Greater London"
            ),
            id="province-without-code-and-a-wrong-type",
        ),
    ],
)
def test_shopify_shipping_address_mapping(node: dict[str, object], expected: object) -> None:
    assert shipping_address(node) == expected
