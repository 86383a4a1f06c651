"""The ShipBob connector against respx: stock per fulfilment centre, orders out, shipments
back, cancellation, credentials and throttling. Payloads follow the examples of ShipBob's
``openapi-2026-01.json``, cut to the fields the connector reads, and every request the
connector sends is checked against that spec (``spec.check_request``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from sellable_shipbob.connector import ShipBobConnector, ShipBobSettings

from sellable.sdk import (
    AuthenticationError,
    CancelOutcome,
    CancelResult,
    ChannelHttp,
    ConnectorContext,
    FulfilmentLine,
    FulfilmentRequest,
    FulfilmentUpdate,
    Shipment,
    ShipmentStatus,
    ShippingAddress,
    StockCount,
    SubmitOutcome,
    SubmitResult,
)
from tests.connectors.shipbob.spec import check_request

API = "https://api.shipbob.com"
V = API + "/2026-01"
TOKEN = "pat-abcdefghijklmnop-secret"
CHANNEL_ID = 128944
LOCATIONS = {"sb-chicago": 10, "sb-moreno": 21}

ADDRESS = ShippingAddress(
    name="Ada Lovelace",
    address1="12 Analytical Row",
    address2="Flat 3",
    city="Gotham City",
    state="NJ",
    zip_code="07093",
    country="US",
    email="ada@example.com",
    phone="555-555-5555",
)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx, and afterwards: every request sent was valid against ShipBob's spec."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock
        problems = []
        for call in mock.calls:
            request = call.request
            problems += check_request(
                request.method,
                request.url.path,
                dict(request.url.params),
                dict(request.headers),
                request.content or None,
            )
        assert problems == []


class Waits(list[float]):
    """The waits the HTTP client asked for (a fake sleep: no test sleeps)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


def make(waits: Waits, **settings: Any) -> ShipBobConnector:
    http = ChannelHttp("sb", sleep=waits, backoff_base=0.0, max_attempts=3)
    values: dict[str, Any] = {"token": TOKEN, "locations": LOCATIONS, **settings}
    connector = ShipBobConnector(
        ShipBobSettings.model_validate(values),
        ConnectorContext("sb", tuple(LOCATIONS), http),
    )
    http.set_base_url(connector.base_url())
    http.authenticate = connector.authenticate
    return connector


@pytest.fixture
def shipbob(router: respx.MockRouter, waits: Waits) -> Iterator[ShipBobConnector]:
    connector = make(waits, channel_id=CHANNEL_ID)
    yield connector
    connector.http.close()


def level(location_id: int, on_hand: int, committed: int, **others: int) -> dict[str, Any]:
    return {
        "location_id": location_id,
        "name": f"FC {location_id}",
        "on_hand_quantity": on_hand,
        "committed_quantity": committed,
        "fulfillable_quantity": on_hand - committed,
        "awaiting_quantity": others.get("awaiting", 0),
        "internal_transfer_quantity": others.get("transfer", 0),
    }


# -- stock ---------------------------------------------------------------------------------------


def test_stock_is_on_hand_and_committed_per_mapped_centre_over_three_pages(
    shipbob: ShipBobConnector, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    pages = [
        {
            "items": [
                {
                    "inventory_id": 1,
                    "sku": "MUG",
                    "name": "Mug",
                    "locations": [
                        level(10, 40, 7, awaiting=100, transfer=12),
                        level(21, 5, 0),
                        level(99, 1000, 0),  # a centre we do not map
                    ],
                },
            ],
            "next": "/2026-01/inventory-level/locations?Cursor=p2",
        },
        {
            "items": [
                {"inventory_id": 2, "sku": "", "locations": [level(10, 3, 0)]},
                {"inventory_id": 3, "sku": "LID", "locations": [level(21, 9, 2)]},
            ],
            "next": V + "/inventory-level/locations?Cursor=p3",
        },
        {
            "items": [
                {
                    "inventory_id": 4,
                    "sku": "BAD",
                    "locations": [{**level(10, 1, 0), "on_hand_quantity": "lots"}],
                },
                {"inventory_id": 5, "sku": "TEA", "locations": [level(10, 0, 0, awaiting=50)]},
            ],
            "next": None,
        },
    ]
    route = router.get(f"{V}/inventory-level/locations").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )

    with caplog.at_level(logging.WARNING):
        counts = shipbob.pull_stock()

    assert sorted(counts, key=lambda c: (c.sku, c.warehouse or "")) == [
        StockCount("LID", 0, warehouse="sb-chicago", committed=0),
        StockCount("LID", 9, warehouse="sb-moreno", committed=2),
        StockCount("MUG", 40, warehouse="sb-chicago", committed=7),
        StockCount("MUG", 5, warehouse="sb-moreno", committed=0),
        StockCount("TEA", 0, warehouse="sb-chicago", committed=0),
        StockCount("TEA", 0, warehouse="sb-moreno", committed=0),
    ]
    first, second, third = (call.request for call in route.calls)
    assert dict(first.url.params) == {"IsActive": "true", "PageSize": "250"}
    assert dict(second.url.params) == {"Cursor": "p2"}
    assert dict(third.url.params) == {"Cursor": "p3"}
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "2 ShipBob inventory item(s) skipped" in caplog.text
    assert "inventory item 2: sku: missing" in caplog.text
    assert "inventory item 4: sku 'BAD': location 10: on_hand_quantity 'lots'" in caplog.text
    assert TOKEN not in caplog.text


