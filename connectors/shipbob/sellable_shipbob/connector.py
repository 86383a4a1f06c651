"""The ShipBob connector: a 3PL whose fulfilment centres are our warehouses.

- stock: ``GET /{v}/inventory-level/locations`` per fulfilment centre (on hand, committed);
- orders out: ``POST /{v}/order`` per (order, warehouse), pinned to that centre, exactly
  once (a duplicate ``reference_id`` is looked up, never sent twice);
- shipments back: ``GET /{v}/order`` by last update, and ShipBob's signed webhooks as pokes
  of that poll;
- cancellation: ``POST /{v}/order/{id}:cancel``.

Every request follows ShipBob's OpenAPI specification ``openapi-2026-01.json``; the
quirks that it does not declare (the 422 for a duplicate reference, ``x-retry-after``)
come from ShipBob's developer docs and are cited where they are used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from sellable.sdk import (
    AuthenticationError,
    CancelOutcome,
    CancelResult,
    Capability,
    ChannelError,
    ChannelPayloadError,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    FulfilmentPage,
    FulfilmentRequest,
    FulfilmentUpdate,
    RateLimit,
    Shipment,
    ShipmentStatus,
    StockCount,
    SubmitOutcome,
    SubmitResult,
    TemporaryChannelError,
    WebhookEvent,
    WebhookKind,
    WebhookRejected,
    WebhookSubscriptions,
    is_loopback_host,
)
from sellable_shipbob.client import ORDER_LIMIT, ShipBobClient

log = logging.getLogger("sellable.connectors.shipbob")

DEFAULT_BASE_URL = "https://api.shipbob.com"
DEFAULT_API_VERSION = "2026-01"

#: The webhook topics we subscribe to: a shipment shipped, cancelled, stuck or held
#: (``Webhooks.Topics`` in the spec). Each is a poke of the fulfilment poll.
WEBHOOK_TOPICS = (
    "order.shipped",
    "order.shipment.cancelled",
    "order.shipment.exception",
    "order.shipment.on_hold",
)
#: Our subscriptions' descriptions start with this, then the channel code and the
#: secret's fingerprint (ShipBob never shows a secret again: a changed one means a new
#: subscription).
WEBHOOK_DESCRIPTION = "sellable"
#: Standard Webhooks: a delivery older or newer than this is refused (a replay).
WEBHOOK_TOLERANCE = 5 * 60
#: ``secret`` of ``Webhooks.V2.CreateSubscriptionRequest``: ``^whsec_[a-zA-Z0-9+/]{32}$``.
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{32}")

#: ``Orders.OrderStatusEnum`` of a shipment -> ours. ``LabeledCreated`` (label printed, not
#: shipped), ``ImportReview``, ``CleanSweeped`` and ``None`` are still in progress.
SHIPMENT_STATUSES = {
    "Completed": ShipmentStatus.COMPLETED,
    "Cancelled": ShipmentStatus.CANCELLED,
    "Exception": ShipmentStatus.EXCEPTION,
    "OnHold": ShipmentStatus.ON_HOLD,
}

#: References asked per ``GET /order?ReferenceIds=`` (a URL of a few kB at most).
REFERENCE_BATCH = 50
#: Inventory ids asked per ``GET /inventory-level/locations?InventoryIds=``.
INVENTORY_BATCH = 100
#: Problems of one stock pull shown in its warning (the count says how many in all).
SHOWN = 5


class ShipBobSettings(ConnectorSettings):
    """``[channels.settings]`` of a ShipBob channel."""

    #: ``https://api.shipbob.com``; the sandbox is ``https://sandbox-api.shipbob.com``.
    base_url: str = DEFAULT_BASE_URL
    #: The dated path prefix of every request.
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^\d{4}-\d{2}$")
    #: A personal access token, sent as ``Authorization: Bearer ...``.
    token: SecretStr
    #: The ShipBob channel our orders are created in (``shipbob_channel_id``). Unset: the
    #: token's channel whose scopes include ``orders_write`` (``GET /channel``).
    channel_id: int | None = Field(default=None, gt=0)
    #: Our warehouse code -> ShipBob fulfilment centre id (``location_id``), one for each of
    #: the channel's ``warehouses``.
    locations: dict[str, int] = Field(default_factory=dict)
    #: How a kit's line is sent: ``"components"`` (its component lines, as our allocation
    #: took them) or ``"bundle"`` (the kit's SKU, for ShipBob to explode).
    kits: Literal["components", "bundle"] = "components"
    #: ``shipping_method`` of every order (ShipBob maps it through "Ship Option Mapping";
    #: an unknown one becomes Standard).
    shipping_method: str = Field(default="Standard", min_length=1)
    #: Where ShipBob should deliver its shipment webhooks: the public HTTPS address of your
    #: reverse proxy in front of ``[daemon] webhook_listen``, ending in
    #: ``/webhooks/<channel code>``. Unset: shipments come by the interval poll only.
    webhook_url: str | None = None
    #: The ``whsec_...`` secret the webhooks are signed with (32 base64 characters after
    #: ``whsec_``); we create the subscription with it.
    webhook_secret: SecretStr | None = None

    @field_validator("base_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        # The token is a bearer token: plain HTTP is allowed to loopback only (an emulator).
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"base_url {value!r} uses plain HTTP: the token would travel in clear "
                "(plain HTTP is allowed to loopback addresses only)"
            )
        if re.search(r"/\d{4}-\d{2}/?$", parts.path):
            raise ValueError(
                f"base_url {value!r} ends with an API version: give the host, and the "
                "version as api_version"
            )
        return value

    @field_validator("token")
    @classmethod
    def _token_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty: give a ShipBob personal access token")
        return value

    @field_validator("locations")
    @classmethod
    def _every_warehouse_mapped(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        for code, location in value.items():
            if location <= 0:
                raise ValueError(f"{code!r} = {location}: a fulfilment centre id is positive")
        twice = sorted({loc for loc in value.values() if list(value.values()).count(loc) > 1})
        if twice:
            codes = [c for c, loc in value.items() if loc in twice]
            raise ValueError(
                f"warehouses {', '.join(codes)} name the same fulfilment centre "
                f"({', '.join(map(str, twice))}): its stock would be counted twice"
            )
        # check-config hands the channel's warehouses as the validation context (see
        # sellable.sync.plugins.validate_channel_settings); a test building the settings
        # alone checks nothing more.
        context = info.context if isinstance(info.context, dict) else {}
        served = context.get("channel_warehouses")
        if served is None:
            return value
        missing = [code for code in served if code not in value]
        unknown = [code for code in value if code not in served]
        problems = []
        if missing:
            problems.append(
                "no fulfilment centre for the channel's warehouse(s) "
                + ", ".join(repr(c) for c in missing)
                + f" (add e.g. {missing[0]} = <ShipBob location id>)"
            )
        if unknown:
            problems.append(
                ", ".join(repr(c) for c in unknown)
                + " not among the channel's warehouses ("
                + ", ".join(served)
                + ")"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and WEBHOOK_SECRET.fullmatch(value.get_secret_value()) is None:
            raise ValueError(
                "must be whsec_ followed by 32 base64 characters (ShipBob's form, "
                "^whsec_[a-zA-Z0-9+/]{32}$), e.g. from 'python -c \"import base64, secrets; "
                'print(\\"whsec_\\" + base64.b64encode(secrets.token_bytes(24)).decode())"\''
            )
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> ShipBobSettings:
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook_url must be an http(s) URL, got {self.webhook_url!r}")
            if self.webhook_secret is None:
                raise ValueError(
                    "webhook_url needs webhook_secret (whsec_ and 32 base64 characters)"
                )
        return self


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A 4xx answer to one order: what to tell the operator (no address in it)."""

    status: int | None
    message: str


