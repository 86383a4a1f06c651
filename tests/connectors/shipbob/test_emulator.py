"""The ShipBob emulator over loopback HTTP: every endpoint against ShipBob's spec (its
answers validated by ``spec.check_response``), paging by ``next``, the 422 on a duplicate
reference, bundles exploded in shipments, cancellation refused after picking, Standard
Webhooks signatures, the 150-a-minute limit on the emulator's clock, and fault injection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sellable.emulators import emulator_class
from sellable.emulators.base import ManualClock
from sellable.emulators.shipbob import ShipBobEmulator
from tests.connectors.shipbob.spec import check_request, check_response, readings

WRITER = "128944"  # the channel with orders_write
READER = "128943"  # ShipBob Default: read-only


def valid(response: httpx.Response) -> Any:
    """The JSON body, after checking it against the spec's schema for its status."""
    body = response.json() if response.content else None
    problems = check_response(
        response.request.method, response.request.url.path, response.status_code, body
    )
    assert problems == []
    return body


def order_body(reference: str, lines: list[dict[str, Any]], location_id: int = 10) -> Any:
    return {
        "reference_id": reference,
        "type": "DTC",
        "shipping_method": "Standard",
        "location_id": location_id,
        "recipient": {
            "name": "Ada Lovelace",
            "address": {
                "address1": "12 St James's Square",
                "city": "Chicago",
                "state": "IL",
                "zip_code": "60601",
                "country": "US",
            },
        },
        "products": lines,
    }


def line(sku: str, quantity: int) -> dict[str, Any]:
    return {"reference_id": sku, "name": sku.title(), "quantity": quantity}


def post_order(api: httpx.Client, body: Any, channel: str = WRITER) -> httpx.Response:
    return api.post("/2026-01/order", json=body, headers={"shipbob_channel_id": channel})


def levels(api: httpx.Client, sku: str) -> dict[int, dict[str, int]]:
    """location id -> the quantities of ``sku`` there, as /inventory-level/locations says."""
    body = valid(api.get("/2026-01/inventory-level/locations", params={"PageSize": 250}))
    (item,) = [i for i in body["items"] if i["sku"] == sku]
    return {
        loc["location_id"]: {k: v for k, v in loc.items() if k.endswith("_quantity")}
        for loc in item["locations"]
    }


def quantities(on_hand: int, committed: int = 0, awaiting: int = 0, transfer: int = 0) -> Any:
    return {
        "on_hand_quantity": on_hand,
        "committed_quantity": committed,
        "fulfillable_quantity": on_hand - committed,
        "awaiting_quantity": awaiting,
        "internal_transfer_quantity": transfer,
    }


# -- channels, auth -------------------------------------------------------------------------


