"""A WooCommerce REST API v3 emulator: products (simple and variable), stock, orders.

Field names, shapes, parameters and error bodies follow the WooCommerce REST API docs,
https://woocommerce.github.io/woocommerce-rest-api-docs/ (section "Products", "Product
variations", "Orders", "Pagination", "Errors"), and WooCommerce core's v3 controllers for
what the docs leave out (``orderby=modified``, ``modified_after``, the batch limit).

What it reproduces, because it is what makes the real API hard:

* HTTP Basic auth with a consumer key and secret (accepted over plain loopback HTTP here;
  real WooCommerce takes Basic only over HTTPS and wants OAuth 1.0a signing otherwise),
  401 with WooCommerce's error bodies, read-only keys refused on writes.
* Page-number pagination with ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link``;
  ``per_page`` above 100 refused with 400 ``rest_invalid_param``; pages computed on the
  state at request time, so orders that change between two pages move (drift).
* Dates: ``date_modified`` in site-local time and ``date_modified_gmt``; filters such as
  ``modified_after`` are local unless ``dates_are_gmt=true``. Second resolution, as MySQL
  stores them. The site runs at ``utc_offset_hours`` (default +2) so that mixing the two
  shows.
* Stock: ``stock_quantity`` is ignored unless ``manage_stock`` is (or becomes) true;
  ``stock_status`` is derived. ``backorders`` is one of ``no``, ``notify``, ``yes`` ("If
  managing stock, this controls if backorders are allowed", default ``no``), anything else
  400 ``rest_invalid_param``; with ``notify`` or ``yes`` a checkout takes more than the
  stock (which goes negative) and ``stock_status`` at 0 or below is ``onbackorder``. A
  variation with no SKU of its own shows its parent's
  (``WC_Product_Variation::get_sku`` in view context), so SKUs can repeat.
* Orders lower stock when they reach processing/on-hold/completed and give it back when
  cancelled (or set back to pending), once each, like ``wc_maybe_reduce_stock_levels`` and
  ``wc_maybe_increase_stock_levels``.
* Batches: at most ``batch_limit`` (100) objects over create/update/delete together, else
  413 ``woocommerce_rest_request_entity_too_large``; per-item errors inside HTTP 200.
* Throttling: WooCommerce core has no REST rate limit; hosts and WAFs add one. The
  emulator applies ``rate_limit`` requests per ``rate_window`` seconds (default 25 per
  10 s, WooCommerce's own documented default for its Store API rate limiter,
  https://developer.woocommerce.com/docs/apis/store-api/rate-limiting/), answering 429
  with ``Retry-After`` over it.
* Money as WooCommerce renders it: decimal text with the store's two decimals. A line's
  ``subtotal`` is before discounts, ``total`` after them, both excluding tax, which is
  ``subtotal_tax``/``total_tax`` beside them and in ``taxes`` ("Order - Line items
  properties"), also when the shop's prices include tax (``prices_include_tax``: the tax is
  then taken out of the price). ``place_order(..., discount_percent=)`` applies a
  percentage coupon to every line; ``tax_rate`` is the shop's one standard rate.
* Corrupt orders, for tests of what a broken plugin or a hand-edited database sends:
  :meth:`WooCommerceEmulator.corrupt_order` replaces or removes one field of one order as
  rendered (``line_items.0.quantity`` = ``"two"``, no ``line_items``, a
  ``date_modified_gmt`` that is not a date); :meth:`WooCommerceEmulator.repair_order`
  undoes it, as a fix in the shop would (touching the modification time, or not).

Usage::

    with WooCommerceEmulator() as shop:
        product_id = shop.add_listing("MUG", 5)
        shop.place_order([("MUG", 2)])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from sellable.emulators.base import (
    Bucket,
    Clock,
    Delivery,
    EmulatorServer,
    HttpError,
    Request,
    Response,
    WebhookSender,
)

API = "/wp-json/wc/v3"
DEFAULT_KEY = "ck_emulator0000000000000000000000000000000"
DEFAULT_SECRET = "cs_emulator0000000000000000000000000000000"
#: Statuses whose orders hold stock (WooCommerce reduces stock when an order reaches one).
REDUCING = {"processing", "on-hold", "completed"}
#: ``backorders`` values of a product or variation (docs, "Product properties").
BACKORDERS = ("no", "notify", "yes")
#: Webhook topics of orders (docs, "Webhooks" > "Topics") and webhook statuses.
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
WEBHOOK_STATUSES = ("active", "paused", "disabled")
#: ``WC_Webhook::failed_delivery``: "more than 5 consecutive failures" disable a webhook.
WEBHOOK_FAILURES_ALLOWED = 5


@dataclass
class Webhook:
    id: int
    name: str
    topic: str
    delivery_url: str
    secret: str
    status: str
    created: datetime
    modified: datetime
    failures: int = 0


#: Statuses that give reduced stock back.
RESTORING = {"cancelled", "pending"}
CENTS = Decimal("0.01")
ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
)


def wp_error(status: int, code: str, message: str, **data: Any) -> HttpError:
    """WordPress's REST error shape: ``{"code", "message", "data": {"status"}}``."""
    return HttpError(status, {"code": code, "message": message, "data": {"status": status, **data}})


