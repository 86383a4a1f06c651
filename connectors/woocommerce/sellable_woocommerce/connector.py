"""The WooCommerce connector: products and variations matched by SKU, orders by their
modification time, quantities pushed in batches of at most 100.

Every vendor quirk below cites https://woocommerce.github.io/woocommerce-rest-api-docs/
(the REST API v3 docs) or WooCommerce core (woocommerce/woocommerce,
``plugins/woocommerce/includes/rest-api/Controllers/Version3/``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from sellable.sdk import (
    Capability,
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
    WebhookEvent,
    WebhookKind,
    WebhookRejected,
    WebhookSubscriptions,
    collect_orders,
    currency_code,
    is_loopback_host,
    money_amount,
    signature_matches,
    whole_quantity,
)
from sellable_woocommerce.client import (
    BATCH_LIMIT,
    PER_PAGE,
    BatchTooLarge,
    Page,
    WooCommerceClient,
)

log = logging.getLogger("sellable.connectors.woocommerce")

API_PATH = "/wp-json/wc/v3"

#: Order statuses of core ("Orders" > "Order properties" > ``status`` in the docs).
#: A status added by a plugin (e.g. ``shipped``, ``partially-shipped``) is not in this
#: table and counts as open: holding stock for an order we do not understand cannot
#: oversell, releasing it can.
STATUSES = {
    "pending": OrderStatus.OPEN,
    "on-hold": OrderStatus.OPEN,
    "processing": OrderStatus.OPEN,
    "completed": OrderStatus.SHIPPED,
    "cancelled": OrderStatus.CANCELLED,
    "refunded": OrderStatus.CANCELLED,
    "failed": OrderStatus.CANCELLED,
    "trash": OrderStatus.CANCELLED,
}

#: A line item meta entry ``_sellable_option:<slot>`` = the option SKU the customer chose in
#: that slot, set by the storefront. The leading underscore keeps it out of the customer's
#: order emails and pages; the REST API still returns it: ``get_order_item_data`` in core's
#: ``Version2/class-wc-rest-orders-v2-controller.php`` returns every meta of the item.
OPTION_PREFIX = "_sellable_option:"

#: Orders of one second that a block read re-reads from the previous page, so that up to
#: this many orders of that second changing while we page cannot push one past us.
BLOCK_OVERLAP = 10

#: Products each listing page reads again from the previous one, to see whether products
#: went meanwhile (see list_listings).
LISTING_OVERLAP = 1


#: The webhooks we subscribe to, and the order topics we take (``order.restored`` comes
#: from an order taken out of the trash, if a site subscribes to it).
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted")
ORDER_TOPICS_SEEN = frozenset({*WEBHOOK_TOPICS, "order.restored"})
#: Our webhooks' names start with this (then the secret's fingerprint).
WEBHOOK_NAME = "sellable"
#: WooCommerce's ping when a webhook is created: ``webhook_id=<id>``, form-encoded, unsigned.
PING = re.compile(rb"webhook_id=\d+")

#: ``backorders`` of a product or variation ("Product properties": "If managing stock,
#: this controls if backorders are allowed. Options: ``no``, ``notify`` and ``yes``").
#: ``notify`` keeps selling at 0 and tells the customer the item is on backorder.
BACKORDERS_ON = "notify"
BACKORDERS_OFF = "no"


class WooCommerceSettings(ConnectorSettings):
    """``[channels.settings]`` of a WooCommerce channel."""

    #: The site's address, e.g. ``https://shop.example.com``; the connector adds
    #: ``/wp-json/wc/v3``.
    base_url: str
    consumer_key: SecretStr
    consumer_secret: SecretStr
    #: The host's request limit when it publishes one (requests per second); the default
    #: is :attr:`WooCommerceConnector.rate_limit`.
    requests_per_second: float | None = Field(default=None, gt=0, le=100)
    #: Where WooCommerce should deliver order webhooks: the public HTTPS address of your
    #: reverse proxy in front of ``[daemon] webhook_listen``, ending in
    #: ``/webhooks/<channel code>``. Unset: no webhooks, orders come by the interval pull.
    webhook_url: str | None = None
    #: The secret our webhooks are signed with. WooCommerce never shows it again (it is
    #: write-only), so it lives here. Letters and digits only, at least 16: WooCommerce
    #: decodes HTML entities in the secret before signing, so ``&amp;`` would sign as ``&``.
    webhook_secret: SecretStr | None = None

    @field_validator("webhook_secret")
    @classmethod
    def _plain_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            text = value.get_secret_value()
            if not (text.isascii() and text.isalnum() and len(text) >= 16):
                raise ValueError(
                    "webhook_secret must be at least 16 letters and digits only: WooCommerce "
                    "decodes HTML entities in the secret before signing, so other characters "
                    "can sign differently from what we check"
                )
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> WooCommerceSettings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "webhook_url needs webhook_secret (16 or more letters and digits, e.g. from "
                "'python -c \"import secrets; print(secrets.token_hex(24))\"')"
            )
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook_url must be an http(s) URL, got {self.webhook_url!r}")
        return self

    @field_validator("base_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        # Basic auth is only accepted over HTTPS; over plain HTTP WooCommerce wants OAuth
        # 1.0a signatures ("Authentication" section of the docs), and the keys would travel
        # in clear. Plain HTTP is allowed to loopback only (the emulator, a local site).
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"base_url {value!r} uses plain HTTP: WooCommerce accepts the consumer key "
                "and secret over HTTPS only (plain HTTP is allowed to loopback addresses)"
            )
        if parts.path.rstrip("/").endswith(API_PATH):
            raise ValueError(
                f"base_url {value!r} already ends with {API_PATH}: give the site's address"
            )
        return value


class WooCommerceConnector(Connector):
    """A WooCommerce store through its REST API v3.

    Usage (``sellable.toml``)::

        [[channels]]
        code = "woo"
        connector = "woocommerce"
        warehouses = ["main"]
        [channels.settings]
        base_url = "https://shop.example.com"
        consumer_key = "ck_..."
        consumer_secret = "cs_..."
    """

    name = "woocommerce"
    capabilities = frozenset(
        {
            Capability.LIST_LISTINGS,
            Capability.PULL_ORDERS,
            Capability.PUSH_QUANTITIES,
            Capability.READ_QUANTITIES,
        }
    )
    Settings = WooCommerceSettings
    # WooCommerce core publishes no rate limit for REST API v3; hosts and WAFs impose their
    # own (research: channel-apis.md, "Rate limits at a glance"). We keep under the one
    # figure WooCommerce itself documents, the default of its Store API limiter: 25
    # requests per 10 s (https://developer.woocommerce.com/docs/apis/store-api/rate-limiting/).
    # 2.5/s on average with a burst of 20, five short of 25, absorbs clock and network
    # jitter between us and the host's bucket. At 100 objects per request that is still
    # 250 quantities or orders per second. ``requests_per_second`` overrides the rate.
    rate_limit = RateLimit(rate=2.5, burst=20)
    max_push_batch = BATCH_LIMIT
    max_read_batch = PER_PAGE  # one include= request reads 100
    supports_backorders = True
    backorders_flag = f"WooCommerce backorders={BACKORDERS_ON}"
    webhooks = True

    settings: WooCommerceSettings

    @classmethod
    def rate_limits(cls, settings: ConnectorSettings) -> dict[str | None, RateLimit]:
        """``requests_per_second`` overrides the rate, keeping the burst."""
        assert isinstance(settings, WooCommerceSettings)
        rate = settings.requests_per_second
        if rate is None:
            return super().rate_limits(settings)
        return {None: RateLimit(rate=rate, burst=cls.rate_limit.burst if cls.rate_limit else 1)}

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.client = WooCommerceClient(self.http)
        key = self.settings.consumer_key.get_secret_value()
        secret = self.settings.consumer_secret.get_secret_value()
        self._authorization = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    def base_url(self) -> str:
        return self.settings.base_url.rstrip("/") + API_PATH

    def authenticate(self, request_headers: dict[str, str]) -> None:
        request_headers["Authorization"] = self._authorization

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_url(self) -> str | None:
        return self.settings.webhook_url

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """``X-WC-Webhook-Signature`` = base64(HMAC-SHA256(secret, raw body)); the body is
        JSON escaped the PHP way (``\\/``), so only the raw bytes verify. Creating a
        webhook first sends an unsigned form-encoded ``webhook_id=N`` ping
        (``WC_Webhook::deliver_ping``): it gets 2xx and no pull."""
        signature = headers.get("x-wc-webhook-signature")
        if not signature and PING.fullmatch(body) is not None:
            return WebhookEvent(WebhookKind.PING, "ping")
        secret = self.settings.webhook_secret
        if secret is None or not signature_matches(secret.get_secret_value(), body, signature):
            raise WebhookRejected(
                "X-WC-Webhook-Signature missing"
                if not signature
                else "X-WC-Webhook-Signature "
                "does not match the body (another secret, or a body changed on the way)"
            )
        topic = headers.get("x-wc-webhook-topic", "")
        delivery = headers.get("x-wc-webhook-delivery-id")
        # The delivery id is wp_hash(webhook id . current second) (WC_Webhook::
        # get_new_delivery_id): two deliveries of one webhook within a second share it.
        # With the body's digest the key tells a retry (same body) from another change.
        key = None
        if delivery:
            key = f"{delivery}:{hashlib.sha256(body).hexdigest()[:32]}"
        kind = WebhookKind.ORDERS if topic in ORDER_TOPICS_SEEN else WebhookKind.IGNORED
        return WebhookEvent(kind, topic, delivery, key)

    def sync_webhooks(self) -> WebhookSubscriptions:
        """One webhook per topic of :data:`WEBHOOK_TOPICS` to ``webhook_url``, named
        ``sellable <fingerprint>`` so that we know ours: the fingerprint is of the secret,
        because the secret is write-only and a changed one must be written again. WooCommerce
        disables a webhook after more than 5 failed deliveries in a row
        (``WC_Webhook::failed_delivery``): a disabled or paused one of ours is re-enabled."""
        url = self.settings.webhook_url
        secret = self.settings.webhook_secret
        # Without webhook_url (webhooks turned off), every webhook of ours is stale.
        name = f"{WEBHOOK_NAME} {_fingerprint(secret.get_secret_value())}" if secret else ""
        ours: list[dict[str, Any]] = []
        page_number = 1
        while True:
            page = self.client.webhooks(page=page_number)
            ours.extend(w for w in page.items if str(w.get("name", "")).startswith(WEBHOOK_NAME))
            if not _more_pages(page, page_number):
                break
            page_number += 1
        found = WebhookSubscriptions()
        kept: dict[str, dict[str, Any]] = {}
        for hook in ours:
            topic = str(hook.get("topic", ""))
            wanted = url is not None and hook.get("delivery_url") == url
            if topic in WEBHOOK_TOPICS and topic not in kept and wanted:
                kept[topic] = hook
            else:
                self.client.delete_webhook(int(hook["id"]))
                found.removed += 1
        if url is None or secret is None:
            return found
        for topic in WEBHOOK_TOPICS:
            known = kept.get(topic)
            if known is None:
                hook = self.client.create_webhook(
                    {
                        "name": name,
                        "topic": topic,
                        "delivery_url": url,
                        "secret": secret.get_secret_value(),
                        "status": "active",
                    }
                )
                found.created += 1
            elif known.get("status") != "active" or known.get("name") != name:
                hook = known
                if hook.get("status") != "active":
                    found.problems.append(
                        f"webhook {hook.get('id')} ({topic}) was {hook.get('status')}: "
                        "re-enabled (WooCommerce disables one after 5 failed deliveries)"
                    )
                hook = self.client.update_webhook(
                    int(hook["id"]),
                    {"name": name, "secret": secret.get_secret_value(), "status": "active"},
                )
                found.repaired += 1
            else:
                hook = known
            status = str(hook.get("status", ""))
            found.subscriptions.append(
                {"id": str(hook.get("id")), "topic": topic, "url": url, "status": status}
            )
            if status != "active":
                found.healthy = False
                found.problems.append(f"webhook {hook.get('id')} ({topic}) stays {status}")
        return found

    # -- listings ------------------------------------------------------------------------------

    def list_listings(self, cursor: str | None) -> ListingPage:
        """One page of products in id order; the variations of its variable products come
        with it.

        A product deleted while we page would shift the rest one place up and a page
        number would skip one, which would then count as gone until the next refresh. So
        the cursor is ``<products read>:<last id>`` and each page starts one product early
        (``offset``): if that product is not the last one read, products went meanwhile
        and the page steps back (by 100) until it overlaps what was read; ids already read
        are dropped."""
        read, last_id = _listing_cursor(cursor)
        offset = max(0, read - LISTING_OVERLAP) if read else 0
        page = self.client.products(offset=offset)
        while offset > 0 and page.items and _product_id(page.items[0]) > last_id:
            offset = max(0, offset - PER_PAGE)  # products went: the rest moved up
            page = self.client.products(offset=offset)
        listings: list[Listing] = []
        newest = last_id
        for product in page.items:
            product_id = _product_id(product)
            if product_id <= last_id:
                continue
            newest = max(newest, product_id)
            kind = product.get("type")
            if kind == "variable":
                listings.extend(self._variation_listings(product))
            elif kind in ("grouped", "external"):
                continue  # neither holds stock ("Product properties" > type)
            else:
                listings.append(_listing(product, None))
        end = offset + len(page.items)
        # Without X-WP-Total (stripped by a proxy), a full page may go on.
        more = end < page.total if page.total is not None else len(page.items) == PER_PAGE
        return ListingPage(listings, f"{end}:{newest}" if more and page.items else None)

    def _variation_listings(self, product: dict[str, Any]) -> list[Listing]:
        parent_id = str(_require(product, "id"))
        parent_sku = product.get("sku") or None
        found: list[Listing] = []
        number = 1
        while True:
            page = self.client.variations(parent_id, page=number)
            for variation in page.items:
                listing = _listing(variation, parent_id)
                # A variation with no SKU of its own shows its parent's
                # (WC_Product_Variation::get_sku in 'view' context): it is not that SKU.
                if listing.sku is not None and listing.sku == parent_sku:
                    listing = Listing(
                        listing.listing_id,
                        None,
                        parent_id,
                        quantity=listing.quantity,
                        extra={**listing.extra, "inherited_sku": listing.sku},
                    )
                found.append(listing)
            if not _more_pages(page, number):
                return found
            number += 1

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """Current ``stock_quantity`` of each listing whose stock WooCommerce manages
        (``include`` filter, 100 ids per request)."""
        by_parent: dict[str | None, list[str]] = {}
        for listing in listings:
            by_parent.setdefault(listing.parent_id, []).append(listing.listing_id)
        found: dict[str, int] = {}
        for parent_id, ids in by_parent.items():
            for start in range(0, len(ids), PER_PAGE):
                chunk = ids[start : start + PER_PAGE]
                page = (
                    self.client.products(include=chunk)
                    if parent_id is None
                    else self.client.variations(parent_id, include=chunk)
                )
                for item in page.items:
                    quantity = item.get("stock_quantity")
                    if item.get("manage_stock") is True and isinstance(quantity, int):
                        found[str(item.get("id"))] = quantity
        return found

    # -- orders --------------------------------------------------------------------------------

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        """Orders modified at or after ``since``, oldest change first.

        Page numbers drift: an order modified while we page moves to the end and every
        order behind it moves up one place, so page N+1 would start one order late and
        skip one ("Pagination" in the docs has no stable cursor). So each next page is a
        new query from the last modification time read (keyset), which an order changed
        meanwhile can only move after. ``modified_after`` is strict and dates have
        whole seconds, so the query restarts one second early and skips the orders of that
        second it already returned unchanged (same id and ``date_modified_gmt``). When one
        page holds a single second only, that second is read on by ``offset``, overlapping
        the previous page by :data:`BLOCK_OVERLAP`.

        Trashed orders are not in the default ``status=any``, so a second pass asks for
        ``status=trash`` alone (an order trashed while open must release its stock).
        """
        state = _OrderCursor.decode(cursor) if cursor else _OrderCursor.start(since)
        status = "trash" if state.trash else None
        offset = None if state.skip == 0 else max(0, state.skip - BLOCK_OVERLAP)
        page = self.client.orders(modified_after=state.after, offset=offset, status=status)
        # An order read again unchanged is skipped; one changed since (a new
        # date_modified_gmt) is not: its new state is what we are here for.
        seen = set(state.seen)
        while offset and page.items and not any(_version(raw) in seen for raw in page.items):
            # More orders of the block changed than the overlap: the rest moved up further.
            offset = max(0, offset - PER_PAGE)
            page = self.client.orders(modified_after=state.after, offset=offset, status=status)
        # One order we cannot read is refused by id; the others of the page are imported.
        fresh = [raw for raw in page.items if _version(raw) not in seen]
        orders, rejected = collect_orders(
            fresh, _order, order_id=lambda raw: raw.get("id"), updated_at=_modified
        )
        more = _more_pages(page, 1) if offset is None else len(page.items) == PER_PAGE
        if not more or not page.items:
            following = None if state.trash else _OrderCursor.start(since, trash=True).encode()
            return OrderPage(orders, following, rejected)
        # The keyset is read from orders whose modification time parses; a page with none
        # (every date corrupt) is read on by offset, like a page of one second.
        dated = [raw for raw in page.items if _modified(raw) is not None]
        first = _gmt_text(dated[0]) if dated else None
        last = _gmt_text(dated[-1]) if dated else None
        versions = [_version(raw) for raw in page.items]
        if first == last:  # the whole page is one second: read on in that second
            end = (offset or 0) + len(page.items)
            block = _OrderCursor(state.after, end, tuple(versions), state.trash)
            return OrderPage(orders, block.encode(), rejected)
        assert last is not None
        at_last = [_version(raw) for raw in page.items if raw.get("date_modified_gmt") == last]
        keyset = _OrderCursor(_before(last), 0, tuple(at_last), state.trash)
        return OrderPage(orders, keyset.encode(), rejected)

    # -- pushing -------------------------------------------------------------------------------

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        """``POST /products/batch`` for products and ``/products/{id}/variations/batch``
        per parent for variations, at most 100 objects each, ``manage_stock: true`` with
        every quantity (``stock_quantity`` is ignored while stock is not managed, see
        "Product properties"), and ``backorders`` where the keep-selling flag changes. A
        batch answers HTTP 200 with an error object per refused item; those fail alone."""
        by_parent: dict[str | None, list[PushItem]] = {}
        for item in items:
            by_parent.setdefault(item.listing.parent_id, []).append(item)
        results: list[PushResult] = []
        for parent_id, group in by_parent.items():
            for start in range(0, len(group), BATCH_LIMIT):
                results.extend(self._push_batch(parent_id, group[start : start + BATCH_LIMIT]))
        return results

    def _push_batch(self, parent_id: str | None, items: Sequence[PushItem]) -> list[PushResult]:
        updates = [_update(item) for item in items]
        try:
            answer = self.client.update_batch(parent_id, updates)
        except BatchTooLarge:
            # The site lowered the limit (``woocommerce_rest_batch_items_limit`` filter):
            # halve until it fits.
            if len(items) == 1:
                return [PushResult.failed(items[0].listing.listing_id, "HTTP 413 for one item")]
            half = len(items) // 2
            log.info(
                "channel=%s: batch of %d refused with 413; sending halves",
                self.context.channel,
                len(items),
            )
            return self._push_batch(parent_id, items[:half]) + self._push_batch(
                parent_id, items[half:]
            )
        wanted = {item.listing.listing_id: item for item in items}
        results: list[PushResult] = []
        for entry in answer.updated:
            listing_id = str(entry.get("id"))
            if listing_id not in wanted:
                continue
            item = wanted[listing_id]
            flag = _backorders(item) if item.backorders_changed else entry.get("backorders")
            error = entry.get("error")
            if isinstance(error, dict):
                results.append(
                    PushResult.failed(
                        listing_id, f"{error.get('code', 'error')}: {error.get('message', '')}"
                    )
                )
            elif (
                entry.get("manage_stock") is True
                and entry.get("stock_quantity") == item.quantity
                and entry.get("backorders") == flag
            ):
                results.append(PushResult.ok(listing_id))
            else:
                shown = (
                    f", backorders={entry.get('backorders')!r}" if item.backorders_changed else ""
                )
                results.append(
                    PushResult.failed(
                        listing_id,
                        "not applied: the channel shows "
                        f"stock_quantity={entry.get('stock_quantity')!r}, "
                        f"manage_stock={entry.get('manage_stock')!r}{shown}",
                    )
                )
        return results


# -- mapping ---------------------------------------------------------------------------------


def _update(item: PushItem) -> dict[str, Any]:
    """One object of a batch ``update``: the quantity, and the keep-selling flag only when
    it changes (a ``backorders`` set by the merchant is left alone otherwise)."""
    update: dict[str, Any] = {
        "id": _wc_id(item.listing.listing_id),
        "manage_stock": True,
        "stock_quantity": item.quantity,
    }
    if item.backorders_changed:
        update["backorders"] = _backorders(item)
    return update


def _backorders(item: PushItem) -> str:
    return BACKORDERS_ON if item.backorders else BACKORDERS_OFF


def _listing(item: dict[str, Any], parent_id: str | None) -> Listing:
    quantity = item.get("stock_quantity")
    managed = item.get("manage_stock") is True
    extra = {} if managed else {"manage_stock": str(item.get("manage_stock")).lower()}
    return Listing(
        listing_id=str(_require(item, "id")),
        sku=(item.get("sku") or None),
        parent_id=parent_id,
        quantity=quantity if managed and isinstance(quantity, int) else None,
        extra=extra,
    )


def _order(raw: dict[str, Any]) -> ChannelOrder:
    """The order, or an OrderPayloadError naming the field in the REST API's terms."""
    order_id = raw.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or order_id == "":
        raise OrderPayloadError("id", f"{order_id!r} is not an order id")
    status = raw.get("status")
    if not isinstance(status, str):
        raise OrderPayloadError("status", f"{status!r} is not a status")
    items = raw.get("line_items")
    if not isinstance(items, list):
        raise OrderPayloadError(
            "line_items", "missing" if items is None else f"{str(items)[:60]!r} is not a list"
        )
    currency = _currency(raw)
    lines = []
    for position, line in enumerate(items):
        field = f"line_items[{position}]"
        if not isinstance(line, dict):
            raise OrderPayloadError(field, f"{str(line)[:60]!r} is not a line item")
        line_id = line.get("id")
        if isinstance(line_id, bool) or not isinstance(line_id, int | str) or line_id == "":
            raise OrderPayloadError(f"{field}.id", f"{line_id!r} is not a line item id")
        sku = line.get("sku") or ""
        if not isinstance(sku, str):
            raise OrderPayloadError(f"{field}.sku", f"{sku!r} is not text")
        lines.append(
            ChannelOrderLine(
                str(line_id),
                sku,
                whole_quantity(line.get("quantity"), f"{field}.quantity"),
                options=_options(line.get("meta_data")),
                revenue=_revenue(line, f"{field}.total", order_id),
                currency=currency,
            )
        )
    created = raw.get("date_created_gmt")
    return ChannelOrder(
        order_id=str(order_id),
        status=STATUSES.get(status, OrderStatus.OPEN),
        updated_at=_order_time(raw, "date_modified_gmt"),
        lines=tuple(lines),
        created_at=_order_time(raw, "date_created_gmt") if created else None,
        shipping_address=_shipping(raw),
    )