def test_channels_list_one_channel_that_writes_orders_and_one_read_only(
    shipbob_api: httpx.Client,
) -> None:
    body = valid(shipbob_api.get("/2026-01/channel"))

    scopes = {str(c["id"]): c["scopes"] for c in body["items"]}
    assert "orders_write" in scopes[WRITER]
    assert "orders_write" not in scopes[READER]
    assert {c["application_name"] for c in body["items"]} == {"SMA", "ShipBob"}
    assert body["next"] is None


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic c2hpcGJvYg=="],
    ids=["none", "wrong-token", "basic"],
)
def test_a_request_without_the_accounts_bearer_token_gets_401(
    shipbob: ShipBobEmulator, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    answer = httpx.get(f"{shipbob.url}/2026-01/channel", headers=headers)

    assert answer.status_code == 401
    assert answer.json()["status"] == 401


def test_the_emulator_is_registered_for_sellable_emulate() -> None:
    assert emulator_class("shipbob") is ShipBobEmulator


def test_locations_list_the_fulfilment_centres(shipbob_api: httpx.Client) -> None:
    body = valid(shipbob_api.get("/2026-01/location"))

    assert [(loc["id"], loc["name"], loc["is_active"]) for loc in body] == [
        (10, "Cicero (IL)", True),
        (21, "Moreno Valley (CA)", True),
        (30, "Bethlehem (PA)", True),
    ]


# -- inventory ------------------------------------------------------------------------------


def test_inventory_levels_per_location_page_by_following_next_until_it_is_null(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    for n in range(7):
        shipbob.set_inventory(f"SKU-{n}", 10, on_hand=n)
        shipbob.set_inventory(f"SKU-{n}", 21, on_hand=10 + n, awaiting=n, internal_transfer=1)
    pages = []
    url: str | None = "/2026-01/inventory-level/locations?PageSize=3&IsActive=true"

    while url is not None:
        body = valid(shipbob_api.get(url))
        pages.append(body)
        url = body["next"]

    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [p["prev"] is None for p in pages] == [True, False, False]
    assert [p["first"] is None for p in pages] == [True, False, False]
    items = [i for p in pages for i in p["items"]]
    assert [i["sku"] for i in items] == [f"SKU-{n}" for n in range(7)]
    assert items[4]["locations"] == [
        {"location_id": 10, "name": "Cicero (IL)", **quantities(4)},
        {"location_id": 21, "name": "Moreno Valley (CA)", **quantities(14, 0, 4, 1)},
    ]
    back = valid(shipbob_api.get(pages[2]["prev"]))
    assert [i["sku"] for i in back["items"]] == ["SKU-3", "SKU-4", "SKU-5"]
    assert shipbob.violations == []


def test_inventory_levels_filter_by_location_ids_and_search(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    mug = shipbob.set_inventory("MUG", 10, on_hand=5)
    shipbob.set_inventory("MUG", 21, on_hand=7)
    shipbob.set_inventory("LID", 21, on_hand=2)

    at_21 = valid(shipbob_api.get("/2026-01/inventory-level/locations?LocationId=21"))
    by_id = valid(shipbob_api.get(f"/2026-01/inventory-level/locations?InventoryIds={mug.id}"))
    search = valid(shipbob_api.get("/2026-01/inventory-level/locations?SearchBy=li"))

    assert [(i["sku"], [x["location_id"] for x in i["locations"]]) for i in at_21["items"]] == [
        ("MUG", [21]),
        ("LID", [21]),
    ]
    assert [i["inventory_id"] for i in by_id["items"]] == [mug.id]
    assert [i["sku"] for i in search["items"]] == ["LID"]


def test_inventory_level_totals_add_the_locations(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5, awaiting=3)
    shipbob.set_inventory("MUG", 21, on_hand=7, internal_transfer=2)
    post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)]))

    (item,) = valid(shipbob_api.get("/2026-01/inventory-level"))["items"]

    assert {k: v for k, v in item.items() if k.startswith("total_")} == {
        "total_on_hand_quantity": 12,
        "total_committed_quantity": 2,
        "total_fulfillable_quantity": 10,
        "total_awaiting_quantity": 3,
        "total_internal_transfer_quantity": 2,
        "total_exception_quantity": 0,
        "total_backordered_quantity": 0,
        "total_sellable_quantity": 10,
    }


# -- products -------------------------------------------------------------------------------


