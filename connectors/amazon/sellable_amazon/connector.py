"""The Amazon Selling Partner API connector.

* Orders: Orders API 2026-01-01 ``searchOrders`` by ``lastUpdatedAfter`` with the items
  inline (v0 ``getOrders`` is deprecated). Orders fulfilled by Amazon (AFN) are booked
  in ``fba_warehouse`` (Amazon chose it). Merchant-fulfilled ones (MFN) are routed across
  the channel's own warehouses, in their listed order.
* FBA stock: FBA Inventory ``getInventorySummaries`` (details=true) sets the counts of
  ``fba_warehouse`` (each count names it): ``on_hand`` = fulfillable units, ``reserved`` =
  units Amazon holds for pending customer orders. ``fba_warehouse`` may be anywhere in the
  channel's ``warehouses`` or left out of them (``warehouses = ["main"]``,
  ``fba_warehouse = "fba-us"``: MFN ships from main, FBA stock lives in fba-us); it must
  be a configured ``[[warehouses]]`` code.
* Listings: the ``GET_MERCHANT_LISTINGS_ALL_DATA`` report (Reports API 2021-06-30),
  requested, waited for and read piece by piece across ``list_listings`` calls; only
  merchant-fulfilled offers (channel ``DEFAULT``) are ours to set, from the channel's own
  warehouses. Amazon sets FBA quantities itself. The report has no ``productType``, which
  a quantity change needs: it is read at push time (or by the reconcile's read-back) and
  kept per SKU with its ASIN, and in the stored listing across restarts.
* Push: ``patchListingsItem`` for a few changes, one ``JSON_LISTINGS_FEED`` for many. Both
  are asynchronous: ``ACCEPTED`` and a submitted feed only mean queued, so the item is
  answered :attr:`PushStatus.RETRY` until the change is confirmed (listing read back, or
  the feed's processing report), then OK, or FAILED with Amazon's messages.

What is in flight lives in this instance's memory only. After a restart it is gone and the
items are simply pushed again: quantities are absolute, so that is safe. The product types
learned are kept in the listings' stored ``extra`` (:meth:`take_learned_extra`, kept across
refreshes by :attr:`kept_extra`): a restart does not read them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Literal

from pydantic import SecretStr, ValidationInfo, field_validator

from sellable.sdk import (
    AuthenticationError,
    Capability,
    ChannelError,
    ChannelOrder,
    ChannelOrderLine,
    ChannelPayloadError,
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Listing,
    ListingPage,
    OrderPage,
    OrderPayloadError,
    OrderStatus,
    PushesInFlight,
    PushItem,
    PushResult,
    PushStatus,
    RateLimit,
    StockCount,
    TemporaryChannelError,
    collect_orders,
    collection_resumed,
    order_time,
    whole_quantity,
)
from sellable_amazon.client import (
    Credentials,
    DocumentPiece,
    SpApiClient,
    quantity_patch,
    rate_limits,
)
from sellable_amazon.money import item_revenue
from sellable_amazon.report import DocumentError, DocumentReader, Row

log = logging.getLogger("sellable.amazon")

# Orders 2026-01-01 FulfillmentStatus (orders_2026-01-01.json, definitions.FulfillmentStatus;
# https://developer-docs.amazon.com/sp-api/docs/orders-api-v2026-01-01-reference).
# Pending orders already hold stock on Amazon, so they are open for us too.
FULFILLMENT_STATUS = {
    "PENDING_AVAILABILITY": OrderStatus.OPEN,
    "PENDING": OrderStatus.OPEN,
    "UNSHIPPED": OrderStatus.OPEN,
    "PARTIALLY_SHIPPED": OrderStatus.OPEN,
    "SHIPPED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELLED,
    "UNFULFILLABLE": OrderStatus.CANCELLED,
}
#: A ``nextToken`` of getInventorySummaries "will expire 30 seconds after being created"
#: (fbaInventory.json, parameter nextToken); we restart the listing rather than use one
#: older than this.
INVENTORY_TOKEN_LIFE = 25.0
FEED_DONE = ("DONE", "FATAL", "CANCELLED")
#: JSON_LISTINGS_FEED takes at most 25,000 messages (listings-feed-schema-v2.json,
#: messages.maxItems).
FEED_SIZE = 25_000
#: The listing refresh reads this report (Reports API 2021-06-30): every listing of the
#: seller in the marketplace, active or not, with its quantity and fulfillment channel.
LISTINGS_REPORT = "GET_MERCHANT_LISTINGS_ALL_DATA"
REPORT_WAITING = ("IN_QUEUE", "IN_PROGRESS")
#: A JSON_LISTINGS_FEED PATCH message setting the DEFAULT quantity, as text with
#: placeholders (messageId, sku and productType as JSON strings, quantity); its patch is
#: :func:`quantity_patch`'s.
FEED_MESSAGE = (
    '{"messageId":%d,"sku":%s,"operationType":"PATCH","productType":%s,"patches":['
    + json.dumps(quantity_patch(0), separators=(",", ":")).replace('"quantity":0', '"quantity":%d')
    + "]}"
)


class AmazonSettings(ConnectorSettings):
    endpoint: str = "https://sellingpartnerapi-na.amazon.com"
    lwa_endpoint: str = "https://api.amazon.com/auth/o2/token"
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    seller_id: str
    marketplace_id: str
    #: Our warehouse code that mirrors the FBA stock. It need not be among the channel's
    #: ``warehouses``; it must be a configured ``[[warehouses]]`` code.
    fba_warehouse: str | None = None

    @field_validator("fba_warehouse")
    @classmethod
    def _configured_warehouse(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The framework passes the configured warehouse codes as the validation context
        # (check-config); without one (a test building the settings) nothing is checked.
        known = info.context.get("warehouses") if isinstance(info.context, dict) else None
        if value is not None and known is not None and value not in known:
            raise ValueError(
                f"not a configured warehouse (known: {', '.join(known)}; declare it as a "
                '[[warehouses]] entry with kind = "fba")'
            )
        return value


@dataclass(slots=True)
class _Submission:
    """A quantity Amazon accepted but has not confirmed yet."""

    sku: str
    quantity: int
    kind: Literal["patch", "feed"]
    submitted_at: float
    ref: str  # submissionId or feedId
    listing_id: str


@dataclass(slots=True)
class _Feed:
    feed_id: str
    submitted_at: float
    messages: dict[int, str]  # messageId -> sku
    status: str = "IN_QUEUE"
    outcome: dict[str, str | None] | None = None  # sku -> None (applied) or the error
    warned: bool = False
    waiting: set[str] = field(default_factory=set)  # SKUs not yet told the outcome
    polled_at: float | None = None  # when getFeed was last asked


@dataclass(slots=True)
class _Document:
    """A feed document written, not submitted yet."""

    body: bytes = b""
    messages: dict[int, str] = field(default_factory=dict)  # messageId -> sku
    lids: dict[str, str] = field(default_factory=dict)  # sku -> listing id
    quantities: dict[str, int] = field(default_factory=dict)  # sku -> quantity


@dataclass(frozen=True, slots=True)
class _ProductType:
    product_type: str
    asin: str | None  # the ASIN it was read with: another ASIN means read it again


@dataclass(slots=True)
class _ReportRun:
    """The listings report being read by the current listing refresh."""

    id: str
    status: str = "IN_QUEUE"
    step: int = 0
    document_id: str | None = None
    url: str = ""
    reader: DocumentReader | None = None

    @property
    def cursor(self) -> str:
        return f"report:{self.id}:{self.step}"

    def next_cursor(self) -> str:
        # A new token each step: the framework refuses a repeated one.
        self.step += 1
        return self.cursor


class AmazonConnector(Connector):
    name = "amazon"
    capabilities = frozenset(
        {
            Capability.PULL_ORDERS,
            Capability.PULL_STOCK,
            Capability.LIST_LISTINGS,
            Capability.PUSH_QUANTITIES,
            Capability.READ_QUANTITIES,
        }
    )
    Settings = AmazonSettings
    rate_limit = None  # one bucket per operation instead (client.OPERATIONS)
    #: A listing's learned productType outlives listing refreshes and restarts (see _extra).
    kept_extra = frozenset({"productType"})

    @classmethod
    def rate_limits(cls, settings: ConnectorSettings) -> dict[str | None, RateLimit]:
        """One named limiter per SP-API operation (client.OPERATIONS) and the feed's."""
        return rate_limits()

    #: A push call takes up to 5 feeds' worth of changes (JSON_LISTINGS_FEED: 5 feeds per
    #: 5 minutes), so that their feeds are submitted together (see _submit_feeds).
    max_push_batch = 5 * FEED_SIZE
    #: Up to this many changes in one push go through patchListingsItem (5/s); more go
    #: through one feed (the feed's round trip takes minutes, the patches seconds).
    patch_limit = 20
    #: A submission not confirmed after this many seconds is reported failed (and its
    #: items sent again); a feed stuck IN_QUEUE/IN_PROGRESS is logged as a warning.
    stuck_after = 3600.0
    #: Seconds between polls of a feed while an earlier one is still processed (see
    #: :meth:`_poll_due`).
    later_feed_poll = 10.0
    #: Seconds between polls of any one feed: getFeed's published rate (2/s). Push runs
    #: may come faster (a run with 4 feeds in flight takes a fraction of a second), and
    #: polling each run spent getFeed's burst (15) in the half minute a feed is processed:
    #: when the feeds of a push then finished moments apart, each one after the first
    #: waited half a second for its getFeed. Kept, the burst polls them all at once.
    feed_poll = 0.5
    #: Times the FBA listing may restart on an expired nextToken before the job fails.
    inventory_restarts = 3
    #: The reconcile's read-back takes the quantities of a listings report read in full
    #: at most this many seconds ago instead of reading them again (see read_quantities).
    report_read_back_age = 600.0

    settings: AmazonSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        s = self.settings
        self.fba = s.fba_warehouse
        self.own = tuple(w for w in context.warehouses if w != self.fba)
        # MFN orders are routed across the channel's warehouses by the framework (a
        # ChannelOrder without warehouse) when those are exactly the own ones. With
        # fba_warehouse listed among them that route would reach FBA stock, which MFN
        # cannot ship: such an order names the first own warehouse instead.
        self._mfn_warehouse = (
            None if self.fba not in context.warehouses else (self.own[0] if self.own else None)
        )
        # The framework's clock (a test's fake one too) for token expiry and in-flight ages.
        self.clock = context.http.clock
        self.client = SpApiClient(
            context.http,
            Credentials(s.lwa_endpoint, s.client_id, s.client_secret, s.refresh_token),
            s.seller_id,
            s.marketplace_id,
            clock=self.clock,
        )
        self._product_types: dict[str, _ProductType] = {}
        self._distrusted: set[str] = set()  # SKUs whose stored productType was refused
        self._learned: dict[str, dict[str, str]] = {}  # sku -> extra to store (see _extra)
        self._listing_report: _ReportRun | None = None
        # The DEFAULT quantities of the last listings report, once read in full (read_at).
        self._report_quantities: dict[str, int] = {}
        self._report_read_at: float | None = None
        self._pending: dict[str, _Submission] = {}
        self._feeds: dict[str, _Feed] = {}

    def base_url(self) -> str:
        return self.settings.endpoint.rstrip("/")

    def authenticate(self, request_headers: dict[str, str]) -> None:
        self.client.authenticate(request_headers)

    # -- orders ---------------------------------------------------------------------------------

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        data = self.client.search_orders(_iso(since), cursor)
        if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
            raise ChannelPayloadError("searchOrders answer lacks orders", channel=self._code)
        # One order we cannot read is refused by id; the others of the page are imported.
        read, rejected = collect_orders(
            data["orders"],
            self._order,
            order_id=lambda raw: raw["orderId"],
            updated_at=lambda raw: order_time(raw, "lastUpdatedTime"),
        )
        orders = [order for order in read if order is not None]
        token = (data.get("pagination") or {}).get("nextToken")
        return OrderPage(orders, token or None, rejected)

    def _order(self, raw: Any) -> ChannelOrder | None:
        """The order (None: none of our stock in it), or an OrderPayloadError naming the
        field in the Orders API's terms."""
        order_id = str(raw["orderId"])
        fulfillment = raw.get("fulfillment") or {}
        state = fulfillment.get("fulfillmentStatus")
        if state not in FULFILLMENT_STATUS:
            raise OrderPayloadError(
                "fulfillment.fulfillmentStatus", f"{str(state)[:60]!r} is not a known status"
            )
        status = FULFILLMENT_STATUS[state]
        by = fulfillment.get("fulfilledBy")
        items = raw.get("orderItems")
        if not isinstance(items, list):
            raise OrderPayloadError("orderItems", "missing" if items is None else "not a list")
        lines = []
        for position, item in enumerate(items):
            quantity = whole_quantity(
                item.get("quantityOrdered"), f"orderItems[{position}].quantityOrdered"
            )
            if quantity > 0:
                revenue, currency = item_revenue(item, f"orderItems[{position}]")
                lines.append(
                    ChannelOrderLine(
                        str(item["orderItemId"]),
                        str(item["product"]["sellerSku"]),
                        quantity,
                        revenue=revenue,
                        currency=currency,
                    )
                )
        updated = order_time(raw, "lastUpdatedTime")
        created = order_time(raw, "createdTime") if raw.get("createdTime") else None
        # fulfillment.fulfilledBy (only with includedData=FULFILLMENT): AMAZON = FBA (AFN),
        # MERCHANT = MFN; it replaces v0's FulfillmentChannel AFN/MFN
        # (https://developer-docs.amazon.com/sp-api/docs/orders-api-v0-to-v2026-01-01-migration-guide).
        if by == "AMAZON":
            if self.fba is None:
                return None  # Amazon ships it from stock we do not track here
            warehouse: str | None = self.fba
        else:
            warehouse = self._mfn_warehouse
        if not lines:
            return None
        return ChannelOrder(order_id, status, updated, tuple(lines), created, warehouse)

    # -- FBA stock ------------------------------------------------------------------------------

    def pull_stock(self) -> list[StockCount]:
        if self.fba is None:
            return []  # no FBA warehouse configured: nothing of ours to count
        for _attempt in range(self.inventory_restarts + 1):
            counts = self._inventory_listing()
            if counts is not None:
                return counts
            log.info("channel=%s: FBA inventory nextToken expired; listing again", self._code)
        raise TemporaryChannelError(
            f"getInventorySummaries: nextToken expired {self.inventory_restarts + 1} times "
            "in a row (pages slower than 30 s)",
            channel=self._code,
        )

    def _inventory_listing(self) -> list[StockCount] | None:
        """All summaries, or None when a page token expired (start again from page one)."""
        found: dict[str, StockCount] = {}
        token: str | None = None
        issued = self.clock()
        while True:
            if token is not None and self.clock() - issued > INVENTORY_TOKEN_LIFE:
                return None
            try:
                data = self.client.inventory_summaries(token)
            except (TemporaryChannelError, AuthenticationError):
                raise
            except ChannelError:
                if token is None:
                    raise
                return None  # 400 on an expired token: restart cleanly
            issued = self.clock()
            payload = data.get("payload") if isinstance(data, dict) else None
            summaries = payload.get("inventorySummaries") if isinstance(payload, dict) else None
            if not isinstance(summaries, list):
                raise ChannelPayloadError(
                    "getInventorySummaries answer lacks payload.inventorySummaries",
                    channel=self._code,
                )
            for summary in summaries:
                count = self._count(summary)
                if count is None:
                    continue
                seen = found.get(count.sku)
                if seen is not None:  # one SKU in several conditions: add them up
                    count = StockCount(
                        count.sku,
                        seen.on_hand + count.on_hand,
                        seen.reserved + count.reserved,
                        warehouse=count.warehouse,
                    )
                found[count.sku] = count
            token = (data.get("pagination") or {}).get("nextToken") or None
            if token is None:
                return list(found.values())

    def _count(self, summary: Any) -> StockCount | None:
        # Sellable now = fulfillableQuantity; reservedQuantity.pendingCustomerOrderQuantity
        # is held for orders placed on Amazon (which we book as AFN orders; the framework
        # counts those units once). Transshipment and FC processing are not sellable.
        # https://developer-docs.amazon.com/sp-api/docs/fba-inventory-api-v1-reference
        try:
            sku = summary.get("sellerSku")
            details = summary["inventoryDetails"]
            fulfillable = int(details.get("fulfillableQuantity") or 0)
            reserved = details.get("reservedQuantity") or {}
            pending = int(reserved.get("pendingCustomerOrderQuantity") or 0)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise ChannelPayloadError(
                f"getInventorySummaries: summary without inventoryDetails ({err!r}); "
                "details=true is required",
                channel=self._code,
            ) from err
        if not sku:
            return None
        return StockCount(str(sku), max(0, fulfillable), max(0, pending), warehouse=self.fba)

    # -- listings -------------------------------------------------------------------------------

    def list_listings(self, cursor: str | None) -> ListingPage:
        """One step of reading the listings report: create it (no cursor), wait for it
        (one getReport per call, paced by its limiter; an empty page and a new cursor
        while Amazon works on it), then one piece of its document per call."""
        if cursor is None:
            run = _ReportRun(self.client.create_report(LISTINGS_REPORT))
            self._listing_report = run
            self._report_quantities, self._report_read_at = {}, None
            log.info("channel=%s: %s report %s requested", self._code, LISTINGS_REPORT, run.id)
        else:
            current = self._listing_report
            if current is None or cursor != current.cursor:
                # The framework reads one report through to the end in one job; a cursor
                # from elsewhere (another process, an abandoned refresh) cannot be resumed.
                raise TemporaryChannelError(
                    f"listing report cursor {cursor!r} is not the report being read; the "
                    "next listing refresh requests a new one",
                    channel=self._code,
                )
            run = current
        if run.reader is None:
            self._check_report(run)
            if run.reader is None:
                if run.status in REPORT_WAITING:
                    return ListingPage([], run.next_cursor())
                self._listing_report = None  # CANCELLED without data: Amazon had nothing to report
                log.info(
                    "channel=%s: report %s CANCELLED with no data: no listings",
                    self._code,
                    run.id,
                )
                return ListingPage([], None)
        reader = run.reader
        try:
            rows = reader.next_rows(lambda start, size: self._download(run, start, size))
        except DocumentError as err:
            self._listing_report = None
            raise ChannelPayloadError(
                f"{LISTINGS_REPORT} report {run.id}: {err}", channel=self._code
            ) from err
        listings = [x for x in map(self._report_listing, rows) if x is not None]
        self._report_quantities.update(
            (x.listing_id, x.quantity) for x in listings if x.quantity is not None
        )
        if not reader.done:
            return ListingPage(listings, run.next_cursor())
        self._listing_report = None
        self._report_read_at = self.clock()
        log.info(
            "channel=%s: report %s read: %d row(s), %d byte(s)",
            self._code,
            run.id,
            reader.rows,
            reader.offset,
        )
        return ListingPage(listings, None)

    def _check_report(self, run: _ReportRun) -> None:
        """getReport once; at DONE, open its document (getReportDocument)."""
        data = self.client.get_report(run.id)
        status = data.get("processingStatus") if isinstance(data, dict) else None
        run.status = str(status)
        if status in REPORT_WAITING:
            return
        document = data.get("reportDocumentId")
        if status == "DONE" and document:
            run.document_id = str(document)
            compression = self._open_document(run)
            try:
                run.reader = DocumentReader(compression)
            except DocumentError as err:
                raise ChannelPayloadError(
                    f"{LISTINGS_REPORT} report {run.id}: {err}", channel=self._code
                ) from err
            return
        if status == "CANCELLED" and not document:
            return
        self._listing_report = None
        # FATAL (its document, when there is one, holds Amazon's reason), or an answer we
        # cannot read: the refresh fails and the listings stay as the last refresh left them.
        where = f"; document {document} holds Amazon's reason" if document else ""
        raise ChannelError(
            f"{LISTINGS_REPORT} report {run.id} ended {status}{where}", channel=self._code
        )

    def _open_document(self, run: _ReportRun) -> str | None:
        """A (new) presigned URL of the report's document; returns its compression."""
        assert run.document_id is not None
        info = self.client.get_report_document(run.document_id)
        url = info.get("url") if isinstance(info, dict) else None
        if not isinstance(url, str):
            raise ChannelPayloadError("getReportDocument answer lacks url", channel=self._code)
        run.url = url
        compression = info.get("compressionAlgorithm")
        return str(compression) if compression else None

    def _download(self, run: _ReportRun, start: int, size: int) -> DocumentPiece:
        try:
            return self.client.download_range(run.url, start, size)
        except AuthenticationError:
            # S3 answers 403 once the presigned URL expired (5 minutes, ReportDocument.url
            # in reports_2021-06-30.json): take a new URL once and go on where we were.
            self._open_document(run)
            return self.client.download_range(run.url, start, size)

    def _report_listing(self, row: Row) -> Listing | None:
        sku = row.get("seller-sku")
        if not sku:
            raise ChannelPayloadError(
                f"{LISTINGS_REPORT} line {row.line}: no seller-sku", channel=self._code
            )
        asin = row.get("asin1") or None
        known = self._product_types.get(sku)
        if known is not None and asin is not None and known.asin not in (None, asin):
            # Another product behind the SKU: its product type must be read again.
            self._forget_product_type(sku)
            known = None
        channel = row.get("fulfillment-channel") or "DEFAULT"
        if channel != "DEFAULT" or not self.own:
            # Fulfilled by Amazon (AMAZON_NA, AMAZON_EU...): Amazon sets that quantity from
            # what it holds; only DEFAULT is settable. FBA stock comes from pull_stock.
            return None
        quantity = row.get("quantity")
        return Listing(
            listing_id=sku,
            sku=sku,
            warehouses=self.own,
            quantity=int(quantity) if quantity.isdigit() else None,
            extra=self._extra(sku, known),
        )

    def _extra(self, sku: str, known: _ProductType | None) -> dict[str, str]:
        """The productType we learned for the listing. The framework keeps a stored one when
        a refresh carries none (:attr:`kept_extra`), so one learned before a restart is not
        read again after it; a refused one is stored empty, so it is not used again."""
        if known is not None:
            return {"productType": known.product_type}
        if sku in self._distrusted:
            return {"productType": ""}
        return {}

    def _listing(self, item: Any) -> Listing | None:
        """A listing from a Listings Items API item (searchListingsItems, for reading
        quantities back)."""
        sku = item.get("sku") if isinstance(item, dict) else None
        if not isinstance(sku, str):
            raise ChannelPayloadError("searchListingsItems: item without sku", channel=self._code)
        product_type = self._remember_product_type(sku, item)
        availability = item.get("fulfillmentAvailability") or []
        default = next(
            (a for a in availability if a.get("fulfillmentChannelCode") == "DEFAULT"), None
        )
        if (default is None and availability) or not self.own:
            # Fulfilled by Amazon: not ours to set (see _report_listing).
            # https://developer-docs.amazon.com/sp-api/docs/listings-items-api-v2021-08-01-use-case-guide
            return None
        quantity = default.get("quantity") if default else None
        known = self._product_types.get(sku) if product_type else None
        return Listing(
            listing_id=sku,
            sku=sku,
            warehouses=self.own,
            quantity=int(quantity) if isinstance(quantity, int) else None,
            extra=self._extra(sku, known),
        )

    def _remember_product_type(self, sku: str, item: dict[str, Any]) -> str | None:
        """Keep the productType (and the ASIN it goes with) of a Listings Items API item."""
        summaries = item.get("summaries") or []
        ours = [s for s in summaries if s.get("marketplaceId") == self.settings.marketplace_id]
        for summary in ours or summaries:
            if summary.get("productType"):
                found = str(summary["productType"])
                asin = summary.get("asin")
                known = _ProductType(found, str(asin) if asin else None)
                if self._product_types.get(sku) != known:
                    # kept in the listing's stored extra (take_learned_extra)
                    self._learned[sku] = {"productType": found}
                self._product_types[sku] = known
                self._distrusted.discard(sku)
                return found
        return None

    def take_learned_extra(self) -> dict[str, dict[str, str]]:
        """The product types learned (or refused: stored empty) since the last call, for
        the framework to keep in the listings' extra: a restart then reads none again."""
        learned, self._learned = self._learned, {}
        return learned

    def _forget_product_type(self, sku: str) -> None:
        """Amazon refused a submission for ``sku`` or its ASIN changed: read its product
        type again before the next one, not trusting the stored listing's either."""
        self._product_types.pop(sku, None)
        self._distrusted.add(sku)
        self._learned[sku] = {"productType": ""}

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """The quantities of the listings report read in full at most
        :attr:`report_read_back_age` ago (a daemon start refreshes the listings right
        before its reconcile: 100,000 quantities read back 20 per searchListingsItems at
        5/s would take 1,000 s), else, and for listings it lacks, searchListingsItems."""
        by_sku = {(x.sku or x.listing_id): x.listing_id for x in listings}
        found: dict[str, int] = {}
        read_at = self._report_read_at
        if read_at is not None and self.clock() - read_at <= self.report_read_back_age:
            shown = self._report_quantities
            found = {lid: shown[sku] for sku, lid in by_sku.items() if sku in shown}
        skus = [sku for sku, lid in by_sku.items() if lid not in found]
        for start in range(0, len(skus), 20):  # identifiers: at most 20
            data = self.client.search_listings(skus=skus[start : start + 20])
            for item in data.get("items") or []:
                listing = self._listing(item)
                if (
                    listing is not None
                    and listing.quantity is not None
                    and listing.listing_id in by_sku
                ):
                    found[by_sku[listing.listing_id]] = listing.quantity
        return found

    # -- push -----------------------------------------------------------------------------------

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        now = self.clock()
        polled: set[str] = set()
        results: list[PushResult] = []
        submit: list[PushItem] = []
        for item in items:
            lid = item.listing.listing_id
            sku = item.listing.sku or lid
            pending = self._pending.get(sku)
            if pending is not None:
                outcome = self._follow(lid, pending, now, polled)
                if pending.quantity == item.quantity:
                    results.append(outcome)
                    continue
                if pending.kind == "feed" and outcome.status is PushStatus.RETRY:
                    # A PATCH and a queued feed for one SKU may be applied out of order
                    # (research/channel-apis.md, Feeds): wait for the feed, then send.
                    results.append(
                        PushResult.retry(
                            lid, f"waiting for feed {pending.ref} before sending {item.quantity}"
                        )
                    )
                    continue
                self._pending.pop(sku, None)  # superseded by the new quantity
            submit.append(item)
        if len(submit) <= self.patch_limit:
            results.extend(self._patch(item, now) for item in submit)
        else:
            results.extend(self._submit_feeds(submit, now))
        return results

    def pushes_in_flight(self) -> PushesInFlight:
        """The feeds in flight, each polled once (getFeed, 2/s; its processing report once
        it is done): the outcomes of those that finished or got stuck, and the quantities
        still queued. The push job then hands none of those over again: a push run while
        4 feeds of 100,000 changes are queued costs 4 getFeed calls, not 100,000 items.
        Patches (at most :attr:`patch_limit` a push) are still followed by
        :meth:`push_quantities`, one getListingsItem each."""
        now = self.clock()
        polled: set[str] = set()
        settled: list[tuple[PushResult, int]] = []
        behind = False  # an earlier feed is still queued or in progress
        for feed in list(self._feeds.values()):
            if self._poll_due(feed, now, behind):
                self._poll(feed, polled)
                feed.polled_at = now
            behind = feed.outcome is None and now - feed.submitted_at <= self.stuck_after
            outcome = feed.outcome
            if outcome is None and now - feed.submitted_at <= self.stuck_after:
                continue
            for sku in feed.messages.values():
                pending = self._pending.get(sku)
                if pending is None or pending.ref != feed.feed_id:
                    continue  # told already, or superseded by a later submission
                if outcome is None:  # stuck: reported failed (and warned of) as _follow does
                    result = self._follow(pending.listing_id, pending, now, polled)
                else:
                    del self._pending[sku]
                    error = outcome.get(sku)
                    result = (
                        PushResult.ok(pending.listing_id)
                        if error is None
                        else PushResult.failed(pending.listing_id, error)
                    )
                settled.append((result, pending.quantity))
            self._feeds.pop(feed.feed_id, None)
        waiting = {
            pending.listing_id: pending.quantity
            for pending in self._pending.values()
            if pending.kind == "feed"
        }
        return PushesInFlight(settled, waiting)

    def _follow(self, lid: str, pending: _Submission, now: float, polled: set[str]) -> PushResult:
        """Where a submission stands: OK once applied, RETRY while queued, FAILED when
        refused or stuck."""
        age = now - pending.submitted_at
        if pending.kind == "patch":
            if age > self.stuck_after:
                self._pending.pop(pending.sku, None)
                log.warning(
                    "channel=%s: %s=%d accepted (submission %s) but not applied after %s; "
                    "sending it again",
                    self._code,
                    pending.sku,
                    pending.quantity,
                    pending.ref,
                    _minutes(age),
                )
                return PushResult.failed(
                    lid, f"patch {pending.ref} accepted but not applied after {_minutes(age)}"
                )
            try:
                data = self.client.get_listings_item(pending.sku, "fulfillmentAvailability")
            except (TemporaryChannelError, AuthenticationError):
                raise
            except ChannelError as err:  # e.g. 404: the offer is gone; send again next time
                self._pending.pop(pending.sku, None)
                return PushResult.failed(lid, str(err))
            if _default_quantity(data) == pending.quantity:
                self._pending.pop(pending.sku, None)
                return PushResult.ok(lid)
            return PushResult.retry(lid, f"accepted (submission {pending.ref}), not applied yet")
        feed = self._feeds.get(pending.ref)
        if feed is None:  # cannot happen; be safe and send again
            self._pending.pop(pending.sku, None)
            return PushResult.failed(lid, f"feed {pending.ref} forgotten")
        self._poll(feed, polled)
        if feed.outcome is not None:
            self._pending.pop(pending.sku, None)
            feed.waiting.discard(pending.sku)
            if not feed.waiting:
                self._feeds.pop(feed.feed_id, None)
            error = feed.outcome.get(pending.sku)
            return PushResult.ok(lid) if error is None else PushResult.failed(lid, error)
        age = now - feed.submitted_at
        if age > self.stuck_after:
            if not feed.warned:
                feed.warned = True
                log.warning(
                    "channel=%s: feed %s still %s after %s; its %d listing(s) are reported "
                    "failed and sent again",
                    self._code,
                    feed.feed_id,
                    feed.status,
                    _minutes(age),
                    len(feed.waiting),
                )
            self._pending.pop(pending.sku, None)
            feed.waiting.discard(pending.sku)
            if not feed.waiting:
                self._feeds.pop(feed.feed_id, None)
            return PushResult.failed(
                lid, f"feed {feed.feed_id} stuck {feed.status} for {_minutes(age)}"
            )
        return PushResult.retry(lid, f"feed {feed.feed_id} {feed.status}")

    def _poll_due(self, feed: _Feed, now: float, behind: bool) -> bool:
        """Whether a feed is polled now: at most every :attr:`feed_poll` seconds, and
        while one submitted before it is still processed (``behind``) only every
        :attr:`later_feed_poll` seconds. Amazon processes a seller's feeds in the order
        they came, so getFeed's 2/s then follow the feed that finishes next, instead of
        going round all of them: the last of 4 feeds is seen done within a poll, not
        within 4."""
        every = self.later_feed_poll if behind else self.feed_poll
        return feed.polled_at is None or now - feed.polled_at >= every

    def _poll(self, feed: _Feed, polled: set[str]) -> None:
        """getFeed once per push call; read the processing report when it is done."""
        if feed.outcome is not None or feed.feed_id in polled:
            return
        polled.add(feed.feed_id)
        try:
            data = self.client.get_feed(feed.feed_id)
        except (TemporaryChannelError, AuthenticationError):
            raise
        except ChannelError as err:  # the feed is unknown to Amazon: its items go again
            feed.status = "UNKNOWN"
            feed.outcome = dict.fromkeys(feed.messages.values(), f"getFeed: {err}"[:1000])
            return
        status = str(data.get("processingStatus")) if isinstance(data, dict) else ""
        feed.status = status
        if status not in FEED_DONE:
            return
        errors: dict[str, list[str]] = {}
        general: list[str] = []
        document = data.get("resultFeedDocumentId")
        if document:
            for issue in self._report(str(document)):
                if issue.get("severity") != "ERROR":
                    continue
                text = f"{issue.get('code', '')}: {issue.get('message', '')}".strip(": ")
                sku = feed.messages.get(issue.get("messageId", -1))
                if sku is None:
                    general.append(text)
                else:
                    errors.setdefault(sku, []).append(text)
        outcome: dict[str, str | None] = {}
        for sku in feed.messages.values():
            if status != "DONE":
                reason = "; ".join(general) or "no processing report"
                outcome[sku] = f"feed {feed.feed_id} {status}: {reason}"[:1000]
            elif sku in errors:
                outcome[sku] = "; ".join(errors[sku])[:1000]
                self._forget_product_type(sku)
            else:
                outcome[sku] = None
        feed.outcome = outcome

    def _report(self, document_id: str) -> list[dict[str, Any]]:
        # getFeedDocument -> {url, compressionAlgorithm?: GZIP}; the report follows
        # listings-feed-processing-report-schema-v2.json: issues[{messageId, sku, code,
        # severity, message}], summary{...}.
        info = self.client.get_feed_document(document_id)
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            raise ChannelPayloadError("getFeedDocument answer lacks url", channel=self._code)
        body = self.client.download(info["url"], info.get("compressionAlgorithm"))
        try:
            report = json.loads(body)
        except ValueError as err:
            raise ChannelPayloadError(
                f"feed processing report unreadable: {err}", channel=self._code
            ) from err
        issues = report.get("issues") if isinstance(report, dict) else None
        return [i for i in issues or [] if isinstance(i, dict)]

    def _known_product_type(self, listing: Listing) -> str | None:
        sku = listing.sku or listing.listing_id
        known = self._product_types.get(sku)
        if known is not None:
            return known.product_type
        if sku in self._distrusted:
            return None
        # Learned before, by this instance or one before a restart (the framework keeps it
        # in the listing's extra). Its ASIN is not stored: should the SKU have become another
        # product meanwhile, Amazon refuses the message and the type is read again.
        return listing.extra.get("productType") or None

    def _product_type(self, listing: Listing) -> str:
        found = self._known_product_type(listing)
        if found:
            return found
        # productType is required by patchListingsItem and feed PATCH messages, and the
        # listings report does not carry it: read it once per SKU and keep it
        # (listings-items-api use case guide). No generic value is sent instead: the feed
        # schema (listings-feed-schema-v2.json, messages[].productType: "Amazon product
        # type of the listings data submission", examples LUGGAGE, SHOES; required for
        # PATCH) names none, and Amazon's own documents we found give no generic type
        # for a quantity PATCH of an existing listing, only community reports of "PRODUCT".
        sku = listing.sku or listing.listing_id
        data = self.client.get_listings_item(sku, "summaries")
        found = self._remember_product_type(sku, data) if isinstance(data, dict) else None
        if not found:
            raise ChannelPayloadError(
                f"{sku}: no productType in getListingsItem", channel=self._code
            )
        return found

    def _learn_product_types(self, items: Sequence[PushItem]) -> None:
        """Read the unknown product types of many listings 20 SKUs per
        searchListingsItems (5/s: 100 SKUs/s) rather than one getListingsItem each."""
        unknown = list(
            dict.fromkeys(
                item.listing.sku or item.listing.listing_id
                for item in items
                if not self._known_product_type(item.listing)
            )
        )
        for start in range(0, len(unknown), 20):  # identifiers: at most 20
            data = self.client.search_listings(skus=unknown[start : start + 20])
            for item in (data.get("items") if isinstance(data, dict) else None) or []:
                if isinstance(item, dict) and isinstance(item.get("sku"), str):
                    self._remember_product_type(item["sku"], item)

    def _patch(self, item: PushItem, now: float) -> PushResult:
        lid = item.listing.listing_id
        sku = item.listing.sku or lid
        try:
            product_type = self._product_type(item.listing)
            data = self.client.patch_quantity(sku, product_type, item.quantity)
        except (TemporaryChannelError, AuthenticationError):
            raise
        except ChannelError as err:  # 400/404 for this SKU: refused, the others go on
            return PushResult.failed(lid, str(err))
        status = data.get("status") if isinstance(data, dict) else None
        # Always HTTP 200: ACCEPTED = queued, not applied; INVALID = refused, with issues.
        if status == "ACCEPTED":
            ref = str(data.get("submissionId", ""))
            self._pending[sku] = _Submission(sku, item.quantity, "patch", now, ref, lid)
            return PushResult.retry(lid, f"accepted (submission {ref}), not applied yet")
        self._forget_product_type(sku)
        issues = data.get("issues") if isinstance(data, dict) else None
        text = "; ".join(
            f"{i.get('code', '')}: {i.get('message', '')}"
            for i in issues or []
            if isinstance(i, dict) and i.get("severity") == "ERROR"
        )
        return PushResult.failed(lid, f"{status}: {text or 'refused'}"[:1000])

    def _submit_feeds(self, items: Sequence[PushItem], now: float) -> list[PushResult]:
        """One JSON_LISTINGS_FEED per 25,000 changes. A worker thread submits each feed
        (createFeedDocument, the upload, createFeed) while this one writes the next
        document, so the feeds of a push start moments apart and are processed side by
        side; all are submitted (or failed) when this returns. Requests never go out from
        both threads at once: reading unknown product types waits for the worker."""
        results: list[PushResult] = []
        submitted: list[tuple[Future[str], _Document]] = []
        with ThreadPoolExecutor(1, thread_name_prefix=f"{self._code}-feeds") as worker:
            for start in range(0, len(items), FEED_SIZE):
                chunk = items[start : start + FEED_SIZE]
                if any(not self._known_product_type(item.listing) for item in chunk):
                    wait([future for future, _document in submitted])
                    # Up to 1,250 requests a chunk at 5/s: collection runs meanwhile (the
                    # framework pauses it while a push only submits, see the SDK's
                    # collection_resumed), or their cycles wait and memory grows.
                    with collection_resumed():
                        self._learn_product_types(chunk)
                document = self._document(chunk, results)
                if document is not None:
                    submitted.append((worker.submit(self._submit, document.body), document))
        error: BaseException | None = None
        for future, document in submitted:
            try:
                feed_id = future.result()
            except Exception as err:  # raised below, once the others are recorded
                error = error or err
                continue
            self._feeds[feed_id] = _Feed(
                feed_id, now, document.messages, waiting=set(document.messages.values())
            )
            for sku, lid in document.lids.items():
                self._pending[sku] = _Submission(
                    sku, document.quantities[sku], "feed", now, feed_id, lid
                )
                results.append(PushResult.retry(lid, f"in feed {feed_id}, queued"))
            log.info(
                "channel=%s: feed %s submitted, %d message(s)",
                self._code,
                feed_id,
                len(document.messages),
            )
        if error is not None:
            raise error
        return results

    def _document(self, items: Sequence[PushItem], results: list[PushResult]) -> _Document | None:
        """The feed document of up to 25,000 changes (None: not one of them can be sent;
        their failures are added to ``results``)."""
        document = _Document()
        messages: list[str] = []
        quoted: dict[str, str] = {}  # productType -> as a JSON string
        for item in items:
            lid = item.listing.listing_id
            sku = item.listing.sku or lid
            try:
                product_type = self._product_type(item.listing)
            except (TemporaryChannelError, AuthenticationError):
                raise
            except ChannelError as err:
                results.append(PushResult.failed(lid, str(err)))
                continue
            type_json = quoted.get(product_type)
            if type_json is None:
                type_json = quoted[product_type] = _json_string(product_type)
            message_id = len(messages) + 1
            # One PATCH message (listings-feed-schema-v2.json), written as text: 25,000 of
            # them as dicts through json.dumps cost several times more.
            messages.append(
                FEED_MESSAGE % (message_id, _json_string(sku), type_json, int(item.quantity))
            )
            document.messages[message_id] = sku
            document.lids[sku] = lid
            document.quantities[sku] = item.quantity
        if not messages:
            return None
        header = json.dumps({"sellerId": self.settings.seller_id, "version": "2.0"})
        document.body = f'{{"header":{header},"messages":[{",".join(messages)}]}}'.encode()
        return document

    def _submit(self, body: bytes) -> str:
        """createFeedDocument, the upload, createFeed: the new feed's id."""
        document_id, url = self.client.create_feed_document()
        try:
            self.client.upload(url, body)
        except AuthenticationError:
            # The presigned URL expired (5 minutes) before the upload: take a new one.
            document_id, url = self.client.create_feed_document()
            self.client.upload(url, body)
        return self.client.create_feed(document_id)

    @property
    def _code(self) -> str:
        return self.context.channel


def _default_quantity(data: Any) -> int | None:
    for entry in (data.get("fulfillmentAvailability") if isinstance(data, dict) else None) or []:
        if entry.get("fulfillmentChannelCode") == "DEFAULT":
            quantity = entry.get("quantity")
            return int(quantity) if isinstance(quantity, int) else None
    return None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"
