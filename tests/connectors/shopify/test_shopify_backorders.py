"""The Shopify connector sets the variant's ``inventoryPolicy`` (CONTINUE keeps selling at
0, DENY stops) with ``productVariantsBulkUpdate`` only where the keep-selling flag changes,
before the quantities, against respx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from sellable_shopify.connector import ShopifyConnector, ShopifySettings

from sellable.sdk import ChannelHttp, ConnectorContext, Listing, PushItem, PushResult

SHOP = "https://example-shop.myshopify.com"
ENDPOINT = f"{SHOP}/admin/api/2026-10/graphql.json"
MAIN, OUTLET = "gid://shopify/Location/1", "gid://shopify/Location/2"
PRODUCT = "gid://shopify/Product/7"
COST = {
    "cost": {
        "requestedQueryCost": 10,
        "actualQueryCost": 10,
        "throttleStatus": {
            "maximumAvailable": 1000.0,
            "currentlyAvailable": 990.0,
            "restoreRate": 50.0,
        },
    }
}


def variant(n: int) -> str:
    return f"gid://shopify/ProductVariant/{n}"


def item(n: int, location: str, quantity: int, backorders: bool, previous: bool) -> PushItem:
    listing = Listing(
        f"gid://shopify/InventoryItem/{n}|{location}", f"SKU-{n}", parent_id=variant(n)
    )
    return PushItem(listing, quantity, 0, backorders=backorders, previous_backorders=previous)


class Shop:
    """Answers by operation name; keeps each request's body."""

    def __init__(self, policy_errors: list[dict[str, Any]] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.policy_errors = policy_errors or []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        name, variables = body["operationName"], body["variables"]
        if name == "SellableVariantProducts":
            data: dict[str, Any] = {
                alias: {"id": value, "product": {"id": PRODUCT}}
                for alias, value in variables.items()
            }
        elif name == "SellableInventoryPolicy":
            data = {
                "p0": {
                    "productVariants": None if self.policy_errors else variables["v0"],
                    "userErrors": self.policy_errors,
                }
            }
        else:
            data = {
                "inventorySetQuantities": {
                    "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"},
                    "userErrors": [],
                }
            }
        return httpx.Response(200, json={"data": data, "extensions": COST})


@pytest.fixture
def connector() -> Iterator[ShopifyConnector]:
    http = ChannelHttp("shopify", sleep=lambda _s: None, backoff_base=0.0)
    shop = ShopifyConnector(
        ShopifySettings(shop_url=SHOP, access_token="shpat_x"),  # type: ignore[arg-type]
        ConnectorContext("shopify", ("main",), http),
    )
    http.set_base_url(shop.base_url())
    http.authenticate = shop.authenticate
    yield shop
    http.close()


def test_shopify_push_sets_inventory_policy_where_the_flag_changes_then_quantities(
    connector: ShopifyConnector,
) -> None:
    shop = Shop()
    items = [
        item(1, MAIN, 0, True, False),  # variant 1 on: CONTINUE
        item(1, OUTLET, 0, False, False),  # same variant: CONTINUE wins, nothing of its own
        item(2, MAIN, 0, False, True),  # variant 2 off again: DENY
        item(3, MAIN, 4, True, True),  # unchanged: no policy sent
    ]
    with respx.mock(assert_all_called=True) as router:
        router.post(ENDPOINT).mock(side_effect=shop)
        results = connector.push_quantities(items)

    assert sorted(results, key=lambda r: r.listing_id) == sorted(
        (PushResult.ok(i.listing.listing_id) for i in items), key=lambda r: r.listing_id
    )
    lookup, policy, quantities = shop.bodies
    assert (lookup["operationName"], lookup["variables"]) == (
        "SellableVariantProducts",
        {"v0": variant(1), "v1": variant(2)},
    )
    assert "p0: productVariantsBulkUpdate(productId: $p0, variants: $v0)" in policy["query"]
    assert policy["variables"] == {
        "p0": PRODUCT,
        "v0": [
            {"id": variant(1), "inventoryPolicy": "CONTINUE"},
            {"id": variant(2), "inventoryPolicy": "DENY"},
        ],
    }
    assert [q["quantity"] for q in quantities["variables"]["input"]["quantities"]] == [0, 0, 0, 4]


def test_shopify_push_without_flag_changes_sends_no_policy(connector: ShopifyConnector) -> None:
    shop = Shop()
    with respx.mock(assert_all_called=True) as router:
        router.post(ENDPOINT).mock(side_effect=shop)
        connector.push_quantities([item(1, MAIN, 3, False, False), item(2, MAIN, 0, True, True)])

    assert [body["operationName"] for body in shop.bodies] == ["SellableSetQuantities"]


def test_shopify_push_fails_the_items_of_a_refused_policy_and_keeps_their_quantities_back(
    connector: ShopifyConnector,
) -> None:
    refused = {"code": "PRODUCT_VARIANT_DOES_NOT_EXIST", "field": ["variants", "0", "id"]}
    shop = Shop([{**refused, "message": "Product variant does not exist"}])
    with respx.mock(assert_all_called=True) as router:
        router.post(ENDPOINT).mock(side_effect=shop)
        results = connector.push_quantities(
            [item(1, MAIN, 0, True, False), item(3, MAIN, 4, False, False)]
        )

    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.failed(
            f"gid://shopify/InventoryItem/1|{MAIN}",
            "inventoryPolicy refused: PRODUCT_VARIANT_DOES_NOT_EXIST: Product variant does not "
            "exist",
        ),
        PushResult.ok(f"gid://shopify/InventoryItem/3|{MAIN}"),
    ]
    quantities = shop.bodies[-1]["variables"]["input"]["quantities"]
    assert [q["inventoryItemId"] for q in quantities] == ["gid://shopify/InventoryItem/3"]