def test_products_by_sku_show_a_bundles_definition_and_its_components_bundles(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    mug = shipbob.set_inventory("MUG", 10, on_hand=5)
    shipbob.set_inventory("LID", 10, on_hand=5)
    bundle = shipbob.add_bundle("MUGSET", {"MUG": 1, "LID": 2}, name="Mug set")

    (product,) = valid(shipbob_api.get("/2026-01/product?SKU=MUGSET"))["items"]
    (component,) = valid(shipbob_api.get("/2026-01/product?SKU=MUG"))["items"]

    assert product["type"] == "Bundle"
    (variant,) = product["variants"]
    assert variant["inventory"] == {"inventory_id": None, "on_hand_qty": 0}
    assert [(d["variant_sku"], d["quantity"]) for d in variant["bundle_definition"]] == [
        ("MUG", 1),
        ("LID", 2),
    ]
    assert component["variants"][0]["inventory"] == {"inventory_id": mug.id, "on_hand_qty": 5}
    assert component["variants"][0]["associated_bundles"] == [
        {
            "product_id": bundle.product_id,
            "product_name": "Mug set",
            "quantity": 1,
            "variant_id": bundle.id,
            "variant_sku": "MUGSET",
        }
    ]


def test_products_page_by_next(shipbob: ShipBobEmulator, shipbob_api: httpx.Client) -> None:
    for n in range(5):
        shipbob.set_inventory(f"P-{n}", 10, on_hand=1)

    first = valid(shipbob_api.get("/2026-01/product?PageSize=2"))
    second = valid(shipbob_api.get(first["next"]))
    third = valid(shipbob_api.get(second["next"]))

    skus = [p["variants"][0]["sku"] for page in (first, second, third) for p in page["items"]]
    assert skus == [f"P-{n}" for n in range(5)]
    assert third["next"] is None


def test_post_product_creates_a_bundle_of_existing_variants(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    mug = valid(
        shipbob_api.post(
            "/2026-01/product",
            json={"name": "Mug", "type_id": 1, "variants": [{"sku": "MUG", "name": "Mug"}]},
        )
    )
    mug_variant = mug["variants"][0]["id"]

    created = shipbob_api.post(
        "/2026-01/product",
        json={
            "name": "Two mugs",
            "type_id": 2,
            "variants": [
                {
                    "sku": "MUG-2",
                    "name": "Two mugs",
                    "bundle_definition": [{"variant_id": mug_variant, "quantity": 2}],
                }
            ],
        },
    )

    assert created.status_code == 201
    assert valid(created)["variants"][0]["bundle_definition"][0]["quantity"] == 2
    assert shipbob.violations == []


# -- orders ---------------------------------------------------------------------------------


def test_an_order_commits_its_units_at_the_pinned_location(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    shipbob.set_inventory("MUG", 21, on_hand=9)

    created = post_order(shipbob_api, order_body("shop:1001", [line("MUG", 2)], location_id=21))

    assert created.status_code == 201
    order = valid(created)
    assert order["reference_id"] == "shop:1001"
    assert order["status"] == "Processing"
    assert order["channel"]["id"] == int(WRITER)
    (shipment,) = order["shipments"]
    assert shipment["location"]["id"] == 21
    assert shipment["status"] == "Processing"
    assert levels(shipbob_api, "MUG") == {10: quantities(5), 21: quantities(9, 2)}
    assert shipbob.violations == []


def test_a_second_order_with_the_same_reference_gets_422_and_no_order(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    post_order(shipbob_api, order_body("shop:1", [line("MUG", 1)]))

    again = post_order(shipbob_api, order_body("shop:1", [line("MUG", 1)]))

    assert again.status_code == 422
    assert valid(again) == {"ReferenceId": ["Cannot insert order with existing ReferenceId"]}
    assert len(shipbob.orders) == 1
    assert levels(shipbob_api, "MUG") == {10: quantities(5, 1)}


def test_an_order_needs_the_header_of_a_channel_that_writes_orders(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    body = order_body("shop:1", [line("MUG", 1)])

    read_only = post_order(shipbob_api, body, channel=READER)
    shipbob.request_validator = None  # what ShipBob itself answers without the header
    missing = shipbob_api.post("/2026-01/order", json=body)

    assert read_only.status_code == 403
    assert missing.status_code == 400
    assert "shipbob_channel_id" in missing.json()
    assert shipbob.orders == {}


def test_a_bundle_line_is_exploded_into_its_components_in_the_shipment(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    mug = shipbob.set_inventory("MUG", 10, on_hand=5)
    lid = shipbob.set_inventory("LID", 10, on_hand=5)
    bundle = shipbob.add_bundle("MUGSET", {"MUG": 1, "LID": 2})

    order = valid(post_order(shipbob_api, order_body("shop:7", [line("MUGSET", 2)])))
    shipments = valid(shipbob_api.get(f"/2026-01/order/{order['id']}/shipment"))

    (product,) = shipments[0]["products"]
    assert (product["id"], product["reference_id"]) == (bundle.id, "MUGSET")
    assert [
        (i["id"], i["quantity"], i["quantity_committed"]) for i in product["inventory_items"]
    ] == [
        (mug.id, 2, 2),
        (lid.id, 4, 4),
    ]
    assert levels(shipbob_api, "LID") == {10: quantities(5, 4)}


def test_an_order_line_by_product_id(shipbob: ShipBobEmulator, shipbob_api: httpx.Client) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    variant = shipbob._variant_by_sku["MUG"]

    order = valid(
        post_order(shipbob_api, order_body("shop:2", [{"id": variant.id, "quantity": 3}]))
    )

    assert order["products"][0]["sku"] == "MUG"
    assert levels(shipbob_api, "MUG") == {10: quantities(5, 3)}
    assert shipbob.violations == []


def test_an_order_short_of_stock_goes_to_exception_out_of_stock_and_commits_nothing(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=1)

    order = valid(post_order(shipbob_api, order_body("shop:3", [line("MUG", 2)])))

    (shipment,) = order["shipments"]
    assert order["status"] == "Exception"
    assert shipment["status"] == "Exception"
    assert [(d["id"], d["name"]) for d in shipment["status_details"]] == [(303, "OutOfStock")]
    assert levels(shipbob_api, "MUG") == {10: quantities(1)}


def test_get_orders_by_reference_ids_ids_last_update_and_pages(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, shipbob_clock: ManualClock
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=50)
    ids = []
    for n in range(5):
        ids.append(valid(post_order(shipbob_api, order_body(f"shop:{n}", [line("MUG", 1)])))["id"])
        shipbob_clock.advance(60)
    shipbob.ship(shipbob.orders[ids[1]].shipments[0].id)  # updated now, after the others

    by_reference = valid(
        shipbob_api.get("/2026-01/order", params={"ReferenceIds": "shop:2,shop:4"})
    )
    by_id = valid(shipbob_api.get("/2026-01/order", params={"IDs": f"{ids[0]},{ids[3]}"}))
    since = valid(
        shipbob_api.get("/2026-01/order", params={"LastUpdateStartDate": "2026-01-01T00:04:00Z"})
    )
    shipped = valid(shipbob_api.get("/2026-01/order", params={"HasTracking": "true"}))
    tracked_since = valid(
        shipbob_api.get(
            "/2026-01/order", params={"LastTrackingUpdateStartDate": "2026-01-01T00:05:00Z"}
        )
    )
    page_2 = shipbob_api.get(
        "/2026-01/order", params={"Page": 2, "Limit": 2, "SortOrder": "Oldest"}
    )

    assert sorted(o["reference_id"] for o in by_reference) == ["shop:2", "shop:4"]
    assert sorted(o["id"] for o in by_id) == [ids[0], ids[3]]
    assert sorted(o["reference_id"] for o in since) == ["shop:1", "shop:4"]
    assert [o["reference_id"] for o in shipped] == ["shop:1"]
    assert [o["reference_id"] for o in tracked_since] == ["shop:1"]
    assert [o["reference_id"] for o in valid(page_2)] == ["shop:2", "shop:3"]
    assert page_2.headers["total-count"] == "5"
    assert shipbob.violations == []


def test_get_one_order_and_404_for_an_unknown_one(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 1)])))

    assert valid(shipbob_api.get(f"/2026-01/order/{order['id']}")) == order
    assert shipbob_api.get("/2026-01/order/999999").status_code == 404


# -- shipments: the warehouse's actions, cancellation -----------------------------------------


def test_a_shipped_shipment_is_completed_with_tracking_and_leaves_the_shelf(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)])))
    shipment_id = order["shipments"][0]["id"]

    shipped = httpx.post(
        f"{shipbob.url}/_emulator/shipments/{shipment_id}/ship",
        json={"carrier": "UPS", "tracking_number": "1Z999"},
    )

    assert shipped.status_code == 200
    (shipment,) = valid(shipbob_api.get(f"/2026-01/order/{order['id']}/shipment"))
    assert shipment["status"] == "Completed"
    assert {k: shipment["tracking"][k] for k in ("carrier", "tracking_number", "tracking_url")} == {
        "carrier": "UPS",
        "tracking_number": "1Z999",
        "tracking_url": "https://tracking.shipbob.com/ups/1Z999",
    }
    assert valid(shipbob_api.get(f"/2026-01/order/{order['id']}"))["status"] == "Fulfilled"
    assert levels(shipbob_api, "MUG") == {10: quantities(3)}


