"""The Shopify emulator over loopback HTTP: schema validation, the cost bucket, compare-and-
swap, idempotency, orders and pagination, with a manual clock (no sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sellable.emulators import ManualClock, emulator_class
from sellable.emulators.shopify import ShopifyEmulator

TOKEN = "shpat_emulator"
SET = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}"""
LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    inventoryLevel(locationId: $location) {
      quantities(names: ["available", "on_hand", "committed"]) { name quantity }
    }
  }
}"""
ORDERS = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    nodes {
      id updatedAt cancelledAt lineItems(first: 5) { nodes { sku quantity currentQuantity } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""
ITEM1, LOC1, LOC2 = (
    "gid://shopify/InventoryItem/1",
    "gid://shopify/Location/1",
    "gid://shopify/Location/2",
)


class Shop:
    def __init__(self, emulator: ShopifyEmulator, clock: ManualClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self.client = httpx.Client(base_url=emulator.url, timeout=10)

    def post(self, body: Any, token: str = TOKEN, version: str = "2026-10") -> httpx.Response:
        return self.client.post(
            f"/admin/api/{version}/graphql.json",
            json=body,
            headers={"X-Shopify-Access-Token": token},
        )

    def gql(self, document: str, **variables: Any) -> dict[str, Any]:
        response = self.post({"query": document, "variables": variables})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def set(self, key: str, *quantities: dict[str, Any], reason: str = "correction") -> Any:
        return self.gql(
            SET,
            input={"name": "available", "reason": reason, "quantities": list(quantities)},
            key=key,
        )

    def post_control(self, action: str, body: Any) -> Any:
        response = self.client.post(f"/_emulator/{action}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def levels(self, item: str = ITEM1, location: str = LOC1) -> dict[str, int]:
        data = self.gql(LEVEL, item=item, location=location)["data"]
        return {
            q["name"]: q["quantity"] for q in data["inventoryItem"]["inventoryLevel"]["quantities"]
        }


@pytest.fixture
def shop() -> Iterator[Shop]:
    clock = ManualClock()
    with ShopifyEmulator(clock=clock, locations=("Main", "Outlet")) as emulator:
        emulator.add_variant("MUG", {1: 5, 2: 2})
        emulator.add_variant("CUP", {1: 3})
        handle = Shop(emulator, clock)
        yield handle
        handle.client.close()


def test_shopify_emulator_is_registered_and_starts_with_defaults() -> None:
    cls = emulator_class("shopify")
    assert cls is ShopifyEmulator
    with cls(port=0) as emulator:
        assert isinstance(emulator, ShopifyEmulator)
        assert emulator.connector_settings() == {
            "shop_url": emulator.url,
            "access_token": TOKEN,
            "api_version": "2026-10",
        }


def test_shopify_emulator_refuses_a_wrong_token_like_shopify(shop: Shop) -> None:
    response = shop.post({"query": "{ shop { name } }"}, token="wrong")
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_shopify_emulator_validates_documents_against_the_admin_schema(shop: Shop) -> None:
    answer = shop.gql("{ shop { nme } }")
    assert answer == {
        "errors": [
            {
                "message": "Field 'nme' doesn't exist on type 'Shop'",
                "locations": [{"line": 1, "column": 10}],
                "extensions": {"code": "undefinedField", "typeName": "Shop", "fieldName": "nme"},
            }
        ]
    }
    assert shop.gql("{ inventoryItem { id } }")["errors"][0]["extensions"] == {
        "code": "missingRequiredArguments",
        "className": "Field",
        "name": "inventoryItem",
        "arguments": "id",
    }
    # 2026-04 removed compareQuantity: the amended schema refuses it, takes changeFromQuantity.
    old = SET.replace("$input: InventorySetQuantitiesInput!", "$q: Int!").replace(
        "input: $input",
        'input: {name: "available", reason: "correction", quantities: [{inventoryItemId: '
        '"gid://shopify/InventoryItem/1", locationId: "gid://shopify/Location/1", '
        "quantity: 7, compareQuantity: $q}]}",
    )
    refused = shop.gql(old, q=5, key="k-old")
    (error,) = refused["errors"]
    assert "data" not in refused
    assert "'InventoryQuantityInput'" in error["message"]
    assert "unknown field 'compareQuantity'" in error["message"]
    assert shop.levels()["available"] == 5


def test_shopify_emulator_requires_the_idempotent_directive_as_2026_04_does(shop: Shop) -> None:
    without = SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    answer = shop.gql(
        without,
        input={
            "name": "available",
            "reason": "correction",
            "quantities": [
                {
                    "inventoryItemId": ITEM1,
                    "locationId": LOC1,
                    "quantity": 9,
                    "changeFromQuantity": 5,
                }
            ],
        },
    )
    assert answer["errors"][0]["message"] == (
        "The @idempotent directive is required for inventorySetQuantities."
    )
    assert "data" not in answer
    assert shop.levels()["available"] == 5


def test_shopify_emulator_sets_available_and_moves_on_hand_by_the_same_delta(shop: Shop) -> None:
    answer = shop.set(
        "k1", {"inventoryItemId": ITEM1, "locationId": LOC1, "quantity": 9, "changeFromQuantity": 5}
    )
    payload = answer["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    assert payload["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": 4, "quantityAfterChange": 9},
        {"name": "on_hand", "delta": 4, "quantityAfterChange": 9},
    ]
    assert answer["extensions"]["cost"] == {
        "requestedQueryCost": 10,
        "actualQueryCost": 10,
        "throttleStatus": {
            "maximumAvailable": 1000.0,
            "currentlyAvailable": 990.0,
            "restoreRate": 50.0,
        },
    }
    assert shop.levels() == {"available": 9, "on_hand": 9, "committed": 0}
    assert shop.emulator.quantities() == {"MUG": 11, "CUP": 3}


def test_shopify_emulator_answers_stale_change_from_quantity_and_applies_nothing(
    shop: Shop,
) -> None:
    shop.emulator.place_order([("MUG", 2)])  # 5 -> 3 between our read and our push

    answer = shop.set(
        "k1",
        {"inventoryItemId": ITEM1, "locationId": LOC2, "quantity": 1, "changeFromQuantity": 2},
        {"inventoryItemId": ITEM1, "locationId": LOC1, "quantity": 9, "changeFromQuantity": 5},
    )

    assert answer["data"]["inventorySetQuantities"] == {
        "inventoryAdjustmentGroup": None,
        "userErrors": [
            {
                "code": "CHANGE_FROM_QUANTITY_STALE",
                "field": ["input", "quantities", "1", "changeFromQuantity"],
                "message": "The specified compare quantity does not match the current quantity.",
            }
        ],
    }
    assert shop.levels(location=LOC1) == {"available": 3, "on_hand": 5, "committed": 2}
    assert shop.levels(location=LOC2)["available"] == 2  # its sibling was not applied either


def test_shopify_emulator_requires_an_explicit_change_from_quantity(shop: Shop) -> None:
    answer = shop.set("k1", {"inventoryItemId": ITEM1, "locationId": LOC1, "quantity": 9})
    assert answer["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == (
        "CHANGE_FROM_QUANTITY_REQUIRED"
    )
    opted_out = shop.set(
        "k2",
        {"inventoryItemId": ITEM1, "locationId": LOC1, "quantity": 9, "changeFromQuantity": None},
    )
    assert opted_out["data"]["inventorySetQuantities"]["userErrors"] == []
    assert shop.levels()["available"] == 9


def test_shopify_emulator_replays_an_idempotency_key_without_applying_twice(shop: Shop) -> None:
    quantity = {
        "inventoryItemId": ITEM1,
        "locationId": LOC1,
        "quantity": 9,
        "changeFromQuantity": 5,
    }
    first = shop.set("same-key", quantity)
    shop.emulator.place_order([("MUG", 4)])  # 9 -> 5

    replay = shop.set("same-key", quantity)

    assert replay["data"] == first["data"]
    assert shop.levels()["available"] == 5  # not set to 9 again
    assert shop.emulator.mutations_applied == 1
    mismatch = shop.set("same-key", {**quantity, "quantity": 1})
    assert mismatch["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"


def test_shopify_emulator_throttles_when_the_bucket_is_short_and_restores_with_time(
    shop: Shop,
) -> None:
    query = "{ productVariants(first: 245) { nodes { id inventoryItem { id } } } }"
    # requested: 2 + 245 x (variant 1 + item 1) = 492; actual: 2 + 2 x 2 = 6 (refunded)
    answers = [shop.gql(query) for _ in range(3)]
    assert [a["extensions"]["cost"]["actualQueryCost"] for a in answers] == [6, 6, 6]
    assert [a["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for a in answers] == [
        994.0,
        988.0,
        982.0,
    ]
    shop.emulator.bucket.set(491)

    throttled = shop.gql(query)

    assert throttled == {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": 492,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": 491.0,
                    "restoreRate": 50.0,
                },
            }
        },
    }
    shop.clock.advance(0.02)  # one point restored at 50/s
    assert shop.gql(query)["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 486.0
    assert (shop.emulator.throttled_graphql, shop.emulator.throttled_count) == (1, 1)


def test_shopify_emulator_refuses_a_query_over_the_single_query_maximum(shop: Shop) -> None:
    query = (
        "{ productVariants(first: 250) { nodes { id inventoryItem { id "
        "inventoryLevels(first: 5) { nodes { id } } } } } }"
    )
    answer = shop.gql(query)
    # 2 + 250 x (1 + 1 + (2 + 5 x 1)) = 2252
    assert answer["errors"][0]["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 2252,
        "maxCost": 1000,
    }
    assert shop.emulator.bucket.available() == 1000


def test_shopify_emulator_answers_an_injected_429_like_shopify(shop: Shop) -> None:
    shop.emulator.inject({"status": 429})
    response = shop.post({"query": "{ shop { name } }"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2.0"
    assert shop.post({"query": "{ shop { name } }"}).json()["data"] == {
        "shop": {"name": "Sellable emulator"}
    }


def test_shopify_emulator_orders_commit_stock_and_cancellation_restocks(shop: Shop) -> None:
    order = shop.emulator.place_order([("MUG", 2), ("CUP", 1)])
    assert shop.emulator.quantities() == {"MUG": 5, "CUP": 2}
    assert shop.levels() == {"available": 3, "on_hand": 5, "committed": 2}

    shop.clock.advance(60)
    shop.emulator.cancel_order(order)

    assert shop.emulator.quantities() == {"MUG": 7, "CUP": 3}
    assert shop.levels() == {"available": 5, "on_hand": 5, "committed": 0}
    nodes = shop.gql(ORDERS, first=5, query="updated_at:>='2026-01-01T00:01:00Z'")["data"]
    assert nodes["orders"]["nodes"] == [
        {
            "id": order,
            "updatedAt": "2026-01-01T00:01:00Z",
            "cancelledAt": "2026-01-01T00:01:00Z",
            "lineItems": {
                "nodes": [
                    {"sku": "MUG", "quantity": 2, "currentQuantity": 0},
                    {"sku": "CUP", "quantity": 1, "currentQuantity": 0},
                ]
            },
        }
    ]
    assert shop.gql(ORDERS, first=5, query="updated_at:>'2026-01-01T00:01:00Z'")["data"] == {
        "orders": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    }


def test_shopify_emulator_order_pages_drift_like_shopify(shop: Shop) -> None:
    ids = []
    for _ in range(3):
        ids.append(shop.emulator.place_order([("CUP", 1)]))
        shop.clock.advance(1)
    first = shop.gql(ORDERS, first=2)["data"]["orders"]
    assert [n["id"] for n in first["nodes"]] == ids[:2]
    shop.emulator.cancel_order(ids[0])  # updated while we page: moves behind our cursor

    second = shop.gql(ORDERS, first=2, after=first["pageInfo"]["endCursor"])["data"]["orders"]

    assert [n["id"] for n in second["nodes"]] == [ids[2], ids[0]]
    assert second["pageInfo"]["hasNextPage"] is False


def test_shopify_emulator_single_query_cap_stays_1000_with_a_bigger_bucket() -> None:
    clock = ManualClock()
    with ShopifyEmulator(clock=clock, maximum_available=2000, restore_rate=100) as emulator:
        emulator.add_listing("MUG", 1)
        shop = Shop(emulator, clock)
        try:
            small = shop.gql("{ productVariants(first: 10) { nodes { id } } }")
            big = shop.gql(
                "{ productVariants(first: 250) { nodes { id inventoryItem { id variant { id } "
                'inventoryLevel(locationId: "gid://shopify/Location/1") { id } } } } }'
            )
        finally:
            shop.client.close()
    assert small["extensions"]["cost"] == {
        "requestedQueryCost": 12,
        "actualQueryCost": 3,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": 1997.0,
            "restoreRate": 100.0,
        },
    }
    # 2 + 250 x (variant, item, variant, level) = 1002: over the cap, not over the bucket
    assert big["errors"][0]["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 1002,
        "maxCost": 1000,
    }
    assert big["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 1997.0


MONEY = """
query Money {
  orders(first: 1) {
    nodes {
      currencyCode presentmentCurrencyCode taxesIncluded
      lineItems(first: 1) { nodes {
        originalTotalSet {
          shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }
        }
        discountedTotalSet { shopMoney { amount } }
        totalDiscountSet { shopMoney { amount } }
        discountAllocations {
          allocatedAmountSet { shopMoney { amount } }
          discountApplication {
            allocationMethod targetSelection
            ... on DiscountCodeApplication { code }
            value { ... on PricingPercentageValue { percentage } }
          }
        }
        taxLines { rate priceSet { shopMoney { amount } } }
      } }
    }
  }
}"""


@pytest.mark.parametrize(
    ("taxes_included", "tax"), [(False, "6.66"), (True, "5.55")], ids=["added", "included"]
)
def test_shopify_emulator_line_money_allocates_an_order_code_and_taxes_the_rest(
    taxes_included: bool, tax: str
) -> None:
    with ShopifyEmulator(
        clock=ManualClock(),
        tax_rate="0.20",
        taxes_included=taxes_included,
        presentment_currency="EUR",
        presentment_rate="0.9",
    ) as emulator:
        shop = Shop(emulator, ManualClock())
        emulator.add_listing("KIT", 5, price="12.34")
        emulator.place_order([("KIT", 3)], discount_percent="10")
        answer = shop.gql(MONEY)
        shop.client.close()

    assert "errors" not in answer, answer
    (order,) = answer["data"]["orders"]["nodes"]
    assert (order["currencyCode"], order["presentmentCurrencyCode"]) == ("USD", "EUR")
    assert order["taxesIncluded"] is taxes_included
    (line,) = order["lineItems"]["nodes"]
    assert line["originalTotalSet"] == {
        "shopMoney": {"amount": "37.02", "currencyCode": "USD"},
        "presentmentMoney": {"amount": "33.32", "currencyCode": "EUR"},
    }
    # An order-level code is not in discountedTotalSet ("doesn't include order-level
    # discounts") nor totalDiscountSet; it is allocated to the line.
    assert line["discountedTotalSet"] == {"shopMoney": {"amount": "37.02"}}
    assert line["totalDiscountSet"] == {"shopMoney": {"amount": "0.00"}}
    assert line["discountAllocations"] == [
        {
            "allocatedAmountSet": {"shopMoney": {"amount": "3.70"}},
            "discountApplication": {
                "allocationMethod": "ACROSS",
                "targetSelection": "ALL",
                "code": "SAVE10",
                "value": {"percentage": 10.0},
            },
        }
    ]
    # Tax on the discounted 33.32: 20 % on top, or the 20/120 inside it.
    assert line["taxLines"] == [{"rate": 0.2, "priceSet": {"shopMoney": {"amount": tax}}}]


# -- bulk operations -------------------------------------------------------------------------------

BULK_RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status objectCount url }
    userErrors { field message code }
  }
}"""
BULK_POLL = """
query Poll($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl completedAt type
  }
  currentBulkOperation { id }
}"""
VARIANT_LEVELS = """{
  productVariants {
    edges { node { id sku inventoryItem { id inventoryLevels { edges { node {
      location { id } quantities(names: ["available"]) { quantity }
    } } } } } }
  }
}"""


