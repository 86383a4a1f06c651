"""The Shopify connector's HTTP mapping with respx: the request bodies it sends and what it
makes of Shopify's answers, built from the documented examples (channel-apis.md, section B:
the inventorySetQuantities example, the THROTTLED shape, extensions.cost)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError
from sellable_shopify.client import LIMITER
from sellable_shopify.connector import ShopifyConnector, ShopifySettings, order_status

from sellable.sdk import (
    AuthenticationError,
    ChannelError,
    ChannelHttp,
    ConnectorContext,
    Listing,
    OrderStatus,
    PushItem,
    PushResult,
)

SHOP = "https://example-shop.myshopify.com"
ENDPOINT = f"{SHOP}/admin/api/2026-10/graphql.json"
ITEM = "gid://shopify/InventoryItem/1"
LOCATION = "gid://shopify/Location/2"
CANCELLED_AT = "2026-11-01T11:00:02Z"
FULFILLED = {"displayFulfillmentStatus": "FULFILLED"}


def cost(requested: int, actual: int | None, available: float, restore: float = 50.0) -> Any:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": 1000.0,
                "currentlyAvailable": available,
                "restoreRate": restore,
            },
        }
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


@pytest.fixture
def make_connector(clock: Clock) -> Iterator[Callable[..., ShopifyConnector]]:
    made: list[ChannelHttp] = []

    def make(**settings: Any) -> ShopifyConnector:
        http = ChannelHttp("shopify", clock=clock.monotonic, sleep=clock.sleep, backoff_base=0.0)
        made.append(http)
        values = {"shop_url": "example-shop.myshopify.com", "access_token": "shpat_secret"}
        connector = ShopifyConnector(
            ShopifySettings(**{**values, **settings}),
            ConnectorContext("shopify", ("main",), http),
        )
        http.set_base_url(connector.base_url())
        http.authenticate = connector.authenticate
        return connector

    yield make
    for http in made:
        http.close()


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def listing(item: str = ITEM, location: str = LOCATION) -> Listing:
    return Listing(listing_id=f"{item}|{location}", sku="MUG")


# -- settings ---------------------------------------------------------------------------------


def test_shopify_settings_defaults_and_refusals() -> None:
    settings = ShopifySettings(shop_url="example-shop.myshopify.com/", access_token="shpat_x")
    assert (settings.shop_url, settings.api_version, settings.locations) == (SHOP, "2026-10", {})
    assert "shpat_x" not in repr(settings)
    with pytest.raises(ValidationError, match="api_version '2026-01' is not supported"):
        ShopifySettings(shop_url=SHOP, access_token="x", api_version="2026-01")
    with pytest.raises(ValidationError, match="location '1' is not a Shopify location id"):
        ShopifySettings(shop_url=SHOP, access_token="x", locations={"1": "main"})


# -- pushing ----------------------------------------------------------------------------------


def test_shopify_push_sends_the_documented_mutation_with_change_from_quantity_and_a_key(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    route = api.post(ENDPOINT).respond(
        200,
        json={
            "data": {
                "inventorySetQuantities": {
                    "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"},
                    "userErrors": [],
                }
            },
            "extensions": cost(10, 10, 990.0),
        },
    )
    connector = make_connector()

    results = connector.push_quantities([PushItem(listing(), 7, 5)])

    assert results == [PushResult.ok(f"{ITEM}|{LOCATION}")]
    (body,) = bodies(route)
    assert route.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_secret"
    assert "inventorySetQuantities(input: $input) @idempotent(key: $key)" in body["query"]
    assert uuid.UUID(body["variables"].pop("key")).version == 4
    assert body["variables"] == {
        "input": {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "sellable://push/shopify",
            "quantities": [
                {
                    "inventoryItemId": ITEM,
                    "locationId": LOCATION,
                    "quantity": 7,
                    "changeFromQuantity": 5,
                }
            ],
        }
    }
    bucket = connector.http.limiters[LIMITER]
    assert (bucket.rate, bucket.burst) == (50.0, 1000)


def test_shopify_push_rereads_a_stale_item_resends_its_batch_and_fails_it_when_stale_again(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    other = "gid://shopify/InventoryItem/9"
    stale = {
        "code": "CHANGE_FROM_QUANTITY_STALE",
        "field": ["input", "quantities", "1", "changeFromQuantity"],
        "message": "The specified compare quantity does not match the current quantity.",
    }
    refused = {"inventoryAdjustmentGroup": None, "userErrors": [stale]}
    applied = {"inventoryAdjustmentGroup": {"id": "gid://shopify/X/1"}, "userErrors": []}
    level = {"i0": {"inventoryLevel": {"quantities": [{"quantity": 3}]}}}
    route = api.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(200, json={"data": {"inventorySetQuantities": refused}}),
            httpx.Response(200, json={"data": level}),
            httpx.Response(200, json={"data": {"inventorySetQuantities": applied}}),
        ]
    )
    connector = make_connector()

    results = connector.push_quantities([PushItem(listing(other), 4, 0), PushItem(listing(), 7, 5)])

    assert sorted(results, key=lambda r: r.listing_id) == [
        PushResult.ok(f"{ITEM}|{LOCATION}"),
        PushResult.ok(f"{other}|{LOCATION}"),
    ]
    sent = bodies(route)
    assert sent[1]["variables"] == {"i0": ITEM, "l0": LOCATION}
    # the sibling was not applied (the whole call was refused): both go again, the stale
    # one comparing against what was read
    assert [
        (q["inventoryItemId"], q["quantity"], q["changeFromQuantity"])
        for q in sent[2]["variables"]["input"]["quantities"]
    ] == [(other, 4, 0), (ITEM, 7, 3)]
    assert sent[0]["variables"]["key"] != sent[2]["variables"]["key"]

    # stale again after the one re-read: failed, reported, retried next cycle by the engine
    stale_once_more = {**stale, "field": ["input", "quantities", "1", "changeFromQuantity"]}
    route.side_effect = [
        httpx.Response(200, json={"data": {"inventorySetQuantities": refused}}),
        httpx.Response(200, json={"data": level}),
        httpx.Response(
            200,
            json={
                "data": {
                    "inventorySetQuantities": {
                        "inventoryAdjustmentGroup": None,
                        "userErrors": [stale_once_more],
                    }
                }
            },
        ),
        httpx.Response(200, json={"data": {"inventorySetQuantities": applied}}),
    ]
    again = connector.push_quantities([PushItem(listing(other), 4, 0), PushItem(listing(), 7, 5)])
    assert sorted(again, key=lambda r: r.listing_id) == [
        PushResult.failed(f"{ITEM}|{LOCATION}", f"CHANGE_FROM_QUANTITY_STALE: {stale['message']}"),
        PushResult.ok(f"{other}|{LOCATION}"),
    ]


def test_shopify_throttled_inside_200_waits_for_the_deficit_and_retries(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector], clock: Clock
) -> None:
    throttled = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": cost(10, None, 4.0),
    }
    ok = {
        "data": {
            "inventorySetQuantities": {
                "inventoryAdjustmentGroup": {"id": "gid://shopify/X/1"},
                "userErrors": [],
            }
        },
        "extensions": cost(10, 10, 0.0),
    }
    route = api.post(ENDPOINT).mock(
        side_effect=[httpx.Response(200, json=throttled), httpx.Response(200, json=ok)]
    )
    connector = make_connector()

    assert connector.push_quantities([PushItem(listing(), 7, 5)]) == [
        PushResult.ok(f"{ITEM}|{LOCATION}")
    ]
    assert route.call_count == 2
    assert clock.sleeps == [0.12]  # (10 requested - 4 available) / 50 per second
    assert connector.api.throttled == 1
    # The same idempotency key on the retry: a lost answer can never apply a push twice.
    first, second = bodies(route)
    assert first == second


def test_shopify_limiter_follows_throttle_status_and_the_server_cost(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector], clock: Clock
) -> None:
    page = {
        "data": {
            "productVariants": {
                "nodes": [],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            }
        },
        "extensions": cost(900, 2, 100.0, restore=100.0),
    }
    page["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] = 2000.0
    api.post(ENDPOINT).respond(200, json=page)
    connector = make_connector(bulk_operations=False, locations={LOCATION: "main"})

    connector.list_listings(None)
    connector.list_listings(None)

    bucket = connector.http.limiters[LIMITER]
    assert (bucket.rate, bucket.burst) == (100.0, 2000)
    # the second page waited for its 900 points with 100 left at 100/s
    assert clock.sleeps == [8.0]


def test_shopify_graphql_errors_are_channel_errors(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    api.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "errors": [
                        {
                            "message": "Access denied for orders field.",
                            "extensions": {"code": "ACCESS_DENIED"},
                        }
                    ]
                },
            ),
            httpx.Response(
                200,
                json={
                    "errors": [
                        {
                            "message": "Query cost is 1200",
                            "extensions": {"code": "MAX_COST_EXCEEDED"},
                        }
                    ]
                },
            ),
        ]
    )
    connector = make_connector()
    since = datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(AuthenticationError, match="Access denied for orders field"):
        connector.pull_orders(since, None)
    with pytest.raises(ChannelError, match="Query cost is 1200"):
        connector.pull_orders(since, None)


# -- reading ----------------------------------------------------------------------------------


def test_shopify_listings_one_per_mapped_location_skipping_unstocked_levels(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    route = api.post(ENDPOINT).respond(
        200,
        json={
            "data": {
                "productVariants": {
                    "nodes": [
                        {
                            "id": "gid://shopify/ProductVariant/11",
                            "sku": "MUG",
                            "inventoryItem": {
                                "id": ITEM,
                                "l0": {"quantities": [{"quantity": 5}]},
                                "l1": None,
                            },
                        },
                        {
                            "id": "gid://shopify/ProductVariant/12",
                            "sku": "",
                            "inventoryItem": {
                                "id": "gid://shopify/InventoryItem/2",
                                "l0": {"quantities": [{"quantity": 1}]},
                                "l1": {"quantities": [{"quantity": 2}]},
                            },
                        },
                    ],
                    "pageInfo": {"hasNextPage": True, "endCursor": "abc"},
                }
            }
        },
    )
    connector = make_connector(
        bulk_operations=False,
        locations={"gid://shopify/Location/1": "main", "gid://shopify/Location/2": "outlet"},
    )

    page = connector.list_listings("prev")

    assert page.next_cursor == "abc"
    assert [(x.listing_id, x.sku, x.warehouses, x.quantity) for x in page.listings] == [
        (f"{ITEM}|gid://shopify/Location/1", "MUG", ("main",), 5),
        ("gid://shopify/InventoryItem/2|gid://shopify/Location/1", None, ("main",), 1),
        ("gid://shopify/InventoryItem/2|gid://shopify/Location/2", None, ("outlet",), 2),
    ]
    (body,) = bodies(route)
    # 2 + 166 x (variant 1 + item 1 + 2 levels x 2) = 998 points: under the 1000 cap
    assert body["variables"] == {
        "first": 166,
        "after": "prev",
        "l0": "gid://shopify/Location/1",
        "l1": "gid://shopify/Location/2",
    }


def test_shopify_orders_by_updated_at_with_statuses_and_current_quantities(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    def order(number: int, lines: Any, more: bool = False, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"gid://shopify/Order/{number}",
            "createdAt": "2026-11-01T10:00:00Z",
            "updatedAt": f"2026-11-01T11:00:0{number}Z",
            "cancelledAt": None,
            "closed": False,
            "displayFulfillmentStatus": "UNFULFILLED",
            "lineItems": {
                "nodes": lines,
                "pageInfo": {"hasNextPage": more, "endCursor": "L1" if more else None},
            },
            **fields,
        }

    def line(number: int, sku: str | None, quantity: int, current: int) -> dict[str, Any]:
        return {
            "id": f"gid://shopify/LineItem/{number}",
            "sku": sku,
            "quantity": quantity,
            "currentQuantity": current,
        }

    route = api.post(ENDPOINT).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "data": {
                        "orders": {
                            "nodes": [
                                order(1, [line(1, "MUG", 3, 2), line(2, None, 1, 1)], more=True),
                                order(2, [line(4, "MUG", 1, 1)], cancelledAt=CANCELLED_AT),
                                order(3, [line(5, "MUG", 1, 1)], **FULFILLED),
                            ],
                            "pageInfo": {"hasNextPage": True, "endCursor": "O3"},
                        }
                    }
                },
            ),
            httpx.Response(
                200,
                json={
                    "data": {
                        "order": {
                            "lineItems": {
                                "nodes": [line(3, "CUP", 1, 1)],
                                "pageInfo": {"hasNextPage": False, "endCursor": "L2"},
                            }
                        }
                    }
                },
            ),
        ]
    )
    connector = make_connector()

    page = connector.pull_orders(datetime(2026, 11, 1, 9, 30, 15, 999, tzinfo=UTC), None)

    assert page.next_cursor == "O3"
    found = [(o.order_id, o.status, [(x.sku, x.quantity) for x in o.lines]) for o in page.orders]
    assert found == [
        ("gid://shopify/Order/1", OrderStatus.OPEN, [("MUG", 2), ("CUP", 1)]),
        ("gid://shopify/Order/2", OrderStatus.CANCELLED, [("MUG", 1)]),
        ("gid://shopify/Order/3", OrderStatus.SHIPPED, [("MUG", 1)]),
    ]
    assert page.orders[0].updated_at == datetime(2026, 11, 1, 11, 0, 1, tzinfo=UTC)
    first, lines = bodies(route)
    assert first["variables"] == {
        "first": 10,
        "after": None,
        "query": "updated_at:>='2026-11-01T09:30:15Z'",
    }
    assert "sortKey: UPDATED_AT" in first["query"]
    assert lines["variables"] == {"id": "gid://shopify/Order/1", "after": "L1"}


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"displayFulfillmentStatus": "UNFULFILLED"}, OrderStatus.OPEN),
        ({"displayFulfillmentStatus": "PARTIALLY_FULFILLED"}, OrderStatus.OPEN),
        ({"displayFulfillmentStatus": "FULFILLED"}, OrderStatus.SHIPPED),
        ({"displayFulfillmentStatus": "UNFULFILLED", "closed": True}, OrderStatus.SHIPPED),
        ({"displayFulfillmentStatus": "RESTOCKED"}, OrderStatus.CANCELLED),
        (
            {"displayFulfillmentStatus": "FULFILLED", "cancelledAt": "2026-11-01T00:00:00Z"},
            OrderStatus.CANCELLED,
        ),
    ],
    ids=["unfulfilled", "partial", "fulfilled", "closed", "restocked", "cancelled"],
)
def test_shopify_order_status_mapping(fields: dict[str, Any], status: OrderStatus) -> None:
    assert order_status(fields) is status


def test_shopify_read_quantities_by_alias(
    api: respx.MockRouter, make_connector: Callable[..., ShopifyConnector]
) -> None:
    other = "gid://shopify/InventoryItem/2"
    route = api.post(ENDPOINT).respond(
        200,
        json={
            "data": {
                "i0": {"inventoryLevel": {"quantities": [{"quantity": 6}]}},
                "i1": {"inventoryLevel": None},
            }
        },
    )
    connector = make_connector(bulk_operations=False)

    found = connector.read_quantities([listing(), listing(other)])

    assert found == {f"{ITEM}|{LOCATION}": 6}
    (body,) = bodies(route)
    assert body["variables"] == {"i0": ITEM, "l0": LOCATION, "i1": other, "l1": LOCATION}


# -- issue 18: one unreadable order is that order's problem alone ---------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("currentQuantity", "two", "'two' is not a whole number"),
        ("currentQuantity", 1.5, "1.5 is not a whole number"),
        ("currentQuantity", -2, "-2 is negative"),
        ("updatedAt", "05/12/2026 4:22 PM", "'05/12/2026 4:22 PM' is not an ISO 8601 date"),
    ],
    ids=["text", "fraction", "negative", "date"],
)
def test_shopify_an_unreadable_order_is_refused_by_id_and_the_page_read_on(
    api: respx.MockRouter,
    make_connector: Callable[..., ShopifyConnector],
    field: str,
    value: Any,
    reason: str,
) -> None:
    def order(number: int, current: Any = 1, updated: str = "2026-11-01T11:00:00Z") -> Any:
        return {
            "id": f"gid://shopify/Order/{number}",
            "createdAt": "2026-11-01T10:00:00Z",
            "updatedAt": updated,
            "cancelledAt": None,
            "closed": False,
            "displayFulfillmentStatus": "UNFULFILLED",
            "lineItems": {
                "nodes": [
                    {"id": f"L{number}", "sku": "MUG", "quantity": 1, "currentQuantity": current}
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            },
        }

    bad = order(2, value) if field == "currentQuantity" else order(2, updated=value)
    page = {"nodes": [order(1), bad, order(3)], "pageInfo": {"hasNextPage": False}}
    api.post(ENDPOINT).mock(return_value=httpx.Response(200, json={"data": {"orders": page}}))

    result = make_connector().pull_orders(datetime(2026, 11, 1, tzinfo=UTC), None)

    assert [o.order_id for o in result.orders] == [
        "gid://shopify/Order/1",
        "gid://shopify/Order/3",
    ]
    where = f"lineItems[0].{field}" if field == "currentQuantity" else field
    assert [(r.order_id, r.field, r.reason) for r in result.rejected] == [
        ("gid://shopify/Order/2", where, reason)
    ]