@pytest.mark.parametrize(
    ("status", "reason", "detail_id"),
    [("Exception", "OutOfStock", 303), ("OnHold", "AddressValidation", 200)],
    ids=["exception", "on-hold"],
)
def test_a_failed_shipment_shows_shipbobs_reason(
    shipbob: ShipBobEmulator,
    shipbob_api: httpx.Client,
    status: str,
    reason: str,
    detail_id: int,
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)])))

    httpx.post(
        f"{shipbob.url}/_emulator/shipments/{order['shipments'][0]['id']}/fail",
        json={"status": status, "reason": reason},
    )

    (shipment,) = valid(shipbob_api.get(f"/2026-01/order/{order['id']}/shipment"))
    assert shipment["status"] == status
    assert [(d["id"], d["name"]) for d in shipment["status_details"]] == [(detail_id, reason)]
    assert levels(shipbob_api, "MUG") == {10: quantities(5, 2)}


def test_cancel_before_picking_cancels_the_order_and_releases_its_units(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)])))

    cancelled = valid(shipbob_api.post(f"/2026-01/order/{order['id']}:cancel"))

    assert cancelled["canceled_shipment_results"] == [
        {
            "shipment_id": order["shipments"][0]["id"],
            "action": "Cancel",
            "is_success": True,
            "reason": None,
        }
    ]
    assert cancelled["order"]["status"] == "Cancelled"
    assert levels(shipbob_api, "MUG") == {10: quantities(5)}