def _shipping(raw: dict[str, Any]) -> ShippingAddress | None:
    """The order's ``shipping`` object ("Order - Shipping properties": first_name,
    last_name, company, address_1, address_2, city, state, postcode, country as ISO 3166-1
    alpha-2, phone), with the billing email; None for an order with nothing to ship to (all
    empty, as for virtual products). A field of the wrong type is treated as absent: the
    address never stops an order's stock from being allocated."""
    shipping = raw.get("shipping")
    if not isinstance(shipping, dict):
        return None

    def text(name: str, source: dict[str, Any] = shipping) -> str | None:
        value = source.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    name = " ".join(part for part in (text("first_name"), text("last_name")) if part)
    if not (name or text("address_1") or text("city")):
        return None
    billing = raw.get("billing")
    return ShippingAddress(
        name=name or text("company") or "",
        address1=text("address_1") or "",
        city=text("city") or "",
        country=(text("country") or "").upper(),
        address2=text("address_2"),
        state=text("state"),
        zip_code=text("postcode"),
        company=text("company"),
        phone=text("phone"),
        email=text("email", billing) if isinstance(billing, dict) else None,
    )


def _revenue(line: dict[str, Any], field: str, order_id: Any) -> Decimal | None:
    """What the line earned: its ``total``, "Line total (after discounts)" in the docs'
    "Order - Line items properties", which never includes tax (the tax is ``total_tax``,
    whatever ``prices_include_tax`` says; ``subtotal`` is before discounts). Decimal text
    in the store's decimals. None when absent or not an amount: revenue is advisory, so
    the order still imports (its stock matters more than its margin)."""
    raw = line.get("total")
    if raw is None:
        return None
    try:
        return money_amount(raw, field)
    except OrderPayloadError as err:
        log.debug("order %s: no revenue for the line: %s", order_id, err)
        return None


