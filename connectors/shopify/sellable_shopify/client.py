"""A thin typed client of the Shopify Admin GraphQL API: the documents the connector sends,
their cost estimates, and pacing by Shopify's cost bucket.

Every answer carries ``extensions.cost`` (requested and actual query cost, and
``throttleStatus``: ``maximumAvailable``, ``currentlyAvailable``, ``restoreRate``); the
client keeps a named limiter of ChannelHttp in step with it, so that a query waits for the
points it will need instead of being refused. A ``THROTTLED`` answer (HTTP 200, no data)
is turned into a retry after the deficit has been restored; HTTP 429 is retried by the
framework. https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sellable.sdk import (
    AuthenticationError,
    ChannelError,
    ChannelHttp,
    ChannelPayloadError,
    TemporaryChannelError,
)

LIMITER = "shopify-graphql"
#: Until the first answer says otherwise: the standard figures of the old docs (a 1000-point
#: bucket restored at 50 points/s); the bucket's real size and rate come from throttleStatus.
DEFAULT_MAXIMUM = 1000
DEFAULT_RESTORE = 50.0
#: "The maximum cost of a single query is 1,000 points" (rate-limits page).
MAX_QUERY_COST = 1000
#: "Mutation | 10" (rate-limits page): the requested cost of every mutation.
MUTATION_COST = 10
#: "Input arrays <= 250 items" (Admin API limits).
MAX_QUANTITIES = 250

LOCATION_QUERY = "query SellablePrimaryLocation { location { id } }"

ORDER_PAGE = 50
ORDER_LINES = 10

#: What a line earned, in the shop currency (``shopMoney``): the price of every unit
#: ordered (``originalTotalSet``), each discount allocated to it, order-level ones included
#: (``discountAllocations``; ``discountedTotalSet`` "doesn't include order-level
#: discounts"), and its taxes (``taxLines``, taken out when the order's ``taxesIncluded``):
#: https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem. Requested cost: 2 for
#: the MoneyBag and MoneyV2 objects, 3 for each list of objects with its two money objects.
LINE_MONEY = (
    "originalTotalSet { shopMoney { amount currencyCode } } "
    "discountAllocations { allocatedAmountSet { shopMoney { amount currencyCode } } } "
    "taxLines { priceSet { shopMoney { amount currencyCode } } }"
)
LINE_MONEY_COST = 2 + 3 + 3


#: The order's ``shippingAddress`` (a MailingAddress), for a fulfilment provider
#: (https://shopify.dev/docs/api/admin-graphql/2025-01/objects/MailingAddress); reading it
#: needs the protected customer data access of level 2 (name, address, phone, email).
SHIPPING_ADDRESS = (
    "name firstName lastName company address1 address2 city province provinceCode zip "
    "countryCodeV2 phone"
)


def orders_query(with_location: bool, with_options: bool = False) -> tuple[str, int, int]:
    """The orders page document, its page size and its requested cost: order 1 + lineItems
    connection 2 + per line item 1 and its money (:data:`LINE_MONEY_COST`), 1 more with its
    ``customAttributes`` (a list of objects); its ``shippingAddress`` 1; with the fulfilment
    location:
    fulfillmentOrders 2 + 1 x (fulfilment order, assigned location, location) = 5 more per
    order. The page shrinks to stay under the 1000-point cap (10 orders, 9 with line
    properties)."""
    location = (
        "fulfillmentOrders(first: 1) { nodes { assignedLocation { location { id } } } }"
        if with_location
        else ""
    )
    document = f"""