def test_cancel_after_picking_is_refused_and_changes_nothing(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)])))
    httpx.post(f"{shipbob.url}/_emulator/shipments/{order['shipments'][0]['id']}/pick")

    answer = valid(shipbob_api.post(f"/2026-01/order/{order['id']}:cancel"))

    (result,) = answer["canceled_shipment_results"]
    assert result["is_success"] is False
    assert "picked" in result["reason"]
    assert answer["order"]["status"] == "Processing"
    assert levels(shipbob_api, "MUG") == {10: quantities(5, 2)}


def test_shipbob_cancelling_a_shipment_releases_its_units(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 2)])))

    httpx.post(f"{shipbob.url}/_emulator/shipments/{order['shipments'][0]['id']}/cancel")

    assert valid(shipbob_api.get(f"/2026-01/order/{order['id']}"))["status"] == "Cancelled"
    assert levels(shipbob_api, "MUG") == {10: quantities(5)}


def test_control_actions_refuse_an_unknown_shipment_and_a_wrong_state(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 1)])))
    shipment_id = order["shipments"][0]["id"]
    shipbob.ship(shipment_id)

    assert httpx.post(f"{shipbob.url}/_emulator/shipments/999/ship").status_code == 404
    assert httpx.post(f"{shipbob.url}/_emulator/shipments/{shipment_id}/pick").status_code == 400


def test_control_api_sets_inventory_defines_bundles_and_advances_the_clock(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, shipbob_clock: ManualClock
) -> None:
    control = f"{shipbob.url}/_emulator"

    httpx.post(f"{control}/inventory", json={"sku": "MUG", "location_id": 30, "on_hand": 4})
    httpx.post(f"{control}/bundles", json={"sku": "PAIR", "components": {"MUG": 2}})
    clock = httpx.post(f"{control}/clock", json={"advance": 90})

    assert levels(shipbob_api, "MUG") == {30: quantities(4)}
    (pair,) = valid(shipbob_api.get("/2026-01/product?SKU=PAIR"))["items"]
    assert pair["variants"][0]["bundle_definition"][0]["quantity"] == 2
    assert clock.json() == {"now": "2026-01-01T00:01:30.000Z"}
    assert shipbob_clock.monotonic() == 90


# -- webhooks -------------------------------------------------------------------------------


class Receiver:
    """An HTTP endpoint on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/shipbob"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()  # 24 bytes


def verified(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    """The Standard Webhooks check (https://www.standardwebhooks.com/, "Verifying")."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [
        s.partition(",")[2] for s in headers["webhook-signature"].split() if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, g) for g in given)


def subscribe(api: httpx.Client, url: str, topics: list[str], secret: str | None = SECRET) -> Any:
    body: dict[str, Any] = {"url": url, "topics": topics}
    if secret is not None:
        body["secret"] = secret
    return valid(api.post("/2026-01/webhook", json=body))