class ShipBobConnector(Connector):
    """A ShipBob account through its API 2026-01.

    Usage (``sellable.toml``)::

        [[warehouses]]
        code = "sb-chicago"
        kind = "3pl"
        use_component_inventory = true

        [[channels]]
        code = "shipbob"
        connector = "shipbob"
        warehouses = ["sb-chicago"]
        [channels.settings]
        token = "..."
        locations = { "sb-chicago" = 10 }
    """

    name = "shipbob"
    capabilities = frozenset({Capability.PULL_STOCK, Capability.FULFIL_ORDERS})
    Settings = ShipBobSettings
    # "150 requests per minute, sliding window, per user per application, all endpoints
    # together" (ShipBob's rate-limit docs; research shipbob.md). A token bucket lets
    # burst + 60 x rate through in any 60 s: 2 + 147 = 149 <= 150, 98% of the limit.
    rate_limit = RateLimit(rate=2.45, burst=2)
    webhooks = True

    settings: ShipBobSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        base = self.settings.base_url.rstrip("/")
        self.client = ShipBobClient(
            self.http,
            self.settings.api_version,
            channel=context.channel,
            host=urlsplit(base).hostname,
        )
        self._authorization = f"Bearer {self.settings.token.get_secret_value()}"
        self._channel_id: int | None = self.settings.channel_id
        #: ShipBob location id -> our warehouse code.
        self._warehouse_of = {loc: code for code, loc in self.settings.locations.items()}
        #: inventory id -> SKU, learned from stock pulls (a shipment names inventory ids).
        self._skus: dict[int, str] = {}

    def base_url(self) -> str:
        return self.settings.base_url.rstrip("/")

    def authenticate(self, request_headers: dict[str, str]) -> None:
        request_headers["Authorization"] = self._authorization

    @property
    def _code(self) -> str:
        return self.context.channel

    def channel_id(self) -> int:
        """``shipbob_channel_id``: the setting, else the token's channel that may write
        orders (``scopes`` holds ``orders_write``), looked up once."""
        if self._channel_id is None:
            channels = self.client.channels()
            for channel in channels:
                scopes = channel.get("scopes") or []
                if isinstance(scopes, list) and "orders_write" in scopes:
                    channel_id = channel.get("id")
                    if isinstance(channel_id, int) and not isinstance(channel_id, bool):
                        self._channel_id = channel_id
                        break
            else:
                raise ChannelError(
                    f"none of the token's {len(channels)} ShipBob channel(s) may write orders "
                    "(scope orders_write): set channel_id, or use a token with that scope",
                    channel=self._code,
                )
        assert self._channel_id is not None
        return self._channel_id

    # -- stock ----------------------------------------------------------------------------------

    def pull_stock(self) -> list[StockCount]:
        """One count per (SKU, mapped fulfilment centre): on hand = ``on_hand_quantity``,
        committed = ``committed_quantity``. ``awaiting_quantity`` (inbound) and
        ``internal_transfer_quantity`` (between centres) are not on hand. A centre an item
        does not list holds none of it (0). An item without a SKU, or with a figure that is
        not a whole number of 0 or more, is skipped and reported, never the whole pull."""
        found: dict[tuple[str, str], StockCount] = {}
        problems: list[str] = []
        for page in self.client.inventory_levels_by_location():
            for item in page:
                item_id = item.get("inventory_id")
                try:
                    counts = self._item_counts(item)
                except ChannelPayloadError as err:
                    problems.append(f"inventory item {item_id}: {err}")
                    continue
                for count in counts:
                    assert count.warehouse is not None
                    key = (count.sku, count.warehouse)
                    seen = found.get(key)
                    if seen is not None:  # two inventory items share a SKU: add them up
                        count = StockCount(
                            count.sku,
                            seen.on_hand + count.on_hand,
                            warehouse=count.warehouse,
                            committed=(seen.committed or 0) + (count.committed or 0),
                        )
                    found[key] = count
        if problems:
            log.warning(
                "channel=%s: %d ShipBob inventory item(s) skipped: %s%s",
                self._code,
                len(problems),
                "; ".join(problems[:SHOWN]),
                "; ..." if len(problems) > SHOWN else "",
                extra={"channel": self._code, "counts": {"skipped_items": len(problems)}},
            )
        return list(found.values())

    def _item_counts(self, item: dict[str, Any]) -> list[StockCount]:
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise ChannelPayloadError("sku: missing")
        item_id = item.get("inventory_id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            self._skus[item_id] = sku
        locations = item.get("locations") or []
        if not isinstance(locations, list):
            raise ChannelPayloadError(f"sku {sku!r}: locations is not a list")
        counts = {
            code: StockCount(sku, 0, warehouse=code, committed=0)
            for code in self.settings.locations
        }
        for index, location in enumerate(locations):
            if not isinstance(location, dict):
                raise ChannelPayloadError(f"sku {sku!r}: locations[{index}] is not an object")
            location_id = location.get("location_id")
            code = self._warehouse_of.get(location_id) if isinstance(location_id, int) else None
            if code is None:
                continue  # a centre we do not map: not ours to count
            on_hand = _units(location, "on_hand_quantity", sku)
            committed = _units(location, "committed_quantity", sku)
            counts[code] = StockCount(sku, on_hand, warehouse=code, committed=committed)
        return list(counts.values())

    # -- orders out -----------------------------------------------------------------------------

    def fulfil_orders(self, requests: Sequence[FulfilmentRequest]) -> list[SubmitResult]:
        """``POST /order`` per request. 201: CREATED. 422 (ShipBob's answer to a reference
        it holds, "Cannot insert order with existing ReferenceId", not in the spec): the
        reference is looked up and EXISTED, else REFUSED. Another 4xx: REFUSED with
        ShipBob's message. No answer (a timeout, a 5xx, 429s after the retries): UNKNOWN,
        and the requests after it are not sent (UNKNOWN too: each is looked up before it
        is sent again). Refused credentials raise."""
        results: list[SubmitResult] = []
        if not requests:
            return results
        channel_id = self.channel_id()  # a token that may not write orders fails the job
        for index, request in enumerate(requests):
            body, refusal = self._order_body(request)
            if refusal is not None:
                results.append(_refused(request, refusal))
                continue
            try:
                created = self.client.create_order(body, channel_id)
            except AuthenticationError:
                raise
            except TemporaryChannelError as err:
                log.info(
                    "channel=%s: no answer to order %s (%s); it will be looked up by "
                    "reference before it is sent again",
                    self._code,
                    request.reference,
                    err,
                    extra={"channel": self._code},
                )
                for later in requests[index:]:
                    results.append(
                        SubmitResult(later.reference, SubmitOutcome.UNKNOWN, message=str(err))
                    )
                return results
            except ChannelPayloadError as err:
                # Answered 2xx but unreadable: it may exist; looked up before a resend.
                results.append(
                    SubmitResult(request.reference, SubmitOutcome.UNKNOWN, message=str(err))
                )
                continue
            except ChannelError as err:
                results.append(self._after_error(request, err))
                continue
            remote = created.get("id")
            if isinstance(remote, bool) or not isinstance(remote, int):
                results.append(
                    SubmitResult(
                        request.reference,
                        SubmitOutcome.UNKNOWN,
                        message=f"POST /order answered without an order id ({remote!r})",
                    )
                )
                continue
            results.append(
                SubmitResult(request.reference, SubmitOutcome.CREATED, remote_id=str(remote))
            )
        return results

    def _after_error(self, request: FulfilmentRequest, err: ChannelError) -> SubmitResult:
        refusal = _refusal(err, request)
        if err.status_code == 422:
            try:
                held = self.find_fulfilments([request.reference]).get(request.reference)
            except AuthenticationError:
                raise
            except ChannelError as lookup:
                return SubmitResult(request.reference, SubmitOutcome.UNKNOWN, message=str(lookup))
            if held is not None:
                return SubmitResult(
                    request.reference, SubmitOutcome.EXISTED, remote_id=held.remote_id
                )
        return _refused(request, refusal)

    def _order_body(self, request: FulfilmentRequest) -> tuple[dict[str, Any], _Refusal | None]:
        """``Orders.CreateOrderModel`` for the request, or why it cannot be sent."""
        location = self.settings.locations.get(request.warehouse)
        if location is None:
            return {}, _Refusal(
                None,
                f"warehouse {request.warehouse!r} has no ShipBob fulfilment centre "
                "(settings.locations)",
            )
        address = request.recipient
        missing = address.missing
        if missing:
            return {}, _Refusal(None, f"the shipping address lacks {', '.join(missing)}")
        products = self._products(request)
        if not products:
            return {}, _Refusal(None, "no units to ship")
        street: dict[str, Any] = {
            "address1": address.address1,
            "city": address.city,
            "country": address.country,
        }
        for ours, theirs in (
            ("address2", "address2"),
            ("state", "state"),
            ("zip_code", "zip_code"),
            ("company", "company_name"),
        ):
            value = getattr(address, ours)
            if value:
                street[theirs] = value
        recipient: dict[str, Any] = {"name": address.name, "address": street}
        if address.email:
            recipient["email"] = address.email
        if address.phone:
            recipient["phone_number"] = address.phone
        body: dict[str, Any] = {
            "reference_id": request.reference,
            "order_number": request.order_id,
            "type": "DTC",
            "shipping_method": self.settings.shipping_method,
            "location_id": location,
            "recipient": recipient,
            "products": products,
        }
        if request.created_at is not None:
            body["purchase_date"] = _iso(request.created_at)
        return body, None

    def _products(self, request: FulfilmentRequest) -> list[dict[str, Any]]:
        """``products`` by reference (SKU): a line's components as our allocation took them
        (``kits = "components"``) or the ordered SKU (``"bundle"``), one entry per SKU."""
        units: dict[str, int] = {}
        names: dict[str, str] = {}
        for line in request.lines:
            if line.name:
                names.setdefault(line.sku, line.name)
            if self.settings.kits == "bundle" or not line.components:
                pieces: tuple[tuple[str, int], ...] = ((line.sku, line.quantity),)
            else:
                pieces = line.components
            for sku, quantity in pieces:
                if quantity > 0:
                    units[sku] = units.get(sku, 0) + quantity
        # ``name`` is required with ``reference_id``; ShipBob uses it only to create a
        # product it does not know.
        return [
            {"reference_id": sku, "name": names.get(sku, sku), "quantity": quantity}
            for sku, quantity in units.items()
        ]

    def find_fulfilments(self, references: Sequence[str]) -> dict[str, FulfilmentUpdate]:
        """``GET /order?ReferenceIds=a,b,...`` (comma separated, as the spec's example),
        :data:`REFERENCE_BATCH` at a time, in our ShipBob channel."""
        wanted = list(dict.fromkeys(references))
        found: dict[str, FulfilmentUpdate] = {}
        if not wanted:
            return found
        channel_id = self.channel_id()
        for start in range(0, len(wanted), REFERENCE_BATCH):
            batch = wanted[start : start + REFERENCE_BATCH]
            orders = self.client.orders(
                {"ReferenceIds": ",".join(batch), "Page": 1, "Limit": ORDER_LIMIT}, channel_id
            )
            updates = self._updates(orders)
            for update in updates:
                if update.reference in batch:
                    found[update.reference] = update
        return found

    # -- shipments back -------------------------------------------------------------------------

    def pull_fulfilments(self, since: datetime, cursor: str | None) -> FulfilmentPage:
        """One page of ``GET /order?LastUpdateStartDate=since&SortOrder=Oldest`` (sorted by
        creation: an order that changes while we page keeps its place). The cursor is the
        next page number; a page shorter than ``Limit`` is the last.

        Orders whose ``reference_id`` is not of our form (``<channel>:<order id>``: no
        ``:``) were sent by another integration and are left out."""
        page = int(cursor) if cursor else 1
        orders = self.client.orders(
            {
                "LastUpdateStartDate": _iso(since),
                "SortOrder": "Oldest",
                "Page": page,
                "Limit": ORDER_LIMIT,
            },
            self.channel_id(),
        )
        updates = self._updates(orders)
        return FulfilmentPage(updates, str(page + 1) if len(orders) >= ORDER_LIMIT else None)

    def _updates(self, orders: list[dict[str, Any]]) -> list[FulfilmentUpdate]:
        self._learn_skus(orders)
        updates: list[FulfilmentUpdate] = []
        problems: list[str] = []
        for order in orders:
            reference = order.get("reference_id")
            if not isinstance(reference, str) or not _ours(reference):
                continue
            channel = order.get("channel")
            if (
                isinstance(channel, dict)
                and isinstance(channel.get("id"), int)
                and self._channel_id is not None
                and channel["id"] != self._channel_id
            ):
                continue  # created in another ShipBob channel (another integration)
            try:
                updates.append(self._update(order, reference))
            except ChannelPayloadError as err:
                problems.append(f"order {order.get('id')} ({reference}): {err}")
        if problems:
            log.warning(
                "channel=%s: %d ShipBob order(s) skipped: %s",
                self._code,
                len(problems),
                "; ".join(problems[:SHOWN]),
                extra={"channel": self._code},
            )
        return updates

    def _learn_skus(self, orders: list[dict[str, Any]]) -> None:
        """The SKUs of the inventory items the shipments name that no stock pull showed yet
        (``GET /inventory-level/locations?InventoryIds=``)."""
        unknown: set[int] = set()
        for order in orders:
            for shipment in _list(order.get("shipments")):
                for product in _list(shipment.get("products")):
                    for item in _list(product.get("inventory_items")):
                        item_id = item.get("id")
                        if isinstance(item_id, int) and item_id not in self._skus:
                            unknown.add(item_id)
        ids = sorted(unknown)
        for start in range(0, len(ids), INVENTORY_BATCH):
            for item in self.client.inventory_items(ids[start : start + INVENTORY_BATCH]):
                item_id, sku = item.get("inventory_id"), item.get("sku")
                if isinstance(item_id, int) and isinstance(sku, str) and sku:
                    self._skus[item_id] = sku

    def _update(self, order: dict[str, Any], reference: str) -> FulfilmentUpdate:
        remote = order.get("id")
        if not isinstance(remote, int) or isinstance(remote, bool):
            raise ChannelPayloadError("id: missing")
        status = str(order.get("status") or "")
        shipments = [self._shipment(s) for s in _list(order.get("shipments"))]
        moments = [_time(s.get("last_update_at")) for s in _list(order.get("shipments"))]
        moments.append(_time(order.get("created_date")))
        known = [m for m in moments if m is not None]
        updated = max(known) if known else datetime.now(UTC)
        return FulfilmentUpdate(
            reference=reference,
            remote_id=str(remote),
            status=status,
            updated_at=updated,
            shipments=tuple(shipments),
            cancelled=status == "Cancelled",
        )

    def _shipment(self, raw: dict[str, Any]) -> Shipment:
        shipment_id = raw.get("id")
        if not isinstance(shipment_id, int):
            raise ChannelPayloadError("shipments[].id: missing")
        status = SHIPMENT_STATUSES.get(str(raw.get("status")), ShipmentStatus.PROCESSING)
        units: dict[str, int] = {}
        for product in _list(raw.get("products")):
            items = _list(product.get("inventory_items"))
            for item in items:
                item_id = item.get("id")
                sku = self._skus.get(item_id) if isinstance(item_id, int) else None
                if sku is None and len(items) == 1:
                    sku = product.get("sku") or product.get("reference_id")
                if not isinstance(sku, str) or not sku:
                    raise ChannelPayloadError(
                        f"shipment {shipment_id}: inventory item {item_id} has no known SKU"
                    )
                quantity = item.get("quantity")
                if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                    raise ChannelPayloadError(
                        f"shipment {shipment_id}: inventory_items[{item_id}].quantity "
                        f"{quantity!r} is not a whole number"
                    )
                units[sku] = units.get(sku, 0) + quantity
        tracking = raw.get("tracking") if isinstance(raw.get("tracking"), dict) else {}
        assert isinstance(tracking, dict)
        number = tracking.get("tracking_number")
        carrier = tracking.get("carrier")
        reason = None
        if status in (ShipmentStatus.EXCEPTION, ShipmentStatus.ON_HOLD):
            reason = _reason(raw.get("status_details")) or str(raw.get("status"))
        return Shipment(
            shipment_id=str(shipment_id),
            status=status,
            items=tuple(units.items()),
            tracking=(number,) if isinstance(number, str) and number else (),
            carrier=carrier if isinstance(carrier, str) and carrier else None,
            reason=reason,
        )

    # -- cancellation ---------------------------------------------------------------------------

    def cancel_fulfilment(self, remote_id: str) -> CancelResult:
        """``POST /order/{id}:cancel``: CANCELLED when every shipment was cancelled; REFUSED
        with ShipBob's reasons otherwise (picked already); NOT_FOUND on 404."""
        try:
            order_id = int(remote_id)
        except ValueError:
            return CancelResult(remote_id, CancelOutcome.NOT_FOUND, f"{remote_id!r} is no id")
        try:
            answer = self.client.cancel_order(order_id)
        except AuthenticationError:
            raise
        except TemporaryChannelError:
            raise
        except ChannelError as err:
            if err.status_code == 404:
                return CancelResult(remote_id, CancelOutcome.NOT_FOUND, "ShipBob has no such order")
            return CancelResult(remote_id, CancelOutcome.REFUSED, _refusal(err, None).message)
        results = _list(answer.get("canceled_shipment_results"))
        failed = [r for r in results if r.get("is_success") is not True]
        if answer.get("status") in ("Failure", "PartialSuccess") or failed:
            reasons = "; ".join(
                f"shipment {r.get('shipment_id')}: {r.get('reason') or 'not cancelled'}"
                for r in failed
            )
            return CancelResult(
                remote_id,
                CancelOutcome.REFUSED,
                f"ShipBob did not cancel it ({answer.get('status') or 'Failure'})"
                + (f": {reasons}" if reasons else ""),
            )
        return CancelResult(remote_id, CancelOutcome.CANCELLED)

    # -- webhooks -------------------------------------------------------------------------------

    def webhook_url(self) -> str | None:
        return self.settings.webhook_url

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Standard Webhooks (https://www.standardwebhooks.com), as ShipBob signs:
        ``webhook-signature`` holds space-separated ``v1,<base64>`` of
        HMAC-SHA256(base64-decoded secret after ``whsec_``, ``id.timestamp.body``). A
        timestamp more than 5 minutes away is refused (a replay). The topic is in
        ``x-webhook-topic``; ``webhook-id`` is the same on every retry of a delivery."""
        secret = self.settings.webhook_secret
        if secret is None:
            raise WebhookRejected("no webhook_secret is configured for this channel")
        delivery = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not delivery or not stamp or not signatures:
            raise WebhookRejected(
                "webhook-id, webhook-timestamp or webhook-signature missing (not a signed "
                "ShipBob delivery)"
            )
        try:
            sent = int(stamp)
        except ValueError:
            raise WebhookRejected(f"webhook-timestamp {stamp[:20]!r} is not a number") from None
        if abs(self.http.wall().timestamp() - sent) > WEBHOOK_TOLERANCE:
            raise WebhookRejected(
                f"webhook-timestamp {sent} is more than {WEBHOOK_TOLERANCE // 60} minutes "
                "away from now (a replay, or a clock off)"
            )
        expected = _standard_signature(secret.get_secret_value(), delivery, stamp, body)
        matched = False
        for given in signatures.split():
            version, _, signature = given.partition(",")
            if version == "v1" and hmac.compare_digest(expected.encode(), signature.encode()):
                matched = True
        if not matched:
            raise WebhookRejected(
                "webhook-signature does not match the body (another secret, or a body "
                "changed on the way)"
            )
        topic = headers.get("x-webhook-topic", "")
        kind = WebhookKind.FULFILMENTS if topic in WEBHOOK_TOPICS else WebhookKind.IGNORED
        return WebhookEvent(kind, topic, delivery, delivery)

    def sync_webhooks(self) -> WebhookSubscriptions:
        """One subscription of ours, for :data:`WEBHOOK_TOPICS`, to ``webhook_url``, signed
        with ``webhook_secret``. Ours are those whose description starts with
        ``sellable <channel>``; one that differs (another URL, topics, secret, or disabled)
        is deleted and made again (ShipBob has no update), and without ``webhook_url``
        every one of ours is removed."""
        url = self.settings.webhook_url
        secret = self.settings.webhook_secret
        owner = f"{WEBHOOK_DESCRIPTION} {self._code}"
        description = f"{owner} {_fingerprint(secret.get_secret_value())}" if secret else owner
        found = WebhookSubscriptions()
        kept: dict[str, Any] | None = None
        for hook in self.client.webhooks():
            text = str(hook.get("description") or "")
            if text != owner and not text.startswith(owner + " "):
                continue
            wanted = (
                url is not None
                and kept is None
                and hook.get("url") == url
                and text == description
                and sorted(hook.get("topics") or []) == sorted(WEBHOOK_TOPICS)
                and hook.get("enabled", True) is not False
            )
            if wanted:
                kept = hook
            else:
                if url is not None and hook.get("enabled") is False:
                    found.problems.append(
                        f"webhook subscription {hook.get('id')} was disabled: made again"
                    )
                self.client.delete_webhook(str(hook.get("id")))
                found.removed += 1
        if url is None or secret is None:
            return found
        if kept is None:
            kept = self.client.create_webhook(
                {
                    "topics": list(WEBHOOK_TOPICS),
                    "url": url,
                    "secret": secret.get_secret_value(),
                    "description": description,
                }
            )
            found.created += 1
        for topic in WEBHOOK_TOPICS:
            found.subscriptions.append(
                {"id": str(kept.get("id")), "topic": topic, "url": url, "status": "active"}
            )
        return found


# -- helpers ------------------------------------------------------------------------------------


def _units(location: dict[str, Any], key: str, sku: str) -> int:
    value = location.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChannelPayloadError(
            f"sku {sku!r}: location {location.get('location_id')}: {key} {value!r} is not a "
            "whole number of 0 or more"
        )
    return value


def _refusal(err: ChannelError, request: FulfilmentRequest | None) -> _Refusal:
    """ShipBob's message from the error (``POST ...: HTTP 400: <body>``), its JSON
    ``{"field": ["message"]}`` read as ``field: message``, every value of the shipping
    address taken out."""
    text = str(err)
    marker = re.search(r"HTTP \d{3}: ", text)
    body = text[marker.end() :] if marker else text
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = []
        for key, value in data.items():
            if isinstance(value, list):
                parts.append(f"{key}: {'; '.join(str(v) for v in value)}")
            elif key in ("message", "title", "detail", "error") and value:
                parts.append(str(value))
        if parts:
            body = "; ".join(parts)
    elif isinstance(data, str):
        body = data
    if request is not None:
        for value in request.recipient.to_dict().values():
            if len(value) >= 3:
                body = body.replace(value, "[address]")
    status = f"HTTP {err.status_code}" if err.status_code else "refused"
    return _Refusal(err.status_code, f"ShipBob refused the order ({status}): {body}"[:500])


def _refused(request: FulfilmentRequest, refusal: _Refusal) -> SubmitResult:
    return SubmitResult(request.reference, SubmitOutcome.REFUSED, message=refusal.message)


def _reason(details: Any) -> str | None:
    """``status_details[]{name, description}`` as ``OutOfStock: description; ...``."""
    parts = []
    for detail in _list(details):
        name, text = detail.get("name"), detail.get("description")
        if name and text:
            parts.append(f"{name}: {text}")
        elif name or text:
            parts.append(str(name or text))
    return "; ".join(parts) or None


def _ours(reference: str) -> bool:
    """Our references are ``<channel>:<order id>[:<n>]``: a channel code, then ``:``."""
    head, colon, rest = reference.partition(":")
    return bool(colon and head and rest)


def _list(value: Any) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _standard_signature(secret: str, delivery: str, stamp: str, body: bytes) -> str:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("webhook_secret is not base64 after whsec_") from None
    signed = f"{delivery}.{stamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


__all__ = ["WEBHOOK_TOPICS", "ShipBobConnector", "ShipBobSettings"]