def test_stock_refuses_a_next_link_to_another_host(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.get(f"{V}/inventory-level/locations").respond(
        200, json={"items": [], "next": "https://evil.example/steal?Cursor=2"}
    )
    with pytest.raises(Exception, match="next points at another host"):
        shipbob.pull_stock()
    assert len(router.calls) == 1


def test_refused_token_is_an_authentication_error_without_the_token(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.get(f"{V}/inventory-level/locations").respond(
        401, json={"title": "Unauthorized", "status": 401}
    )
    with pytest.raises(AuthenticationError) as excinfo:
        shipbob.pull_stock()
    assert excinfo.value.status_code == 401
    assert TOKEN not in str(excinfo.value)


def test_a_429_waits_the_x_retry_after_seconds_then_goes_on(
    shipbob: ShipBobConnector, router: respx.MockRouter, waits: Waits
) -> None:
    throttled = httpx.Response(
        429,
        headers={"x-retry-after": "25", "x-remaining-calls": "0"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 25 seconds."},
    )
    router.get(f"{V}/inventory-level/locations").mock(
        side_effect=[throttled, httpx.Response(200, json={"items": [], "next": None})]
    )
    assert shipbob.pull_stock() == []
    assert 25.0 in waits
    assert shipbob.http.throttled == 1


# -- orders out ----------------------------------------------------------------------------------


def request_for(reference: str = "woo:1001", **changes: Any) -> FulfilmentRequest:
    values: dict[str, Any] = {
        "reference": reference,
        "order_channel": "woo",
        "order_id": reference.split(":")[1],
        "warehouse": "sb-chicago",
        "recipient": ADDRESS,
        "lines": (
            FulfilmentLine("1", "GIFT-BOX", 2, (("MUG", 2), ("TEA", 4)), name="Gift box"),
            FulfilmentLine("2", "MUG", 1, (("MUG", 1),), name="Mug"),
        ),
        "created_at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    }
    values.update(changes)
    return FulfilmentRequest(**values)


def sent(route: respx.Route, call: int = -1) -> Any:
    return json.loads(route.calls[call].request.content)


def test_an_order_goes_out_pinned_to_its_centre_with_a_kit_as_its_components(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    route = router.post(f"{V}/order").respond(201, json={"id": 5001, "reference_id": "woo:1001"})

    results = shipbob.fulfil_orders([request_for()])

    assert results == [SubmitResult("woo:1001", SubmitOutcome.CREATED, remote_id="5001")]
    assert sent(route) == {
        "reference_id": "woo:1001",
        "order_number": "1001",
        "type": "DTC",
        "shipping_method": "Standard",
        "location_id": 10,
        "purchase_date": "2026-12-01T09:30:00Z",
        "recipient": {
            "name": "Ada Lovelace",
            "address": {
                "address1": "12 Analytical Row",
                "address2": "Flat 3",
                "city": "Gotham City",
                "state": "NJ",
                "zip_code": "07093",
                "country": "US",
            },
            "email": "ada@example.com",
            "phone_number": "555-555-5555",
        },
        "products": [
            {"reference_id": "MUG", "name": "Mug", "quantity": 3},
            {"reference_id": "TEA", "name": "TEA", "quantity": 4},
        ],
    }
    headers = route.calls[-1].request.headers
    assert headers["shipbob_channel_id"] == str(CHANNEL_ID)
    assert headers["Authorization"] == f"Bearer {TOKEN}"


def test_with_kits_bundle_the_ordered_sku_goes_out(router: respx.MockRouter, waits: Waits) -> None:
    shipbob = make(waits, channel_id=CHANNEL_ID, kits="bundle", shipping_method="Express")
    route = router.post(f"{V}/order").respond(201, json={"id": 5002})

    shipbob.fulfil_orders([request_for(warehouse="sb-moreno")])

    body = sent(route)
    assert (body["location_id"], body["shipping_method"]) == (21, "Express")
    assert body["products"] == [
        {"reference_id": "GIFT-BOX", "name": "Gift box", "quantity": 2},
        {"reference_id": "MUG", "name": "Mug", "quantity": 1},
    ]


def test_without_channel_id_the_channel_that_may_write_orders_is_found_once(
    router: respx.MockRouter, waits: Waits
) -> None:
    shipbob = make(waits)
    channels = router.get(f"{V}/channel").respond(
        200,
        json={
            "items": [
                {"id": 128943, "name": "ShipBob Default", "scopes": ["orders_read"]},
                {"id": CHANNEL_ID, "name": "PAT", "scopes": ["orders_read", "orders_write"]},
            ],
            "next": None,
        },
    )
    route = router.post(f"{V}/order").respond(201, json={"id": 1})

    shipbob.fulfil_orders([request_for("woo:1")])
    shipbob.fulfil_orders([request_for("woo:2")])

    assert len(channels.calls) == 1
    assert [c.request.headers["shipbob_channel_id"] for c in route.calls] == [str(CHANNEL_ID)] * 2


def order(order_id: int, reference: str, status: str = "Processing", **extra: Any) -> dict:
    return {
        "id": order_id,
        "reference_id": reference,
        "status": status,
        "created_date": "2026-12-01T10:00:00Z",
        "channel": {"id": CHANNEL_ID, "name": "PAT"},
        **extra,
    }


def test_a_422_for_an_existing_reference_is_existed_never_a_second_order(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    post = router.post(f"{V}/order").respond(
        422, json={"": ["Cannot insert order with existing ReferenceId"]}
    )
    lookup = router.get(f"{V}/order").respond(200, json=[order(5001, "woo:1001")])

    results = shipbob.fulfil_orders([request_for()])

    assert results == [SubmitResult("woo:1001", SubmitOutcome.EXISTED, remote_id="5001")]
    assert len(post.calls) == 1
    assert dict(lookup.calls[0].request.url.params) == {
        "ReferenceIds": "woo:1001",
        "Page": "1",
        "Limit": "250",
    }


def test_a_5xx_whose_order_was_made_anyway_is_existed_on_the_retry(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    post = router.post(f"{V}/order").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(422, json={"": ["Cannot insert order with existing ReferenceId"]}),
        ]
    )
    router.get(f"{V}/order").respond(200, json=[order(5001, "woo:1001")])

    results = shipbob.fulfil_orders([request_for()])

    assert results == [SubmitResult("woo:1001", SubmitOutcome.EXISTED, remote_id="5001")]
    assert len(post.calls) == 2


def test_a_422_for_a_reference_shipbob_does_not_hold_is_refused(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order").respond(422, json={"products": ["Unknown product"]})
    router.get(f"{V}/order").respond(200, json=[])

    [result] = shipbob.fulfil_orders([request_for()])

    assert (result.outcome, result.message) == (
        SubmitOutcome.REFUSED,
        "ShipBob refused the order (HTTP 422): products: Unknown product",
    )


def test_a_created_answer_without_an_id_is_unknown(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order").respond(201, json={"reference_id": "woo:1001"})
    [result] = shipbob.fulfil_orders([request_for()])
    assert result.outcome is SubmitOutcome.UNKNOWN


def test_a_timeout_is_unknown_and_the_requests_after_it_are_not_sent(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    route = router.post(f"{V}/order").mock(side_effect=httpx.ReadTimeout("slow"))

    results = shipbob.fulfil_orders([request_for("woo:1"), request_for("woo:2")])

    assert [(r.reference, r.outcome) for r in results] == [
        ("woo:1", SubmitOutcome.UNKNOWN),
        ("woo:2", SubmitOutcome.UNKNOWN),
    ]
    assert len(route.calls) == 3  # the three attempts of the first; the second never sent
    assert {json.loads(c.request.content)["reference_id"] for c in route.calls} == {"woo:1"}


def test_a_refused_order_says_why_without_the_address(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order").mock(
        side_effect=[
            httpx.Response(
                400,
                json={"recipient.address.zip_code": ["'07093' is not valid for Gotham City"]},
            ),
            httpx.Response(201, json={"id": 7}),
        ]
    )

    refused, created = shipbob.fulfil_orders([request_for("woo:1"), request_for("woo:2")])

    assert refused.outcome is SubmitOutcome.REFUSED
    assert refused.message == (
        "ShipBob refused the order (HTTP 400): recipient.address.zip_code: "
        "'[address]' is not valid for [address]"
    )
    assert created == SubmitResult("woo:2", SubmitOutcome.CREATED, remote_id="7")


def test_an_order_is_refused_unsent_for_an_unmapped_warehouse_or_a_short_address(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    no_street = ShippingAddress(name="Ada", address1=" ", city="Gotham", country="US")
    results = shipbob.fulfil_orders(
        [request_for("woo:1", warehouse="main"), request_for("woo:2", recipient=no_street)]
    )
    assert [(r.outcome, r.message) for r in results] == [
        (
            SubmitOutcome.REFUSED,
            "warehouse 'main' has no ShipBob fulfilment centre (settings.locations)",
        ),
        (SubmitOutcome.REFUSED, "the shipping address lacks address1"),
    ]
    assert router.calls.call_count == 0


def test_references_are_looked_up_fifty_at_a_time(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    references = [f"woo:{n}" for n in range(60)]
    route = router.get(f"{V}/order").mock(
        side_effect=[
            httpx.Response(200, json=[order(9000, "woo:3")]),
            httpx.Response(200, json=[order(9001, "woo:55", "Cancelled")]),
        ]
    )

    found = shipbob.find_fulfilments(references)

    asked = [c.request.url.params["ReferenceIds"].split(",") for c in route.calls]
    assert asked == [references[:50], references[50:]]
    assert {ref: (u.remote_id, u.cancelled) for ref, u in found.items()} == {
        "woo:3": ("9000", False),
        "woo:55": ("9001", True),
    }


# -- shipments back ------------------------------------------------------------------------------


def shipment(shipment_id: int, status: str, products: list[dict], **extra: Any) -> dict:
    return {
        "id": shipment_id,
        "order_id": 0,
        "status": status,
        "location": {"id": 10, "name": "Cicero (IL)"},
        "last_update_at": "2026-12-02T08:00:00Z",
        "products": products,
        **extra,
    }


def test_shipments_come_back_with_items_per_inventory_item_tracking_and_reasons(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    exploded = {
        "id": 77,
        "reference_id": "GIFT-BOX",
        "sku": "GIFT-BOX",
        "inventory_items": [{"id": 1, "quantity": 2}, {"id": 5, "quantity": 4}],
    }
    orders = [
        order(
            5001,
            "woo:1001",
            "Fulfilled",
            shipments=[
                shipment(
                    901,
                    "Completed",
                    [exploded],
                    tracking={"carrier": "USPS", "tracking_number": "9400111"},
                )
            ],
        ),
        order(
            5002,
            "woo:1002",
            "Exception",
            shipments=[
                shipment(
                    902,
                    "Exception",
                    [{"id": 78, "inventory_items": [{"id": 1, "quantity": 1}]}],
                    status_details=[
                        {"id": 303, "name": "OutOfStock", "description": "Out of stock"}
                    ],
                ),
                shipment(903, "OnHold", [], status_details=[{"name": "InvalidAddress"}]),
            ],
        ),
        order(5003, "woo:1003", "Cancelled", shipments=[shipment(904, "Cancelled", [])]),
        order(5004, "SHOPIFY-#1234"),  # ShipBob's own Shopify app: not ours
        order(5005, "woo:1005", channel={"id": 1, "name": "Other integration"}),
    ]
    orders_route = router.get(f"{V}/order").respond(200, json=orders)
    inventory = router.get(f"{V}/inventory-level/locations").respond(
        200,
        json={
            "items": [
                {"inventory_id": 1, "sku": "MUG", "name": "Mug", "locations": []},
                {"inventory_id": 5, "sku": "TEA", "name": "Tea", "locations": []},
            ],
            "next": None,
        },
    )

    page = shipbob.pull_fulfilments(datetime(2026, 12, 1, 12, tzinfo=UTC), None)

    assert page.next_cursor is None
    assert dict(orders_route.calls[0].request.url.params) == {
        "LastUpdateStartDate": "2026-12-01T12:00:00Z",
        "SortOrder": "Oldest",
        "Page": "1",
        "Limit": "250",
    }
    assert orders_route.calls[0].request.headers["shipbob_channel_id"] == str(CHANNEL_ID)
    assert dict(inventory.calls[0].request.url.params) == {"InventoryIds": "1,5", "PageSize": "250"}
    moment = datetime(2026, 12, 2, 8, tzinfo=UTC)
    assert list(page.updates) == [
        FulfilmentUpdate(
            "woo:1001",
            "5001",
            "Fulfilled",
            moment,
            (
                Shipment(
                    "901",
                    ShipmentStatus.COMPLETED,
                    (("MUG", 2), ("TEA", 4)),
                    ("9400111",),
                    "USPS",
                ),
            ),
        ),
        FulfilmentUpdate(
            "woo:1002",
            "5002",
            "Exception",
            moment,
            (
                Shipment(
                    "902",
                    ShipmentStatus.EXCEPTION,
                    (("MUG", 1),),
                    reason="OutOfStock: Out of stock",
                ),
                Shipment("903", ShipmentStatus.ON_HOLD, reason="InvalidAddress"),
            ),
        ),
        FulfilmentUpdate(
            "woo:1003",
            "5003",
            "Cancelled",
            moment,
            (Shipment("904", ShipmentStatus.CANCELLED),),
            cancelled=True,
        ),
    ]


def test_a_full_page_of_orders_has_a_next_page_and_a_short_one_ends(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    full = [order(n, f"woo:{n}") for n in range(250)]
    route = router.get(f"{V}/order").mock(
        side_effect=[
            httpx.Response(200, json=full),
            httpx.Response(200, json=[order(250, "woo:250")]),
        ]
    )
    since = datetime(2026, 12, 1, tzinfo=UTC)

    first = shipbob.pull_fulfilments(since, None)
    second = shipbob.pull_fulfilments(since, first.next_cursor)

    assert (len(first.updates), first.next_cursor) == (250, "2")
    assert (len(second.updates), second.next_cursor) == (1, None)
    assert [c.request.url.params["Page"] for c in route.calls] == ["1", "2"]


# -- cancellation --------------------------------------------------------------------------------


def test_cancel_is_cancelled_when_every_shipment_was(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order/5001:cancel").respond(
        200,
        json={
            "order_id": 5001,
            "status": "Success",
            "canceled_shipment_results": [
                {"shipment_id": 901, "is_success": True, "action": "Cancel"}
            ],
        },
    )
    assert shipbob.cancel_fulfilment("5001") == CancelResult("5001", CancelOutcome.CANCELLED)


def test_cancel_after_picking_is_refused_with_shipbobs_reason(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order/5001:cancel").respond(
        200,
        json={
            "order_id": 5001,
            "status": "Failure",
            "canceled_shipment_results": [
                {"shipment_id": 901, "is_success": False, "reason": "Shipment already picked"}
            ],
        },
    )
    assert shipbob.cancel_fulfilment("5001") == CancelResult(
        "5001",
        CancelOutcome.REFUSED,
        "ShipBob did not cancel it (Failure): shipment 901: Shipment already picked",
    )


def test_cancel_of_an_order_shipbob_does_not_know_is_not_found(
    shipbob: ShipBobConnector, router: respx.MockRouter
) -> None:
    router.post(f"{V}/order/404:cancel").respond(404)
    assert shipbob.cancel_fulfilment("404").outcome is CancelOutcome.NOT_FOUND
