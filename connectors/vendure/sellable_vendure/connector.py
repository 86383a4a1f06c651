"""The Vendure connector: listings, quantities and orders through Vendure's Admin API.

Usage (``sellable.toml``)::

    [[channels]]
    code = "vendure"
    connector = "vendure"
    warehouses = ["main"]
    [channels.settings]
    admin_api_url = "https://shop.example.com/admin-api"
    username = "sellable"
    password = "..."
    stock_locations = { "1" = "main" }   # optional

See docs/connectors/vendure.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, SecretStr, field_validator

from sellable.sdk import (
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
    OrderStatus,
    PushItem,
    PushResult,
    RateLimit,
    collect_orders,
)
from sellable_vendure.client import (
    GlobalStockSettings,
    Order,
    StockUpdate,
    Variant,
    VendureAdminClient,
    format_time,
)

PAGE_SIZE = 100
#: Variants per listing page: the Admin API's ``adminListQueryLimit``, 1000 unless the
#: server's configuration lowers it (``apiOptions`` in Vendure's default config); a larger
#: ``take`` is refused. ``page_size`` sets another.
LISTING_PAGE_SIZE = 1000

#: Cancelling an order does bump its ``updatedAt`` (seen on Vendure 3.7.3), so the re-check
#: leaves cancelled orders to the ``updatedAt`` pass. Every other state is read again: an
#: order can go from PaymentSettled straight to Shipped or Delivered without a new
#: ``updatedAt``, so filtering on the current state would hide exactly the changes the
#: re-check is for. The default order process:
#: https://docs.vendure.io/guides/core-concepts/orders/
RECHECK_SKIPS = ("Cancelled",)
#: States in which some fulfillments may have left the warehouse.
FULFILMENT_STATES = frozenset({"PartiallyShipped", "Shipped", "PartiallyDelivered", "Delivered"})
#: Fulfillment states that mean the goods left (a new fulfillment starts as "Pending"):
#: https://docs.vendure.io/reference/typescript-api/fulfillment/fulfillment-state
SHIPPED_FULFILMENT_STATES = frozenset({"Shipped", "Delivered"})

ONE_MS = timedelta(milliseconds=1)


class VendureSettings(ConnectorSettings):
    """``[channels.settings]`` of a Vendure channel."""

    admin_api_url: str = Field(description="the Admin API endpoint, e.g. https://host/admin-api")
    username: str = Field(min_length=1, description="an administrator (see the permissions)")
    password: SecretStr
    stock_locations: dict[str, str] = Field(
        default_factory=dict,
        description="Vendure stock location id -> our warehouse code; without it the "
        "channel's default stock location gets the channel's total",
    )
    backorder_limit: int = Field(
        default=1_000_000,
        ge=1,
        le=2**31 - 1,
        description='units Vendure may sell beyond stock while backorders = "continue" keeps '
        "a variant on sale (its outOfStockThreshold is then minus this; Vendure has no "
        "unlimited setting)",
    )
    recheck_days: int = Field(
        default=14,
        ge=0,
        le=365,
        description="placed orders that are not cancelled are read again on every pull "
        "for this many days before the pull's start (Vendure leaves updatedAt alone when an "
        "order is paid or shipped); 0 turns the re-check off",
    )

    page_size: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="variants per listing page: the server's adminListQueryLimit (1000 "
        "unless its configuration changed it)",
    )

    @field_validator("admin_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")


class VendureConnector(Connector):
    """Vendure (https://vendure.io) through its Admin GraphQL API."""

    name = "vendure"
    capabilities = frozenset(
        {
            Capability.LIST_LISTINGS,
            Capability.PUSH_QUANTITIES,
            Capability.READ_QUANTITIES,
            Capability.PULL_ORDERS,
        }
    )
    Settings = VendureSettings
    # Vendure publishes no request limit: it is self-hosted, and each of our requests is
    # one GraphQL document covering up to 100 variants or orders. Ten a second with a
    # burst of 20 keeps a small server responsive for its shoppers.
    rate_limit = RateLimit(rate=10, burst=20)
    max_push_batch = PAGE_SIZE
    # A reconcile reads as many variants a request as a listing page holds (the Admin API's
    # adminListQueryLimit, 1000 by default); read_quantities splits a larger call by
    # ``page_size`` when the server's limit is lower.
    max_read_batch = LISTING_PAGE_SIZE
    # "Back orders can be enabled by setting a negative value as the Out-of-stock threshold"
    # (https://docs.vendure.io/user-guide/catalog/products, "Back orders").
    supports_backorders = True
    backorders_flag = "Vendure outOfStockThreshold=-backorder_limit"

    settings: VendureSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.client = VendureAdminClient(self.http, self.settings.username, self.settings.password)

    def base_url(self) -> str:
        return self.settings.admin_api_url

    def authenticate(self, request_headers: dict[str, str]) -> None:
        self.client.authenticate(request_headers)

    # -- listings -------------------------------------------------------------------------------

    def list_listings(self, cursor: str | None) -> ListingPage:
        """Every variant of the channel, paged by id, one listing per (variant, stock
        location): the table's locations, or the channel's default stock location."""
        skip = _int_cursor(cursor)
        page = self.client.variants(skip, self.settings.page_size or LISTING_PAGE_SIZE)
        locations = self._locations(page.stock_locations)
        listings = [
            Listing(
                listing_id=listing_id(variant.id, location),
                sku=variant.sku,
                parent_id=variant.product_id,
                warehouses=(warehouse,) if warehouse is not None else None,
                quantity=saleable_at(
                    variant,
                    location,
                    page.stock_settings,
                    carries_threshold=self._carries_threshold(location),
                ),
                extra={"variant_id": variant.id, "stock_location_id": location},
            )
            for variant in page.variants
            for location, warehouse in locations
        ]
        done = skip + len(page.variants)
        more = page.variants and done < page.total
        return ListingPage(listings, str(done) if more else None)

    def _locations(self, known: Sequence[Any]) -> list[tuple[str, str | None]]:
        """(stock location id, warehouse code or None) of every listing of a variant."""
        ids = [location.id for location in known]
        table = self.settings.stock_locations
        if not table:
            if not ids:
                raise ChannelError(
                    "Vendure lists no stock location for this channel",
                    channel=self.context.channel,
                )
            # The oldest stock location of the channel is Vendure's default, the one a plain
            # stockOnHand update goes to (StockLocationService.defaultStockLocation):
            # https://github.com/vendurehq/vendure/blob/master/packages/core/src/service/services/stock-location.service.ts
            return [(ids[0], None)]
        described = ", ".join(f"{loc.id} ({loc.name})" for loc in known) or "none"
        for location, warehouse in table.items():
            if location not in ids:
                raise ChannelError(
                    f"stock location {location!r} in stock_locations is not a stock location "
                    f"of this Vendure channel (known: {described})",
                    channel=self.context.channel,
                )
            if warehouse not in self.context.warehouses:
                raise ChannelError(
                    f"warehouse {warehouse!r} in stock_locations is not one of the channel's "
                    f"warehouses ({', '.join(self.context.warehouses)})",
                    channel=self.context.channel,
                )
        return [(location, warehouse) for location, warehouse in table.items()]

    # -- quantities -----------------------------------------------------------------------------

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Set each listing's saleable stock by writing the stockOnHand that gives it (see
        :func:`stock_on_hand_for`), one aliased ``updateProductVariants`` field per variant.

        Where the keep-selling flag changes, the same input sets the variant's own
        ``outOfStockThreshold`` (``useGlobalOutOfStockThreshold`` false): minus
        ``backorder_limit`` to keep selling beyond stock, 0 to stop at 0. The threshold is
        the variant's, shared by its listings at every location: negative when any of them
        asks to keep selling."""
        keys = {item.listing.listing_id: _keys(item.listing) for item in items}
        if not keys:
            return []
        variants, stock_settings = self.client.variants_by_id(
            sorted({variant for variant, _ in keys.values()})
        )
        thresholds: dict[str, int] = {}  # variant -> the threshold this push sets
        for item in items:
            if item.backorders_changed:
                variant_id = keys[item.listing.listing_id][0]
                keep_selling = item.backorders or thresholds.get(variant_id, 0) < 0
                thresholds[variant_id] = -self.settings.backorder_limit if keep_selling else 0
        results: list[PushResult] = []
        wanted: dict[str, dict[str, int]] = {}  # variant -> location -> stockOnHand
        listing_of: dict[tuple[str, str], str] = {}
        for item in items:
            lid = item.listing.listing_id
            variant_id, location = keys[lid]
            variant = variants.get(variant_id)
            if variant is None:
                results.append(
                    PushResult.failed(lid, f"variant {variant_id} no longer exists in Vendure")
                )
                continue
            if variant_id in thresholds:
                variant = replace(
                    variant,
                    out_of_stock_threshold=thresholds[variant_id],
                    use_global_out_of_stock_threshold=False,
                )
            on_hand = stock_on_hand_for(
                item.quantity,
                variant,
                location,
                stock_settings,
                carries_threshold=self._carries_threshold(location),
            )
            held = {level.location_id: level.on_hand for level in variant.stock_levels}
            if held.get(location) == on_hand and variant_id not in thresholds:
                # Vendure already holds exactly this: nothing to write (a push right after
                # a restart, or a quantity that changed back). A location without a stock
                # level row yet still gets one written.
                results.append(PushResult.ok(lid))
                continue
            wanted.setdefault(variant_id, {})[location] = on_hand
            listing_of[(variant_id, location)] = lid
        updates = [
            StockUpdate(variant_id, tuple(levels.items()), thresholds.get(variant_id))
            for variant_id, levels in wanted.items()
        ]
        for outcome in self.client.set_stock_levels(updates):
            threshold = thresholds.get(outcome.variant_id)
            for location, on_hand in wanted[outcome.variant_id].items():
                lid = listing_of[(outcome.variant_id, location)]
                if outcome.error is not None or outcome.on_hand is None:
                    results.append(PushResult.failed(lid, outcome.error or "not applied"))
                elif outcome.on_hand.get(location) != on_hand:
                    results.append(
                        PushResult.failed(
                            lid,
                            f"Vendure holds stockOnHand {outcome.on_hand.get(location)} at "
                            f"location {location}, not the {on_hand} sent",
                        )
                    )
                elif outcome.threshold != threshold:
                    results.append(
                        PushResult.failed(
                            lid,
                            f"Vendure holds outOfStockThreshold {outcome.threshold}, not the "
                            f"{threshold} sent",
                        )
                    )
                else:
                    results.append(PushResult.ok(lid))
        return results

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """The saleable stock Vendure would show for each listing now."""
        keys = {listing.listing_id: _keys(listing) for listing in listings}
        if not keys:
            return {}
        wanted = sorted({variant for variant, _ in keys.values()})
        size = self.settings.page_size or LISTING_PAGE_SIZE
        variants: dict[str, Variant] = {}
        for start in range(0, len(wanted), size):
            part, stock_settings = self.client.variants_by_id(wanted[start : start + size])
            variants.update(part)
        found: dict[str, int] = {}
        for lid, (variant_id, location) in keys.items():
            variant = variants.get(variant_id)
            if variant is not None:
                found[lid] = saleable_at(
                    variant,
                    location,
                    stock_settings,
                    carries_threshold=self._carries_threshold(location),
                )
        return found

    def _carries_threshold(self, location: str) -> bool:
        """Vendure subtracts the out-of-stock threshold once from the variant's total over
        all locations (ProductVariantService.getSaleableStockLevel), so exactly one location
        makes up for it: the first of ``stock_locations``, or the only one without a table.
        https://github.com/vendurehq/vendure/blob/master/packages/core/src/service/services/product-variant.service.ts
        """
        table = self.settings.stock_locations
        return not table or next(iter(table)) == location

    # -- orders ---------------------------------------------------------------------------------

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        """Placed orders updated at or after ``since``, then every order placed up to
        ``recheck_days`` before ``since`` that is not cancelled.

        Vendure does not touch an order's ``updatedAt`` when it is placed, paid or shipped
        (it does when it is cancelled), so an ``updatedAt`` cursor alone would miss
        those changes; the second pass reads them. Seen on Vendure 3.7.3: the end-to-end
        test tests/connectors/vendure/test_vendure_e2e.py asserts that ``updatedAt`` stays
        put through payment and shipping.
        """
        phase = OrderCursor.parse(cursor, since)
        page = self.client.orders(phase.filter(), phase.sort(), phase.ties, PAGE_SIZE)
        orders, rejected = collect_orders(
            [order for order in page.orders if _is_placed(order)],
            to_channel_order,
            order_id=lambda order: order.code,
            updated_at=lambda order: order.updated_at,
        )
        rejected = list(page.rejected) + rejected
        if page.size < PAGE_SIZE:
            following = phase.following(since, self.settings.recheck_days)
        elif not page.orders:
            raise ChannelPayloadError(
                f"a whole page of {page.size} orders could not be read (the first: "
                f"{rejected[0].describe()}); the pull cannot page past them",
                channel=self.context.channel,
            )
        else:
            # The keys of the orders read: an order refused after the last of them, or in
            # its tie, is read again on the next page, never skipped.
            following = phase.after([phase.key(order) for order in page.orders])
        return OrderPage(orders, following.encode() if following else None, rejected)


# -- pure mapping (tested without HTTP) -----------------------------------------------------------


def listing_id(variant_id: str, location_id: str) -> str:
    """Unique per (variant, stock location), as the SDK asks for per-location quantities."""
    return f"{variant_id}@{location_id}"


def _keys(listing: Listing) -> tuple[str, str]:
    variant = listing.extra.get("variant_id")
    location = listing.extra.get("stock_location_id")
    if variant and location:
        return variant, location
    variant, at, location = listing.listing_id.partition("@")
    if not at or not variant or not location:
        raise ChannelPayloadError(f"listing id {listing.listing_id!r} is not VARIANT@LOCATION")
    return variant, location


def effective_threshold(variant: Variant, stock_settings: GlobalStockSettings) -> int:
    """The out-of-stock threshold Vendure applies to ``variant``."""
    if variant.use_global_out_of_stock_threshold:
        return stock_settings.out_of_stock_threshold
    return variant.out_of_stock_threshold


def kept_back(variant: Variant, stock_settings: GlobalStockSettings) -> int:
    """The units Vendure keeps back from sale: a positive threshold. A negative one (ours
    while backorders = "continue", or the merchant's) lets it sell beyond stock, which
    stockOnHand must not make up for (and cannot: it would go below 0)."""
    return max(0, effective_threshold(variant, stock_settings))


def saleable_at(
    variant: Variant,
    location: str,
    stock_settings: GlobalStockSettings,
    *,
    carries_threshold: bool,
) -> int:
    """This location's share of Vendure's saleable stock, ``stockOnHand - stockAllocated -
    outOfStockThreshold`` (the threshold counted at one location only), without what a
    negative threshold lets Vendure sell beyond stock: that is a backorder allowance, not
    stock (see :func:`kept_back`)."""
    level = variant.level(location)
    threshold = kept_back(variant, stock_settings) if carries_threshold else 0
    return level.on_hand - level.allocated - threshold


def stock_on_hand_for(
    sellable: int,
    variant: Variant,
    location: str,
    stock_settings: GlobalStockSettings,
    *,
    carries_threshold: bool,
) -> int:
    """The absolute stockOnHand that makes :func:`saleable_at` equal ``sellable``: our
    sellable quantity plus what Vendure has allocated to its open orders at this location
    (those units are still on its shelf) plus the threshold Vendure keeps back."""
    level = variant.level(location)
    threshold = kept_back(variant, stock_settings) if carries_threshold else 0
    return sellable + level.allocated + threshold


def order_status(order: Order) -> OrderStatus:
    """Our status of a placed Vendure order.

    Shipped once every line is covered by fulfillments that left (Shipped or Delivered);
    until then a partly shipped order is open and says which lines shipped (see
    :func:`line_statuses`). States of a custom order process count as open too, which
    keeps stock allocated rather than selling it twice.
    """
    if order.state == "Cancelled":
        return OrderStatus.CANCELLED
    shipped = line_statuses(order)
    if order.state in FULFILMENT_STATES and all(
        shipped[line.id] is OrderStatus.SHIPPED for line in order.lines if line.quantity > 0
    ):
        return OrderStatus.SHIPPED
    return OrderStatus.OPEN


def line_statuses(order: Order) -> dict[str, OrderStatus | None]:
    """Each line's own status: shipped when fulfillments that left cover all its units.

    A line shipped in part (2 of 3 units) stays open as a whole: a line has one status,
    and open keeps its units allocated, so nothing is sold twice; Vendure's own figures
    already count the shipped units, which is what the next push reads.
    """
    left: dict[str, int] = {}
    if order.state in FULFILMENT_STATES:
        for fulfillment in order.fulfillments:
            if fulfillment.state in SHIPPED_FULFILMENT_STATES:
                for part in fulfillment.lines:
                    left[part.order_line_id] = left.get(part.order_line_id, 0) + part.quantity
    return {
        line.id: OrderStatus.SHIPPED if 0 < line.quantity <= left.get(line.id, 0) else None
        for line in order.lines
    }


def to_channel_order(order: Order) -> ChannelOrder:
    status = order_status(order)
    lines = line_statuses(order) if status is OrderStatus.OPEN else {}
    return ChannelOrder(
        order_id=order.code,
        status=status,
        updated_at=order.updated_at,
        lines=tuple(
            ChannelOrderLine(
                line.id,
                line.sku,
                line.quantity,
                lines.get(line.id),
                revenue=line.revenue,
                currency=order.currency,
            )
            for line in order.lines
        ),
        created_at=order.placed_at or order.created_at,
        shipping_address=order.shipping,
    )


def _is_placed(order: Order) -> bool:
    # A cart being built (active) or a draft is not an order yet; the query asks for placed
    # orders only, this keeps it so whatever the server's filter support.
    return not order.active and order.placed_at is not None


def _int_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        value = int(cursor)
    except ValueError as err:
        raise ChannelPayloadError(f"listing cursor {cursor!r} is not an offset") from err
    if value < 0:
        raise ChannelPayloadError(f"listing cursor {cursor!r} is negative")
    return value


class OrderCursor:
    """Where an order pull is: the pass (``updated`` then ``placed``), the time key of the
    last order read (``updatedAt``, ``orderPlacedAt``) and how many orders with exactly that
    key were read, to skip them when the next page starts at that key.

    Keyset paging on a time keeps an order that changes while we page from shifting the
    others past us (offset paging would skip one). Vendure stores some times in microseconds
    but answers in milliseconds, so the next page starts 1 ms before the key: at worst an
    order is read twice, which the order book takes once.
    """

    PASSES = ("updated", "placed")

    def __init__(self, pass_: str, key: datetime, ties: int) -> None:
        self.pass_ = pass_
        self.key_time = key
        self.ties = ties

    @classmethod
    def parse(cls, cursor: str | None, since: datetime) -> OrderCursor:
        if cursor is None:
            return cls("updated", _utc(since), 0)
        try:
            pass_, key, ties = cursor.split("|")
            parsed = cls(pass_, _utc(datetime.fromisoformat(key)), int(ties))
        except ValueError as err:
            raise ChannelPayloadError(f"order cursor {cursor!r} is malformed") from err
        if pass_ not in cls.PASSES or parsed.ties < 0:
            raise ChannelPayloadError(f"order cursor {cursor!r} is malformed")
        return parsed

    def encode(self) -> str:
        return f"{self.pass_}|{format_time(self.key_time)}|{self.ties}"

    @property
    def field(self) -> str:
        return "updatedAt" if self.pass_ == "updated" else "orderPlacedAt"

    def filter(self) -> dict[str, Any]:
        # active=false and a placement time: placed orders only, no carts, no drafts
        # (drafts are inactive but unplaced; seen on 3.7.3, OrderService.createDraft sets
        # active = false): https://docs.vendure.io/guides/core-concepts/orders/
        wanted: dict[str, Any] = {
            "active": {"eq": False},
            "orderPlacedAt": {"isNull": False},
            self.field: {"after": format_time(self.key_time - ONE_MS)},
        }
        if self.pass_ == "placed":
            wanted["state"] = {"notIn": list(RECHECK_SKIPS)}
        return wanted

    def sort(self) -> dict[str, str]:
        return {self.field: "ASC", "id": "ASC"}

    def key(self, order: Order) -> datetime:
        if self.pass_ == "updated":
            return order.updated_at
        if order.placed_at is None:
            raise ChannelPayloadError(f"Vendure order {order.code} has no orderPlacedAt")
        return order.placed_at

    def after(self, keys: Sequence[datetime]) -> OrderCursor:
        """The cursor after a full page whose orders had these keys, in order."""
        last = keys[-1]
        ties = sum(1 for key in keys if key == last)
        if last == self.key_time:
            ties += self.ties
        return OrderCursor(self.pass_, last, ties)

    def following(self, since: datetime, recheck_days: int) -> OrderCursor | None:
        """The first cursor of the next pass, or None after the last."""
        if self.pass_ == "updated" and recheck_days > 0:
            return OrderCursor("placed", _utc(since) - timedelta(days=recheck_days), 0)
        return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
