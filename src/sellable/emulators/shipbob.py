"""A ShipBob emulator, API version 2026-01: channels, inventory per fulfilment centre,
products with bundles, orders with their shipments, cancellation, signed webhooks.

Paths, parameters and JSON shapes follow ShipBob's own OpenAPI description,
``openapi-2026-01.json`` (https://developer.shipbob.com/api-reference, 2026-01), field by
field; the tests check the emulator's answers against it. What it reproduces, because it is
what makes the real API hard:

* ``Authorization: Bearer <personal access token>``; 401 otherwise.
* 150 requests a minute for the whole account, all endpoints together, in a sliding window
  ("Rate limits", https://developer.shipbob.com/rate-limiting): over it a 429 with
  ``x-retry-after`` (seconds) and ``x-remaining-calls``, and the body
  ``{"statusCode":429,"message":"Rate limit is exceeded. Try again in N seconds."}``. The
  window runs on the emulator's clock, so a test drives it with a ManualClock.
* Channels: ``POST /order`` needs the ``shipbob_channel_id`` header of a channel with the
  ``orders_write`` scope; a reference id is unique per channel, and a second order with it is
  refused with 422 ``{"ReferenceId": ["Cannot insert order with existing ReferenceId"]}``
  (reported by integrators, not in the spec).
* Fulfilment centres (``GET /location``): 10 Cicero (IL), 21 Moreno Valley (CA), 30
  Bethlehem (PA) unless ``locations`` says otherwise.
* Stock lives on inventory items, per fulfilment centre: ``on_hand``, ``committed`` (held by
  open shipments), ``fulfillable`` = on hand - committed, ``awaiting`` (inbound) and
  ``internal_transfer``. A bundle holds no stock: an order line of a bundle is exploded into
  its components' inventory items in the shipment. An order commits its units at its
  centre (the pinned ``location_id``); a shipment that cannot be covered goes to Exception
  ``OutOfStock`` and commits nothing.
* Paged reads (``/inventory-level``, ``/inventory-level/locations``, ``/product``) answer
  ``first``/``prev``/``next``/``last`` links, paths with a ``Cursor`` to follow as they are;
  ``next`` is null on the last page. ``GET /order`` pages by ``Page`` and ``Limit`` (at most
  250), newest first unless ``SortOrder=Oldest``.
* Cancellation works until a shipment is picked: after that ``POST /order/{id}:cancel``
  answers 200 with ``is_success: false`` for that shipment and cancels nothing.
* Webhooks (``/webhook``): ``order.shipped``, ``order.shipment.cancelled``,
  ``order.shipment.exception``, ``order.shipment.on_hold``, ``order.shipment.delivered``,
  signed per Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the
  base64-decoded secret after ``whsec_``), with the topic in ``x-webhook-topic``. The body is
  the shipment as ``GET /order/{id}/shipment`` renders it. A failed delivery is tried again,
  up to 5 times (ShipBob retries with backoff for 24 h, out of order).

The warehouse's own actions, under ``/_emulator/`` (and as methods)::

    POST /_emulator/inventory   {"sku", "location_id", "on_hand", "awaiting"?,
                                 "internal_transfer"?, "name"?}
    POST /_emulator/bundles     {"sku", "name"?, "components": {"SKU": units}}
    POST /_emulator/shipments/{id}/pick
    POST /_emulator/shipments/{id}/ship     {"carrier"?, "tracking_number"?}
    POST /_emulator/shipments/{id}/fail     {"status": "Exception"|"OnHold", "reason"?}
    POST /_emulator/shipments/{id}/deliver
    POST /_emulator/shipments/{id}/cancel   (cancelled by ShipBob)
    POST /_emulator/clock       {"advance": seconds}   (a ManualClock only)
    GET  /_emulator/violations  the requests refused by the request validator

``request_validator`` (tests): a callable ``(method, path, query, headers, body) -> list of
problems``; a request with problems is answered 400 and recorded in :attr:`violations`.

Usage::

    with ShipBobEmulator(clock=ManualClock()) as shipbob:
        shipbob.set_inventory("MUG", 10, on_hand=5)
        order = shipbob.place_order([("MUG", 2)])
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sellable.emulators.base import (
    Clock,
    Delivery,
    EmulatorServer,
    HttpError,
    ManualClock,
    Request,
    Response,
    WebhookSender,
)

API = "/2026-01"
DEFAULT_TOKEN = "sbpat_emulator_0000000000000000"
#: "150 requests per minute" per user and application, all endpoints together.
RATE_LIMIT = 150
RATE_WINDOW = 60.0
#: Default page sizes; larger than MAX_PAGE_SIZE is cut down to it.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
#: Webhook topics of the 2026-01 spec (``Webhooks.Topics``).
TOPICS = (
    "order.shipped",
    "order.shipment.delivered",
    "order.shipment.exception",
    "order.shipment.on_hold",
    "order.shipment.cancelled",
    "return.created",
    "return.updated",
    "return.completed",
    "billing.charge.created",
    "billing.refund.created",
    "billing.credit.created",
)
#: Shipment status details ShipBob names (id, name), from its order-status guide.
STATUS_DETAILS = {
    "OutOfStock": 303,
    "Bundle": 300,
    "InventoryPartiallyCommitted": 308,
    "AddressValidation": 200,
    "MissingCustomsInfo": 201,
    "PaymentHold": 202,
    "ManualHold": 203,
}
WEBHOOK_ATTEMPTS = 5
Validator = Callable[[str, str, Mapping[str, list[str]], Mapping[str, str], bytes], list[str]]


@dataclass
class Location:
    id: int
    name: str
    slug: str
    type: str = "hub"


@dataclass
class Channel:
    id: int
    name: str
    application_name: str
    scopes: list[str]


@dataclass
class Level:
    on_hand: int = 0
    committed: int = 0
    awaiting: int = 0
    internal_transfer: int = 0

    @property
    def fulfillable(self) -> int:
        return self.on_hand - self.committed


@dataclass
class InventoryItem:
    id: int
    sku: str
    name: str
    levels: dict[int, Level] = field(default_factory=dict)
    is_active: bool = True


@dataclass
class Variant:
    id: int
    product_id: int
    sku: str
    name: str
    inventory_id: int | None  # None: a bundle, which holds no stock
    bundle: list[tuple[int, int]] = field(default_factory=list)  # (variant id, units)


@dataclass
class Product:
    id: int
    name: str
    type_id: int  # 1 Regular, 2 Bundle
    created: datetime
    updated: datetime
    variants: list[Variant] = field(default_factory=list)


@dataclass
class Shipment:
    id: int
    order_id: int
    location_id: int
    created: datetime
    updated: datetime
    #: One per order line: {"id", "reference_id", "sku", "name", "inventory_items": [...]}
    products: list[dict[str, Any]]
    status: str = "Processing"
    status_details: list[dict[str, Any]] = field(default_factory=list)
    picked: bool = False
    tracking: dict[str, Any] | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass
class Order:
    id: int
    channel_id: int
    reference_id: str
    created: datetime
    body: dict[str, Any]
    products: list[dict[str, Any]]
    shipments: list[Shipment] = field(default_factory=list)

    def updated(self) -> datetime:
        return max([self.created, *(s.updated for s in self.shipments)])

    @property
    def status(self) -> str:
        statuses = {s.status for s in self.shipments}
        if statuses <= {"Cancelled"}:
            return "Cancelled"
        if statuses <= {"Completed", "Cancelled"}:
            return "Fulfilled"
        if "Completed" in statuses:
            return "PartiallyFulfilled"
        if statuses & {"Exception", "OnHold"}:
            return "Exception"
        return "Processing"


@dataclass
class Hook:
    id: str
    url: str
    topics: list[str]
    secret: str
    description: str | None
    created: datetime
    enabled: bool = True


def _stamp(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_stamp(name: str, raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as err:
        raise _bad_request(name, f"The value '{raw}' is not valid for {name}.") from err


def _bad_request(field_name: str, message: str) -> HttpError:
    """ASP.NET's validation shape, as the spec's ``*.Bad.Request.Object``: field -> messages."""
    return HttpError(400, {field_name: [message]})


def _problem(status: int, title: str, detail: str) -> HttpError:
    return HttpError(
        status, {"type": "about:blank", "title": title, "status": status, "detail": detail}
    )


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` of one delivery (``v1,<base64>``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class ShipBobEmulator(EmulatorServer):
    """A ShipBob account on loopback speaking API 2026-01 under ``/2026-01``."""

    name = "shipbob"
    connector = "shipbob"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        token: str = DEFAULT_TOKEN,
        locations: Mapping[int, str] | None = None,
        rate_limit: int = RATE_LIMIT,
        rate_window: float = RATE_WINDOW,
        request_validator: Validator | None = None,
        **options: Any,
    ) -> None:
        super().__init__(port=port, clock=clock)
        if options:
            raise TypeError(f"unknown ShipBob emulator options: {', '.join(sorted(options))}")
        self.token = token
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.request_validator = request_validator
        #: Every request refused by the validator: (method, path, problems).
        self.violations: list[tuple[str, str, list[str]]] = []
        #: Tests: called with each order ``POST /order`` created, before it is answered (a
        #: crash between sending and recording: the hook kills the client).
        self.after_order_created: Callable[[Order], None] | None = None
        #: Clock readings of the requests inside the rate limit's window.
        self.window: deque[float] = deque()
        #: Requests answered (not throttled), and the clock reading of each, for the share
        #: of the limit a run used (:meth:`limit_share`).
        self.accepted_count = 0
        self.accepted_times: deque[float] = deque(maxlen=1_000_000)
        named = locations or {10: "Cicero (IL)", 21: "Moreno Valley (CA)", 30: "Bethlehem (PA)"}
        self.locations = {
            int(id_): Location(int(id_), name, _slug(name)) for id_, name in named.items()
        }
        self.channels = [
            Channel(
                128944,
                "Privileged Access Token",
                "SMA",
                [
                    "channels_read",
                    "fulfillments_read",
                    "fulfillments_write",
                    "inventory_read",
                    "inventory_write",
                    "locations_read",
                    "orders_read",
                    "orders_write",
                    "products_read",
                    "products_write",
                    "webhooks_read",
                    "webhooks_write",
                ],
            ),
            Channel(
                128943,
                "ShipBob Default",
                "ShipBob",
                [
                    "channels_read",
                    "fulfillments_read",
                    "inventory_read",
                    "locations_read",
                    "orders_read",
                    "products_read",
                    "webhooks_read",
                ],
            ),
        ]
        self.items: dict[int, InventoryItem] = {}
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self._variant_by_sku: dict[str, Variant] = {}
        self.orders: dict[int, Order] = {}
        self.shipments: dict[int, Shipment] = {}
        self._references: dict[tuple[int, str], int] = {}  # (channel, reference) -> order
        self.hooks: dict[str, Hook] = {}
        self.webhooks = WebhookSender("webhook-signature", on_result=self._delivered)
        self._next = {
            "item": 1000,
            "product": 5000,
            "variant": 7000,
            "order": 100000,
            "shipment": 200000,
            "hook": 1,
            "message": 1,
        }

    def start(self) -> ShipBobEmulator:
        # serve_forever's default poll of 0.5 s is what stop() waits for: the ShipBob tests
        # start an emulator per test, so it polls every 20 ms instead
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"emulator-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    # -- ids --------------------------------------------------------------------------------

    def _new(self, kind: str) -> int:
        with self.lock:
            self._next[kind] += 1
            return self._next[kind]

    # -- demo hooks -------------------------------------------------------------------------

    def connector_settings(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "token": self.token,
            "locations": {loc.slug: loc.id for loc in self.locations.values()},
        }

    def add_listing(self, sku: str, quantity: int = 0, title: str | None = None) -> str:
        first = next(iter(self.locations))
        return str(self.set_inventory(sku, first, on_hand=quantity, name=title).id)

    def place_order(self, lines: list[tuple[str, int]]) -> str:
        """An order as a merchant's other integration would send it (read-write channel)."""
        body = {
            "reference_id": f"emulator-{self._next['order'] + 1}",
            "type": "DTC",
            "shipping_method": "Standard",
            "recipient": {
                "name": "Emulated Customer",
                "address": {
                    "address1": "1 Main St",
                    "city": "Chicago",
                    "country": "US",
                    "state": "IL",
                    "zip_code": "60601",
                },
            },
            "products": [{"reference_id": sku, "name": sku, "quantity": qty} for sku, qty in lines],
        }
        with self.lock:
            return str(self._create_order(self.channels[0].id, body).id)

    def quantities(self) -> dict[str, int]:
        with self.lock:
            return {
                item.sku: sum(level.on_hand for level in item.levels.values())
                for item in self.items.values()
            }

    # -- the warehouse's own actions --------------------------------------------------------

    def set_inventory(
        self,
        sku: str,
        location_id: int,
        *,
        on_hand: int | None = None,
        awaiting: int | None = None,
        internal_transfer: int | None = None,
        name: str | None = None,
    ) -> InventoryItem:
        """Set the counts of ``sku`` at a centre (a product with one variant and its
        inventory item are created for a new SKU); committed units stay as they are."""
        with self.lock:
            if location_id not in self.locations:
                raise ValueError(
                    f"unknown location_id {location_id} (known: "
                    f"{', '.join(map(str, self.locations))})"
                )
            variant = self._variant_by_sku.get(sku)
            if variant is None:
                variant = self._add_product(sku, name or sku, 1, []).variants[0]
            if variant.inventory_id is None:
                raise ValueError(f"{sku!r} is a bundle, which holds no stock")
            item = self.items[variant.inventory_id]
            level = item.levels.setdefault(location_id, Level())
            if on_hand is not None:
                level.on_hand = on_hand
            if awaiting is not None:
                level.awaiting = awaiting
            if internal_transfer is not None:
                level.internal_transfer = internal_transfer
            return item

    def add_bundle(
        self, sku: str, components: Mapping[str, int], name: str | None = None
    ) -> Variant:
        """A bundle product whose variant is made of ``components`` (SKU -> units); unknown
        components are created with no stock."""
        with self.lock:
            if sku in self._variant_by_sku:
                raise ValueError(f"SKU {sku!r} already exists")
            parts = []
            for component, units in components.items():
                variant = self._variant_by_sku.get(component)
                if variant is None:
                    variant = self._add_product(component, component, 1, []).variants[0]
                parts.append((variant.id, int(units)))
            return self._add_product(sku, name or sku, 2, parts).variants[0]

    def pick(self, shipment_id: int) -> None:
        """The centre picked the shipment: it can no longer be cancelled."""
        with self.lock:
            shipment = self._shipment(shipment_id, "Processing")
            shipment.picked = True
            shipment.updated = self.clock.now()

    def ship(
        self, shipment_id: int, carrier: str = "USPS", tracking_number: str | None = None
    ) -> None:
        """The shipment left: Completed with tracking; on hand and committed fall."""
        with self.lock:
            shipment = self._shipment(shipment_id, "Processing")
            now = self.clock.now()
            self._release(shipment, shipped=True)
            number = tracking_number or f"9400{shipment.id:018d}"
            shipment.picked = True
            shipment.status = "Completed"
            shipment.status_details = []
            shipment.tracking = {
                "carrier": carrier,
                "carrier_service": "Ground",
                "tracking_number": number,
                "tracking_url": f"https://tracking.shipbob.com/{carrier.lower()}/{number}",
                "shipping_date": _stamp(now),
            }
            shipment.shipped_at = now
            shipment.updated = now
            self._event(shipment, "order.shipped")

    def deliver(self, shipment_id: int) -> None:
        with self.lock:
            shipment = self._shipment(shipment_id, "Completed")
            shipment.delivered_at = shipment.updated = self.clock.now()
            self._event(shipment, "order.shipment.delivered")

    def fail(self, shipment_id: int, status: str = "Exception", reason: str | None = None) -> None:
        """The shipment is stuck: ``Exception`` (reason default ``OutOfStock``) or ``OnHold``
        (default ``AddressValidation``); its committed units stay committed."""
        if status not in ("Exception", "OnHold"):
            raise ValueError(f"status must be Exception or OnHold, not {status!r}")
        with self.lock:
            shipment = self._shipment(shipment_id, "Processing", "Exception", "OnHold")
            name = reason or ("OutOfStock" if status == "Exception" else "AddressValidation")
            shipment.status = status
            shipment.status_details = [self._detail(name, shipment)]
            shipment.updated = self.clock.now()
            topic = (
                "order.shipment.exception" if status == "Exception" else "order.shipment.on_hold"
            )
            self._event(shipment, topic)

    def cancel_shipment(self, shipment_id: int) -> None:
        """ShipBob cancels the shipment (its units are released), whatever its state short
        of shipped."""
        with self.lock:
            shipment = self._shipment(shipment_id, "Processing", "Exception", "OnHold")
            self._cancel(shipment)

    def advance(self, seconds: float) -> None:
        if not isinstance(self.clock, ManualClock):
            raise ValueError("the clock only advances on a ManualClock")
        self.clock.advance(seconds)

    # -- internals ----------------------------------------------------------------------------

    def _add_product(
        self, sku: str, name: str, type_id: int, bundle: list[tuple[int, int]]
    ) -> Product:
        now = self.clock.now()
        product = Product(self._new("product"), name, type_id, now, now)
        inventory_id = None
        if type_id == 1:
            inventory_id = self._new("item")
            self.items[inventory_id] = InventoryItem(inventory_id, sku, name)
        variant = Variant(self._new("variant"), product.id, sku, name, inventory_id, bundle)
        product.variants.append(variant)
        self.products[product.id] = product
        self.variants[variant.id] = variant
        self._variant_by_sku[sku] = variant
        return product

    def _shipment(self, shipment_id: int, *states: str) -> Shipment:
        shipment = self.shipments.get(int(shipment_id))
        if shipment is None:
            raise KeyError(f"no shipment {shipment_id}")
        if states and shipment.status not in states:
            raise ValueError(f"shipment {shipment_id} is {shipment.status}, not {'/'.join(states)}")
        return shipment

    def _detail(
        self, name: str, shipment: Shipment, inventory_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": STATUS_DETAILS.get(name, 0),
            "name": name,
            "description": name,
            "inventory_id": inventory_id,
            "exception_fulfillment_center_id": shipment.location_id,
            "extra_information": {"validation_messages": []},
        }

    def _release(self, shipment: Shipment, *, shipped: bool) -> None:
        for line in shipment.products:
            for part in line["inventory_items"]:
                level = self.items[part["id"]].levels.setdefault(shipment.location_id, Level())
                level.committed -= part["quantity_committed"]
                if shipped:
                    level.on_hand -= part["quantity"]
                part["quantity_committed"] = 0

    def _cancel(self, shipment: Shipment) -> None:
        self._release(shipment, shipped=False)
        shipment.status = "Cancelled"
        shipment.status_details = []
        shipment.updated = self.clock.now()
        self._event(shipment, "order.shipment.cancelled")

    def _explode(self, variant: Variant, units: int) -> list[tuple[int, int]]:
        """(inventory id, units) of ``units`` of a variant: a bundle's components, recursively."""
        if variant.inventory_id is not None:
            return [(variant.inventory_id, units)]
        parts: list[tuple[int, int]] = []
        for component_id, each in variant.bundle:
            parts += self._explode(self.variants[component_id], units * each)
        return parts

    def _line_variant(self, index: int, line: Mapping[str, Any]) -> Variant:
        if "id" in line:
            variant = self.variants.get(int(line["id"]))
            if variant is None and int(line["id"]) in self.products:
                variant = self.products[int(line["id"])].variants[0]
            if variant is None:
                raise HttpError(
                    422, {f"Products[{index}].Id": [f"Product with id {line['id']} does not exist"]}
                )
            return variant
        reference = str(line["reference_id"])
        variant = self._variant_by_sku.get(reference)
        if variant is None:  # ShipBob creates an unknown product from the line
            variant = self._add_product(
                reference, str(line.get("name") or reference), 1, []
            ).variants[0]
        return variant

    def _create_order(self, channel_id: int, body: Mapping[str, Any]) -> Order:
        reference = str(body["reference_id"])
        if (channel_id, reference) in self._references:
            raise HttpError(422, {"ReferenceId": ["Cannot insert order with existing ReferenceId"]})
        pinned = body.get("location_id")
        if pinned is not None and int(pinned) not in self.locations:
            raise HttpError(422, {"LocationId": [f"Location {pinned} is not available"]})
        lines = []
        needs: dict[int, int] = {}
        for index, line in enumerate(body["products"]):
            variant = self._line_variant(index, line)
            parts = self._explode(variant, int(line["quantity"]))
            for inventory_id, units in parts:
                needs[inventory_id] = needs.get(inventory_id, 0) + units
            lines.append((line, variant, parts))
        location_id = int(pinned) if pinned is not None else self._choose_location(needs)
        now = self.clock.now()
        order = Order(self._new("order"), channel_id, reference, now, dict(body), [])
        short = [
            i
            for i, units in needs.items()
            if self.items[i].levels.get(location_id, Level()).fulfillable < units
        ]
        covered = not short
        shipment_products = []
        for line, variant, parts in lines:
            order.products.append(
                {
                    "id": variant.id,
                    "reference_id": line.get("reference_id", variant.sku),
                    "sku": variant.sku,
                    "quantity": int(line["quantity"]),
                    "external_line_id": line.get("external_line_id"),
                    "unit_price": line.get("unit_price"),
                    "gtin": line.get("gtin"),
                    "upc": line.get("upc"),
                    "quantity_unit_of_measure_code": line.get("quantity_unit_of_measure_code"),
                }
            )
            items = []
            for inventory_id, units in parts:
                if covered:
                    self.items[inventory_id].levels.setdefault(
                        location_id, Level()
                    ).committed += units
                items.append(
                    {
                        "id": inventory_id,
                        "name": self.items[inventory_id].name,
                        "quantity": units,
                        "quantity_committed": units if covered else 0,
                        "lot": None,
                        "expiration_date": None,
                        "serial_numbers": [],
                        "is_dangerous_goods": False,
                    }
                )
            shipment_products.append(
                {
                    "id": variant.id,
                    "reference_id": order.products[-1]["reference_id"],
                    "sku": variant.sku,
                    "name": variant.name,
                    "inventory_items": items,
                }
            )
        shipment = Shipment(
            self._new("shipment"), order.id, location_id, now, now, shipment_products
        )
        if not covered:
            shipment.status = "Exception"
            shipment.status_details = [self._detail("OutOfStock", shipment, short[0])]
        order.shipments.append(shipment)
        self.orders[order.id] = order
        self.shipments[shipment.id] = shipment
        self._references[(channel_id, reference)] = order.id
        if not covered:
            self._event(shipment, "order.shipment.exception")
        return order

    def _choose_location(self, needs: Mapping[int, int]) -> int:
        for location_id in self.locations:
            if all(
                self.items[i].levels.get(location_id, Level()).fulfillable >= units
                for i, units in needs.items()
            ):
                return location_id
        return next(iter(self.locations))

    # -- the API ------------------------------------------------------------------------------

    def throttled(self, request: Request, retry_after: float = 1.0) -> Response:
        seconds = max(1, math.ceil(retry_after))
        return Response(
            429,
            {
                "statusCode": 429,
                "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
            },
            {"x-retry-after": str(seconds), "x-remaining-calls": "0"},
        )

    def _take_call(self, request: Request) -> Response | None:
        """The sliding window: None when the request fits, else the 429."""
        with self.lock:
            now = self.clock.monotonic()
            while self.window and self.window[0] <= now - self.rate_window:
                self.window.popleft()
            if self.rate_limit and len(self.window) >= self.rate_limit:
                self.throttled_count += 1
                return self.throttled(request, self.window[0] + self.rate_window - now)
            self.window.append(now)
            self.accepted_count += 1
            self.accepted_times.append(now)
            return None

    def limit_share(self, start: float, end: float | None = None) -> float:
        """The share of the rate limit used between two clock readings (``monotonic()``):
        requests answered / the requests the limit allowed in that time (1.0: all of it)."""
        with self.lock:
            stop = self.clock.monotonic() if end is None else end
            used = sum(1 for t in self.accepted_times if start <= t <= stop)
        allowed = self.rate_limit * max(stop - start, self.rate_window) / self.rate_window
        return used / allowed if allowed else 0.0

    def remaining_calls(self) -> int:
        with self.lock:
            now = self.clock.monotonic()
            inside = sum(1 for t in self.window if t > now - self.rate_window)
            return max(0, self.rate_limit - inside)

    def handle(self, request: Request) -> Response:
        if not request.path.startswith(API + "/"):
            raise _problem(404, "Not Found", f"no route {request.path}")
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or header[7:].strip() != self.token:
            raise _problem(401, "Unauthorized", "a valid bearer token is required")
        throttled = self._take_call(request)
        if throttled is not None:
            return throttled
        if self.request_validator is not None:
            problems = self.request_validator(
                request.method, request.path, request.query, request.headers, request.body
            )
            if problems:
                with self.lock:
                    self.violations.append((request.method, request.path, problems))
                raise HttpError(400, {"spec": problems})
        response = self._route(request)
        response.headers.setdefault("x-remaining-calls", str(self.remaining_calls()))
        return response

    def _route(self, request: Request) -> Response:
        path = request.path[len(API) :]
        method = request.method
        with self.lock:
            if path == "/channel" and method == "GET":
                return Response(
                    200,
                    {
                        "items": [self._render_channel(c) for c in self.channels],
                        "next": None,
                        "prev": None,
                    },
                )
            if path == "/location" and method == "GET":
                return Response(
                    200, [self._render_location(loc) for loc in self.locations.values()]
                )
            if path == "/inventory-level/locations" and method == "GET":
                return self._inventory_page(request, by_location=True)
            if path == "/inventory-level" and method == "GET":
                return self._inventory_page(request, by_location=False)
            if path == "/product" and method == "GET":
                return self._product_page(request)
            if path == "/product" and method == "POST":
                return self._post_product(request)
            if path == "/order" and method == "POST":
                return self._post_order(request)
            if path == "/order" and method == "GET":
                return self._get_orders(request)
            if path == "/webhook" and method == "POST":
                return self._post_webhook(request)
            if path == "/webhook" and method == "GET":
                return Response(
                    200,
                    {
                        "items": [self._render_hook(h) for h in self.hooks.values()],
                        "next": None,
                        "prev": None,
                    },
                )
            parts = path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "webhook" and method == "DELETE":
                if self.hooks.pop(parts[1], None) is None:
                    raise _problem(404, "Not Found", f"no webhook {parts[1]}")
                return Response(204, None)
            if parts[0] == "order" and len(parts) >= 2:
                order_part, _, action = parts[1].partition(":")
                order = self._order(order_part)
                if len(parts) == 2 and not action and method == "GET":
                    return Response(200, self._render_order(order))
                if len(parts) == 2 and action == "cancel" and method == "POST":
                    return self._cancel_order(order)
                if parts[2:] == ["shipment"] and method == "GET":
                    return Response(200, [self._render_shipment(s) for s in order.shipments])
        raise _problem(404, "Not Found", f"no route {method} {request.path}")

    def _order(self, raw: str) -> Order:
        if not raw.isdigit():
            raise _bad_request("orderId", f"The value '{raw}' is not valid.")
        order = self.orders.get(int(raw))
        if order is None:
            raise _problem(404, "Not Found", f"Order {raw} not found")
        return order

    # -- inventory and products ---------------------------------------------------------------

    def _page_size(self, request: Request) -> int:
        raw = _arg(request, "PageSize")
        if raw is None:
            return PAGE_SIZE
        if not raw.isdigit() or int(raw) < 1:
            raise _bad_request("PageSize", f"The value '{raw}' is not valid for PageSize.")
        return min(int(raw), MAX_PAGE_SIZE)

    def _paged(
        self,
        request: Request,
        rows: list[Any],
        key: Callable[[Any], int],
        render: Callable[[Any], dict[str, Any]],
    ) -> Response:
        """Keyset pages by id: rows added or removed between two pages do not shift them."""
        size = self._page_size(request)
        cursor = _decode_cursor(_arg(request, "Cursor"))
        rows = sorted(rows, key=key)
        if "after" in cursor:
            rows_from = [r for r in rows if key(r) > cursor["after"]]
            page = rows_from[:size]
        elif "before" in cursor:
            page = [r for r in rows if key(r) < cursor["before"]][-size:]
        else:
            page = rows[:size]
        base = {k: v[-1] for k, v in request.query.items() if k.lower() != "cursor"}

        def link(token: dict[str, int] | None) -> str:
            query = dict(base)
            if token is not None:
                query["Cursor"] = _encode_cursor(token)
            return f"{request.path}?{urlencode(query)}" if query else request.path

        has_next = bool(page) and key(rows[-1]) > key(page[-1])
        has_prev = bool(page) and key(rows[0]) < key(page[0])
        last_start = rows[-size:] if rows else []
        return Response(
            200,
            {
                "items": [render(r) for r in page],
                "next": link({"after": key(page[-1])}) if has_next else None,
                "prev": link({"before": key(page[0])}) if has_prev else None,
                "first": link(None) if has_prev else None,
                "last": link({"after": key(last_start[0]) - 1}) if has_next else None,
            },
        )

    def _inventory_page(self, request: Request, *, by_location: bool) -> Response:
        rows = list(self.items.values())
        active = _arg(request, "IsActive")
        if active is not None:
            rows = [i for i in rows if i.is_active == (active.lower() == "true")]
        ids = _arg(request, "InventoryIds")
        if ids:
            wanted = {int(x) for x in ids.split(",") if x.strip().isdigit()}
            rows = [i for i in rows if i.id in wanted]
        search = _arg(request, "SearchBy")
        if search:
            rows = [
                i
                for i in rows
                if search.lower() in i.sku.lower() or search.lower() in i.name.lower()
            ]
        locations = list(self.locations.values())
        location_id = _arg(request, "LocationId") if by_location else None
        if location_id is not None:
            if not location_id.isdigit():
                raise _bad_request("LocationId", f"The value '{location_id}' is not valid.")
            locations = [loc for loc in locations if loc.id == int(location_id)]
        location_type = _arg(request, "LocationType") if by_location else None
        if location_type:
            locations = [loc for loc in locations if loc.type == location_type.lower()]
        shown = {loc.id for loc in locations}
        if by_location:
            return self._paged(
                request, rows, lambda i: i.id, lambda i: self._render_item_locations(i, shown)
            )
        return self._paged(request, rows, lambda i: i.id, self._render_item_totals)

    def _render_location(self, location: Location) -> dict[str, Any]:
        return {
            "id": location.id,
            "name": location.name,
            "abbreviation": location.slug.removeprefix("sb-")[:3].upper(),
            "is_active": True,
            "is_receiving_enabled": True,
            "is_shipping_enabled": True,
            "access_granted": True,
            "timezone": "Central Standard Time",
            "region": {"id": 1, "name": "US"},
            "attributes": [],
            "services": [],
        }

    def _render_item_locations(self, item: InventoryItem, shown: set[int]) -> dict[str, Any]:
        return {
            "inventory_id": item.id,
            "sku": item.sku,
            "name": item.name,
            "locations": [
                {
                    "location_id": loc_id,
                    "name": self.locations[loc_id].name,
                    "on_hand_quantity": level.on_hand,
                    "committed_quantity": level.committed,
                    "fulfillable_quantity": level.fulfillable,
                    "awaiting_quantity": level.awaiting,
                    "internal_transfer_quantity": level.internal_transfer,
                }
                for loc_id, level in sorted(item.levels.items())
                if loc_id in shown
            ],
        }

    def _render_item_totals(self, item: InventoryItem) -> dict[str, Any]:
        levels = item.levels.values()
        exception = sum(
            part["quantity"]
            for shipment in self.shipments.values()
            if shipment.status == "Exception"
            for line in shipment.products
            for part in line["inventory_items"]
            if part["id"] == item.id
        )
        fulfillable = sum(level.fulfillable for level in levels)
        return {
            "inventory_id": item.id,
            "sku": item.sku,
            "name": item.name,
            "total_on_hand_quantity": sum(level.on_hand for level in levels),
            "total_committed_quantity": sum(level.committed for level in levels),
            "total_fulfillable_quantity": fulfillable,
            "total_awaiting_quantity": sum(level.awaiting for level in levels),
            "total_internal_transfer_quantity": sum(level.internal_transfer for level in levels),
            "total_exception_quantity": exception,
            "total_backordered_quantity": 0,
            "total_sellable_quantity": fulfillable,
        }

    def _product_page(self, request: Request) -> Response:
        rows = list(self.products.values())
        skus = _arg(request, "SKU")
        if skus:
            wanted = {s.strip() for s in skus.split(",")}
            rows = [p for p in rows if any(v.sku in wanted for v in p.variants)]
        search = _arg(request, "Search")
        if search:
            rows = [
                p
                for p in rows
                if search.lower() in p.name.lower()
                or any(search.lower() in v.sku.lower() for v in p.variants)
            ]
        product_id = _arg(request, "ProductId")
        if product_id:
            rows = [p for p in rows if str(p.id) == product_id]
        inventory_id = _arg(request, "InventoryId")
        if inventory_id:
            rows = [p for p in rows if any(str(v.inventory_id) == inventory_id for v in p.variants)]
        return self._paged(request, rows, lambda p: p.id, self._render_product)

    def _render_product(self, product: Product) -> dict[str, Any]:
        return {
            "id": product.id,
            "name": product.name,
            "type": "Bundle" if product.type_id == 2 else "Regular",
            "created_on": _stamp(product.created),
            "updated_on": _stamp(product.updated),
            "user_id": 1,
            "taxonomy": {
                "id": None,
                "name": None,
                "parent_id": None,
                "parent_name": None,
                "path": None,
            },
            "variants": [self._render_variant(v) for v in product.variants],
        }

    def _render_variant(self, variant: Variant) -> dict[str, Any]:
        item = self.items.get(variant.inventory_id) if variant.inventory_id else None
        bundles = [
            {
                "product_id": other.product_id,
                "product_name": self.products[other.product_id].name,
                "quantity": units,
                "variant_id": other.id,
                "variant_sku": other.sku,
            }
            for other in self.variants.values()
            for component_id, units in other.bundle
            if component_id == variant.id
        ]
        return {
            "id": variant.id,
            "sku": variant.sku,
            "name": variant.name,
            "status": "Active",
            "is_digital": False,
            "created_on": _stamp(self.products[variant.product_id].created),
            "updated_on": _stamp(self.products[variant.product_id].updated),
            "inventory": {
                "inventory_id": variant.inventory_id,
                "on_hand_qty": sum(level.on_hand for level in item.levels.values()) if item else 0,
            },
            "bundle_definition": [
                {
                    "product_id": self.variants[cid].product_id,
                    "quantity": units,
                    "variant_id": cid,
                    "variant_name": self.variants[cid].name,
                    "variant_sku": self.variants[cid].sku,
                }
                for cid, units in variant.bundle
            ],
            "associated_bundles": bundles,
            "lot_information": {"is_lot": False, "minimum_shelf_life_days": None},
        }

    def _post_product(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise _bad_request("body", "A product is required.")
        type_id = int(body.get("type_id") or 1)
        variants = body.get("variants") or []
        if len(variants) != 1:
            raise _bad_request("Variants", "The emulator creates products of one variant.")
        raw = variants[0]
        sku = str(raw.get("sku") or "")
        if not sku:
            raise _bad_request("Variants[0].Sku", "The Sku field is required.")
        if sku in self._variant_by_sku:
            raise _bad_request("Variants[0].Sku", f"Sku '{sku}' already exists.")
        bundle = []
        for index, part in enumerate(raw.get("bundle_definition") or []):
            if int(part.get("variant_id", 0)) not in self.variants:
                raise _bad_request(
                    f"Variants[0].BundleDefinition[{index}].VariantId",
                    f"Variant {part.get('variant_id')} does not exist.",
                )
            bundle.append((int(part["variant_id"]), int(part.get("quantity", 1))))
        if type_id == 2 and not bundle:
            raise _bad_request("Variants[0].BundleDefinition", "A bundle needs its components.")
        name = str(raw.get("name") or body.get("name") or sku)
        product = self._add_product(sku, name, type_id, bundle)
        product.name = str(body.get("name") or name)
        return Response(201, self._render_product(product))

    # -- orders -------------------------------------------------------------------------------

    def _post_order(self, request: Request) -> Response:
        raw_channel = request.headers.get("shipbob_channel_id")
        if raw_channel is None:
            raise _bad_request("shipbob_channel_id", "The shipbob_channel_id header is required.")
        channel = next((c for c in self.channels if str(c.id) == raw_channel.strip()), None)
        if channel is None:
            raise _bad_request("shipbob_channel_id", f"Channel {raw_channel} does not exist.")
        if "orders_write" not in channel.scopes:
            raise HttpError(403, None)
        body = request.json()
        problems = _order_body_problems(body)
        if problems:
            raise HttpError(400, problems)
        order = self._create_order(channel.id, body)
        if self.after_order_created is not None:
            self.after_order_created(order)
        return Response(201, self._render_order(order))

    def _get_orders(self, request: Request) -> Response:
        rows = list(self.orders.values())
        channel = request.headers.get("shipbob_channel_id")
        if channel:
            rows = [o for o in rows if str(o.channel_id) == channel.strip()]
        ids = _arg(request, "IDs")
        if ids:
            wanted = {x.strip() for x in ids.split(",")}
            rows = [o for o in rows if str(o.id) in wanted]
        references = _arg(request, "ReferenceIds")
        if references:
            wanted = {x.strip() for x in references.split(",")}
            rows = [o for o in rows if o.reference_id in wanted]
        for name, attr, after in (
            ("StartDate", "created", True),
            ("EndDate", "created", False),
            ("LastUpdateStartDate", "updated", True),
            ("LastUpdateEndDate", "updated", False),
        ):
            raw = _arg(request, name)
            if raw:
                bound = _parse_stamp(name, raw)
                rows = [
                    o
                    for o in rows
                    if (_when(o, attr) >= bound if after else _when(o, attr) <= bound)
                ]
        tracked = _arg(request, "HasTracking")
        if tracked:
            want = tracked.lower() == "true"
            rows = [o for o in rows if any(s.tracking for s in o.shipments) == want]
        uploaded = _arg(request, "IsTrackingUploaded")
        if uploaded and uploaded.lower() == "true":
            rows = []  # no shipment is marked (shipment:batchUpdateTrackingUpload is not emulated)
        for name, after in (
            ("LastTrackingUpdateStartDate", True),
            ("LastTrackingUpdateEndDate", False),
        ):
            raw = _arg(request, name)
            if raw:
                bound = _parse_stamp(name, raw)
                rows = [
                    o
                    for o in rows
                    if any(
                        s.shipped_at is not None
                        and (s.shipped_at >= bound if after else s.shipped_at <= bound)
                        for s in o.shipments
                    )
                ]
        newest = (_arg(request, "SortOrder") or "Newest").lower() != "oldest"
        rows.sort(key=lambda o: o.id, reverse=newest)
        page = _int_arg(request, "Page", 1, 1, 2**31 - 1)
        limit = _int_arg(request, "Limit", 50, 1, MAX_PAGE_SIZE)
        chunk = rows[(page - 1) * limit : page * limit]
        pages = max(1, math.ceil(len(rows) / limit))
        headers = {
            "total-count": str(len(rows)),
            "page-number": str(page),
            "total-pages": str(pages),
        }
        if page < pages:
            query = {k: v[-1] for k, v in request.query.items() if k.lower() != "page"}
            headers["next-page"] = f"{request.path}?{urlencode({**query, 'Page': page + 1})}"
        return Response(200, [self._render_order(o) for o in chunk], headers)

    def _cancel_order(self, order: Order) -> Response:
        refused = [s for s in order.shipments if s.picked or s.status == "Completed"]
        results = []
        for shipment in order.shipments:
            if refused:
                success = shipment.status == "Cancelled"
                reason = (
                    "Shipment is already picked or shipped and cannot be cancelled"
                    if shipment in refused
                    else "Order has shipments that cannot be cancelled"
                )
            else:
                if shipment.status != "Cancelled":
                    self._cancel(shipment)
                success, reason = True, None
            results.append(
                {
                    "shipment_id": shipment.id,
                    "action": "Cancel",
                    "is_success": success,
                    "reason": reason,
                }
            )
        return Response(
            200, {"order": self._render_order(order), "canceled_shipment_results": results}
        )

    def _render_channel(self, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "application_name": channel.application_name,
            "scopes": list(channel.scopes),
        }

    def _render_order(self, order: Order) -> dict[str, Any]:
        body = order.body
        channel = next(c for c in self.channels if c.id == order.channel_id)
        return {
            "id": order.id,
            "created_date": _stamp(order.created),
            "purchase_date": body.get("purchase_date"),
            "reference_id": order.reference_id,
            "order_number": body.get("order_number"),
            "status": order.status,
            "type": body.get("type"),
            "channel": {"id": channel.id, "name": channel.name},
            "shipping_method": body.get("shipping_method"),
            "recipient": body.get("recipient"),
            "products": order.products,
            "tags": body.get("tags") or [],
            "shipments": [self._render_shipment(s) for s in order.shipments],
            "gift_message": body.get("gift_message"),
            "financials": {"total_price": (body.get("financials") or {}).get("total_price")},
        }

    def _render_shipment(self, shipment: Shipment) -> dict[str, Any]:
        order = self.orders[shipment.order_id]
        recipient = order.body.get("recipient") or {}
        return {
            "id": shipment.id,
            "order_id": shipment.order_id,
            "reference_id": order.reference_id,
            "created_date": _stamp(shipment.created),
            "last_update_at": _stamp(shipment.updated),
            "last_tracking_update_at": _stamp(shipment.shipped_at),
            "actual_fulfillment_date": _stamp(shipment.shipped_at),
            "delivery_date": _stamp(shipment.delivered_at),
            "status": shipment.status,
            "status_details": shipment.status_details,
            "location": {
                "id": shipment.location_id,
                "name": self.locations[shipment.location_id].name,
            },
            "recipient": {
                "name": recipient.get("name"),
                "full_name": recipient.get("name"),
                "address": recipient.get("address"),
                "email": recipient.get("email"),
                "phone_number": recipient.get("phone_number"),
            },
            "products": shipment.products,
            "is_tracking_uploaded": False,
            "require_signature": False,
            "ship_option": order.body.get("shipping_method"),
            # TrackingViewModel is a $ref, not nullable: absent until the shipment leaves
            **({"tracking": shipment.tracking} if shipment.tracking else {}),
        }

    # -- webhooks -----------------------------------------------------------------------------

    def _post_webhook(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not body.get("url") or not body.get("topics"):
            raise HttpError(422, {"url": ["url and topics are required"]})
        unknown = [t for t in body["topics"] if t not in TOPICS]
        if unknown:
            raise HttpError(422, {"topics": [f"unknown topics: {', '.join(map(str, unknown))}"]})
        secret = body.get("secret")
        if secret is None:
            number = self._new("hook")
            secret = (
                "whsec_"
                + base64.b64encode(
                    hashlib.sha256(f"shipbob-emulator-{number}".encode()).digest()[:24]
                ).decode()
            )
        else:
            # the spec's pattern: 24 bytes in base64, without padding
            if not re.fullmatch(r"whsec_[a-zA-Z0-9+/]{32}", str(secret)):
                raise HttpError(
                    422, {"secret": ["the secret must match ^whsec_[a-zA-Z0-9+/]{32}$"]}
                )
        number = self._new("hook")
        hook_id = f"{number:08x}-5b0b-4e00-8000-{number:012x}"
        hook = Hook(
            hook_id,
            str(body["url"]),
            list(body["topics"]),
            str(secret),
            body.get("description"),
            self.clock.now(),
        )
        self.hooks[hook.id] = hook
        created = {k: v for k, v in self._render_hook(hook).items() if k != "enabled"}
        return Response(200, {**created, "secret": hook.secret})

    def _render_hook(self, hook: Hook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "url": hook.url,
            "topics": list(hook.topics),
            "description": hook.description,
            "created_at": _stamp(hook.created),
            "enabled": hook.enabled,
        }

    def _event(self, shipment: Shipment, topic: str) -> None:
        hooks = [h for h in self.hooks.values() if h.enabled and topic in h.topics]
        if not hooks:
            return
        body = json.dumps(self._render_shipment(shipment), separators=(",", ":")).encode()
        timestamp = str(int(self.clock.now().timestamp()))
        for hook in hooks:
            message_id = f"msg_{self._new('message'):016d}"
            self.webhooks.enqueue(
                Delivery(
                    hook.url,
                    {
                        "Content-Type": "application/json",
                        "User-Agent": "ShipBob-Webhooks/2026-01",
                        "webhook-id": message_id,
                        "webhook-timestamp": timestamp,
                        "webhook-signature": sign(hook.secret, message_id, timestamp, body),
                        "x-webhook-topic": topic,
                    },
                    body,
                    hook.id,
                )
            )

    def _delivered(self, delivery: Delivery, status: int | None) -> bool:
        """ShipBob retries a delivery that got no 2xx (with backoff, for 24 hours): here up
        to ``WEBHOOK_ATTEMPTS`` times, each at the next ``flush``."""
        ok = status is not None and 200 <= status < 300
        return not ok and delivery.attempts < WEBHOOK_ATTEMPTS

    # -- control API ----------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        action = request.path[len("/_emulator/") :].strip("/")
        parts = action.split("/")
        try:
            raw = request.json() if request.body else {}
            if request.method == "POST" and action == "inventory":
                item = self.set_inventory(
                    str(raw["sku"]),
                    int(raw["location_id"]),
                    on_hand=_opt_int(raw, "on_hand"),
                    awaiting=_opt_int(raw, "awaiting"),
                    internal_transfer=_opt_int(raw, "internal_transfer"),
                    name=raw.get("name"),
                )
                return Response(200, {"inventory_id": item.id})
            if request.method == "POST" and action == "bundles":
                variant = self.add_bundle(str(raw["sku"]), dict(raw["components"]), raw.get("name"))
                return Response(201, {"variant_id": variant.id, "product_id": variant.product_id})
            if request.method == "POST" and len(parts) == 3 and parts[0] == "shipments":
                shipment_id = int(parts[1])
                if parts[2] == "pick":
                    self.pick(shipment_id)
                elif parts[2] == "ship":
                    self.ship(
                        shipment_id, str(raw.get("carrier", "USPS")), raw.get("tracking_number")
                    )
                elif parts[2] == "fail":
                    self.fail(shipment_id, str(raw.get("status", "Exception")), raw.get("reason"))
                elif parts[2] == "deliver":
                    self.deliver(shipment_id)
                elif parts[2] == "cancel":
                    self.cancel_shipment(shipment_id)
                else:
                    return Response(404, {"error": f"no shipment action {parts[2]!r}"})
                with self.lock:
                    return Response(200, self._render_shipment(self.shipments[shipment_id]))
            if request.method == "POST" and action == "clock":
                self.advance(float(raw["advance"]))
                return Response(200, {"now": _stamp(self.clock.now())})
            if request.method == "GET" and action == "violations":
                with self.lock:
                    return Response(
                        200,
                        [
                            {"method": m, "path": p, "problems": found}
                            for m, p, found in self.violations
                        ],
                    )
            if request.method == "GET" and action == "state":
                with self.lock:
                    return Response(
                        200,
                        {
                            "quantities": self.quantities(),
                            "requests": self.request_count,
                            "accepted": self.accepted_count,
                            "throttled": self.throttled_count,
                            "violations": len(self.violations),
                        },
                    )
        except KeyError as err:
            return Response(
                404 if parts[0] == "shipments" else 400, {"error": f"bad control request: {err}"}
            )
        except (TypeError, ValueError) as err:
            return Response(400, {"error": f"bad control request: {err}"})
        return super()._control(request)


# -- helpers --------------------------------------------------------------------------------


def _slug(name: str) -> str:
    word = name.split("(")[0].split()[0].lower() if name.strip() else "fc"
    return "sb-" + "".join(ch for ch in word if ch.isalnum())


def _arg(request: Request, name: str) -> str | None:
    """A query parameter, its name matched case-insensitively (ASP.NET binding)."""
    lowered = name.lower()
    for key, values in request.query.items():
        if key.lower() == lowered and values:
            return values[-1]
    return None


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = _arg(request, name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _bad_request(name, f"The field {name} must be between {low} and {high}.")
    return int(raw)


def _opt_int(raw: Mapping[str, Any], name: str) -> int | None:
    return None if raw.get(name) is None else int(raw[name])


def _when(order: Order, attr: str) -> datetime:
    return order.created if attr == "created" else order.updated()


def _encode_cursor(token: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def _decode_cursor(raw: str | None) -> dict[str, int]:
    if not raw:
        return {}
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return {str(k): int(v) for k, v in decoded.items()}
    except (ValueError, AttributeError) as err:
        raise _bad_request("Cursor", f"The cursor '{raw}' is not valid.") from err


def _order_body_problems(body: Any) -> dict[str, list[str]]:
    """What ShipBob's own model validation refuses (whether or not a spec validator runs):
    the required fields of ``Orders.CreateOrderModel``."""
    if not isinstance(body, dict):
        return {"body": ["The order is required."]}
    problems: dict[str, list[str]] = {}
    for name in ("reference_id", "type", "shipping_method", "recipient", "products"):
        if not body.get(name):
            problems[name] = [f"The {name} field is required."]
    if body.get("type") and body["type"] not in ("DTC", "DropShip", "B2B"):
        problems["type"] = [f"The value '{body['type']}' is not valid."]
    recipient = body.get("recipient")
    if isinstance(recipient, dict):
        address = recipient.get("address") or {}
        for name in ("address1", "city", "country"):
            if not (isinstance(address, dict) and address.get(name)):
                problems[f"recipient.address.{name}"] = [f"The {name} field is required."]
    products = body.get("products")
    if isinstance(products, list):
        for index, line in enumerate(products):
            if not isinstance(line, dict) or not ("reference_id" in line or "id" in line):
                problems[f"products[{index}]"] = ["A product needs a reference_id or an id."]
            elif not isinstance(line.get("quantity"), int) or line["quantity"] < 1:
                problems[f"products[{index}].quantity"] = ["The quantity must be at least 1."]
    return problems