def _currency(raw: dict[str, Any]) -> str | None:
    """The order's ``currency`` (ISO 4217, "Order properties"), in which every line total
    is given; None when absent or not a currency code (the lines then carry no currency)."""
    value = raw.get("currency")
    if value is None:
        return None
    try:
        return currency_code(value, "currency")
    except OrderPayloadError as err:
        log.debug("order %s: no currency: %s", raw.get("id"), err)
        return None


def _order_time(raw: dict[str, Any], key: str) -> datetime:
    text = raw.get(key)
    if not isinstance(text, str) or not text:
        raise OrderPayloadError(key, "missing" if text is None else f"{text!r} is not a date")
    try:
        return _parse_gmt(text)
    except ChannelPayloadError:
        raise OrderPayloadError(key, f"{text[:60]!r} is not an ISO 8601 date") from None


def _modified(raw: Any) -> datetime | None:
    """The order's modification time, None when it does not parse."""
    try:
        return _order_time(raw, "date_modified_gmt")
    except (OrderPayloadError, AttributeError):
        return None


def _options(meta_data: Any) -> tuple[tuple[str, str], ...]:
    """(slot, option SKU) from the line item's ``meta_data`` entries (``{id, key, value,
    display_key, display_value}``) keyed ``_sellable_option:<slot>``. Other meta (variation
    attributes, add-on plugins' fields) is left alone; a slot given twice keeps its first
    value; a value that is not text is ignored."""
    found: dict[str, str] = {}
    for entry in meta_data or ():
        if not isinstance(entry, dict):
            continue
        key, value = entry.get("key"), entry.get("value")
        if not isinstance(key, str) or not key.startswith(OPTION_PREFIX):
            continue
        slot = key[len(OPTION_PREFIX) :].strip()
        sku = value.strip() if isinstance(value, str) else ""
        if slot and sku:
            found.setdefault(slot, sku)
    return tuple(found.items())