def _bulk(shop: Shop, query: str = VARIANT_LEVELS) -> dict[str, Any]:
    payload: dict[str, Any] = shop.gql(BULK_RUN, query=query)["data"]["bulkOperationRunQuery"]
    return payload


def _poll(shop: Shop, operation: str) -> dict[str, Any]:
    answer: dict[str, Any] = shop.gql(BULK_POLL, id=operation)["data"]
    return answer


def test_shopify_emulator_bulk_query_runs_at_its_speed_and_serves_jsonl_with_parent_ids(
    shop: Shop,
) -> None:
    shop.emulator.add_variant("CAP", {1: 2}, stocked_at=[1])
    shop.emulator.set_bulk_speed(2)  # objects per second of the emulator's clock

    started = _bulk(shop)
    operation = started["bulkOperation"]["id"]
    shop.clock.advance(1.5)
    running = _poll(shop, operation)
    shop.clock.advance(2.5)  # 8 objects at 2 a second: 4 s
    done = _poll(shop, operation)

    assert started["userErrors"] == []
    assert started["bulkOperation"]["status"] == "CREATED"
    assert running["bulkOperation"]["status"] == "RUNNING"
    assert running["bulkOperation"]["objectCount"] == "3"
    assert running["bulkOperation"]["url"] is None
    assert running["currentBulkOperation"] == {"id": operation}
    state = done["bulkOperation"]
    assert (state["status"], state["objectCount"], state["rootObjectCount"]) == (
        "COMPLETED",
        "8",
        "3",
    )
    assert (state["type"], state["errorCode"], state["partialDataUrl"]) == ("QUERY", None, None)
    body = httpx.get(state["url"]).content  # pre-signed: no token
    assert int(state["fileSize"]) == len(body)
    rows = [json.loads(line) for line in body.splitlines()]
    assert rows[:3] == [
        {
            "id": "gid://shopify/ProductVariant/1",
            "sku": "MUG",
            "inventoryItem": {"id": "gid://shopify/InventoryItem/1"},
        },
        {
            "location": {"id": LOC1},
            "quantities": [{"quantity": 5}],
            "__parentId": "gid://shopify/ProductVariant/1",
        },
        {
            "location": {"id": LOC2},
            "quantities": [{"quantity": 2}],
            "__parentId": "gid://shopify/ProductVariant/1",
        },
    ]
    assert [(row.get("sku"), row.get("__parentId", "")[-1:]) for row in rows[3:]] == [
        ("CUP", ""),
        (None, "2"),
        (None, "2"),
        ("CAP", ""),
        (None, "3"),
    ]
    ranged = httpx.get(state["url"], headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == body[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    assert shop.emulator.bulk_downloads_with_token == 0


def test_shopify_emulator_bulk_url_expires(shop: Shop) -> None:
    shop.emulator.bulk_url_life = 60
    operation = _bulk(shop)["bulkOperation"]["id"]
    shop.clock.advance(1)
    url = _poll(shop, operation)["bulkOperation"]["url"]
    shop.clock.advance(60)

    expired = _poll(shop, operation)["bulkOperation"]
    refused = httpx.get(url)

    assert (expired["status"], expired["url"]) == ("EXPIRED", None)
    assert refused.status_code == 403
    assert b"ExpiredToken" in refused.content


def test_shopify_emulator_bulk_queries_at_once_are_limited(shop: Shop) -> None:
    shop.emulator.bulk_queries_at_once = 1  # API versions before 2026-01
    first = _bulk(shop)
    second = _bulk(shop)
    shop.clock.advance(10)
    third = _bulk(shop)

    assert first["userErrors"] == [] and third["userErrors"] == []
    assert second["bulkOperation"] is None
    (error,) = second["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS"
    assert first["bulkOperation"]["id"] in error["message"]


def test_shopify_emulator_failed_bulk_query_serves_its_partial_data(shop: Shop) -> None:
    shop.post_control("bulk", {"fail": "TIMEOUT", "after": 3, "speed": 10})
    operation = _bulk(shop)["bulkOperation"]["id"]
    shop.clock.advance(1)

    failed = _poll(shop, operation)["bulkOperation"]

    assert (failed["status"], failed["errorCode"], failed["objectCount"]) == (
        "FAILED",
        "TIMEOUT",
        "3",
    )
    assert failed["url"] is None
    lines = httpx.get(failed["partialDataUrl"]).content.splitlines()
    assert [json.loads(line).get("sku") for line in lines] == ["MUG", None, None]
    # the failure was for the next operation only
    again = _bulk(shop)["bulkOperation"]["id"]
    shop.clock.advance(1)
    assert _poll(shop, again)["bulkOperation"]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ shop { name } }", "Bulk queries must contain at least one connection."),
        (
            "{ productVariants { edges { node { id } } } locations { edges { node { id } } } }",
            "a bulk query selects one top-level connection field",
        ),
        (
            "{ orders { edges { node { id lineItems { edges { node { id "
            "discountAllocations { allocatedAmountSet { shopMoney { amount } } } } } } "
            "fulfillmentOrders { edges { node { id lineItems { edges { node { id "
            "} } } } } } } } } }",
            "nested more than 2 levels deep",
        ),
        ("{ productVariants { edges { node { nope } } } }", "Invalid bulk query"),
    ],
    ids=["no-connection", "two-roots", "too-deep", "invalid"],
)
def test_shopify_emulator_refuses_what_bulk_operation_restrictions_refuse(
    shop: Shop, query: str, message: str
) -> None:
    payload = _bulk(shop, query)

    assert payload["bulkOperation"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == "INVALID"
    assert message in error["message"]
