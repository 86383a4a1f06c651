"""An emulator of the Amazon Selling Partner API (the parts Sellable uses), on loopback.

What it reproduces, from the saved models in ``data/amazon/`` (see its NOTICE) and
research/channel-apis.md:

* LWA: ``POST /auth/o2/token`` (form-encoded refresh-token grant) gives tokens that expire
  on the emulator's clock (3600 s); an expired or unknown token gets 403 ``Unauthorized``.
* Every request is checked against its operation in the models: path, required and typed
  query parameters (enums, maxItems, maximum), the body against its definition
  (jsonschema); what the real API refuses gets 400 ``{"errors": [{"code": "InvalidInput"}]}``.
* Per-operation token buckets at the published usage plans, ``x-amzn-RateLimit-Limit`` on
  every answer, 429 ``QuotaExceeded`` (without the header) when over; JSON_LISTINGS_FEED
  has its own 5 feeds per 5 minutes.
* ``searchOrders`` (Orders 2026-01-01) with keyset pagination over live data: an order that
  changes between pages moves behind the cursor and is served again on a later page.
* Money with ``includedData=PROCEEDS``: each order item's ``proceeds`` has an ``ITEM``
  breakdown (unit price x quantity, without tax), a negative ``DISCOUNT`` (a promotion,
  with its ``ITEM`` detail) and ``TAX`` (charged on the discounted amount; details ``ITEM``
  and the negative ``DISCOUNT`` part), and ``proceedsTotal`` is their sum, as in the
  model's examples; ``product.price.unitPrice`` always. ``place_order(...,
  promotion_percent=)`` gives the promotion, ``tax_rate`` the marketplace's tax.
* ``getInventorySummaries`` with a ``nextToken`` that expires 30 s after it was issued.
* ``searchListingsItems``, ``getListingsItem``, ``patchListingsItem`` (``ACCEPTED`` and
  applied after ``patch_delay`` seconds; ``INVALID`` with issues for bad input).
* Feeds: ``createFeedDocument`` (a presigned upload URL, served here, expiring after 5
  minutes), ``createFeed``, ``getFeed`` moving IN_QUEUE -> IN_PROGRESS -> DONE/FATAL on the
  clock (or stuck IN_PROGRESS with ``feed_stuck=True``), ``getFeedDocument`` giving a gzipped
  processing report (listings-feed-processing-report-schema-v2) with per-message issues.

Demo hooks: :meth:`add_listing` (merchant fulfilled), :meth:`add_fba_listing`,
:meth:`place_order` (MFN by default, ``fulfilled_by="AMAZON"`` for FBA), :meth:`ship_order`,
:meth:`cancel_order`, :meth:`refuse` (make submissions for a SKU fail), :meth:`quantities`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from sellable.emulators.base import missing_dependency

try:
    import jsonschema  # type: ignore[import-untyped]
except ImportError as err:  # a production install: jsonschema is the emulators extra
    raise missing_dependency("amazon", "jsonschema") from err
try:
    # jsonschema-rs checks a 25,000-message feed in ~15 ms where jsonschema takes ~6-9 s
    # of CPU: see _check_document.
    import jsonschema_rs
except ImportError:  # an older install of the emulators extra: jsonschema alone
    jsonschema_rs = None  # type: ignore[assignment]

from sellable.emulators.base import (
    Bucket,
    Clock,
    EmulatorServer,
    HttpError,
    Request,
    Response,
)

DATA = ("data", "amazon")
MODELS = (
    "orders_2026-01-01.json",
    "fbaInventory.json",
    "listingsItems_2021-08-01.json",
    "feeds_2021-06-30.json",
    "reports_2021-06-30.json",
)
#: Published usage plans (rate per second, burst), from each operation's "Usage Plan" table.
USAGE_PLANS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getInventorySummaries": (2.0, 2),
    "searchListingsItems": (5.0, 5),
    "getListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReportDocument": (0.0167, 15),
    "cancelReport": (0.0222, 10),
}
LISTINGS_FEED_PLAN = (5 / 300, 5)  # JSON_LISTINGS_FEED: 5 feeds per 5 minutes
QUOTA_EXCEEDED = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}
SELLER_ID = "A2SELLABLEEMU1"
MARKETPLACE_ID = "ATVPDKIKX0DER"
CLIENT_ID = "amzn1.application-oa2-client.sellable-emulator"
CLIENT_SECRET = "sellable-emulator-client-secret"
REFRESH_TOKEN = "Atzr|sellable-emulator-refresh-token"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
LISTINGS_REPORT = "GET_MERCHANT_LISTINGS_ALL_DATA"
#: The columns of GET_MERCHANT_LISTINGS_ALL_DATA, in Amazon's order
#: (https://developer-docs.amazon.com/sp-api/docs/report-type-values-inventory).
LISTINGS_REPORT_COLUMNS = (
    "item-name",
    "item-description",
    "listing-id",
    "seller-sku",
    "price",
    "quantity",
    "open-date",
    "image-url",
    "item-is-marketplace",
    "product-id-type",
    "zshop-shipping-fee",
    "item-note",
    "item-condition",
    "zshop-category1",
    "zshop-browse-path",
    "zshop-storefront-feature",
    "asin1",
    "asin2",
    "asin3",
    "will-ship-internationally",
    "expedited-shipping",
    "zshop-boldface",
    "product-id",
    "bid-for-featured-placement",
    "add-delete",
    "pending-quantity",
    "fulfillment-channel",
    "merchant-shipping-group",
    "status",
)
REPORT_OUTCOMES = ("CANCELLED", "FATAL")


def _resource(name: str) -> Any:
    return json.loads(resources.files("sellable.emulators").joinpath(*DATA, name).read_bytes())


@cache
def _operations() -> list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]]:
    """(method, path regex, operation, definitions) of every operation of the models."""
    found = []
    for model in MODELS:
        spec = _resource(model)
        definitions = spec.get("definitions", {})
        for path, item in spec["paths"].items():
            shared = item.get("parameters", [])
            regex = re.compile(
                "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
            )
            for method, operation in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                operation = dict(operation)
                operation["parameters"] = [*shared, *operation.get("parameters", [])]
                found.append((method.upper(), regex, operation, definitions))
    return found


@cache
def _feed_validator() -> Any:
    """A validator of JSON_LISTINGS_FEED documents (listings-feed-schema-v2.json)."""
    schema = _resource("listings-feed-schema-v2.json")
    return jsonschema.validators.validator_for(schema)(schema)


@cache
def _fast_feed_validator() -> Any:
    """The same schema compiled by jsonschema-rs (None without it): it only says whether a
    document is valid; jsonschema then words the first violation of an invalid one."""
    if jsonschema_rs is None:
        return None
    return jsonschema_rs.validator_for(_resource("listings-feed-schema-v2.json"))


def invalid(message: str, status: int = 400, code: str = "InvalidInput") -> HttpError:
    """The SP-API error shape (``ErrorList``)."""
    return HttpError(status, {"errors": [{"code": code, "message": message, "details": ""}]})


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid {name}: {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_document(content: bytes | None) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed feed document and its document-level issues (FATAL when any): never
    uploaded, not JSON, against listings-feed-schema-v2.json, or another seller's."""

    def fatal(code: str, text: str) -> tuple[Any, list[dict[str, Any]]]:
        return None, [{"code": code, "severity": "ERROR", "message": text}]

    if content is None:
        return fatal("100001", "The feed document was never uploaded.")
    try:
        parsed = json.loads(content)
    except ValueError as err:
        return fatal("100002", f"Not valid JSON: {err}")
    # Amazon checks a feed on its own machines, within the processing time the emulator
    # models (queue + base + per message); the emulator's check must not outlast it. Four
    # 25,000-message feeds took jsonschema ~30 s of this one process's CPU, serialised by
    # its interpreter lock, and held back the fourth feed's DONE by seconds.
    fast = _fast_feed_validator()
    if fast is not None and fast.is_valid(parsed):
        errors = []
    else:
        errors = sorted(_feed_validator().iter_errors(parsed), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "document"
        return fatal("100003", f"Schema violation at {where}: {errors[0].message}")
    if parsed["header"]["sellerId"] != SELLER_ID:
        return fatal("100004", "sellerId is not this seller.")
    return parsed, []


@dataclass
class _Listing:
    sku: str
    asin: str
    product_type: str
    title: str
    channel: str  # the offer: "DEFAULT" (merchant fulfilled) or "AMAZON_NA" (FBA)
    fba: bool = False  # has FBA inventory (an MFN offer may have some too, side by side)
    quantity: int = 0  # DEFAULT: what buyers can order now
    fulfillable: int = 0  # FBA
    reserved: int = 0  # FBA: pendingCustomerOrderQuantity
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    price: Decimal = Decimal("10.00")  # the offer's unit price, without tax


@dataclass
class _Order:
    order_id: str
    created: datetime
    updated: datetime
    status: str  # FulfillmentStatus
    fulfilled_by: str  # MERCHANT | AMAZON
    lines: list[tuple[str, str, int]]  # (orderItemId, sku, quantity)
    #: orderItemId -> (unit price, promotion discount, tax on the discounted amount)
    money: dict[str, tuple[Decimal, Decimal, Decimal]] = field(default_factory=dict)


@dataclass
class _Document:
    document_id: str
    expires_at: float
    content_type: str = ""
    content: bytes | None = None
    report: bytes | None = None  # a processing report (gzipped), for result documents


@dataclass
class _Feed:
    feed_id: str
    document_id: str
    created: datetime
    created_at: float  # monotonic
    messages: int
    stuck: bool = False  # stays IN_PROGRESS for ever (the emulator's feed_stuck when created)
    content: bytes | None = None  # the document as uploaded when the feed was created
    status: str = "IN_QUEUE"
    result_document: str | None = None
    # The document check runs in a thread from IN_PROGRESS on, as Amazon validates while
    # it processes the feed; processing joins it. (parsed document, document-level issues)
    check: threading.Thread | None = None
    checked: tuple[Any, list[dict[str, Any]]] = (None, [])
    # What processing found, worked out by the check thread too: the quantities to set at
    # DONE (listing, quantity), the processing report (gzipped) and the status.
    processed: tuple[list[tuple[Any, int]], bytes, str, dict[str, Any]] | None = None
    processing_started: datetime | None = None
    processing_ended: datetime | None = None


@dataclass
class _Report:
    report_id: str
    created: datetime
    created_at: float  # monotonic
    rows: int  # listings when it was requested: its processing time follows
    outcome: str | None = None  # CANCELLED or FATAL instead of DONE (the controls)
    status: str = "IN_QUEUE"
    writer: threading.Thread | None = None  # writes the document while IN_PROGRESS
    content: bytes = b""
    document_id: str | None = None
    processing_started: datetime | None = None
    processing_ended: datetime | None = None


@dataclass
class _ReportDocument:
    document_id: str
    content: bytes  # as served: gzipped when ``gzip``
    gzip: bool


class AmazonEmulator(EmulatorServer):
    """The SP-API on loopback. Options (keyword arguments) and their defaults:

    ``token_lifetime=3600`` s, ``patch_delay=5`` s until an ACCEPTED patch shows,
    ``feed_queue_seconds=2``, ``feed_base_seconds=3`` and ``feed_seconds_per_message=0.001``
    (IN_PROGRESS lasts base + per message x messages), ``feed_stuck=False`` (feeds created
    while it is true never finish),
    ``upload_url_lifetime=300`` s, ``inventory_token_lifetime=30`` s, ``inventory_page_size=50``,
    ``rate_limits`` (operation -> (rate, burst), overriding :data:`USAGE_PLANS`),
    ``report_queue_seconds=2``, ``report_base_seconds=3`` and
    ``report_seconds_per_listing=0.0001`` (IN_PROGRESS lasts base + per listing x
    listings), ``report_gzip=True`` (documents served gzipped), ``report_url_lifetime=300``
    s (the presigned document URL),
    ``fba_warehouse`` (put in :meth:`connector_settings`).
    """

    name = "amazon"
    connector = "amazon"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        token_lifetime: float = 3600.0,
        patch_delay: float = 5.0,
        feed_queue_seconds: float = 2.0,
        feed_base_seconds: float = 3.0,
        feed_seconds_per_message: float = 0.001,
        feed_stuck: bool = False,
        upload_url_lifetime: float = 300.0,
        inventory_token_lifetime: float = 30.0,
        inventory_page_size: int = 50,
        rate_limits: dict[str, tuple[float, int]] | None = None,
        fba_warehouse: str | None = None,
        report_queue_seconds: float = 2.0,
        report_base_seconds: float = 3.0,
        report_seconds_per_listing: float = 0.0001,
        report_gzip: bool = True,
        report_url_lifetime: float = 300.0,
        currency: str = "USD",
        tax_rate: str | Decimal = "0",
        **options: Any,
    ) -> None:
        super().__init__(port=port, clock=clock)
        self.currency = currency
        #: The tax Amazon charges on an item (0.0825 for 8.25 %), on the discounted price.
        self.tax_rate = Decimal(str(tax_rate))
        self.token_lifetime = token_lifetime
        self.patch_delay = patch_delay
        self.feed_queue_seconds = feed_queue_seconds
        self.feed_base_seconds = feed_base_seconds
        self.feed_seconds_per_message = feed_seconds_per_message
        self.feed_stuck = feed_stuck
        self.upload_url_lifetime = upload_url_lifetime
        self.inventory_token_lifetime = inventory_token_lifetime
        self.inventory_page_size = inventory_page_size
        self.fba_warehouse = fba_warehouse
        self.report_queue_seconds = report_queue_seconds
        self.report_base_seconds = report_base_seconds
        self.report_seconds_per_listing = report_seconds_per_listing
        self.report_gzip = report_gzip
        self.report_url_lifetime = report_url_lifetime
        self.reports: dict[str, _Report] = {}
        self.report_documents: dict[str, _ReportDocument] = {}
        #: presigned signature -> (document id, expires at)
        self.report_urls: dict[str, tuple[str, float]] = {}
        self.next_report_outcome: str | None = None
        #: (status, Range header) of every report document download
        self.report_downloads: list[tuple[int, str | None]] = []
        plans = {**USAGE_PLANS, **(rate_limits or {})}
        self.plans = plans
        self.buckets = {op: Bucket(burst, rate, self.clock) for op, (rate, burst) in plans.items()}
        self.feed_bucket = Bucket(LISTINGS_FEED_PLAN[1], LISTINGS_FEED_PLAN[0], self.clock)
        self.tokens: dict[str, float] = {}
        self.listings: dict[str, _Listing] = {}
        self.orders: dict[str, _Order] = {}
        self.patches: list[tuple[float, str, int]] = []  # (apply at, sku, quantity)
        self.documents: dict[str, _Document] = {}
        self.feeds: dict[str, _Feed] = {}
        self.inventory_tokens: dict[str, tuple[float, int]] = {}  # token -> (issued, offset)
        self.refused: dict[str, str] = {}  # sku -> issue message
        self.calls: dict[str, int] = {}  # operation -> successful calls
        self.last_report: dict[str, Any] | None = None  # the latest processing report
        self._ids = itertools.count(1)

    # -- demo hooks -------------------------------------------------------------------------

    def add_listing(
        self, sku: str, quantity: int = 0, title: str | None = None, *, price: str = "10.00"
    ) -> str:
        """A merchant-fulfilled offer (fulfillment channel DEFAULT) at unit ``price``."""
        self._add(sku, title, "DEFAULT", quantity=quantity)
        with self.lock:
            self.listings[sku].price = Decimal(str(price))
        return sku

    def add_fba_listing(
        self, sku: str, fulfillable: int = 0, title: str | None = None, product_type: str = ""
    ) -> str:
        """FBA inventory of ``fulfillable`` units for ``sku``: a new offer fulfilled by
        Amazon, or FBA stock next to an existing merchant-fulfilled offer of that SKU."""
        with self.lock:
            existing = self.listings.get(sku)
            if existing is not None:
                existing.fba = True
                existing.fulfillable = fulfillable
                existing.updated = self.clock.now()
                return sku
        return self._add(
            sku, title, "AMAZON_NA", fulfillable=fulfillable, product_type=product_type
        )

    def _add(
        self,
        sku: str,
        title: str | None,
        channel: str,
        *,
        quantity: int = 0,
        fulfillable: int = 0,
        product_type: str = "",
    ) -> str:
        with self.lock:
            self.listings[sku] = _Listing(
                sku=sku,
                asin=f"B0{next(self._ids):08d}",
                product_type=product_type or "HOME",
                title=title or sku,
                channel=channel,
                quantity=quantity,
                fulfillable=fulfillable,
                fba=channel != "DEFAULT",
                updated=self.clock.now(),
            )
        return sku

    def place_order(
        self,
        lines: list[tuple[str, int]],
        fulfilled_by: str = "MERCHANT",
        *,
        promotion_percent: str | Decimal = "0",
    ) -> str:
        """An order as a buyer places it: UNSHIPPED, MFN by default (``"AMAZON"``: FBA).
        MFN orders lower the offer's quantity; FBA orders move fulfillable units to
        reserved (pendingCustomerOrderQuantity), as Amazon does. ``promotion_percent``
        takes that share off every item."""
        if fulfilled_by not in {"MERCHANT", "AMAZON"}:
            raise ValueError(f"fulfilled_by must be MERCHANT or AMAZON, got {fulfilled_by!r}")
        with self.lock:
            self._tick()
            n = next(self._ids)
            order_id = f"113-{n:07d}-{secrets.randbelow(10**7):07d}"
            now = self.clock.now()
            items = []
            for index, (sku, quantity) in enumerate(lines):
                listing = self.listings.get(sku)
                if listing is None:
                    raise ValueError(f"no listing {sku!r}")
                if fulfilled_by == "AMAZON":
                    if not listing.fba:
                        raise ValueError(f"{sku!r} has no FBA inventory")
                    listing.fulfillable -= quantity
                    listing.reserved += quantity
                else:
                    listing.quantity = max(0, listing.quantity - quantity)
                listing.updated = now
                items.append((f"{n:07d}{index:07d}", sku, quantity))
            money = {}
            for item_id, sku, quantity in items:
                price = self.listings[sku].price
                discount = _cents(price * quantity * Decimal(str(promotion_percent)) / 100)
                tax = _cents((price * quantity - discount) * self.tax_rate)
                money[item_id] = (price, discount, tax)
            self.orders[order_id] = _Order(
                order_id, now, now, "UNSHIPPED", fulfilled_by, items, money
            )
        return order_id

    def ship_order(self, order_id: str) -> None:
        self._set_status(order_id, "SHIPPED")

    def cancel_order(self, order_id: str) -> None:
        self._set_status(order_id, "CANCELLED")

    def _set_status(self, order_id: str, status: str) -> None:
        with self.lock:
            order = self.orders[order_id]
            if order.status in {"SHIPPED", "CANCELLED"}:
                raise ValueError(f"order {order_id} is already {order.status}")
            for _item, sku, quantity in order.lines:
                listing = self.listings[sku]
                if order.fulfilled_by == "AMAZON":
                    listing.reserved -= quantity
                    if status == "CANCELLED":
                        listing.fulfillable += quantity
                elif status == "CANCELLED":
                    listing.quantity += quantity
            order.status = status
            order.updated = self.clock.now()

    def refuse(self, sku: str, message: str = "'size' is required but not supplied.") -> None:
        """Make patches and feed messages for ``sku`` fail with ``message`` (code 90220)."""
        with self.lock:
            self.refused[sku] = message

    def accept(self, sku: str) -> None:
        with self.lock:
            self.refused.pop(sku, None)

    def cancel_next_report(self) -> None:
        """The next report requested ends CANCELLED without a document, as Amazon cancels
        a report that has nothing to report."""
        self.next_report_as("CANCELLED")

    def fail_next_report(self) -> None:
        """The next report requested ends FATAL (with a document giving the reason)."""
        self.next_report_as("FATAL")

    def next_report_as(self, outcome: str) -> None:
        if outcome not in REPORT_OUTCOMES:
            raise ValueError(
                f"outcome must be one of {', '.join(REPORT_OUTCOMES)}, got {outcome!r}"
            )
        with self.lock:
            self.next_report_outcome = outcome

    def expire_report_urls(self) -> None:
        """Every presigned report document URL issued so far expires now."""
        with self.lock:
            now = self.clock.monotonic()
            self.report_urls = {k: (doc, now - 1) for k, (doc, _at) in self.report_urls.items()}

    def quantities(self) -> dict[str, int]:
        """Merchant-fulfilled quantity as buyers see it; FBA offers: fulfillable units."""
        with self.lock:
            self._tick()
            return {
                sku: (x.quantity if x.channel == "DEFAULT" else x.fulfillable)
                for sku, x in self.listings.items()
            }

    def connector_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "endpoint": self.url,
            "lwa_endpoint": f"{self.url}/auth/o2/token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "seller_id": SELLER_ID,
            "marketplace_id": MARKETPLACE_ID,
        }
        if self.fba_warehouse:
            settings["fba_warehouse"] = self.fba_warehouse
        return settings

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (as after an hour)."""
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, self.clock.monotonic() - 1)

    # -- the API ----------------------------------------------------------------------------

    def throttled(self, request: Request, retry_after: float = 1.0) -> Response:
        # SP-API 429s carry only x-amzn-RequestId, no Retry-After and no rate header.
        return Response(429, QUOTA_EXCEEDED, {"x-amzn-RequestId": str(uuid.uuid4())})

    def _control(self, request: Request) -> Response:
        # POST /_emulator/reports/next {"outcome": "CANCELLED" | "FATAL"}
        if request.method == "POST" and request.path.rstrip("/").endswith("/reports/next"):
            try:
                self.next_report_as(str(request.json()["outcome"]))
            except (KeyError, TypeError, ValueError) as err:
                return Response(400, {"error": f"bad control request: {err!r}"})
            return Response(200, {"next_report": self.next_report_outcome})
        return super()._control(request)

    def handle(self, request: Request) -> Response:
        if request.path == "/auth/o2/token" and request.method == "POST":
            return self._lwa(request)
        if request.path.startswith("/s3/report-documents/"):
            return self._report_download(request)
        if request.path.startswith("/s3/"):
            return self._s3(request)
        operation, path_args, spec, definitions = self._route(request)
        with self.lock:
            self._authorize(request)
            self._tick()
            name = str(operation)
            bucket = self.buckets.get(name)
            if bucket is not None and not bucket.take():
                self.throttled_count += 1
                return self.throttled(request)
            params, body = self._validate(request, path_args, spec, definitions)
            handler: Callable[[dict[str, Any], Any], Response] | None = getattr(
                self, f"_op_{name}", None
            )
            if handler is None:
                raise invalid(f"operation {name} is not emulated", 404, "NotFound")
            response = handler(params, body)
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.plans:
                response.headers["x-amzn-RateLimit-Limit"] = f"{self.plans[name][0]:g}"
            response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
            return response

    # -- LWA and auth -----------------------------------------------------------------------

    def _lwa(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise HttpError(400, {"error": "invalid_request", "error_description": "form body"})
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            raise HttpError(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            raise HttpError(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        if form.get("refresh_token") != REFRESH_TOKEN:
            raise HttpError(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid "
                    "grant parameter : refresh_token",
                },
            )
        token = "Atza|" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = self.clock.monotonic() + self.token_lifetime
            self.calls["lwa"] = self.calls.get("lwa", 0) + 1
        return Response(
            200,
            {
                "access_token": token,
                "refresh_token": REFRESH_TOKEN,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
            },
        )

    def _authorize(self, request: Request) -> None:
        token = request.headers.get("x-amz-access-token", "")
        expires = self.tokens.get(token)
        if expires is None:
            raise HttpError(
                403,
                {
                    "errors": [
                        {
                            "code": "Unauthorized",
                            "message": "Access to requested resource is denied.",
                            "details": "",
                        }
                    ]
                },
            )
        if self.clock.monotonic() >= expires:
            raise HttpError(
                403,
                {
                    "errors": [
                        {
                            "code": "Unauthorized",
                            "message": "Access to requested resource is denied.",
                            "details": "The access token you provided has expired.",
                        }
                    ]
                },
            )

    # -- validation against the models ------------------------------------------------------

    def _route(
        self, request: Request
    ) -> tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]:
        allowed = False
        for method, regex, operation, definitions in _operations():
            match = regex.match(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                return str(operation["operationId"]), match.groupdict(), operation, definitions
        if allowed:
            raise invalid(f"method {request.method} not allowed on {request.path}", 405)
        raise invalid(f"resource {request.path} not found", 404, "NotFound")

    def _validate(
        self,
        request: Request,
        path_args: dict[str, str],
        spec: dict[str, Any],
        definitions: dict[str, Any],
    ) -> tuple[dict[str, Any], Any]:
        params: dict[str, Any] = {}
        body: Any = None
        for parameter in spec["parameters"]:
            name, where = parameter["name"], parameter["in"]
            if where == "path":
                raw: str | None = path_args.get(name)
            elif where == "query":
                raw = request.arg(name)
            elif where == "header":
                raw = request.headers.get(name.lower())
            else:  # body
                if not request.body:
                    raise invalid("Request body is missing")
                body = request.json()
                schema = dict(parameter["schema"])
                schema["definitions"] = definitions
                errors = sorted(
                    jsonschema.Draft4Validator(schema).iter_errors(body), key=lambda e: e.path
                )
                if errors:
                    where_ = "/".join(str(p) for p in errors[0].absolute_path) or "body"
                    raise invalid(f"Invalid request body at {where_}: {errors[0].message}")
                continue
            if raw is None or raw == "":
                if parameter.get("required"):
                    raise invalid(f"Missing required parameter: {name}")
                continue
            params[name] = self._convert(name, raw, parameter)
        return params, body

    @staticmethod
    def _convert(name: str, raw: str, parameter: dict[str, Any]) -> Any:
        kind = parameter.get("type")
        if kind == "array":
            values = [v for v in raw.split(",") if v != ""]
            if "maxItems" in parameter and len(values) > parameter["maxItems"]:
                raise invalid(f"{name} accepts at most {parameter['maxItems']} values")
            enum = (parameter.get("items") or {}).get("enum")
            for value in values:
                if enum and value not in enum:
                    raise invalid(f"Invalid {name} value {value!r}; expected one of {enum}")
            return values
        if kind == "integer":
            try:
                number = int(raw)
            except ValueError:
                raise invalid(f"{name} must be an integer, got {raw!r}") from None
            if "maximum" in parameter and number > parameter["maximum"]:
                raise invalid(f"{name} must be at most {parameter['maximum']}")
            if "minimum" in parameter and number < parameter["minimum"]:
                raise invalid(f"{name} must be at least {parameter['minimum']}")
            return number
        if kind == "boolean":
            if raw not in {"true", "false"}:
                raise invalid(f"{name} must be true or false, got {raw!r}")
            return raw == "true"
        if parameter.get("enum") and raw not in parameter["enum"]:
            raise invalid(f"Invalid {name} value {raw!r}; expected one of {parameter['enum']}")
        if parameter.get("format") == "date-time":
            return _parse_time(raw, name)
        return raw

    def _marketplace(self, values: list[str] | None) -> None:
        if values is not None and MARKETPLACE_ID not in values:
            raise invalid(f"Invalid marketplaceIds {values}; this seller sells in {MARKETPLACE_ID}")

    # -- the clock --------------------------------------------------------------------------

    def _tick(self) -> None:
        """Apply what became due: accepted patches, feed progress."""
        now = self.clock.monotonic()
        due = [p for p in self.patches if p[0] <= now]
        if due:
            self.patches = [p for p in self.patches if p[0] > now]
            for _at, sku, quantity in due:
                listing = self.listings.get(sku)
                if listing is not None:
                    listing.quantity = quantity
                    listing.updated = self.clock.now()
        for report in self.reports.values():
            if report.status in {"IN_QUEUE", "IN_PROGRESS"}:
                self._advance(report, now)
        for feed in self.feeds.values():
            if feed.status not in {"IN_QUEUE", "IN_PROGRESS"}:
                continue
            age = now - feed.created_at
            if feed.status == "IN_QUEUE" and age >= self.feed_queue_seconds:
                feed.status = "IN_PROGRESS"
                feed.processing_started = feed.created + timedelta(seconds=self.feed_queue_seconds)
                self._start_check(feed)
            if feed.status == "IN_PROGRESS" and not feed.stuck:
                took = self.feed_base_seconds + self.feed_seconds_per_message * feed.messages
                if age >= self.feed_queue_seconds + took:
                    self._process(feed)
                    feed.processing_ended = feed.created + timedelta(
                        seconds=self.feed_queue_seconds + took
                    )

    # -- orders -----------------------------------------------------------------------------

    def _op_searchOrders(self, params: dict[str, Any], body: Any) -> Response:
        after, created = params.get("lastUpdatedAfter"), params.get("createdAfter")
        if (after is None) == (created is None):
            raise invalid("Exactly one of createdAfter and lastUpdatedAfter must be provided")
        if after is not None and ("createdBefore" in params):
            raise invalid("createdBefore cannot be combined with lastUpdatedAfter")
        if created is not None and ("lastUpdatedBefore" in params):
            raise invalid("lastUpdatedBefore cannot be combined with createdAfter")
        now = self.clock.now()
        for before_name, since in (("lastUpdatedBefore", after), ("createdBefore", created)):
            before = params.get(before_name)
            if before is not None and (before < since or before > now - timedelta(minutes=2)):
                raise invalid(
                    f"{before_name} must be after the start and at least 2 minutes in the past"
                )
        self._marketplace(params.get("marketplaceIds"))
        size = params.get("maxResultsPerPage", 100)
        if not 1 <= size <= 100:
            raise invalid("maxResultsPerPage must be between 1 and 100")
        by_updated = after is not None
        start: datetime = params["lastUpdatedAfter"] if by_updated else params["createdAfter"]
        before = params.get("lastUpdatedBefore" if by_updated else "createdBefore")
        key_after: tuple[str, str] | None = None
        token = params.get("paginationToken")
        if token:
            try:
                decoded = json.loads(bytes.fromhex(token))
                key_after = (decoded["t"], decoded["id"])
            except (ValueError, KeyError, TypeError):
                raise invalid(f"Invalid paginationToken {token!r}") from None

        def key(order: _Order) -> tuple[str, str]:
            moment = order.updated if by_updated else order.created
            return (moment.isoformat(), order.order_id)

        statuses = params.get("fulfillmentStatuses")
        parties = params.get("fulfilledBy")
        chosen = sorted(
            (
                o
                for o in self.orders.values()
                if (o.updated if by_updated else o.created) >= start
                and (before is None or (o.updated if by_updated else o.created) <= before)
                and (not statuses or o.status in statuses)
                and (not parties or o.fulfilled_by in parties)
                and (key_after is None or key(o) > key_after)
            ),
            key=key,
        )
        page, rest = chosen[:size], chosen[size:]
        included = set(params.get("includedData") or [])
        answer: dict[str, Any] = {
            "orders": [self._order_json(o, included) for o in page],
            "lastUpdatedBefore" if by_updated else "createdBefore": _iso(now),
        }
        if rest:
            last = key(page[-1])
            answer["pagination"] = {
                "nextToken": json.dumps({"t": last[0], "id": last[1]}).encode().hex()
            }
        return Response(200, answer)

    def _order_json(self, order: _Order, included: set[str]) -> dict[str, Any]:
        shipped = order.status == "SHIPPED"
        raw: dict[str, Any] = {
            "orderId": order.order_id,
            "createdTime": _iso(order.created),
            "lastUpdatedTime": _iso(order.updated),
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": MARKETPLACE_ID,
                "marketplaceName": "Amazon.com",
            },
            "orderItems": [
                {
                    "orderItemId": item_id,
                    "quantityOrdered": quantity,
                    "product": {
                        "asin": self.listings[sku].asin if sku in self.listings else "B000000000",
                        "sellerSku": sku,
                    },
                    **(
                        {
                            "fulfillment": {
                                "quantityFulfilled": quantity if shipped else 0,
                                "quantityUnfulfilled": 0 if shipped else quantity,
                            }
                        }
                        if "FULFILLMENT" in included
                        else {}
                    ),
                    **self._item_money(order, item_id, quantity, included),
                }
                for item_id, sku, quantity in order.lines
            ],
        }
        for item_json in raw["orderItems"]:
            amounts = order.money.get(item_json["orderItemId"])
            if amounts is not None:
                item_json["product"]["price"] = {"unitPrice": self._money(amounts[0])}
        if "PROCEEDS" in included and order.money:
            kinds: dict[str, Decimal] = {}
            for item_id, _sku, quantity in order.lines:
                unit, discount, tax = order.money[item_id]
                for kind, amount in (
                    ("ITEM", unit * quantity),
                    ("DISCOUNT", -discount),
                    ("TAX", tax),
                ):
                    kinds[kind] = kinds.get(kind, Decimal(0)) + amount
            raw["proceeds"] = {
                "grandTotal": self._money(sum(kinds.values(), Decimal(0))),
                "breakdowns": [
                    {"type": kind, "subtotal": self._money(amount)}
                    for kind, amount in kinds.items()
                    if amount or kind == "ITEM"
                ],
            }
        if "FULFILLMENT" in included:
            raw["fulfillment"] = {
                "fulfillmentStatus": order.status,
                "fulfilledBy": order.fulfilled_by,
                "fulfillmentServiceLevel": "STANDARD",
            }
        return raw

    def _item_money(
        self, order: _Order, item_id: str, quantity: int, included: set[str]
    ) -> dict[str, Any]:
        """``proceeds`` (and ``promotion``) of one order item, when asked for."""
        if item_id not in order.money:
            return {}
        price, discount, tax = order.money[item_id]
        found: dict[str, Any] = {}
        if "PROCEEDS" in included:
            item = price * quantity
            breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": self._money(item)}]
            if discount:
                breakdowns.append(
                    {
                        "type": "DISCOUNT",
                        "subtotal": self._money(-discount),
                        "detailedBreakdowns": [
                            {"subtype": "ITEM", "value": self._money(-discount)}
                        ],
                    }
                )
            if tax:
                tax_on_discount = _cents(discount * self.tax_rate)
                breakdowns.append(
                    {
                        "type": "TAX",
                        "subtotal": self._money(tax),
                        "detailedBreakdowns": [
                            {"subtype": "ITEM", "value": self._money(tax + tax_on_discount)},
                            {"subtype": "DISCOUNT", "value": self._money(-tax_on_discount)},
                        ],
                    }
                )
            found["proceeds"] = {
                "proceedsTotal": self._money(item - discount + tax),
                "breakdowns": breakdowns,
            }
        if "PROMOTION" in included and discount:
            found["promotion"] = {"breakdowns": [{"promotionId": f"PROMO-{order.order_id}"}]}
        return found

    def _money(self, amount: Decimal) -> dict[str, str]:
        """A Money object: ``amount`` as decimal text (the model's Decimal is a string)."""
        return {"amount": f"{amount:.2f}", "currencyCode": self.currency}

    # -- FBA inventory ----------------------------------------------------------------------

    def _op_getInventorySummaries(self, params: dict[str, Any], body: Any) -> Response:
        marketplaces = params["marketplaceIds"]
        if len(marketplaces) != 1 or params["granularityId"] != marketplaces[0]:
            raise invalid("granularityId must be the one marketplace of marketplaceIds")
        self._marketplace(marketplaces)
        now = self.clock.monotonic()
        offset = 0
        token = params.get("nextToken")
        if token:
            issued = self.inventory_tokens.get(token)
            if issued is None or now - issued[0] > self.inventory_token_lifetime:
                raise invalid("Invalid nextToken: the token has expired or is unknown")
            offset = issued[1]
        skus = params.get("sellerSkus") or (
            [params["sellerSku"]] if params.get("sellerSku") else None
        )
        since: datetime | None = params.get("startDateTime")
        fba = [
            x
            for x in sorted(self.listings.values(), key=lambda x: x.sku)
            if x.fba
            and (skus is None or since is not None or x.sku in skus)
            and (since is None or x.updated >= since)
        ]
        page = fba[offset : offset + self.inventory_page_size]
        answer: dict[str, Any] = {
            "payload": {
                "granularity": {
                    "granularityType": "Marketplace",
                    "granularityId": params["granularityId"],
                },
                "inventorySummaries": [
                    self._summary(x, params.get("details", False)) for x in page
                ],
            }
        }
        if offset + len(page) < len(fba):
            next_token = secrets.token_urlsafe(18)
            self.inventory_tokens[next_token] = (now, offset + len(page))
            answer["pagination"] = {"nextToken": next_token}
        return Response(200, answer)

    def _summary(self, listing: _Listing, details: bool) -> dict[str, Any]:
        fulfillable = max(0, listing.fulfillable)
        summary: dict[str, Any] = {
            "asin": listing.asin,
            "fnSku": "X00" + listing.asin[3:],
            "sellerSku": listing.sku,
            "condition": "NewItem",
            "lastUpdatedTime": _iso(listing.updated),
            "productName": listing.title,
            "totalQuantity": fulfillable + listing.reserved,
        }
        if details:
            summary["inventoryDetails"] = {
                "fulfillableQuantity": fulfillable,
                "inboundWorkingQuantity": 0,
                "inboundShippedQuantity": 0,
                "inboundReceivingQuantity": 0,
                "reservedQuantity": {
                    "totalReservedQuantity": listing.reserved,
                    "pendingCustomerOrderQuantity": listing.reserved,
                    "pendingTransshipmentQuantity": 0,
                    "fcProcessingQuantity": 0,
                },
                "researchingQuantity": {"totalResearchingQuantity": 0},
                "unfulfillableQuantity": {"totalUnfulfillableQuantity": 0},
            }
        return summary

    # -- listings ---------------------------------------------------------------------------

    def _item_json(self, listing: _Listing, included: list[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"sku": listing.sku}
        if "summaries" in included:
            item["summaries"] = [
                {
                    "marketplaceId": MARKETPLACE_ID,
                    "asin": listing.asin,
                    "productType": listing.product_type,
                    "conditionType": "new_new",
                    "status": ["BUYABLE", "DISCOVERABLE"],
                    "itemName": listing.title,
                    "createdDate": _iso(listing.updated),
                    "lastUpdatedDate": _iso(listing.updated),
                }
            ]
        if "fulfillmentAvailability" in included:
            availability = []
            if listing.channel == "DEFAULT":
                availability.append(
                    {"fulfillmentChannelCode": "DEFAULT", "quantity": listing.quantity}
                )
            if listing.fba:
                availability.append(
                    {"fulfillmentChannelCode": "AMAZON_NA", "quantity": max(0, listing.fulfillable)}
                )
            item["fulfillmentAvailability"] = availability
        if "issues" in included:
            item["issues"] = []
        return item

    def _op_searchListingsItems(self, params: dict[str, Any], body: Any) -> Response:
        self._seller(params["sellerId"])
        self._marketplace(params["marketplaceIds"])
        identifiers = params.get("identifiers")
        if identifiers and "identifiersType" not in params:
            raise invalid("identifiersType is required with identifiers")
        size = params.get("pageSize", 10)
        if size < 1:
            raise invalid("pageSize must be at least 1")
        included = params.get("includedData") or ["summaries"]
        if identifiers:  # looked up, not a scan: 100,000 listings stay cheap
            found = (self.listings.get(sku) for sku in identifiers)
            by_sku = params.get("identifiersType") == "SKU"
            chosen = sorted((x for x in found if x is not None and by_sku), key=lambda x: x.sku)
        else:
            chosen = sorted(self.listings.values(), key=lambda x: x.sku)
        offset = 0
        token = params.get("pageToken")
        if token:
            try:
                offset = int(bytes.fromhex(token).decode())
            except ValueError:
                raise invalid(f"Invalid pageToken {token!r}") from None
        page = chosen[offset : offset + size]
        answer: dict[str, Any] = {
            "numberOfResults": len(chosen),
            "items": [self._item_json(x, included) for x in page],
        }
        if offset + size < len(chosen):
            answer["pagination"] = {"nextToken": str(offset + size).encode().hex()}
        return Response(200, answer)

    def _op_getListingsItem(self, params: dict[str, Any], body: Any) -> Response:
        self._seller(params["sellerId"])
        self._marketplace(params["marketplaceIds"])
        listing = self.listings.get(params["sku"])
        if listing is None:
            raise invalid(f"SKU '{params['sku']}' not found in marketplace", 404, "NOT_FOUND")
        return Response(200, self._item_json(listing, params.get("includedData") or ["summaries"]))

    def _op_patchListingsItem(self, params: dict[str, Any], body: Any) -> Response:
        self._seller(params["sellerId"])
        self._marketplace(params["marketplaceIds"])
        sku = params["sku"]
        listing = self.listings.get(sku)
        if listing is None:
            raise invalid(f"SKU '{sku}' not found in marketplace", 404, "NOT_FOUND")
        issues, quantity = self._check_patch(listing, body["productType"], body["patches"])
        submission = str(uuid.uuid4())
        preview = params.get("mode") == "VALIDATION_PREVIEW"
        if issues:
            return Response(
                200,
                {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": issues},
            )
        if not preview and quantity is not None:
            self.patches.append((self.clock.monotonic() + self.patch_delay, sku, quantity))
        status = "VALID" if preview else "ACCEPTED"
        return Response(
            200, {"sku": sku, "status": status, "submissionId": submission, "issues": []}
        )

    def _check_patch(
        self, listing: _Listing, product_type: str, patches: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Issues (as the Listings Items API reports them) and the new DEFAULT quantity."""
        issues: list[dict[str, Any]] = []
        quantity: int | None = None

        def issue(code: str, message: str, attribute: str = "fulfillment_availability") -> None:
            issues.append(
                {
                    "code": code,
                    "message": message,
                    "severity": "ERROR",
                    "attributeNames": [attribute],
                    "categories": ["INVALID_ATTRIBUTE"],
                }
            )

        if product_type != listing.product_type:
            issue(
                "4000003",
                f"The product type '{product_type}' does not match the listing's "
                f"'{listing.product_type}'.",
                "product_type",
            )
        for patch in patches:
            if patch.get("path") != "/attributes/fulfillment_availability":
                continue  # other attributes: accepted, not emulated
            if patch.get("op") not in {"merge", "replace"}:
                issue("90000900", f"op '{patch.get('op')}' cannot set a quantity.")
                continue
            for value in patch.get("value") or []:
                if value.get("fulfillment_channel_code") != "DEFAULT":
                    issue(
                        "8560",
                        "Only the DEFAULT fulfillment channel can be set; Amazon manages "
                        "the quantity of FBA offers.",
                    )
                    continue
                if listing.channel != "DEFAULT":
                    issue("8560", "This offer is fulfilled by Amazon; its quantity is Amazon's.")
                    continue
                raw = value.get("quantity")
                if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                    issue("90000900", f"'quantity' must be a whole number >= 0, got {raw!r}.")
                    continue
                quantity = raw
        if listing.sku in self.refused:
            issue("90220", self.refused[listing.sku], "size")
        return issues, quantity

    def _seller(self, seller_id: str) -> None:
        if seller_id != SELLER_ID:
            raise invalid(
                f"Seller {seller_id} is not the authorised selling partner", 403, "Unauthorized"
            )

    # -- feeds ------------------------------------------------------------------------------

    def _op_createFeedDocument(self, params: dict[str, Any], body: Any) -> Response:
        document_id = str(uuid.uuid4())
        self.documents[document_id] = _Document(
            document_id, self.clock.monotonic() + self.upload_url_lifetime, str(body["contentType"])
        )
        return Response(
            201,
            {"feedDocumentId": document_id, "url": f"{self.url}/s3/feeds/{document_id}"},
        )

    def _s3(self, request: Request) -> Response:
        """The presigned URLs: PUT a feed document, GET a processing report."""
        parts = request.path.strip("/").split("/")
        if len(parts) != 3:
            raise HttpError(404, b"<Error><Code>NoSuchKey</Code></Error>")
        _s3, kind, document_id = parts
        with self.lock:
            document = self.documents.get(document_id)
            if document is None:
                raise HttpError(404, b"<Error><Code>NoSuchKey</Code></Error>")
            if kind == "feeds" and request.method == "PUT":
                if self.clock.monotonic() > document.expires_at:
                    raise HttpError(
                        403,
                        b"<Error><Code>AccessDenied</Code><Message>Request has expired"
                        b"</Message></Error>",
                        {"Content-Type": "application/xml"},
                    )
                wanted = document.content_type.lower()
                if request.headers.get("content-type", "").lower() != wanted:
                    raise HttpError(
                        403,
                        b"<Error><Code>SignatureDoesNotMatch</Code><Message>Content-Type "
                        b"differs from createFeedDocument</Message></Error>",
                        {"Content-Type": "application/xml"},
                    )
                document.content = request.body
                return Response(200, b"", {"Content-Type": "application/xml"})
            if kind == "reports" and request.method == "GET" and document.report is not None:
                return Response(200, document.report, {"Content-Type": "application/octet-stream"})
        raise HttpError(404, b"<Error><Code>NoSuchKey</Code></Error>")

    def _op_createFeed(self, params: dict[str, Any], body: Any) -> Response:
        self._marketplace(body["marketplaceIds"])
        document = self.documents.get(body["inputFeedDocumentId"])
        if document is None:
            raise invalid(f"Unknown inputFeedDocumentId {body['inputFeedDocumentId']!r}")
        if body["feedType"] != "JSON_LISTINGS_FEED":
            raise invalid(f"feedType {body['feedType']!r} is not emulated")
        if not self.feed_bucket.take():
            self.throttled_count += 1
            return self.throttled(Request("POST", "", {}, {}, b""))
        # The message count sets the processing time. Counted in the bytes (a key inside a
        # string would be escaped): parsing 25,000 messages here, in the request, would
        # hold up the answer; the document is parsed by the check that follows.
        messages = document.content.count(b'"messageId"') if document.content else 0
        feed_id = str(50_000_000 + next(self._ids))
        self.feeds[feed_id] = _Feed(
            feed_id,
            document.document_id,
            self.clock.now(),
            self.clock.monotonic(),
            messages,
            stuck=self.feed_stuck,
            content=document.content,
        )
        return Response(202, {"feedId": feed_id})

    def _start_check(self, feed: _Feed) -> None:
        """Check the feed's document in a thread once it is IN_PROGRESS, as Amazon does on
        machines of its own within the processing time. Not at createFeed: parsing 25,000
        messages holds this process's interpreter lock for a few tenths of a second, which
        would hold up the answers to the createFeed and uploads of the feeds that follow."""
        content = feed.content

        def run() -> None:
            feed.checked = _check_document(content)
            feed.processed = self._outcome(feed)

        feed.check = threading.Thread(target=run, name=f"feed-{feed.feed_id}", daemon=True)
        feed.check.start()

    def _op_getFeed(self, params: dict[str, Any], body: Any) -> Response:
        feed = self.feeds.get(params["feedId"])
        if feed is None:
            raise invalid(f"Feed {params['feedId']} not found", 404, "NotFound")
        answer: dict[str, Any] = {
            "feedId": feed.feed_id,
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [MARKETPLACE_ID],
            "createdTime": _iso(feed.created),
            "processingStatus": feed.status,
        }
        if feed.processing_started:
            answer["processingStartTime"] = _iso(feed.processing_started)
        if feed.processing_ended:
            answer["processingEndTime"] = _iso(feed.processing_ended)
        if feed.result_document:
            answer["resultFeedDocumentId"] = feed.result_document
        return Response(200, answer)

    def _op_getFeedDocument(self, params: dict[str, Any], body: Any) -> Response:
        document = self.documents.get(params["feedDocumentId"])
        if document is None:
            raise invalid(f"Feed document {params['feedDocumentId']} not found", 404, "NotFound")
        if document.report is None:
            return Response(
                200,
                {
                    "feedDocumentId": document.document_id,
                    "url": f"{self.url}/s3/feeds/{document.document_id}",
                },
            )
        return Response(
            200,
            {
                "feedDocumentId": document.document_id,
                "url": f"{self.url}/s3/reports/{document.document_id}",
                "compressionAlgorithm": "GZIP",
            },
        )

    def _process(self, feed: _Feed) -> None:
        """At DONE (or FATAL): set the quantities of the valid messages and publish the
        report, both worked out by the check thread while the feed was IN_PROGRESS (as
        Amazon processes it on machines of its own: the getFeed that sees DONE would
        otherwise wait for 25,000 messages to be checked)."""
        if feed.check is None:  # due at once (no time in queue): check it now
            self._start_check(feed)
        assert feed.check is not None
        feed.check.join()  # the check started IN_PROGRESS (normally long done)
        applies, document, status, report = feed.processed or self._outcome(feed)
        now = self.clock.now()
        for listing, quantity in applies:
            listing.quantity = quantity
            listing.updated = now
        result_id = str(uuid.uuid4())
        self.documents[result_id] = _Document(
            result_id, float("inf"), "application/json", report=document
        )
        feed.result_document = result_id
        feed.status = status
        self.last_report = report

    def _outcome(self, feed: _Feed) -> tuple[list[tuple[Any, int]], bytes, str, dict[str, Any]]:
        """The checked feed's processing: the (listing, quantity) its valid messages set,
        its gzipped processing report, its status and the report itself."""
        parsed, document_issues = feed.checked
        issues = list(document_issues)
        applies: list[tuple[Any, int]] = []
        processed = accepted = invalid_count = 0
        status = "FATAL" if issues else "DONE"
        if status == "DONE":
            for message in parsed["messages"]:
                processed += 1
                found, listing, quantity = self._message_outcome(message)
                if found:
                    invalid_count += 1
                    issues.extend(found)
                    continue
                accepted += 1
                if listing is not None and quantity is not None:
                    applies.append((listing, quantity))
        report = {
            "header": {"sellerId": SELLER_ID, "version": "2.0", "feedId": feed.feed_id},
            "issues": issues,
            "summary": {
                "errors": sum(1 for i in issues if i["severity"] == "ERROR"),
                "warnings": 0,
                "messagesProcessed": processed,
                "messagesAccepted": accepted,
                "messagesInvalid": invalid_count,
            },
        }
        return applies, gzip.compress(json.dumps(report).encode()), status, report

    def _message_outcome(
        self, message: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], _Listing | None, int | None]:
        """A message's issues, and the listing and quantity it sets when it has none."""
        message_id, sku = message["messageId"], message["sku"]
        listing = self.listings.get(sku)
        if listing is None:
            return (
                [self._issue(message_id, sku, "4000001", f"SKU '{sku}' does not exist.")],
                None,
                None,
            )
        if message["operationType"] != "PATCH":
            return [], None, None  # UPDATE/PARTIAL_UPDATE/DELETE: accepted, not emulated
        found, quantity = self._check_patch(
            listing, message.get("productType", ""), message.get("patches") or []
        )
        if found:
            return (
                [self._issue(message_id, sku, i["code"], i["message"]) for i in found],
                None,
                None,
            )
        return [], listing, quantity

    @staticmethod
    def _issue(message_id: int | None, sku: str | None, code: str, text: str) -> dict[str, Any]:
        issue: dict[str, Any] = {"code": code, "severity": "ERROR", "message": text}
        if message_id is not None:
            issue["messageId"] = message_id
        if sku is not None:
            issue["sku"] = sku
        return issue

    # -- reports ----------------------------------------------------------------------------

    def _op_createReport(self, params: dict[str, Any], body: Any) -> Response:
        self._marketplace(body["marketplaceIds"])
        if body["reportType"] != LISTINGS_REPORT:
            raise invalid(f"reportType {body['reportType']!r} is not emulated")
        report_id = str(70_000_000 + next(self._ids))
        self.reports[report_id] = _Report(
            report_id,
            self.clock.now(),
            self.clock.monotonic(),
            len(self.listings),
            outcome=self.next_report_outcome,
        )
        self.next_report_outcome = None
        return Response(202, {"reportId": report_id})

    def _advance(self, report: _Report, now: float) -> None:
        """IN_QUEUE for ``report_queue_seconds``, then IN_PROGRESS for base + per listing;
        then DONE with the document of the listings as they were when processing started
        (written meanwhile by a thread, as Amazon works while the report is in progress),
        CANCELLED when there is nothing to report, or the outcome a control asked for."""
        age = now - report.created_at
        queued = self.report_queue_seconds
        if report.status == "IN_QUEUE" and age >= queued:
            if report.outcome == "CANCELLED":  # cancelled before processing starts
                report.status = "CANCELLED"
                return
            report.status = "IN_PROGRESS"
            report.processing_started = report.created + timedelta(seconds=queued)
            if report.outcome is None and self.listings:
                self._start_writing(report)
        took = self.report_base_seconds + self.report_seconds_per_listing * report.rows
        if report.status != "IN_PROGRESS" or age < queued + took:
            return
        report.processing_ended = report.created + timedelta(seconds=queued + took)
        document_id = f"amzn1.spdoc.1.4.na.{uuid.uuid4()}"
        if report.outcome == "FATAL":
            text = json.dumps({"errorDetails": "The report could not be generated."}).encode()
            self.report_documents[document_id] = _ReportDocument(document_id, text, False)
            report.status, report.document_id = "FATAL", document_id
            return
        if report.writer is None:
            report.status = "CANCELLED"  # Amazon cancels a report with no data
            return
        report.writer.join()
        content = report.content
        self.report_documents[document_id] = _ReportDocument(document_id, content, self.report_gzip)
        report.status, report.document_id = "DONE", document_id

    def _start_writing(self, report: _Report) -> None:
        listings = sorted((replace(x) for x in self.listings.values()), key=lambda x: x.sku)
        packed = self.report_gzip

        def run() -> None:
            text = _listings_report(listings)
            report.content = gzip.compress(text, 6) if packed else text

        report.writer = threading.Thread(target=run, name=f"report-{report.report_id}", daemon=True)
        report.writer.start()

    def _op_getReport(self, params: dict[str, Any], body: Any) -> Response:
        report = self.reports.get(params["reportId"])
        if report is None:
            raise invalid(f"Report {params['reportId']} not found", 404, "NotFound")
        answer: dict[str, Any] = {
            "reportId": report.report_id,
            "reportType": LISTINGS_REPORT,
            "marketplaceIds": [MARKETPLACE_ID],
            "createdTime": _iso(report.created),
            "processingStatus": report.status,
        }
        if report.processing_started:
            answer["processingStartTime"] = _iso(report.processing_started)
        if report.processing_ended:
            answer["processingEndTime"] = _iso(report.processing_ended)
        if report.document_id:
            answer["reportDocumentId"] = report.document_id
        return Response(200, answer)

    def _op_cancelReport(self, params: dict[str, Any], body: Any) -> Response:
        report = self.reports.get(params["reportId"])
        if report is None:
            raise invalid(f"Report {params['reportId']} not found", 404, "NotFound")
        if report.status != "IN_QUEUE":
            raise invalid(f"Report {report.report_id} is {report.status}; only IN_QUEUE cancels")
        report.status = "CANCELLED"
        return Response(200, b"")

    def _op_getReportDocument(self, params: dict[str, Any], body: Any) -> Response:
        document = self.report_documents.get(params["reportDocumentId"])
        if document is None:
            raise invalid(
                f"Report document {params['reportDocumentId']} not found", 404, "NotFound"
            )
        signature = secrets.token_hex(16)
        lifetime = self.report_url_lifetime
        self.report_urls[signature] = (document.document_id, self.clock.monotonic() + lifetime)
        answer: dict[str, Any] = {
            "reportDocumentId": document.document_id,
            "url": f"{self.url}/s3/report-documents/{document.document_id}"
            f"?X-Amz-Expires={int(lifetime)}&X-Amz-Signature={signature}",
        }
        if document.gzip:
            answer["compressionAlgorithm"] = "GZIP"
        return Response(200, answer)

    def _report_download(self, request: Request) -> Response:
        """GET of a presigned report document URL, with S3's Range support (206)."""
        with self.lock:
            response = self._serve_report(request)
            self.report_downloads.append((response.status, request.headers.get("range")))
            return response

    def _serve_report(self, request: Request) -> Response:
        def denied(text: bytes) -> Response:
            return Response(
                403,
                b"<Error><Code>AccessDenied</Code><Message>" + text + b"</Message></Error>",
                {"Content-Type": "application/xml"},
            )

        if request.method != "GET":
            return Response(405, b"<Error><Code>MethodNotAllowed</Code></Error>")
        document_id = request.path.rsplit("/", 1)[-1]
        signed = self.report_urls.get(request.arg("X-Amz-Signature") or "")
        if signed is None or signed[0] != document_id:
            return denied(b"The request signature we calculated does not match")
        if self.clock.monotonic() > signed[1]:
            return denied(b"Request has expired")
        if "x-amz-access-token" in request.headers or "authorization" in request.headers:
            # A presigned URL carries its own authority; S3 refuses other credentials.
            return denied(b"Only one auth mechanism allowed")
        content = self.report_documents[document_id].content
        kind = {"Content-Type": "text/plain; charset=UTF-8"}
        wanted = request.headers.get("range")
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
        if match is None:
            return Response(200, content, kind)
        start = int(match.group(1))
        end = min(int(match.group(2) or len(content) - 1), len(content) - 1)
        if start >= len(content):
            return Response(
                416,
                b"<Error><Code>InvalidRange</Code></Error>",
                {"Content-Range": f"bytes */{len(content)}"},
            )
        return Response(
            206,
            content[start : end + 1],
            {**kind, "Content-Range": f"bytes {start}-{end}/{len(content)}"},
        )


def _listings_report(listings: list[_Listing]) -> bytes:
    """The GET_MERCHANT_LISTINGS_ALL_DATA document of ``listings`` (sorted by SKU)."""
    lines = ["\t".join(LISTINGS_REPORT_COLUMNS)]
    for index, listing in enumerate(listings):
        mfn = listing.channel == "DEFAULT"
        shown = listing.quantity if mfn else max(0, listing.fulfillable)
        cells = dict.fromkeys(LISTINGS_REPORT_COLUMNS, "")
        cells.update(
            {
                "item-name": re.sub(r"[\t\r\n]+", " ", listing.title),
                "listing-id": f"{1206 + index:04d}Z{index:06d}",
                "seller-sku": listing.sku,
                "price": f"{listing.price}",
                # Amazon leaves quantity blank for offers it fulfils.
                "quantity": str(listing.quantity) if mfn else "",
                "open-date": listing.updated.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "item-is-marketplace": "y",
                "product-id-type": "1",
                "item-condition": "11",
                "asin1": listing.asin,
                "product-id": listing.asin,
                "pending-quantity": "0",
                "fulfillment-channel": listing.channel,
                "merchant-shipping-group": "Migrated Template" if mfn else "",
                "status": "Active" if shown > 0 else "Inactive",
            }
        )
        lines.append("\t".join(cells[c] for c in LISTINGS_REPORT_COLUMNS))
    return ("\n".join(lines) + "\n").encode()