def test_webhook_subscriptions_are_created_listed_and_deleted(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    created = subscribe(shipbob_api, "https://example.com/hook", ["order.shipped"], secret=None)

    listed = valid(shipbob_api.get("/2026-01/webhook"))
    deleted = shipbob_api.delete(f"/2026-01/webhook/{created['id']}")

    assert created["secret"].startswith("whsec_")
    assert [(h["id"], h["topics"], h["enabled"]) for h in listed["items"]] == [
        (created["id"], ["order.shipped"], True)
    ]
    assert deleted.status_code == 204
    assert valid(shipbob_api.get("/2026-01/webhook"))["items"] == []
    assert shipbob.violations == []


def test_shipment_events_are_delivered_signed_per_standard_webhooks(
    shipbob: ShipBobEmulator,
    shipbob_api: httpx.Client,
    shipbob_clock: ManualClock,
    receiver: Receiver,
) -> None:
    topics = [
        "order.shipped",
        "order.shipment.cancelled",
        "order.shipment.exception",
        "order.shipment.on_hold",
    ]
    subscribe(shipbob_api, receiver.url, topics)
    shipbob.set_inventory("MUG", 10, on_hand=9)
    shipments = [
        valid(post_order(shipbob_api, order_body(f"shop:{n}", [line("MUG", 1)])))["shipments"][0][
            "id"
        ]
        for n in range(4)
    ]
    shipbob_clock.advance(5)

    shipbob.ship(shipments[0], "USPS", "9400")
    shipbob.cancel_shipment(shipments[1])
    shipbob.fail(shipments[2], "Exception", "OutOfStock")
    shipbob.fail(shipments[3], "OnHold")
    assert shipbob.webhooks.flush() == [204, 204, 204, 204]

    assert [h["x-webhook-topic"] for h, _ in receiver.received] == topics
    assert all(verified(h, body) for h, body in receiver.received)
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 4
    assert {h["webhook-timestamp"] for h, _ in receiver.received} == {"1767225605"}
    payloads = [json.loads(body) for _, body in receiver.received]
    assert [(p["id"], p["status"]) for p in payloads] == [
        (shipments[0], "Completed"),
        (shipments[1], "Cancelled"),
        (shipments[2], "Exception"),
        (shipments[3], "OnHold"),
    ]
    assert payloads[0]["tracking"]["tracking_number"] == "9400"
    shipment_schema_problems = [
        check_response("GET", f"/2026-01/order/{p['order_id']}/shipment", 200, [p])
        for p in payloads
    ]
    assert shipment_schema_problems == [[], [], [], []]


def test_webhook_faults_duplicate_reorder_drop_and_bad_signature(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, receiver: Receiver
) -> None:
    subscribe(shipbob_api, receiver.url, ["order.shipped"])
    shipbob.set_inventory("MUG", 10, on_hand=9)
    shipments = [
        valid(post_order(shipbob_api, order_body(f"shop:{n}", [line("MUG", 1)])))["shipments"][0][
            "id"
        ]
        for n in range(5)
    ]
    faults = ["duplicate", "reorder", "drop", "bad_signature"]
    assert httpx.post(f"{shipbob.url}/_emulator/webhooks/faults", json=faults).status_code == 200

    for shipment_id in shipments:
        shipbob.ship(shipment_id)
    httpx.post(f"{shipbob.url}/_emulator/webhooks/flush")

    ids = [json.loads(body)["id"] for _, body in receiver.received]
    # duplicate: 0 twice; reorder: 1 after the next one sent (3, as 2 was dropped)
    assert ids == [shipments[0], shipments[0], shipments[3], shipments[1], shipments[4]]
    assert [verified(h, b) for h, b in receiver.received] == [True, True, False, True, True]
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


def test_a_failed_delivery_is_tried_again_at_the_next_flush(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, receiver: Receiver
) -> None:
    subscribe(shipbob_api, receiver.url.replace("/shipbob", "/missing"), ["order.shipped"])
    receiver.close()  # nobody listens
    shipbob.set_inventory("MUG", 10, on_hand=9)
    order = valid(post_order(shipbob_api, order_body("shop:1", [line("MUG", 1)])))
    shipbob.ship(order["shipments"][0]["id"])

    assert shipbob.webhooks.flush() == [None]
    assert shipbob.webhooks.pending() == 1


# -- the rate limit ---------------------------------------------------------------------------


def test_the_151st_request_in_a_minute_gets_429_with_x_retry_after(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, shipbob_clock: ManualClock
) -> None:
    first = [shipbob_api.get("/2026-01/channel").status_code for _ in range(100)]
    shipbob_clock.advance(30)
    statuses = [shipbob_api.get("/2026-01/inventory-level").status_code for _ in range(50)]
    shipbob_clock.advance(29)

    throttled = shipbob_api.get("/2026-01/product")

    assert first == [200] * 100
    assert statuses == [200] * 50
    assert throttled.status_code == 429
    assert throttled.headers["x-retry-after"] == "1"
    assert throttled.headers["x-remaining-calls"] == "0"
    assert throttled.json() == {
        "statusCode": 429,
        "message": "Rate limit is exceeded. Try again in 1 seconds.",
    }
    shipbob_clock.advance(1)  # the first 100 leave the window
    again = shipbob_api.get("/2026-01/product")
    assert again.status_code == 200
    assert again.headers["x-remaining-calls"] == "99"
    assert (shipbob.accepted_count, shipbob.throttled_count) == (151, 1)


def test_the_limit_counts_every_endpoint_of_the_account_together(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    paths = ["/2026-01/channel", "/2026-01/inventory-level/locations", "/2026-01/webhook"]
    statuses = [shipbob_api.get(paths[n % 3]).status_code for n in range(151)]

    assert statuses == [200] * 150 + [429]
    assert shipbob_api.get("/2026-01/order").headers["x-retry-after"] == "60"


def test_limit_share_is_the_requests_answered_over_those_the_limit_allowed(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, shipbob_clock: ManualClock
) -> None:
    start = shipbob_clock.monotonic()
    for _ in range(3):  # 3 minutes of 75 requests each: half the limit
        statuses = {shipbob_api.get("/2026-01/channel").status_code for _ in range(75)}
        assert statuses == {200}
        shipbob_clock.advance(60)

    assert shipbob.limit_share(start) == 225 / 450  # 3 minutes and 0 s: 3 x 150 allowed


# -- faults, validation ---------------------------------------------------------------------


def test_an_injected_reset_drops_the_connection(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.inject({"kind": "reset", "path": "/2026-01/order"})

    with pytest.raises(httpx.TransportError):
        shipbob_api.get("/2026-01/order")
    assert shipbob_api.get("/2026-01/order").status_code == 200


@pytest.mark.parametrize(
    ("fault", "status"),
    [({"status": 503}, 503), ({"status": 500}, 500), ({"status": 401}, 401)],
    ids=["503", "500", "401"],
)
def test_injected_faults_answer_the_next_request(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client, fault: dict[str, Any], status: int
) -> None:
    httpx.post(f"{shipbob.url}/_emulator/faults", json=[{**fault, "path": "/2026-01/order"}])

    assert shipbob_api.get("/2026-01/channel").status_code == 200
    assert shipbob_api.get("/2026-01/order").status_code == status
    assert shipbob_api.get("/2026-01/order").status_code == 200


def test_an_injected_429_answers_in_shipbobs_words(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.inject({"status": 429})

    answer = shipbob_api.get("/2026-01/channel")

    assert answer.status_code == 429
    assert answer.headers["x-retry-after"] == "1"
    assert answer.json()["statusCode"] == 429


def test_an_invalid_request_is_refused_and_recorded_as_a_violation(
    shipbob: ShipBobEmulator, shipbob_api: httpx.Client
) -> None:
    shipbob.set_inventory("MUG", 10, on_hand=5)
    nameless = order_body("shop:1", [{"reference_id": "MUG", "quantity": 1}])

    refused = post_order(shipbob_api, nameless)
    typo = shipbob_api.get("/2026-01/order", params={"ReferenceId": "shop:1"})

    assert refused.status_code == 400
    assert typo.status_code == 400
    assert [(m, p) for m, p, _ in shipbob.violations] == [
        ("POST", "/2026-01/order"),
        ("GET", "/2026-01/order"),
    ]
    assert "'name' is a required property" in shipbob.violations[0][2][0]
    assert "unknown query parameter 'referenceid'" in shipbob.violations[1][2][0]
    assert shipbob.orders == {}


# -- the validator itself (no server) --------------------------------------------------------


GOOD_ORDER = order_body("shop:1", [line("MUG", 1)])


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "problem"),
    [
        ("GET", "/2026-01/nothing", {}, {}, None, "no such operation"),
        ("DELETE", "/2026-01/channel", {}, {}, None, "no such operation"),
        ("POST", "/2026-01/order", {}, {}, GOOD_ORDER, "'shipbob_channel_id' is missing"),
        ("GET", "/2026-01/order", {"Limit": "251"}, {}, None, "above the maximum 250"),
        ("GET", "/2026-01/order", {"Page": "zero"}, {}, None, "is not int32"),
        ("GET", "/2026-01/order", {"HasTracking": "yes"}, {}, None, "is not a boolean"),
        ("GET", "/2026-01/order", {"LastUpdateStartDate": "May 1"}, {}, None, "not a date-time"),
        ("GET", "/2026-01/order", {"IDs": "1,x"}, {}, None, "is not int32"),
        ("GET", "/2026-01/order/abc", {}, {}, None, "orderId='abc' is not int32"),
        ("GET", "/2026-01/inventory-level/locations", {"Page": "2"}, {}, None, "unknown query"),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "type": "Retail"},
            "'Retail' is not one of",
        ),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "products": []},
            "should be non-empty",
        ),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "recipient": {"name": "A", "address": {"city": "X", "country": "US"}}},
            "'address1' is a required property",
        ),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "location": 10},
            "'location' was unexpected",
        ),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "products": [{"reference_id": "MUG", "name": "Mug", "quantity": 0}]},
            "0 is less than the minimum of 1",
        ),
        ("POST", "/2026-01/webhook", {}, {}, {"url": "x", "topics": ["order.made"]}, "not one of"),
        ("POST", "/2026-01/order", {}, {"shipbob_channel_id": "1"}, b"{", "not JSON"),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "purchase_date": "yesterday"},
            "'yesterday' is not a 'date-time'",
        ),
        (
            "POST",
            "/2026-01/webhook",
            {},
            {},
            {"url": "https://x.test/h", "topics": ["order.shipped"], "secret": "whsec_short"},
            "does not match",
        ),
    ],
    ids=[
        "unknown-path",
        "unknown-method",
        "channel-header",
        "limit",
        "page-type",
        "boolean",
        "date-time",
        "id-list",
        "path-param",
        "unknown-param",
        "enum",
        "no-products",
        "address",
        "unknown-field",
        "quantity",
        "topic",
        "not-json",
        "body-date-time",
        "webhook-secret",
    ],
)
def test_check_request_names_what_is_wrong(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: Any,
    problem: str,
) -> None:
    problems = check_request(method, path, query, headers, body)

    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body"),
    [
        ("POST", "/2026-01/order", {}, {"shipbob_channel_id": "1"}, GOOD_ORDER),
        (
            "POST",
            "/2026-01/order",
            {},
            {"shipbob_channel_id": "1"},
            {**GOOD_ORDER, "products": [{"id": 7001, "quantity": 2}], "tags": []},
        ),
        (
            "GET",
            "/2026-01/order",
            {
                "ReferenceIds": "a:1,b:2",
                "Limit": "250",
                "LastUpdateStartDate": "2026-01-01T00:00:00Z",
            },
            {},
            None,
        ),
        (
            "GET",
            "/2026-01/inventory-level/locations",
            {"isactive": "true", "Cursor": "x"},
            {},
            None,
        ),
        ("POST", "/2026-01/order/12:cancel", {}, {}, None),
        ("GET", "/2026-01/order/12/shipment", {}, {}, None),
        ("GET", "/2026-01/product", {"SKU": "MUG", "PageSize": "250"}, {}, None),
    ],
    ids=["order-by-reference", "order-by-id", "orders", "levels", "cancel", "shipments", "product"],
)
def test_check_request_accepts_what_the_spec_allows(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
) -> None:
    assert check_request(method, path, query, headers, body) == []


def test_the_readings_of_the_spec_are_the_documented_ones() -> None:
    found = readings()

    assert (
        "Orders.AddProductToOrderByProductIdModel: required 'product_id' is not a declared property"
        in found
    )
    assert all("is not a declared property" in reading for reading in found)