@dataclass(frozen=True, slots=True)
class _OrderCursor:
    """Where the next order page starts: after ``after`` (GMT text), ``skip`` orders into
    that query (0: the query's first page), order versions already returned, and whether
    this is the pass over trashed orders."""

    after: str
    skip: int
    seen: tuple[str, ...]
    trash: bool = False

    @classmethod
    def start(cls, since: datetime, *, trash: bool = False) -> _OrderCursor:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        floor = since.astimezone(UTC).replace(microsecond=0, tzinfo=None)
        return cls(_before(floor.isoformat()), 0, (), trash)

    @classmethod
    def decode(cls, cursor: str) -> _OrderCursor:
        try:
            raw = json.loads(cursor)
            seen = tuple(str(x) for x in raw["i"])
            return cls(str(raw["a"]), int(raw["s"]), seen, bool(raw.get("t", False)))
        except (ValueError, KeyError, TypeError) as err:
            raise ChannelPayloadError(f"bad order cursor {cursor[:80]!r}") from err

    def encode(self) -> str:
        raw: dict[str, Any] = {"a": self.after, "s": self.skip, "i": list(self.seen)}
        if self.trash:
            raw["t"] = 1
        return json.dumps(raw, separators=(",", ":"))


def _version(raw: dict[str, Any]) -> str:
    """An order as of one change: ``<id>@<date_modified_gmt>`` (as sent, read or not)."""
    return f"{raw.get('id')}@{str(raw.get('date_modified_gmt'))[:40]}"


