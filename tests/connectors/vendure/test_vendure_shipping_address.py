"""The Vendure connector reads an order's ``shippingAddress`` (OrderAddress) and its
customer's email into a ShippingAddress, for a fulfilment provider; never into a log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sellable_vendure.client import ORDERS

from sellable.sdk import ShippingAddress
from tests.connectors.vendure.payloads import Script, connector, order, orders_page

SINCE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
# An OrderAddress as Vendure's shop checkout sets it (setOrderShippingAddress).
ADDRESS = {
    "fullName": "Test Buyer",
    "company": "",
    "streetLine1": "1 Loopback Road",
    "streetLine2": "Flat 2",
    "city": "London",
    "province": "",
    "postalCode": "N1 1AA",
    "countryCode": "GB",
    "phoneNumber": "020 7946 0000",
}


def pulled(**extra: Any) -> Any:
    item = order("1", "PaymentSettled", [("1", "MUG-CERAMIC", 1)], **extra)
    script = Script().login().then("SellableOrders", orders_page([item]))
    with connector(script, recheck_days=0) as vendure:
        [found] = vendure.pull_orders(SINCE, None).orders
    return found


def test_vendure_orders_query_asks_for_the_shipping_address_and_email() -> None:
    assert "shippingAddress {" in ORDERS and "countryCode" in ORDERS
    assert "customer { emailAddress }" in ORDERS


def test_vendure_reads_the_shipping_address(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        found = pulled(shippingAddress=ADDRESS, customer={"emailAddress": "a@example.com"})

    assert found.shipping_address == ShippingAddress(
        name="Test Buyer",
        address1="1 Loopback Road",
        city="London",
        country="GB",
        address2="Flat 2",
        zip_code="N1 1AA",
        phone="020 7946 0000",
        email="a@example.com",
    )
    for secret in ("Loopback", "Test Buyer", "N1 1AA", "a@example.com"):
        assert secret not in caplog.text
        assert secret not in repr(found)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"shippingAddress": {}}, id="never-set-empty-object"),
        pytest.param({"shippingAddress": None}, id="null"),
        pytest.param({}, id="absent"),
    ],
)
def test_vendure_an_order_without_an_address_has_none(extra: dict[str, Any]) -> None:
    found = pulled(**extra)

    assert found.shipping_address is None
    assert [line.sku for line in found.lines] == ["MUG-CERAMIC"]
