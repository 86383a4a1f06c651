"""The Shopify connector: variants and their inventory levels per location as listings,
orders by ``updated_at``, ``available`` quantities set with compare-and-swap.

Targets the Admin GraphQL API from 2026-04 on: ``inventorySetQuantities`` needs an explicit
``changeFromQuantity`` per quantity and the ``@idempotent(key:)`` directive
(https://shopify.dev/changelog/finalizing-compare-and-swap-redesign-for-inventory-set-quantities,
https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

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
    PushItem,
    PushResult,
    RateLimit,
    ShippingAddress,
    TemporaryChannelError,
    WebhookEvent,
    WebhookKind,
    WebhookRejected,
    WebhookSubscriptions,
    collect_orders,
    signature_matches,
    whole_quantity,
)
from sellable_shopify.bulk import (
    POLL_LIMITER,
    POLL_RATE,
    BulkLevelsReader,
    ShopifyBulk,
)
from sellable_shopify.client import (
    DEFAULT_MAXIMUM,
    DEFAULT_RESTORE,
    LIMITER,
    MAX_QUANTITIES,
    ShopifyGraphQL,
    available_of,
    listings_query,
    order_lines_query,
    orders_query,
)
from sellable_shopify.money import line_revenue

log = logging.getLogger("sellable.shopify")

LOCATION_GID = re.compile(r"^gid://shopify/Location/\d+$")
VERSION = re.compile(r"^(\d{4})-(01|04|07|10)$")
#: The first version with the semantics this connector is written for.
OLDEST_VERSION = "2026-04"
SEPARATOR = "|"  # listing id: "<inventory item gid>|<location gid>"
#: ProductVariantInventoryPolicy: "Whether customers are allowed to place an order for the
#: product variant when it's out of stock" (DENY, the default, or CONTINUE).
CONTINUE = "CONTINUE"
DENY = "DENY"
#: A line item property ``_sellable_option:<slot>`` = the option SKU the customer chose in
#: that slot. The leading underscore hides it from the customer at checkout
#: (https://shopify.dev/docs/storefronts/themes/product-merchandising/line-item-properties).
OPTION_PREFIX = "_sellable_option:"
#: The webhook topics we subscribe to (WebhookSubscriptionTopic), and the topics of their
#: deliveries (``X-Shopify-Topic``).
WEBHOOK_TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "APP_UNINSTALLED")
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled"})
UNINSTALL_TOPIC = "app/uninstalled"
#: ``uri`` replaced ``callbackUrl``/``endpoint`` in 2025-10
#: (https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces).
WEBHOOKS_QUERY = """
query SellableWebhooks($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""
WEBHOOKS_QUERY_COST = 102
WEBHOOK_CREATE = """
mutation SellableWebhookCreate(
  $topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""
VARIANTS_COUNT = "query SellableVariantsCount { productVariantsCount { count } }"
BULK_CURSOR = "bulk:"  # list_listings cursors of the bulk path: "bulk:<operation>:<offset>"
#: How long a reconcile snapshot (one bulk operation's quantities) answers read_quantities:
#: the reconcile job reads every listing once, in batches, right after taking it.
SNAPSHOT_LIFE = 600.0
WEBHOOK_DELETE = """
mutation SellableWebhookDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
"""


class ShopifySettings(ConnectorSettings):
    """``[channels.settings]`` of a Shopify channel."""

    shop_url: str = Field(description="https://<shop>.myshopify.com (or the emulator's URL)")
    access_token: SecretStr = Field(description="Admin API access token (X-Shopify-Access-Token)")
    api_version: str = "2026-10"
    #: Shopify location gid -> our warehouse code; empty: the primary location gets the
    #: channel's total.
    locations: dict[str, str] = Field(default_factory=dict)
    #: The reason recorded on Shopify's inventory history for our pushes.
    reason: str = "correction"
    #: Read the options each customer chose from the line item properties
    #: ``_sellable_option:<slot>`` (the option's SKU). Off by default: each line item then
    #: costs one more query point, so order pages are smaller.
    line_options: bool = False
    #: Where Shopify should deliver order webhooks: the public HTTPS address of your
    #: reverse proxy in front of ``[daemon] webhook_listen``, ending in
    #: ``/webhooks/<channel code>``. Unset: no webhooks, orders come by the interval pull.
    webhook_url: str | None = None
    #: The app's client secret (the "API secret key" of the app's credentials): Shopify
    #: signs every webhook with it (``X-Shopify-Hmac-Sha256``).
    webhook_secret: SecretStr | None = None
    #: Read listings (listing refresh) and quantities (reconcile) with bulk operations:
    #: one background query of Shopify's instead of thousands of paged ones. False: page.
    bulk_operations: bool = True
    #: With bulk operations, page instead when the shop has fewer variants than this (a
    #: shop that fits one page reads it in one query, without waiting for an operation);
    #: each refresh then first counts the variants (1 query point). 0: always bulk.
    bulk_from: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _secret_with_url(self) -> ShopifySettings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "webhook_url needs webhook_secret: the app's client secret (API secret key), "
                "which Shopify signs webhooks with"
            )
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError(f"webhook_url must be an http(s) URL, got {self.webhook_url!r}")
        return self

    @field_validator("api_version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        if value != "unstable" and (VERSION.match(value) is None or value < OLDEST_VERSION):
            raise ValueError(
                f"api_version {value!r} is not supported: use {OLDEST_VERSION} or later "
                "(quarterly versions YYYY-01/04/07/10); the connector relies on "
                "changeFromQuantity and @idempotent as of 2026-04"
            )
        return value

    @field_validator("locations")
    @classmethod
    def _location_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for location, warehouse in value.items():
            if LOCATION_GID.match(location) is None:
                raise ValueError(
                    f"location {location!r} is not a Shopify location id "
                    "(expected gid://shopify/Location/<number>)"
                )
            if not warehouse:
                raise ValueError(f"location {location!r} maps to an empty warehouse code")
        return value

    @field_validator("shop_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value:
            raise ValueError("shop_url is empty")
        return value if "://" in value else f"https://{value}"


class ShopifyConnector(Connector):
    """Shopify Admin GraphQL API.

    Usage (sellable.toml)::

        [[channels]]
        code = "shopify"
        connector = "shopify"
        warehouses = ["main", "outlet"]
        [channels.settings]
        shop_url = "https://my-shop.myshopify.com"
        access_token = "shpat_..."
        locations = { "gid://shopify/Location/1" = "main", "gid://shopify/Location/2" = "outlet" }
    """

    name = "shopify"
    capabilities = frozenset(
        {
            Capability.LIST_LISTINGS,
            Capability.PULL_ORDERS,
            Capability.PUSH_QUANTITIES,
            Capability.READ_QUANTITIES,
        }
    )
    Settings = ShopifySettings
    rate_limit = None  # paced by the cost bucket (client.LIMITER), not by request count

    @classmethod
    def rate_limits(cls, settings: ConnectorSettings) -> dict[str | None, RateLimit]:
        """The query-cost bucket, until the first answer's ``throttleStatus`` says more."""
        return {
            LIMITER: RateLimit(rate=DEFAULT_RESTORE, burst=DEFAULT_MAXIMUM),
            POLL_LIMITER: RateLimit(rate=POLL_RATE, burst=1),
        }

    max_push_batch = MAX_QUANTITIES
    supports_backorders = True
    backorders_flag = f"Shopify inventoryPolicy={CONTINUE}"
    webhooks = True

    settings: ShopifySettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.api = ShopifyGraphQL(self.http, context.channel)
        self.bulk = ShopifyBulk(self.api, self.http, context.channel)
        self._primary: str | None = None
        self._stream: _BulkStream | None = None
        self._snapshot: _Snapshot | None = None

    def base_url(self) -> str:
        return f"{self.settings.shop_url}/admin/api/{self.settings.api_version}"

    def authenticate(self, request_headers: dict[str, str]) -> None:
        request_headers["X-Shopify-Access-Token"] = self.settings.access_token.get_secret_value()

    # -- webhooks -------------------------------------------------------------------------------

    def webhook_url(self) -> str | None:
        return self.settings.webhook_url

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(client secret, raw body));
        ``X-Shopify-Webhook-Id`` is the same on every retry of one delivery."""
        secret = self.settings.webhook_secret
        signature = headers.get("x-shopify-hmac-sha256")
        if secret is None or not signature_matches(secret.get_secret_value(), body, signature):
            raise WebhookRejected(
                "X-Shopify-Hmac-Sha256 missing"
                if not signature
                else "X-Shopify-Hmac-Sha256 "
                "does not match the body (another client secret, or a body changed on the way)"
            )
        topic = headers.get("x-shopify-topic", "")
        delivery = headers.get("x-shopify-webhook-id") or None
        if topic == UNINSTALL_TOPIC:
            kind = WebhookKind.UNINSTALLED
        elif topic in ORDER_TOPICS:
            kind = WebhookKind.ORDERS
        else:
            kind = WebhookKind.IGNORED
        return WebhookEvent(kind, topic, delivery, delivery)

    def sync_webhooks(self) -> WebhookSubscriptions:
        """One subscription per topic of :data:`WEBHOOK_TOPICS` to ``webhook_url``. An app
        sees only its own subscriptions; of those, the ones on our topics that point
        elsewhere or repeat a topic are stale and removed. Shopify deletes a subscription
        whose deliveries keep failing, so a missing one is created again here."""
        url = self.settings.webhook_url
        # Without webhook_url (webhooks turned off), ours are those pointing at a webhook
        # listener's path for this channel: all stale.
        ours_off = f"/webhooks/{self.context.channel}"
        found = WebhookSubscriptions()
        kept: dict[str, dict[str, Any]] = {}
        after: str | None = None
        while True:
            data = self.api.execute(
                "SellableWebhooks", WEBHOOKS_QUERY, {"after": after}, WEBHOOKS_QUERY_COST
            )
            try:
                connection = data["webhookSubscriptions"]
                nodes = list(connection["nodes"])
                page = connection["pageInfo"]
            except (KeyError, TypeError) as err:
                raise ChannelPayloadError(
                    f"SellableWebhooks: unexpected answer ({err!r})", channel=self.context.channel
                ) from err
            for node in nodes:
                topic = str(node.get("topic", ""))
                if topic not in WEBHOOK_TOPICS:
                    continue  # not a topic of ours: another feature of the app may want it
                uri = str(node.get("uri") or "")
                if url is None and not uri.rstrip("/").endswith(ours_off):
                    continue  # webhooks off: not one of ours
                if url is not None and uri == url and topic not in kept:
                    kept[topic] = node
                else:
                    self._webhook_mutation(
                        "SellableWebhookDelete", WEBHOOK_DELETE, {"id": node["id"]}
                    )
                    found.removed += 1
            if not page.get("hasNextPage"):
                break
            after = page.get("endCursor")
        if url is None:
            return found
        for topic in WEBHOOK_TOPICS:
            node = kept.get(topic)
            if node is None:
                created = self._webhook_mutation(
                    "SellableWebhookCreate",
                    WEBHOOK_CREATE,
                    {"topic": topic, "webhookSubscription": {"uri": url, "format": "JSON"}},
                )
                node = created.get("webhookSubscription") or {}
                found.created += 1
            found.subscriptions.append(
                {"id": str(node.get("id")), "topic": topic, "url": url, "status": "active"}
            )
        return found

    def _webhook_mutation(
        self, name: str, document: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        data = self.api.execute(name, document, variables, 10)
        payload = next(iter(data.values()), None) or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise ChannelError(
                f"{name}: " + "; ".join(str(e.get("message", e)) for e in errors),
                channel=self.context.channel,
            )
        return dict(payload)

    # -- listings -------------------------------------------------------------------------------

    def _locations(self) -> list[tuple[str, str | None]]:
        """(location gid, warehouse code or None for the channel's total)."""
        if self.settings.locations:
            return sorted(self.settings.locations.items())
        if self._primary is None:
            self._primary = self.api.primary_location()
        return [(self._primary, None)]

    def list_listings(self, cursor: str | None) -> ListingPage:
        """Every (inventory item, location) level, by bulk operation for a shop of
        :attr:`ShopifySettings.bulk_from` variants or more, else page by page.

        The bulk path runs the operation and waits for it in the first call, then each call
        downloads the next :data:`~sellable_shopify.bulk.CHUNK_BYTES` of the result and
        returns the listings completed so far; the cursor is ``bulk:<operation>:<offset>``
        and the parser's state (one entry per variant) stays on the connector until the
        last piece. Nothing holds the whole file."""
        if cursor is None:
            self._stream = None
            if not self._use_bulk():
                return self._paged_listings(None)
            return self._bulk_page(self._start_stream())
        if not cursor.startswith(BULK_CURSOR):
            return self._paged_listings(cursor)
        stream = self._stream
        if stream is None or stream.cursor() != cursor:
            raise ChannelError(
                f"listing cursor {cursor!r} is not the bulk read in progress; the listing "
                "refresh starts again from the beginning",
                channel=self.context.channel,
            )
        return self._bulk_page(stream)

    def _use_bulk(self) -> bool:
        if not self.settings.bulk_operations:
            return False
        if self.settings.bulk_from == 0:
            return True
        data = self.api.execute("SellableVariantsCount", VARIANTS_COUNT, {}, 1)
        count = (data.get("productVariantsCount") or {}).get("count")
        return not isinstance(count, int) or count >= self.settings.bulk_from

    def _wanted_locations(self) -> dict[str, str | None]:
        return dict(self._locations())

    def _start_stream(self, partial_ok: bool = False) -> _BulkStream:
        """Run the bulk query to its end; the stream of its result file."""
        operation = self.bulk.finished(self.bulk.start())
        url = operation.url
        partial = False
        if operation.status != "COMPLETED":
            if partial_ok and operation.status == "FAILED" and operation.partial_url:
                url, partial = operation.partial_url, True
                log.warning(
                    "channel=%s: bulk operation %s failed (%s) after %d objects; reconciling "
                    "the listings its partial data holds, the others at the next reconcile",
                    self.context.channel,
                    operation.id,
                    operation.error_code,
                    operation.object_count,
                    extra={"channel": self.context.channel},
                )
            else:
                self._refuse(operation.id, operation.status, operation.error_code)
        reader = BulkLevelsReader(
            self._wanted_locations(), partial=partial, channel=self.context.channel
        )
        stream = _BulkStream(operation.id, url, 0, reader)
        self._stream = stream
        return stream

    def _refuse(self, operation: str, status: str, code: str | None) -> None:
        text = f"bulk operation {operation} ended {status}" + (f" ({code})" if code else "")
        if code == "ACCESS_DENIED":  # a missing scope (docs/connectors/shopify.md lists them)
            raise AuthenticationError(text, channel=self.context.channel)
        if code in ("TIMEOUT", "INTERNAL_SERVER_ERROR") or status in ("CANCELED", "EXPIRED"):
            raise TemporaryChannelError(
                f"{text}; tried again at the next run", channel=self.context.channel
            )
        raise ChannelError(text, channel=self.context.channel)

    def _bulk_page(self, stream: _BulkStream) -> ListingPage:
        if stream.url is None:  # no object at all: Shopify gives no file
            self._stream = None
            return ListingPage(stream.reader.finish(), None)
        piece, following = self.bulk.download(stream.url, stream.offset)
        listings = stream.reader.feed(piece)
        if following is None:
            listings.extend(stream.reader.finish())
            self._stream = None
            return ListingPage(listings, None)
        stream.offset = following
        return ListingPage(listings, stream.cursor())

    def _paged_listings(self, cursor: str | None) -> ListingPage:
        """One page of ``productVariants`` with each mapped location's level."""
        locations = self._locations()
        document, first, cost = listings_query(len(locations))
        variables: dict[str, Any] = {"first": first, "after": cursor}
        for n, (location, _warehouse) in enumerate(locations):
            variables[f"l{n}"] = location
        data = self.api.execute("SellableListings", document, variables, cost)
        try:
            connection = data["productVariants"]
            listings: list[Listing] = []
            for variant in connection["nodes"]:
                item = variant["inventoryItem"]
                for n, (location, warehouse) in enumerate(locations):
                    level = item.get(f"l{n}")
                    if level is None:
                        # Not stocked at that location: Shopify refuses quantities there
                        # (ITEM_NOT_STOCKED_AT_LOCATION) until the merchant activates it.
                        continue
                    listings.append(
                        Listing(
                            listing_id=f"{item['id']}{SEPARATOR}{location}",
                            sku=variant.get("sku") or None,
                            parent_id=str(variant["id"]),
                            warehouses=(warehouse,) if warehouse else None,
                            quantity=available_of(level),
                        )
                    )
            page = connection["pageInfo"]
            next_cursor = str(page["endCursor"]) if page["hasNextPage"] else None
        except (KeyError, TypeError) as err:
            raise ChannelPayloadError(
                f"unexpected productVariants payload: {err!r}", channel=self.context.channel
            ) from err
        return ListingPage(listings, next_cursor)

    # -- orders ---------------------------------------------------------------------------------

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # Search syntax: https://shopify.dev/docs/api/usage/search-syntax; ">=" with the
        # engine's overlap window gives at-least-once (peers.md: tap-shopify lost records at
        # window edges with a strict bound).
        query = f"updated_at:>='{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        # With locations mapped, an order takes stock from the warehouse of the location
        # Shopify assigned it to (its first fulfilment order).
        document, first, cost = orders_query(
            bool(self.settings.locations), self.settings.line_options
        )
        variables = {"first": first, "after": cursor, "query": query}
        data = self.api.execute("SellableOrders", document, variables, cost)
        try:
            connection = data["orders"]
            # One order we cannot read is refused by id; the others of the page are imported.
            orders, rejected = collect_orders(
                connection["nodes"],
                self._order,
                order_id=lambda node: node["id"],
                updated_at=lambda node: _order_time(node, "updatedAt"),
            )
            page = connection["pageInfo"]
            next_cursor = str(page["endCursor"]) if page["hasNextPage"] else None
        except (KeyError, TypeError, ValueError) as err:
            raise ChannelPayloadError(
                f"unexpected orders payload: {err!r}", channel=self.context.channel
            ) from err
        return OrderPage(orders, next_cursor, rejected)

    def _order(self, node: dict[str, Any]) -> ChannelOrder:
        lines_connection = node["lineItems"]
        nodes = list(lines_connection["nodes"])
        page = lines_connection["pageInfo"]
        while page["hasNextPage"]:  # more lines than the page query asks for
            document, cost = order_lines_query(self.settings.line_options)
            data = self.api.execute(
                "SellableOrderLines",
                document,
                {"id": node["id"], "after": page["endCursor"]},
                cost,
            )
            more = data["order"]["lineItems"]
            nodes.extend(more["nodes"])
            page = more["pageInfo"]
        lines = []
        for position, line in enumerate(nodes):
            if not line.get("sku"):
                continue  # a custom item without SKU holds none of our stock
            revenue, currency = line_revenue(line, node, f"lineItems[{position}]")
            lines.append(
                # currentQuantity: the quantity after order edits and refunds removed units
                # (https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem).
                ChannelOrderLine(
                    str(line["id"]),
                    str(line["sku"]),
                    whole_quantity(
                        line.get("currentQuantity"), f"lineItems[{position}].currentQuantity"
                    ),
                    options=_options(line.get("customAttributes")),
                    revenue=revenue,
                    currency=currency,
                )
            )
        return ChannelOrder(
            order_id=str(node["id"]),
            status=order_status(node),
            updated_at=_order_time(node, "updatedAt"),
            created_at=_order_time(node, "createdAt"),
            lines=tuple(lines),
            warehouse=self._warehouse_of(node),
            shipping_address=shipping_address(node),
        )

    def _warehouse_of(self, node: dict[str, Any]) -> str | None:
        """The warehouse mapped to the order's assigned location: Shopify chose it, so the
        order is booked there. None (routed across the channel's warehouses in order) when
        it has none, an unmapped one, or one mapped to a warehouse the channel does not
        list."""
        fulfilment = (node.get("fulfillmentOrders") or {}).get("nodes") or []
        if not fulfilment:
            return None
        location = ((fulfilment[0].get("assignedLocation") or {}).get("location") or {}).get("id")
        warehouse = self.settings.locations.get(str(location)) if location else None
        return warehouse if warehouse in self.context.warehouses else None

    # -- pushing --------------------------------------------------------------------------------

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Set ``available`` per (inventory item, location), comparing against the last value
        read or pushed (``changeFromQuantity``). Shopify refuses the whole call when one
        quantity is refused (microsoft/BCApps #8396), so the others are sent again without
        it; a stale one is read again and retried once with the value found.

        Where the keep-selling flag changes, the variant's ``inventoryPolicy`` is set first
        (a refused one fails its items, whose quantities then wait for the next cycle)."""
        results: dict[str, PushResult] = {}
        flagged = [item for item in items if item.backorders_changed]
        if flagged:
            results.update(self._set_policies(flagged))
        pending = [item for item in items if item.listing.listing_id not in results]
        reread: set[str] = set()
        reference = f"sellable://push/{self.context.channel}"
        for _round in range(4):
            if not pending:
                break
            quantities = [self._quantity(item) for item in pending]
            payload = self.api.set_quantities(quantities, self.settings.reason, reference)
            errors = _errors_by_index(payload.get("userErrors") or [], len(pending))
            applied = payload.get("inventoryAdjustmentGroup") is not None
            if not errors.by_item and errors.general:
                message = "; ".join(errors.general)
                results.update(
                    (i.listing.listing_id, PushResult.failed(i.listing.listing_id, message))
                    for i in pending
                )
                return list(results.values())
            retry_next: list[PushItem] = []
            stale: list[PushItem] = []
            for index, item in enumerate(pending):
                lid = item.listing.listing_id
                refused = errors.by_item.get(index)
                if refused is None:
                    if applied:
                        results[lid] = PushResult.ok(lid)
                    else:
                        retry_next.append(item)  # not applied: its batch had a refused item
                elif refused[0] == "CHANGE_FROM_QUANTITY_STALE" and lid not in reread:
                    stale.append(item)
                else:
                    results[lid] = PushResult.failed(lid, f"{refused[0]}: {refused[1]}")
            if stale:
                current = self.api.read_levels([_pair(item.listing) for item in stale])
                for item, value in zip(stale, current, strict=True):
                    lid = item.listing.listing_id
                    reread.add(lid)
                    if value is None:
                        results[lid] = PushResult.failed(
                            lid, "ITEM_NOT_STOCKED_AT_LOCATION: no inventory level to set"
                        )
                    else:
                        retry_next.append(replace(item, previous=value))
            pending = retry_next
        for item in pending:
            lid = item.listing.listing_id
            results[lid] = PushResult.retry(lid, "not applied after 4 calls; retried next cycle")
        return list(results.values())

    def _set_policies(self, items: Sequence[PushItem]) -> dict[str, PushResult]:
        """Set ``inventoryPolicy`` of the items' variants (the listing's ``parent_id``); the
        refused items. The policy is the variant's, shared by its listings at every
        location: CONTINUE when any of them asks to keep selling."""
        wanted: dict[str, str] = {}
        by_variant: dict[str, list[PushItem]] = {}
        for item in items:
            variant = item.listing.parent_id or ""
            by_variant.setdefault(variant, []).append(item)
            if item.backorders or variant not in wanted:
                wanted[variant] = CONTINUE if item.backorders else DENY
        refused: dict[str, PushResult] = {}

        def refuse(variant: str, message: str) -> None:
            for item in by_variant[variant]:
                lid = item.listing.listing_id
                refused[lid] = PushResult.failed(lid, message)

        products = self.api.variant_products(sorted(v for v in wanted if v))
        by_product: dict[str, list[str]] = {}
        for variant in wanted:
            if variant not in products:
                refuse(variant, f"variant {variant or '?'} not found: cannot set inventoryPolicy")
            else:
                by_product.setdefault(products[variant], []).append(variant)
        batches = [
            (product, [(variant, wanted[variant]) for variant in variants])
            for product, variants in by_product.items()
        ]
        payloads = self.api.set_inventory_policies(batches)
        for (_product, variants), payload in zip(batches, payloads, strict=True):
            shown = {
                str(v.get("id")): v.get("inventoryPolicy")
                for v in payload.get("productVariants") or ()
                if isinstance(v, dict)
            }
            errors = [
                f"{e.get('code') or 'ERROR'}: {e.get('message') or ''}"
                for e in payload.get("userErrors") or ()
                if isinstance(e, dict)
            ]
            for variant, policy in variants:
                if errors:
                    refuse(variant, "inventoryPolicy refused: " + "; ".join(errors))
                elif shown.get(variant) != policy:
                    refuse(
                        variant,
                        f"inventoryPolicy not applied: the channel shows {shown.get(variant)!r}",
                    )
        return refused

    @staticmethod
    def _quantity(item: PushItem) -> dict[str, Any]:
        inventory_item, location = _pair(item.listing)
        return {
            "inventoryItemId": inventory_item,
            "locationId": location,
            "quantity": item.quantity,
            # Always explicit (2026-04): the last value read or pushed, or null when none is
            # known yet (an opt-out of the check, as the changelog allows).
            "changeFromQuantity": item.previous,
        }

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """``available`` per listing. A shop of ``bulk_from`` variants or
        more reads every level with one bulk operation (a snapshot) and answers the
        reconcile's batches from it; a snapshot answers each listing once, for
        :data:`SNAPSHOT_LIFE` seconds at most, so the next reconcile takes a new one. A
        failed operation's partial data answers the listings it holds."""
        snapshot = self._snapshot
        ids = [listing.listing_id for listing in listings]
        if snapshot is None or not snapshot.answers(ids, self.http.clock()):
            self._snapshot = snapshot = None
            if not self._use_bulk():
                return self._read_paged(listings)
            snapshot = self._snapshot = self._take_snapshot()
        return snapshot.take(ids)

    def _read_paged(self, listings: Sequence[Listing]) -> dict[str, int]:
        values = self.api.read_levels([_pair(listing) for listing in listings])
        return {
            listing.listing_id: value
            for listing, value in zip(listings, values, strict=True)
            if value is not None
        }

    def _take_snapshot(self) -> _Snapshot:
        stream = self._start_stream(partial_ok=True)
        self._stream = None  # not a listing refresh's stream
        quantities: dict[str, int] = {}

        def keep(found: Sequence[Listing]) -> None:
            for listing in found:
                if listing.quantity is not None:
                    quantities[listing.listing_id] = listing.quantity

        if stream.url is not None:
            offset: int | None = 0
            while offset is not None:
                piece, offset = self.bulk.download(stream.url, offset)
                keep(stream.reader.feed(piece))
        keep(stream.reader.finish())
        return _Snapshot(quantities, self.http.clock())

    def close(self) -> None:
        self._stream = None
        self._snapshot = None


@dataclass
class _BulkStream:
    """A listing refresh's bulk result being read: the next byte to download."""

    operation: str
    url: str | None
    offset: int
    reader: BulkLevelsReader

    def cursor(self) -> str:
        return f"{BULK_CURSOR}{self.operation}:{self.offset}"


@dataclass
class _Snapshot:
    """Quantities read by one bulk operation, for one reconcile."""

    quantities: dict[str, int]
    taken_at: float
    answered: set[str] = field(default_factory=set)

    def answers(self, ids: Sequence[str], now: float) -> bool:
        """Whether this snapshot may answer ``ids``: not too old, and none of them asked
        already (which means a new reconcile)."""
        return now - self.taken_at <= SNAPSHOT_LIFE and self.answered.isdisjoint(ids)

    def take(self, ids: Sequence[str]) -> dict[str, int]:
        self.answered.update(ids)
        return {i: self.quantities[i] for i in ids if i in self.quantities}


class _Errors:
    def __init__(self) -> None:
        self.by_item: dict[int, tuple[str, str]] = {}
        self.general: list[str] = []


def _errors_by_index(user_errors: list[dict[str, Any]], count: int) -> _Errors:
    """userErrors name their quantity by ``field: ["input", "quantities", "<index>", ...]``."""
    found = _Errors()
    for error in user_errors:
        code = str(error.get("code") or "ERROR")
        message = str(error.get("message") or "")
        field = [str(part) for part in error.get("field") or ()]
        if len(field) >= 3 and field[1] == "quantities" and field[2].isdigit():
            index = int(field[2])
            if index < count and index not in found.by_item:
                found.by_item[index] = (code, message)
                continue
        found.general.append(f"{code}: {message}")
    return found


def _pair(listing: Listing) -> tuple[str, str]:
    inventory_item, _, location = listing.listing_id.partition(SEPARATOR)
    if not inventory_item or not location:
        raise ChannelPayloadError(
            f"listing id {listing.listing_id!r} is not '<inventory item>|<location>'"
        )
    return inventory_item, location


def _options(attributes: Any) -> tuple[tuple[str, str], ...]:
    """(slot, option SKU) from the ``_sellable_option:<slot>`` properties; others are the
    storefront's own (engraving, gift notes) and are left alone. A slot given twice keeps
    its first value."""
    found: dict[str, str] = {}
    for attribute in attributes or ():
        key, value = attribute.get("key"), attribute.get("value")
        if not isinstance(key, str) or not key.startswith(OPTION_PREFIX):
            continue
        slot, sku = key[len(OPTION_PREFIX) :].strip(), str(value or "").strip()
        if slot and sku:
            found.setdefault(slot, sku)
    return tuple(found.items())


def _time(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _order_time(node: dict[str, Any], key: str) -> datetime:
    """An order's DateTime field, or an OrderPayloadError naming it."""
    value = node.get(key)
    if value is None:
        raise OrderPayloadError(key, "missing")
    try:
        return _time(value) if isinstance(value, str) else _time("")
    except (ValueError, OverflowError):
        raise OrderPayloadError(key, f"{str(value)[:60]!r} is not an ISO 8601 date") from None


def shipping_address(node: dict[str, Any]) -> ShippingAddress | None:
    """The order's ``shippingAddress`` (a MailingAddress: the country as ``countryCodeV2``,
    ISO 3166-1 alpha-2; the state as ``provinceCode``, else ``province``) with the order's
    ``email``; None when the order ships nowhere (no shipping lines). A field of the wrong
    type is treated as absent: the address never stops the order's stock allocation."""
    address = node.get("shippingAddress")
    if not isinstance(address, dict):
        return None

    def text(name: str, source: dict[str, Any] = address) -> str | None:
        value = source.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    name = text("name") or " ".join(part for part in (text("firstName"), text("lastName")) if part)
    return ShippingAddress(
        name=name or text("company") or "",
        address1=text("address1") or "",
        city=text("city") or "",
        country=(text("countryCodeV2") or "").upper(),
        address2=text("address2"),
        state=text("provinceCode") or text("province"),
        zip_code=text("zip"),
        company=text("company"),
        phone=text("phone"),
        email=text("email", node),
    )


def order_status(node: dict[str, Any]) -> OrderStatus:
    """cancelledAt -> cancelled; fulfilled, or closed (archived), -> shipped; restocked
    (every item returned to stock) -> cancelled; anything else is open
    (https://shopify.dev/docs/api/admin-graphql/latest/enums/OrderDisplayFulfillmentStatus)."""
    if node.get("cancelledAt"):
        return OrderStatus.CANCELLED
    fulfillment = node.get("displayFulfillmentStatus")
    if fulfillment == "RESTOCKED":
        return OrderStatus.CANCELLED
    if fulfillment == "FULFILLED" or node.get("closed"):
        return OrderStatus.SHIPPED
    return OrderStatus.OPEN


__all__ = ["ShopifyConnector", "ShopifySettings", "order_status"]
