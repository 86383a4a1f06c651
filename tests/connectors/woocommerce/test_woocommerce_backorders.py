"""The WooCommerce connector sends the keep-selling flag (``backorders``) only where it
changes: ``notify`` on, ``no`` off ("Product properties" > ``backorders`` in the REST API
v3 docs), against respx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from sellable_woocommerce.connector import WooCommerceConnector, WooCommerceSettings

from sellable.sdk import ChannelHttp, ConnectorContext, Listing, PushItem, PushResult

SITE = "https://example.com"
API = SITE + "/wp-json/wc/v3"


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


def item(
    lid: str, quantity: int, backorders: bool, previous: bool, parent: str | None = None
) -> PushItem:
    return PushItem(
        Listing(lid, f"SKU-{lid}", parent),
        quantity,
        backorders=backorders,
        previous_backorders=previous,
    )


def shown(product_id: int, quantity: int, backorders: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "manage_stock": True,
        "stock_quantity": quantity,
        "backorders": backorders,
    }


def test_woocommerce_push_sends_backorders_only_where_the_flag_changes(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    products = router.post(f"{API}/products/batch").mock(
        return_value=httpx.Response(
            200,
            json={
                "update": [
                    shown(10, 0, "notify"),  # turned on
                    shown(11, 0, "no"),  # turned off
                    shown(12, 4, "notify"),  # on and staying on: not sent
                    shown(13, 2, "yes"),  # the merchant's flag, left alone
                ]
            },
        )
    )
    variations = router.post(f"{API}/products/99/variations/batch").mock(
        return_value=httpx.Response(200, json={"update": [shown(20, 0, "notify")]})
    )

    results = connector.push_quantities(
        [
            item("10", 0, True, False),
            item("11", 0, False, True),
            item("12", 4, True, True),
            item("13", 2, False, False),
            item("20", 0, True, False, "99"),
        ]
    )

    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.ok("10"),
        PushResult.ok("11"),
        PushResult.ok("12"),
        PushResult.ok("13"),
        PushResult.ok("20"),
    ]
    assert json.loads(products.calls[0].request.content) == {
        "update": [
            {"id": 10, "manage_stock": True, "stock_quantity": 0, "backorders": "notify"},
            {"id": 11, "manage_stock": True, "stock_quantity": 0, "backorders": "no"},
            {"id": 12, "manage_stock": True, "stock_quantity": 4},
            {"id": 13, "manage_stock": True, "stock_quantity": 2},
        ]
    }
    assert json.loads(variations.calls[0].request.content) == {
        "update": [{"id": 20, "manage_stock": True, "stock_quantity": 0, "backorders": "notify"}]
    }


def test_woocommerce_push_fails_an_item_whose_flag_was_not_applied(
    connector: WooCommerceConnector, router: respx.MockRouter
) -> None:
    router.post(f"{API}/products/batch").mock(
        return_value=httpx.Response(200, json={"update": [shown(10, 0, "no")]})
    )

    assert connector.push_quantities([item("10", 0, True, False)]) == [
        PushResult.failed(
            "10",
            "not applied: the channel shows stock_quantity=0, manage_stock=True, backorders='no'",
        )
    ]


def test_woocommerce_declares_its_keep_selling_flag() -> None:
    assert WooCommerceConnector.supports_backorders is True
    assert WooCommerceConnector.backorders_flag == "WooCommerce backorders=notify"