@dataclass
class Product:
    """A product or a variation (``parent_id`` set), as WooCommerce stores it."""

    id: int
    name: str
    type: str  # simple | variable | variation
    sku: str
    created: datetime
    modified: datetime
    parent_id: int = 0
    manage_stock: bool = False
    stock_quantity: int | None = None
    backorders: str = "no"
    regular_price: str = ""
    status: str = "publish"
    variations: list[int] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Order:
    id: int
    status: str
    created: datetime
    modified: datetime
    line_items: list[dict[str, Any]]
    stock_reduced: bool = False
    prices_include_tax: bool = False
    #: "Order - Shipping properties" (and the billing email): where the order goes.
    shipping: dict[str, str] | None = None
    email: str = ""


#: The fields of an order's ``shipping`` object ("Order - Shipping properties"), empty.
_EMPTY_ADDRESS = {
    name: ""
    for name in (
        "first_name",
        "last_name",
        "company",
        "address_1",
        "address_2",
        "city",
        "state",
        "postcode",
        "country",
        "phone",
    )
}


def _shipping_fields(given: dict[str, str] | None, order_id: int) -> dict[str, str]:
    """An order's shipping fields: ``given`` (unknown names refused), or a made-up address."""
    if given is None:
        return {
            "first_name": "Customer",
            "last_name": str(order_id),
            "address_1": f"{order_id} Main Street",
            "city": "Springfield",
            "state": "IL",
            "postcode": "62701",
            "country": "US",
        }
    unknown = sorted(set(given) - set(_EMPTY_ADDRESS))
    if unknown:
        raise ValueError(f"unknown shipping field(s) {unknown} (known: {sorted(_EMPTY_ADDRESS)})")
    return dict(given)