def _gmt_text(raw: dict[str, Any]) -> str:
    value = raw.get("date_modified_gmt")
    if not isinstance(value, str) or not value:
        raise ChannelPayloadError(f"order {raw.get('id')!r} has no date_modified_gmt")
    return value


def _parse_gmt(text: str) -> datetime:
    """``*_gmt`` fields carry no zone and are UTC ("Orders" > "Order properties")."""
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise ChannelPayloadError(f"bad date {text!r}") from err
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _before(gmt_text: str) -> str:
    """One second before: ``modified_after`` is strict and dates have whole seconds."""
    moment = _parse_gmt(gmt_text) - timedelta(seconds=1)
    return moment.replace(tzinfo=None).isoformat()


def _more_pages(page: Page, number: int) -> bool:
    if page.total_pages is not None:
        return number < page.total_pages
    return len(page.items) == PER_PAGE  # headers stripped by a proxy: a full page may go on


def _require(item: dict[str, Any], key: str) -> Any:
    try:
        return item[key]
    except (KeyError, TypeError):
        raise ChannelPayloadError(
            f"WooCommerce object without {key!r}: {str(item)[:200]}"
        ) from None


def _listing_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        read, _, last = cursor.partition(":")
        return int(read), int(last)
    except ValueError as err:
        raise ChannelPayloadError(f"bad listing cursor {cursor[:80]!r}") from err


def _product_id(item: dict[str, Any]) -> int:
    value = _require(item, "id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChannelPayloadError(f"product id {value!r} is not an integer")
    return value


def _wc_id(listing_id: str) -> int | str:
    return int(listing_id) if listing_id.isdigit() else listing_id


def _fingerprint(secret: str) -> str:
    """Eight hex digits of the secret's SHA-256: tells a changed secret, reveals nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]