query SellableOrders($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    nodes {{
      id createdAt updatedAt cancelledAt closed displayFulfillmentStatus
      currencyCode taxesIncluded email
      shippingAddress {{ {SHIPPING_ADDRESS} }}
      lineItems(first: {ORDER_LINES}) {{
        nodes {{ {_line_fields(with_options)} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
      {location}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
    per_line = _line_cost(with_options)
    per_order = 1 + 2 + ORDER_LINES * per_line + 1 + (5 if with_location else 0)
    first = min(ORDER_PAGE, (MAX_QUERY_COST - 2) // per_order)
    return document, first, 2 + first * per_order


def _line_fields(with_options: bool) -> str:
    # customAttributes: the line item properties (key/value) the storefront set
    # (https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem#field-customAttributes).
    return f"id sku quantity currentQuantity {LINE_MONEY}" + (
        " customAttributes { key value }" if with_options else ""
    )


def _line_cost(with_options: bool) -> int:
    return 1 + LINE_MONEY_COST + (1 if with_options else 0)


def order_lines_query(with_options: bool = False) -> tuple[str, int]:
    """The document reading an order's further line items, and its requested cost: as
    many lines per page as fit under the 1000-point cap (at most 250)."""
    per_line = _line_cost(with_options)
    first = min(250, (MAX_QUERY_COST - 3) // per_line)
    document = f"""
query SellableOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {first}, after: $after) {{
      nodes {{ {_line_fields(with_options)} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""
    return document, 1 + 2 + first * per_line


_DEFAULT_ORDERS = orders_query(False)
ORDERS_QUERY, ORDERS_COST = _DEFAULT_ORDERS[0], _DEFAULT_ORDERS[2]
ORDER_LINES_QUERY, ORDER_LINES_COST = order_lines_query(False)

SET_QUANTITIES = """
mutation SellableSetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { code field message }
  }
}"""


def listings_query(locations: int) -> tuple[str, int, int]:
    """The variants page document for ``locations`` inventory levels per variant, its page
    size and requested cost (variant 1 + inventory item 1 + per level 2)."""
    declared = "".join(f", $l{n}: ID!" for n in range(locations))
    levels = " ".join(
        f'l{n}: inventoryLevel(locationId: $l{n}) {{ quantities(names: ["available"]) '
        "{ quantity } }"
        for n in range(locations)
    )
    per_variant = 2 + 2 * locations
    first = max(1, min(250, (MAX_QUERY_COST - 2) // per_variant))
    document = (
        f"query SellableListings($first: Int!, $after: String{declared}) {{\n"
        "  productVariants(first: $first, after: $after, sortKey: ID) {\n"
        f"    nodes {{ id sku inventoryItem {{ id {levels} }} }}\n"
        "    pageInfo { hasNextPage endCursor }\n  }\n}"
    )
    return document, first, 2 + first * per_variant


def levels_query(count: int) -> tuple[str, int]:
    """One document reading ``count`` (inventory item, location) levels by alias, and its
    requested cost (item 1 + level 1 + quantities 1 each)."""
    declared = ", ".join(f"$i{n}: ID!, $l{n}: ID!" for n in range(count))
    body = "\n".join(
        f"  i{n}: inventoryItem(id: $i{n}) {{ inventoryLevel(locationId: $l{n}) "
        '{ quantities(names: ["available"]) { quantity } } }'
        for n in range(count)
    )
    return f"query SellableLevels({declared}) {{\n{body}\n}}", 3 * count


#: Products per ``productVariantsBulkUpdate`` document (one aliased mutation each).
POLICY_PRODUCTS = 25


def variant_products_query(count: int) -> tuple[str, int]:
    """One document reading the product of ``count`` variants by alias, and its requested
    cost (variant 1 + product 1 each)."""
    declared = ", ".join(f"$v{n}: ID!" for n in range(count))
    body = "\n".join(
        f"  v{n}: productVariant(id: $v{n}) {{ id product {{ id }} }}" for n in range(count)
    )
    return f"query SellableVariantProducts({declared}) {{\n{body}\n}}", 2 * count


def inventory_policy_mutation(count: int) -> str:
    """``count`` aliased ``productVariantsBulkUpdate`` fields, one per product: the variants'
    ``inventoryPolicy`` (DENY: stop selling at 0; CONTINUE: keep selling), the only field
    sent. https://shopify.dev/docs/api/admin-graphql/latest/mutations/productVariantsBulkUpdate
    """
    declared = ", ".join(f"$p{n}: ID!, $v{n}: [ProductVariantsBulkInput!]!" for n in range(count))
    body = "\n".join(
        f"  p{n}: productVariantsBulkUpdate(productId: $p{n}, variants: $v{n}) {{\n"
        "    productVariants { id inventoryPolicy }\n"
        "    userErrors { code field message }\n  }"
        for n in range(count)
    )
    return f"mutation SellableInventoryPolicy({declared}) {{\n{body}\n}}"


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


class ShopifyGraphQL:
    """``execute(name, document, variables, cost)`` -> the ``data`` of the answer.

    ``cost`` is the document's requested cost estimate; the server's own
    ``requestedQueryCost`` replaces it for the next call of the same document."""

    def __init__(self, http: ChannelHttp, channel: str) -> None:
        self.http = http
        self.channel = channel
        self.status: ThrottleStatus | None = None
        self.costs: dict[str, int] = {}
        self.throttled = 0  # THROTTLED answers seen (inside HTTP 200)
        if LIMITER not in http.limiters:
            http.limiter(LIMITER, rate=DEFAULT_RESTORE, burst=DEFAULT_MAXIMUM)

    def execute(
        self, name: str, document: str, variables: Mapping[str, Any], cost: int
    ) -> dict[str, Any]:
        cost = self.costs.get(document, cost)
        bucket = self.http.limiters[LIMITER]
        requested = {"n": cost}

        def check(_response: httpx.Response, payload: Any) -> None:
            self._check(name, document, payload, requested)

        _, payload = self.http.request_json(
            "POST",
            "graphql.json",
            json={"query": document, "variables": dict(variables), "operationName": name},
            limiter=LIMITER,
            cost=min(float(cost), float(bucket.burst)),
            check=check,
        )
        errors = payload.get("errors")
        if errors:
            raise self._error(name, errors)
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ChannelPayloadError(f"{name}: an answer without data", channel=self.channel)
        return data

    def _check(self, name: str, document: str, payload: Any, requested: dict[str, int]) -> None:
        """Keep the limiter in step with ``throttleStatus``; turn ``THROTTLED`` into a retry
        after the deficit is restored."""
        if not isinstance(payload, dict):
            raise ChannelPayloadError(
                f"{name}: the answer is not a JSON object", channel=self.channel
            )
        cost = (payload.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        if isinstance(cost.get("requestedQueryCost"), int | float):
            requested["n"] = int(cost["requestedQueryCost"])
            self.costs[document] = requested["n"]
        try:
            self.status = ThrottleStatus(
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            pass  # an answer without cost data (an auth error): keep pacing as before
        else:
            bucket = self.http.limiter(
                LIMITER,
                rate=max(0.001, self.status.restore_rate),
                burst=max(1, int(self.status.maximum_available)),
            )
            bucket.observe(self.status.currently_available)
        codes = {
            str((e.get("extensions") or {}).get("code"))
            for e in payload.get("errors") or ()
            if isinstance(e, dict)
        }
        if "THROTTLED" in codes:
            self.throttled += 1
            wait = 1.0
            if self.status is not None and self.status.restore_rate > 0:
                deficit = requested["n"] - self.status.currently_available
                wait = max(0.0, deficit) / self.status.restore_rate
            raise TemporaryChannelError(
                f"{name}: THROTTLED (cost {requested['n']}, "
                f"{self.status.currently_available if self.status else '?'} available)",
                channel=self.channel,
                retry_after=wait,
            )

    def _error(self, name: str, errors: Any) -> ChannelError:
        messages, codes = [], set()
        for error in errors if isinstance(errors, list) else [errors]:
            if isinstance(error, dict):
                messages.append(str(error.get("message", error)))
                codes.add(str((error.get("extensions") or {}).get("code")))
            else:
                messages.append(str(error))
        text = f"{name}: {'; '.join(messages)[:500]}"
        if "ACCESS_DENIED" in codes:  # a missing scope (docs/connectors/shopify.md lists them)
            return AuthenticationError(text, channel=self.channel)
        return ChannelError(text, channel=self.channel)

    # -- operations --------------------------------------------------------------------------

    def primary_location(self) -> str:
        data = self.execute("SellablePrimaryLocation", LOCATION_QUERY, {}, 1)
        location = data.get("location") or {}
        if not location.get("id"):
            raise ChannelPayloadError("the shop has no primary location", channel=self.channel)
        return str(location["id"])

    def set_quantities(
        self, quantities: Sequence[Mapping[str, Any]], reason: str, reference: str
    ) -> dict[str, Any]:
        """One ``inventorySetQuantities`` of ``available`` with a fresh idempotency key: a
        framework retry of this call resends the same key, so an answer lost on the way
        cannot apply it twice (https://shopify.dev/docs/api/usage/idempotent-requests)."""
        variables = {
            "input": {
                "name": "available",
                "reason": reason,
                "referenceDocumentUri": reference,
                "quantities": list(quantities),
            },
            "key": str(uuid.uuid4()),
        }
        data = self.execute("SellableSetQuantities", SET_QUANTITIES, variables, MUTATION_COST)
        payload = data.get("inventorySetQuantities")
        if not isinstance(payload, dict):
            raise ChannelPayloadError("inventorySetQuantities: no payload", channel=self.channel)
        return payload

    def read_levels(self, pairs: Sequence[tuple[str, str]]) -> list[int | None]:
        """``available`` of each (inventory item, location); None when not stocked there."""
        found: list[int | None] = []
        step = MAX_QUERY_COST // 3 - 1
        for start in range(0, len(pairs), step):
            part = pairs[start : start + step]
            document, cost = levels_query(len(part))
            variables: dict[str, str] = {}
            for n, (item, location) in enumerate(part):
                variables[f"i{n}"], variables[f"l{n}"] = item, location
            data = self.execute("SellableLevels", document, variables, cost)
            for n in range(len(part)):
                found.append(available_of((data.get(f"i{n}") or {}).get("inventoryLevel")))
        return found

    def variant_products(self, variants: Sequence[str]) -> dict[str, str]:
        """The product gid of each variant gid that still exists."""
        found: dict[str, str] = {}
        step = MAX_QUERY_COST // 2 - 1
        for start in range(0, len(variants), step):
            part = variants[start : start + step]
            document, cost = variant_products_query(len(part))
            data = self.execute(
                "SellableVariantProducts",
                document,
                {f"v{n}": variant for n, variant in enumerate(part)},
                cost,
            )
            for n, variant in enumerate(part):
                product = ((data.get(f"v{n}") or {}).get("product") or {}).get("id")
                if product:
                    found[variant] = str(product)
        return found

    def set_inventory_policies(
        self, products: Sequence[tuple[str, Sequence[tuple[str, str]]]]
    ) -> list[dict[str, Any]]:
        """``productVariantsBulkUpdate`` of (product gid, [(variant gid, policy)]); the
        payload of each product, in order (``productVariants``, ``userErrors``)."""
        payloads: list[dict[str, Any]] = []
        for start in range(0, len(products), POLICY_PRODUCTS):
            part = products[start : start + POLICY_PRODUCTS]
            variables: dict[str, Any] = {}
            for n, (product, variants) in enumerate(part):
                variables[f"p{n}"] = product
                variables[f"v{n}"] = [
                    {"id": variant, "inventoryPolicy": policy} for variant, policy in variants
                ]
            data = self.execute(
                "SellableInventoryPolicy",
                inventory_policy_mutation(len(part)),
                variables,
                MUTATION_COST * len(part),
            )
            for n in range(len(part)):
                payload = data.get(f"p{n}")
                if not isinstance(payload, dict):
                    raise ChannelPayloadError(
                        "productVariantsBulkUpdate: no payload", channel=self.channel
                    )
                payloads.append(payload)
        return payloads


def available_of(level: Any) -> int | None:
    """The ``available`` quantity of an inventory level answer, None without a level."""
    if not isinstance(level, dict):
        return None
    quantities = level.get("quantities") or []
    if not quantities or not isinstance(quantities[0], dict):
        return None
    value = quantities[0].get("quantity")
    return int(value) if isinstance(value, int) else None


__all__ = [
    "LIMITER",
    "MAX_QUANTITIES",
    "ORDERS_COST",
    "ORDERS_QUERY",
    "ORDER_LINES_COST",
    "ORDER_LINES_QUERY",
    "ORDER_PAGE",
    "POLICY_PRODUCTS",
    "ShopifyGraphQL",
    "ThrottleStatus",
    "available_of",
    "inventory_policy_mutation",
    "levels_query",
    "listings_query",
    "order_lines_query",
    "orders_query",
    "variant_products_query",
]