class WooCommerceEmulator(EmulatorServer):
    """A WooCommerce shop on loopback speaking REST API v3 under ``/wp-json/wc/v3``."""

    name = "woocommerce"
    connector = "woocommerce"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        consumer_key: str = DEFAULT_KEY,
        consumer_secret: str = DEFAULT_SECRET,
        read_only: bool = False,
        rate_limit: int = 25,
        rate_window: float = 10.0,
        batch_limit: int = 100,
        utc_offset_hours: float = 2.0,
        currency: str = "EUR",
        tax_rate: str | Decimal = "0",
        prices_include_tax: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(port=port, clock=clock)
        if options:
            raise TypeError(f"unknown WooCommerce emulator options: {', '.join(sorted(options))}")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.read_only = read_only
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.bucket = (
            Bucket(rate_limit, rate_limit / rate_window, self.clock) if rate_limit else None
        )
        self.batch_limit = batch_limit
        self.site_zone = timezone(timedelta(hours=utc_offset_hours))
        self.currency = currency
        #: The standard tax rate (0.20 for 20 %) charged on every line.
        self.tax_rate = Decimal(str(tax_rate))
        self.prices_include_tax = prices_include_tax
        self.products: dict[int, Product] = {}
        self._sku_ids: dict[str, int] = {}  # own SKU -> product id, first one wins
        self.orders: dict[int, Order] = {}
        self.batch_sizes: list[int] = []  # objects per accepted batch request
        #: product id -> how many more batch updates of it fail with ``db_update_error``.
        self.failing_updates: dict[int, int] = {}
        #: Called (path, page) after a collection page was computed: tests change the shop
        #: between two pages to make pagination drift.
        self.after_page: Callable[[str, int], None] | None = None
        #: order id -> {dotted field path: value, or DROP}: fields replaced when rendered.
        self.corruptions: dict[int, dict[str, Any]] = {}
        self._next_id = 10
        self._next_line = 1
        self._ids = threading.Lock()
        #: Webhooks (``/webhooks``) and what they send (``self.webhooks.flush()`` in tests,
        #: ``self.webhooks.start()`` to send as soon as the shop changes).
        self.hooks: dict[int, Webhook] = {}
        self.pings: list[tuple[str, int | None]] = []  # (delivery URL, status) per ping
        self.webhooks = WebhookSender("X-WC-Webhook-Signature", on_result=self._delivered)

    # -- demo hooks ----------------------------------------------------------------------------

    def connector_settings(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
        }

    def add_listing(self, sku: str, quantity: int = 0, title: str | None = None) -> str:
        return str(self.add_product(sku, quantity, name=title).id)

    def add_product(
        self,
        sku: str,
        quantity: int | None = 0,
        *,
        name: str | None = None,
        manage_stock: bool = True,
        unique: bool = True,
        price: str = "10.00",
    ) -> Product:
        """A simple product; ``unique=False`` lets a SKU repeat (an import that bypassed
        WooCommerce's own check)."""
        with self.lock:
            if unique and sku and self._by_sku(sku) is not None:
                raise ValueError(f"SKU {sku!r} is already used")
            now = self.clock.now()
            product = Product(
                self._new_id(),
                name or sku or "Product",
                "simple",
                sku,
                now,
                now,
                manage_stock=manage_stock,
                stock_quantity=quantity if manage_stock else None,
                regular_price=price,
            )
            self._store(product)
            return product

    def add_variable_product(
        self, sku: str, variations: Iterable[tuple[str, int | None]], *, name: str | None = None
    ) -> tuple[Product, list[Product]]:
        """A variable product and its variations, each ``(sku, quantity)``; an empty SKU
        inherits the parent's, a None quantity means stock not managed."""
        with self.lock:
            now = self.clock.now()
            parent = Product(self._new_id(), name or sku, "variable", sku, now, now)
            self._store(parent)
            children = []
            for position, (child_sku, quantity) in enumerate(variations):
                if child_sku and self._by_sku(child_sku) is not None:
                    raise ValueError(f"SKU {child_sku!r} is already used")
                child = Product(
                    self._new_id(),
                    f"{parent.name} - {position + 1}",
                    "variation",
                    child_sku,
                    now,
                    now,
                    parent_id=parent.id,
                    manage_stock=quantity is not None,
                    stock_quantity=quantity,
                    regular_price="10.00",
                    attributes=[{"id": 0, "name": "Option", "option": str(position + 1)}],
                )
                self._store(child)
                parent.variations.append(child.id)
                children.append(child)
            return parent, children

    def delete_product(self, product_id: int) -> None:
        with self.lock:
            product = self.products.pop(product_id)
            self._unindex(product)
            for child in product.variations:
                removed = self.products.pop(child, None)
                if removed is not None:
                    self._unindex(removed)
            if product.parent_id and product.parent_id in self.products:
                self.products[product.parent_id].variations.remove(product_id)

    def place_order(
        self,
        lines: list[tuple[str, int]],
        status: str = "processing",
        *,
        discount_percent: str | Decimal = "0",
        shipping: dict[str, str] | None = None,
        email: str | None = None,
    ) -> str:
        """An order as a checkout makes it; stock is reduced when ``status`` holds stock.
        ``discount_percent`` is a percentage coupon on every line. ``shipping`` gives the
        shipping address's fields (REST names: first_name, address_1, postcode ...; the
        others empty); None: a made-up address per order. ValueError when a SKU is
        unknown or short of stock (checkout would refuse it)."""
        with self.lock:
            items = []
            for sku, quantity in lines:
                product = self._by_sku(sku)
                if product is None:
                    raise ValueError(f"no product with SKU {sku!r}")
                if quantity < 1:
                    raise ValueError(f"quantity must be positive, got {quantity}")
                if (
                    status in REDUCING
                    and product.manage_stock
                    and product.backorders == "no"
                    and (product.stock_quantity or 0) < quantity
                ):
                    raise ValueError(
                        f"not enough stock of {sku!r}: {product.stock_quantity} < {quantity}"
                    )
                items.append(
                    {
                        "id": self._new_line(),
                        "name": product.name,
                        "product_id": product.parent_id or product.id,
                        "variation_id": product.id if product.parent_id else 0,
                        "quantity": quantity,
                        "sku": self._sku_of(product),
                        **self._line_money(product, quantity, Decimal(str(discount_percent))),
                    }
                )
            now = self.clock.now()
            order_id = self._new_id()
            order = Order(
                order_id,
                "pending",
                now,
                now,
                items,
                False,
                self.prices_include_tax,
                shipping=_shipping_fields(shipping, order_id),
                email=email if email is not None else f"customer{order_id}@example.com",
            )
            self.orders[order.id] = order
            self._set_status(order, status)
            self._order_event(order, "created")
            return str(order.id)

    def corrupt_order(self, order_id: int | str, path: str, value: Any = None) -> None:
        """Render ``path`` (dotted: ``line_items.0.quantity``) of the order as ``value``;
        :data:`DROP` removes the key. Nothing else of the order changes, not even its
        modification time (a plugin writing the database directly)."""
        with self.lock:
            self.corruptions.setdefault(int(order_id), {})[path] = value

    def repair_order(self, order_id: int | str, *, touch: bool = True) -> None:
        """Undo the order's corruption; ``touch`` stamps a modification now, as an edit in
        the admin does (False: a silent fix of the database)."""
        with self.lock:
            self.corruptions.pop(int(order_id), None)
            if touch:
                self.orders[int(order_id)].modified = self.clock.now()
                self._order_event(self.orders[int(order_id)], "updated")

    def set_shipping(self, order_id: int | str, shipping: dict[str, str]) -> None:
        """The shop's admin edits the order's shipping address (fields as in
        :meth:`place_order`); a modification now, as any edit stamps."""
        with self.lock:
            order = self.orders[int(order_id)]
            order.shipping = _shipping_fields(shipping, order.id)
            order.modified = self.clock.now()
            self._order_event(order, "updated")

    def set_order_status(self, order_id: int | str, status: str) -> None:
        with self.lock:
            self._set_status(self.orders[int(order_id)], status)
            self._order_event(self.orders[int(order_id)], "updated")

    def quantities(self) -> dict[str, int]:
        with self.lock:
            found: dict[str, int] = {}
            for product in self.products.values():
                sku = self._sku_of(product)
                if product.type != "variable" and product.manage_stock and sku:
                    found[sku] = found.get(sku, 0) + (product.stock_quantity or 0)
            return found

    # -- the API -------------------------------------------------------------------------------

    def throttled(self, request: Request, retry_after: float = 1.0) -> Response:
        # Hosts answer in their own words; this one uses WordPress's error shape.
        seconds = max(1, math.ceil(retry_after))
        return Response(
            429,
            {
                "code": "rest_too_many_requests",
                "message": "Too many requests. Please wait and try again.",
                "data": {"status": 429},
            },
            {"Retry-After": str(seconds)},
        )

    def handle(self, request: Request) -> Response:
        if not request.path.startswith(API):
            raise wp_error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        self._authenticate(request)
        if self.bucket is not None and not self.bucket.take():
            with self.lock:
                self.throttled_count += 1
            return self.throttled(request, self.bucket.wait_time())
        parts = [p for p in request.path[len(API) :].split("/") if p]
        method = request.method
        with self.lock:
            if parts == ["products"] and method == "GET":
                return self._list(request, self._top_products(request))
            if parts == ["products", "batch"] and method == "POST":
                return self._batch(request, None)
            if len(parts) == 2 and parts[0] == "products" and parts[1].isdigit():
                product = self._product(int(parts[1]), None, status=404 if method == "GET" else 400)
                if method == "GET":
                    return Response(200, self._render(product))
                if method in ("PUT", "PATCH", "POST"):
                    self._update(product, request.json() or {})
                    return Response(200, self._render(product))
            if len(parts) >= 3 and parts[0] == "products" and parts[2] == "variations":
                if not parts[1].isdigit():
                    raise self._no_route()
                parent = self._product(int(parts[1]), None)
                if len(parts) == 3 and method == "GET":
                    return self._list(request, self._variations(parent, request))
                if parts[3:] == ["batch"] and method == "POST":
                    return self._batch(request, parent)
                if len(parts) == 4 and parts[3].isdigit():
                    variation = self._product(int(parts[3]), parent.id)
                    if method == "GET":
                        return Response(200, self._render(variation))
                    if method in ("PUT", "PATCH", "POST"):
                        self._update(variation, request.json() or {})
                        return Response(200, self._render(variation))
            if parts == ["orders"] and method == "GET":
                return self._list(request, self._order_rows(request), orders=True)
            if len(parts) == 2 and parts[0] == "orders" and parts[1].isdigit():
                order = self.orders.get(int(parts[1]))
                if order is None:
                    raise wp_error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
                if method in ("PUT", "PATCH", "POST"):
                    status = (request.json() or {}).get("status")
                    if status is not None:
                        if status not in ORDER_STATUSES:
                            raise self._invalid_param(
                                "status", "status is not one of " + ", ".join(ORDER_STATUSES)
                            )
                        self._set_status(order, str(status))
                        self._order_event(order, "updated")
                return Response(200, self._render_order(order))
            if parts and parts[0] == "webhooks":
                return self._webhooks_api(request, parts[1:])
        raise self._no_route()

    # -- webhooks ------------------------------------------------------------------------------

    def _webhooks_api(self, request: Request, rest: list[str]) -> Response:
        """``/webhooks`` (docs, "Webhooks"): list, create, read, update, delete. The
        secret is write-only: never rendered."""
        method = request.method
        if not rest:
            if method == "GET":
                rows = sorted(self.hooks.values(), key=lambda h: h.id)
                return self._list(request, rows, render=self._render_hook)
            if method == "POST":
                return Response(201, self._render_hook(self._create_hook(request.json() or {})))
        elif len(rest) == 1 and rest[0].isdigit():
            hook = self.hooks.get(int(rest[0]))
            if hook is None:
                raise wp_error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            if method == "GET":
                return Response(200, self._render_hook(hook))
            if method in ("PUT", "PATCH", "POST"):
                self._edit_hook(hook, request.json() or {})
                return Response(200, self._render_hook(hook))
            if method == "DELETE":
                if request.arg("force") not in ("true", "1"):
                    raise wp_error(
                        501,
                        "woocommerce_rest_trash_not_supported",
                        "Webhooks do not support trashing.",
                    )
                del self.hooks[hook.id]
                return Response(200, self._render_hook(hook))
        raise self._no_route()

    def _create_hook(self, fields: Any) -> Webhook:
        if not isinstance(fields, dict):
            raise self._invalid_param("body", "must be an object")
        topic = str(fields.get("topic") or "")
        url = str(fields.get("delivery_url") or "")
        if not topic or not url:
            raise wp_error(
                400, "rest_missing_callback_param", "Missing parameter(s): topic, delivery_url"
            )
        now = self.clock.now()
        hook = Webhook(
            self._new_id(),
            str(fields.get("name") or f"Webhook created on {now:%b %d, %Y}"),
            topic,
            url,
            str(fields.get("secret") or ""),
            "active",
            now,
            now,
        )
        self._edit_hook(hook, {k: v for k, v in fields.items() if k == "status"})
        self.hooks[hook.id] = hook
        # WC_Webhook::deliver_ping: an unsigned, form-encoded POST to the new address.
        try:
            import httpx

            answer = httpx.post(
                url,
                content=f"webhook_id={hook.id}".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=5.0,
            )
            self.pings.append((url, answer.status_code))
        except Exception:  # a ping nobody answers does not stop the creation
            self.pings.append((url, None))
        return hook

    def _edit_hook(self, hook: Webhook, fields: Any) -> None:
        if not isinstance(fields, dict):
            raise self._invalid_param("body", "must be an object")
        status = fields.get("status")
        if status is not None and status not in WEBHOOK_STATUSES:
            raise self._invalid_param("status", "status is not one of active, paused, disabled")
        for name in ("name", "delivery_url", "secret", "topic"):
            if fields.get(name):
                setattr(hook, name, str(fields[name]))
        if status is not None:
            hook.status = str(status)
            if status == "active":
                hook.failures = 0
        hook.modified = self.clock.now()

    def _render_hook(self, hook: Webhook) -> dict[str, Any]:
        resource, _, event = hook.topic.partition(".")
        return {
            "id": hook.id,
            "name": hook.name,
            "status": hook.status,
            "topic": hook.topic,
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{hook.topic.replace('.', '_')}"],
            "delivery_url": hook.delivery_url,
            "date_created": self._local(hook.created),
            "date_created_gmt": _gmt(hook.created),
            "date_modified": self._local(hook.modified),
            "date_modified_gmt": _gmt(hook.modified),
        }

    def _order_event(self, order: Order, event: str) -> None:
        """Queue a delivery to every active webhook of ``order.<event>``; the body is the
        order as the API renders it, JSON-encoded the PHP way (``\\/``)."""
        topic = f"order.{event}"
        hooks = [h for h in self.hooks.values() if h.topic == topic and h.status == "active"]
        if not hooks:
            return
        body = json.dumps(self._render_order(order)).replace("/", "\\/").encode()
        second = int(self.clock.now().timestamp())
        for hook in hooks:
            key = _specialchars_decode(hook.secret).encode()
            signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
            self.webhooks.enqueue(
                Delivery(
                    hook.delivery_url,
                    {
                        "Content-Type": "application/json",
                        "User-Agent": "WooCommerce/9.0 Hookshot (WordPress/6.5)",
                        "X-WC-Webhook-Source": f"{self.url}/",
                        "X-WC-Webhook-Topic": topic,
                        "X-WC-Webhook-Resource": "order",
                        "X-WC-Webhook-Event": event,
                        "X-WC-Webhook-Signature": signature,
                        "X-WC-Webhook-ID": str(hook.id),
                        # wp_hash($id . strtotime('now')): one value per webhook and second
                        "X-WC-Webhook-Delivery-ID": hashlib.md5(
                            f"{hook.id}{second}".encode()
                        ).hexdigest(),
                    },
                    body,
                    hook.id,
                )
            )

    def _delivered(self, delivery: Delivery, status: int | None) -> bool:
        """``WC_Webhook::failed_delivery``: a 2xx or 301/302 answer resets the count;
        more than 5 failures in a row disable the webhook. No retries."""
        with self.lock:
            hook = self.hooks.get(delivery.subscription)
            if hook is None:
                return False
            if status is not None and (200 <= status < 300 or status in (301, 302)):
                hook.failures = 0
            else:
                hook.failures += 1
                if hook.failures > WEBHOOK_FAILURES_ALLOWED:
                    hook.status = "disabled"
        return False

    # -- auth ----------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        """WC_REST_Authentication: Basic (or ``consumer_key``/``consumer_secret`` query
        parameters); a request with no credentials gets the endpoint's permission error."""
        key = request.arg("consumer_key")
        secret = request.arg("consumer_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            key, _, secret = decoded.partition(":")
        if not key:
            write = request.method != "GET"
            code = "woocommerce_rest_cannot_edit" if write else "woocommerce_rest_cannot_view"
            message = (
                "Sorry, you are not allowed to edit this resource."
                if write
                else "Sorry, you cannot list resources."
            )
            raise wp_error(401, code, message)
        if key != self.consumer_key:
            raise wp_error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.consumer_secret:
            raise wp_error(
                401, "woocommerce_rest_authentication_error", "Consumer secret is invalid."
            )
        if self.read_only and request.method != "GET":
            raise wp_error(
                401,
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
            )

    # -- collections ---------------------------------------------------------------------------

    def _list(
        self,
        request: Request,
        rows: list[Any],
        *,
        orders: bool = False,
        render: Callable[[Any], dict[str, Any]] | None = None,
    ) -> Response:
        page = self._int_arg(request, "page", 1, 1, None)
        per_page = self._int_arg(request, "per_page", 10, 1, 100)
        offset = request.arg("offset")
        start = (page - 1) * per_page
        if offset is not None:
            if not offset.isdigit():
                raise self._invalid_param("offset", "offset is not of type integer.")
            start = int(offset)
        total = len(rows)
        pages = math.ceil(total / per_page) if total else 0
        chunk = rows[start : start + per_page]
        shape = render or (self._render_order if orders else self._render)
        body = [shape(r) for r in chunk]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        query = {
            k: v[-1]
            for k, v in request.query.items()
            if k not in ("consumer_key", "consumer_secret")
        }
        if page > 1:
            links.append(
                f'<{self.url}{request.path}?{urlencode({**query, "page": page - 1})}>; rel="prev"'
            )
        if page < pages:
            links.append(
                f'<{self.url}{request.path}?{urlencode({**query, "page": page + 1})}>; rel="next"'
            )
        if links:
            headers["Link"] = ", ".join(links)
        if self.after_page is not None:
            self.after_page(request.path, page)
        return Response(200, body, headers)

    def _top_products(self, request: Request) -> list[Product]:
        include = request.arg("include")
        if include and all(x.isdigit() for x in include.split(",") if x):
            # what _include keeps, found by id instead of by a scan of the whole shop
            found = (self.products.get(int(x)) for x in include.split(",") if x)
            rows = [p for p in found if p is not None and not p.parent_id]
        else:
            rows = [p for p in self.products.values() if not p.parent_id]
        wanted_type = request.arg("type")
        if wanted_type:
            rows = [p for p in rows if p.type == wanted_type]
        return self._filter_products(rows, request)

    def _variations(self, parent: Product, request: Request) -> list[Product]:
        return self._filter_products([self.products[v] for v in parent.variations], request)

    def _filter_products(self, rows: list[Product], request: Request) -> list[Product]:
        skus = request.arg("sku")
        if skus:  # a comma-separated list is accepted since WooCommerce 3.x
            wanted = set(skus.split(","))
            rows = [p for p in rows if self._sku_of(p) in wanted]
        rows = self._include(rows, request)
        return self._ordered(rows, request, default="date")

    def _order_rows(self, request: Request) -> list[Order]:
        statuses = (request.arg("status") or "any").split(",")
        rows = [
            o
            for o in self.orders.values()
            if o.status in statuses or ("any" in statuses and o.status != "trash")
        ]
        gmt = (request.arg("dates_are_gmt") or "false").lower() in ("1", "true")
        for name, attr, after in (
            ("after", "created", True),
            ("before", "created", False),
            ("modified_after", "modified", True),
            ("modified_before", "modified", False),
        ):
            raw = request.arg(name)
            if raw is None:
                continue
            limit = self._parse_date(name, raw, gmt)
            rows = [
                o
                for o in rows
                if (
                    _second(getattr(o, attr)) > limit
                    if after
                    else _second(getattr(o, attr)) < limit
                )
            ]
        rows = self._include(rows, request)
        return self._ordered(rows, request, default="date")

    def _include(self, rows: list[Any], request: Request) -> list[Any]:
        include = request.arg("include")
        if not include:
            return rows
        try:
            ids = {int(x) for x in include.split(",") if x}
        except ValueError:
            raise self._invalid_param("include", "include[0] is not of type integer.") from None
        return [r for r in rows if r.id in ids]

    def _ordered(self, rows: list[Any], request: Request, *, default: str) -> list[Any]:
        orderby = request.arg("orderby", default) or default
        order = (request.arg("order") or "desc").lower()
        if order not in ("asc", "desc"):
            raise self._invalid_param("order", "order is not one of asc, desc.")
        keys: dict[str, Callable[[Any], Any]] = {
            "date": lambda r: (_second(r.created), r.id),
            "modified": lambda r: (_second(r.modified), r.id),
            "id": lambda r: r.id,
            "include": lambda r: r.id,
        }
        if orderby not in keys:
            raise self._invalid_param("orderby", f"orderby is not one of {', '.join(keys)}.")
        return sorted(rows, key=keys[orderby], reverse=order == "desc")

    # -- writes --------------------------------------------------------------------------------

    def _batch(self, request: Request, parent: Product | None) -> Response:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise self._invalid_param("body", "the body must be an object")
        count = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
        if count > self.batch_limit:
            # WC_REST_Controller::check_batch_limit
            raise wp_error(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
            )
        self.batch_sizes.append(count)
        answer: dict[str, list[dict[str, Any]]] = {}
        invalid = (
            "woocommerce_rest_product_variation_invalid_id"
            if parent is not None
            else "woocommerce_rest_product_invalid_id"
        )
        if "create" in body:
            answer["create"] = []
            for item in body["create"] or []:
                try:
                    created = self._create(item, parent)
                    answer["create"].append(self._render(created))
                except HttpError as err:
                    answer["create"].append({"id": 0, "error": err.response.body})
        if "update" in body:
            answer["update"] = []
            for item in body["update"] or []:
                raw_id: Any = item.get("id") if isinstance(item, dict) else None
                try:
                    product = self._product(
                        int(raw_id), parent.id if parent else None, invalid, 400
                    )
                except (TypeError, ValueError, HttpError) as err:
                    error = (
                        err.response.body
                        if isinstance(err, HttpError)
                        else {"code": invalid, "message": "Invalid ID.", "data": {"status": 400}}
                    )
                    answer["update"].append({"id": raw_id, "error": error})
                    continue
                failures = self.failing_updates.get(product.id, 0)
                if failures:
                    self.failing_updates[product.id] = failures - 1
                    answer["update"].append(
                        {
                            "id": product.id,
                            "error": {
                                "code": "db_update_error",
                                "message": "Could not update post in the database.",
                                "data": {"status": 500},
                            },
                        }
                    )
                    continue
                try:
                    self._update(product, item)
                    answer["update"].append(self._render(product))
                except HttpError as err:
                    answer["update"].append({"id": product.id, "error": err.response.body})
        if "delete" in body:
            answer["delete"] = []
            for raw_id in body["delete"] or []:
                try:
                    product = self._product(
                        int(raw_id), parent.id if parent else None, invalid, 400
                    )
                    rendered = self._render(product)
                    self.delete_product(product.id)
                    answer["delete"].append(rendered)
                except (TypeError, ValueError, HttpError):
                    answer["delete"].append(
                        {
                            "id": raw_id,
                            "error": {
                                "code": invalid,
                                "message": "Invalid ID.",
                                "data": {"status": 400},
                            },
                        }
                    )
        return Response(200, answer)

    def _create(self, item: Any, parent: Product | None) -> Product:
        if not isinstance(item, dict):
            raise self._invalid_param("create", "each item must be an object")
        sku = str(item.get("sku") or "")
        if sku and self._by_sku(sku) is not None:
            raise wp_error(400, "product_invalid_sku", "Invalid or duplicated SKU.")
        manage = bool(item.get("manage_stock", False))
        quantity = self._quantity(item) if manage else None
        backorders = self._backorders(item) if "backorders" in item else "no"
        if parent is None:
            product = self.add_product(sku, quantity, name=item.get("name"), manage_stock=manage)
            product.backorders = backorders
            return product
        now = self.clock.now()
        child = Product(
            self._new_id(),
            f"{parent.name} - {len(parent.variations) + 1}",
            "variation",
            sku,
            now,
            now,
            parent_id=parent.id,
            manage_stock=manage,
            stock_quantity=quantity,
            backorders=backorders,
            regular_price=str(item.get("regular_price") or "10.00"),
        )
        self._store(child)
        parent.variations.append(child.id)
        return child

    def _update(self, product: Product, item: Any) -> None:
        if not isinstance(item, dict):
            raise self._invalid_param("update", "each item must be an object")
        if "sku" in item:
            sku = str(item["sku"] or "")
            other = self._by_sku(sku) if sku else None
            if other is not None and other.id != product.id:
                raise wp_error(400, "product_invalid_sku", "Invalid or duplicated SKU.")
        quantity = self._quantity(item) if "stock_quantity" in item else None
        backorders = self._backorders(item) if "backorders" in item else None
        if "manage_stock" in item:
            manage = item["manage_stock"]
            if not isinstance(manage, bool) and manage != "parent":
                raise self._invalid_param("manage_stock", "manage_stock is not of type boolean.")
            product.manage_stock = manage is True
        if "sku" in item:
            self._unindex(product)
            product.sku = str(item["sku"] or "")
            if product.sku:
                self._sku_ids.setdefault(product.sku, product.id)
        if "name" in item:
            product.name = str(item["name"])
        # stock_quantity only counts when stock is managed (WC_Product::set_stock_quantity is
        # applied by the REST controller only "if manage_stock"), see the docs' Products table.
        if quantity is not None and product.manage_stock:
            product.stock_quantity = quantity
        if backorders is not None:
            product.backorders = backorders
        product.modified = self.clock.now()

    def _quantity(self, item: dict[str, Any]) -> int | None:
        value = item.get("stock_quantity")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._invalid_param("stock_quantity", "stock_quantity is not of type integer.")
        return value

    def _backorders(self, item: dict[str, Any]) -> str:
        value = item.get("backorders")
        if value not in BACKORDERS:
            # WordPress's enum check (rest_validate_value_from_schema)
            raise self._invalid_param("backorders", "backorders is not one of no, notify, and yes.")
        return str(value)

    def _line_money(self, product: Product, quantity: int, percent: Decimal) -> dict[str, Any]:
        """A line's amounts as WooCommerce computes them: the price (less its tax when
        prices include tax) times the quantity is ``subtotal``; the coupon comes off that
        for ``total``; tax is charged on each, rounded to the cent."""
        gross = Decimal(product.regular_price or "0") * quantity
        subtotal = gross / (1 + self.tax_rate) if self.prices_include_tax else gross
        subtotal = subtotal.quantize(CENTS, ROUND_HALF_UP)
        discount = (subtotal * percent / 100).quantize(CENTS, ROUND_HALF_UP)
        total = subtotal - discount
        return {
            "subtotal": subtotal,
            "subtotal_tax": (subtotal * self.tax_rate).quantize(CENTS, ROUND_HALF_UP),
            "total": total,
            "total_tax": (total * self.tax_rate).quantize(CENTS, ROUND_HALF_UP),
        }

    def _set_status(self, order: Order, status: str) -> None:
        if status in REDUCING and not order.stock_reduced:
            self._move_stock(order, -1)
            order.stock_reduced = True
        elif status in RESTORING and order.stock_reduced:
            self._move_stock(order, +1)
            order.stock_reduced = False
        order.status = status
        order.modified = self.clock.now()

    def _move_stock(self, order: Order, sign: int) -> None:
        for line in order.line_items:
            product = self.products.get(line["variation_id"] or line["product_id"])
            if product is not None and product.manage_stock:
                product.stock_quantity = (product.stock_quantity or 0) + sign * line["quantity"]
                product.modified = self.clock.now()

    # -- rendering -----------------------------------------------------------------------------

    def _render(self, product: Product) -> dict[str, Any]:
        """The fields of the docs' product (or variation) properties our users read."""
        body: dict[str, Any] = {
            "id": product.id,
            "name": product.name,
            "type": product.type,
            "status": product.status,
            "sku": self._sku_of(product),
            "price": product.regular_price,
            "regular_price": product.regular_price,
            "date_created": self._local(product.created),
            "date_created_gmt": _gmt(product.created),
            "date_modified": self._local(product.modified),
            "date_modified_gmt": _gmt(product.modified),
            "manage_stock": product.manage_stock,
            "stock_quantity": product.stock_quantity if product.manage_stock else None,
            "stock_status": self._stock_status(product),
            "backorders": product.backorders,
            "backorders_allowed": product.backorders != "no",
        }
        if product.parent_id:
            del body["name"], body["type"]
            body["attributes"] = product.attributes
        else:
            body["parent_id"] = 0
            body["variations"] = list(product.variations)
        return body

    def _stock_status(self, product: Product) -> str:
        if product.type == "variable":
            children = [self.products[v] for v in product.variations]
            return (
                "instock"
                if any(self._stock_status(c) == "instock" for c in children)
                else "outofstock"
            )
        if not product.manage_stock:
            return "instock"
        if (product.stock_quantity or 0) > 0:
            return "instock"
        return "onbackorder" if product.backorders != "no" else "outofstock"

    def _render_order(self, order: Order) -> dict[str, Any]:
        rendered = self._render_clean_order(order)
        for path, value in self.corruptions.get(order.id, {}).items():
            _replace(rendered, path.split("."), value)
        return rendered

    def _render_clean_order(self, order: Order) -> dict[str, Any]:
        lines = order.line_items
        subtotal = sum((line["subtotal"] for line in lines), Decimal(0))
        items_total = sum((line["total"] for line in lines), Decimal(0))
        total_tax = sum((line["total_tax"] for line in lines), Decimal(0))
        subtotal_tax = sum((line["subtotal_tax"] for line in lines), Decimal(0))
        return {
            "id": order.id,
            "parent_id": 0,
            "number": str(order.id),
            "order_key": f"wc_order_{order.id:08d}",
            "created_via": "checkout",
            "status": order.status,
            "currency": self.currency,
            "prices_include_tax": order.prices_include_tax,
            "date_created": self._local(order.created),
            "date_created_gmt": _gmt(order.created),
            "date_modified": self._local(order.modified),
            "date_modified_gmt": _gmt(order.modified),
            "discount_total": f"{subtotal - items_total:.2f}",
            "discount_tax": f"{subtotal_tax - total_tax:.2f}",
            "total_tax": f"{total_tax:.2f}",
            "cart_tax": f"{total_tax:.2f}",
            "total": f"{items_total + total_tax:.2f}",
            "billing": {**_EMPTY_ADDRESS, **(order.shipping or {}), "email": order.email},
            "shipping": {**_EMPTY_ADDRESS, **(order.shipping or {})},
            "line_items": [
                {
                    "id": line["id"],
                    "name": line["name"],
                    "product_id": line["product_id"],
                    "variation_id": line["variation_id"],
                    "quantity": line["quantity"],
                    "sku": line["sku"],
                    # "price" is a number in the API: the line's unit price after
                    # discounts, excluding tax (WC_Order_Item_Product total / quantity).
                    "price": float(line["total"] / line["quantity"]),
                    "subtotal": f"{line['subtotal']:.2f}",
                    "subtotal_tax": f"{line['subtotal_tax']:.2f}",
                    "total": f"{line['total']:.2f}",
                    "total_tax": f"{line['total_tax']:.2f}",
                    "taxes": [
                        {
                            "id": 1,
                            "total": f"{line['total_tax']:.2f}",
                            "subtotal": f"{line['subtotal_tax']:.2f}",
                        }
                    ]
                    if self.tax_rate
                    else [],
                }
                for line in order.line_items
            ],
        }

    # -- helpers -------------------------------------------------------------------------------

    def _local(self, when: datetime) -> str:
        return _second(when).astimezone(self.site_zone).replace(tzinfo=None).isoformat()

    def _parse_date(self, name: str, raw: str, gmt: bool) -> datetime:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise self._invalid_param(name, "Invalid date.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC if gmt else self.site_zone)
        return _second(when.astimezone(UTC))

    def _sku_of(self, product: Product) -> str:
        if not product.sku and product.parent_id and product.parent_id in self.products:
            return self.products[product.parent_id].sku
        return product.sku

    def _by_sku(self, sku: str) -> Product | None:
        """The product or variation whose own SKU this is."""
        product_id = self._sku_ids.get(sku)
        return None if product_id is None else self.products.get(product_id)

    def _store(self, product: Product) -> None:
        self.products[product.id] = product
        if product.sku:
            self._sku_ids.setdefault(product.sku, product.id)

    def _unindex(self, product: Product) -> None:
        if self._sku_ids.get(product.sku) == product.id:
            del self._sku_ids[product.sku]

    def _product(
        self,
        product_id: int,
        parent_id: int | None,
        code: str = "woocommerce_rest_product_invalid_id",
        status: int = 404,
    ) -> Product:
        """GET of a missing id answers 404, an update of one 400
        (``WC_REST_CRUD_Controller::get_item`` / ``update_item``)."""
        product = self.products.get(product_id)
        if product is None or (parent_id is not None and product.parent_id != parent_id):
            raise wp_error(status, code, "Invalid ID.")
        return product

    def _int_arg(
        self, request: Request, name: str, default: int, low: int, high: int | None
    ) -> int:
        raw = request.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._invalid_param(name, f"{name} is not of type integer.") from None
        if value < low or (high is not None and value > high):
            bound = f" and {high} (inclusive)" if high is not None else ""
            raise self._invalid_param(name, f"{name} must be between {low} (inclusive){bound}")
        return value

    @staticmethod
    def _invalid_param(name: str, reason: str) -> HttpError:
        return wp_error(
            400, "rest_invalid_param", f"Invalid parameter(s): {name}", params={name: reason}
        )

    @staticmethod
    def _no_route() -> HttpError:
        return wp_error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _new_id(self) -> int:
        with self._ids:
            self._next_id += 1
            return self._next_id

    def _new_line(self) -> int:
        with self._ids:
            self._next_line += 1
            return self._next_line


def _specialchars_decode(text: str) -> str:
    """``wp_specialchars_decode($secret, ENT_QUOTES)``: what WooCommerce signs with."""
    for entity, char in (
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", '"'),
        ("&#039;", "'"),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ):
        text = text.replace(entity, char)
    return text


def _second(when: datetime) -> datetime:
    """MySQL DATETIME precision: whole seconds."""
    return when.replace(microsecond=0)


def _gmt(when: datetime) -> str:
    return _second(when).astimezone(UTC).replace(tzinfo=None).isoformat()


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: :meth:`WooCommerceEmulator.corrupt_order`'s value that removes the field.
DROP: Any = _Drop()


def _replace(node: Any, path: list[str], value: Any) -> None:
    """Set (or, for DROP, remove) ``path`` inside the rendered JSON ``node``."""
    *parents, last = path
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        if value is DROP:
            del node[int(last)]
        else:
            node[int(last)] = value
    elif value is DROP:
        node.pop(last, None)
    else:
        node[last] = value
