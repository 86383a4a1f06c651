"""A local Shopify Admin GraphQL API: products, variants, inventory items, locations,
inventory levels and orders, behind ``POST /admin/api/{version}/graphql.json``.

What makes the real API hard is reproduced, with its sources:

* every document is validated against the saved Admin schema (2025-01, from
  Shopify/dev-mcp) amended with the 2026 inventory changes (:func:`admin_schema`), and a
  document that fails is answered like Shopify does: HTTP 200 with an ``errors`` array;
* the calculated query cost and its leaky bucket (1000 points, 50 restored per second by
  default; ``THROTTLED`` inside HTTP 200, ``MAX_COST_EXCEEDED`` over the single-query cap,
  the unused part of the requested cost refunded) —
  https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits;
* ``inventorySetQuantities`` with 2026-04 semantics: ``changeFromQuantity`` compare-and-swap
  (``CHANGE_FROM_QUANTITY_STALE``), the ``@idempotent(key:)`` directive required, a replayed
  key answering the original result without applying twice, and one refused quantity
  refusing the whole call (as BCApps #8396 reports);
* opaque keyset cursors (an order updated while a client pages moves behind its cursor and
  shows up again on a later page, as on Shopify), ``updated_at:>=`` search;
* orders that move stock from ``available`` to ``committed`` and cancellations that restock;
* money: a variant's ``price``; an order's lines carry ``originalTotalSet`` (price x
  quantity), ``discountAllocations`` (an order-level percentage code, ``discount_percent``
  of :meth:`ShopifyEmulator.place_order`, allocated ACROSS the lines, so that
  ``discountedTotalSet``, which "doesn't include order-level discounts", stays at the
  original), ``taxLines`` charged on the discounted amount at ``tax_rate``, added to it or,
  with ``taxes_included``, inside it; every MoneyBag in the shop ``currency`` and a
  ``presentment_currency`` at ``presentment_rate``
  (https://shopify.dev/docs/api/admin-graphql/latest/objects/LineItem);
* a variant's ``inventoryPolicy`` (DENY by default), set by ``productVariantsBulkUpdate``
  (the only variant field modelled): with CONTINUE a checkout takes more than is
  available, which goes negative
  (https://shopify.dev/docs/api/admin-graphql/latest/enums/ProductVariantInventoryPolicy).

Usage::

    with ShopifyEmulator(locations=("Main", "Outlet")) as shop:
        shop.add_listing("MUG", 5)
        settings = shop.connector_settings()   # shop_url, access_token, api_version
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any, ClassVar, cast

from sellable.emulators.base import missing_dependency

try:
    from graphql import (
        DirectiveNode,
        DocumentNode,
        ExecutionResult,
        FieldNode,
        FragmentDefinitionNode,
        FragmentSpreadNode,
        GraphQLArgument,
        GraphQLError,
        GraphQLInterfaceType,
        GraphQLObjectType,
        GraphQLSchema,
        GraphQLUnionType,
        InlineFragmentNode,
        OperationDefinitionNode,
        OperationType,
        SelectionSetNode,
        VariableNode,
        build_client_schema,
        execute,
        get_named_type,
        is_leaf_type,
        parse,
        validate,
    )
    from graphql.utilities import value_from_ast
except ImportError as err:  # a production install: graphql-core is the emulators extra
    raise missing_dependency("shopify", "graphql-core") from err


from sellable.emulators.base import (
    Clock,
    Delivery,
    EmulatorServer,
    HttpError,
    Request,
    Response,
    WebhookSender,
)

Info = Any  # graphql-core's GraphQLResolveInfo (generic from 3.3 on); resolvers ignore it
SCHEMA_RESOURCE = "shopify_admin_2025-01.json.gz"
PATH = re.compile(r"^/admin/api/(?P<version>\d{4}-\d{2}|unstable)/graphql\.json$")
DEFAULT_TOKEN = "shpat_emulator"
DEFAULT_VERSION = "2026-10"
DEFAULT_CLIENT_SECRET = "shpss_emulator0000000000000000000"
#: Shopify retries a failed delivery 8 times, then deletes a subscription made through the
#: API ("Webhooks" > "Troubleshooting"); here each retry waits for the next flush.
WEBHOOK_ATTEMPTS = 8
MAX_INPUT_ARRAY = 250  # "input arrays <= 250 items" (Admin API limits)
MUTATION_COST = 10  # rate-limits page: "Mutation | 10"
MAX_QUERY_COST = 1000  # rate-limits page: the single-query maximum
IDEMPOTENCY_KEYS_KEPT = 100_000
# The reasons inventorySetQuantities accepts (InventorySetQuantitiesInput.reason docs).
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
QUANTITY_NAMES = (
    "available",
    "committed",
    "damaged",
    "incoming",
    "on_hand",
    "quality_control",
    "reserved",
    "safety_stock",
)

# -- the schema ----------------------------------------------------------------------------------


def _named(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "ofType": None}


def _non_null(inner: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "NON_NULL", "name": None, "ofType": inner}


def amend_2026(introspection: dict[str, Any]) -> dict[str, Any]:
    """The 2025-01 introspection with the documented 2026 inventory changes:

    * 2026-01 adds ``InventoryQuantityInput.changeFromQuantity``
      (https://shopify.dev/changelog/compare-and-swap-redesign-for-inventory-set-quantities)
      and the ``@idempotent(key: String!)`` directive
      (https://shopify.dev/changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations);
    * 2026-01 adds the ``bulkOperation(id:)`` query
      (https://shopify.dev/changelog/new-queries-for-bulk-operations);
    * 2026-04 removes ``compareQuantity`` and ``ignoreCompareQuantity``, makes
      ``changeFromQuantity`` mandatory (explicit ``null`` opts out; checked at run time, it
      stays nullable in the schema) with the ``CHANGE_FROM_QUANTITY_STALE`` error
      (https://shopify.dev/changelog/finalizing-compare-and-swap-redesign-for-inventory-set-quantities),
      and makes ``@idempotent`` mandatory, also checked at run time
      (https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations).
    """
    schema = copy.deepcopy(introspection["__schema"])
    types = {t["name"]: t for t in schema["types"]}
    quantity_input = types["InventoryQuantityInput"]
    quantity_input["inputFields"] = [
        f for f in quantity_input["inputFields"] if f["name"] != "compareQuantity"
    ] + [
        {
            "name": "changeFromQuantity",
            "description": "The quantity the caller expects to be persisted (compare-and-swap); "
            "null opts out of the check. Required as of 2026-04.",
            "type": _named("SCALAR", "Int"),
            "defaultValue": None,
        }
    ]
    set_input = types["InventorySetQuantitiesInput"]
    set_input["inputFields"] = [
        f for f in set_input["inputFields"] if f["name"] != "ignoreCompareQuantity"
    ]
    codes = types["InventorySetQuantitiesUserErrorCode"]
    codes["enumValues"] = [
        v for v in codes["enumValues"] if not v["name"].startswith("COMPARE_QUANTITY_")
    ] + [
        {"name": name, "description": None, "isDeprecated": False, "deprecationReason": None}
        for name in ("CHANGE_FROM_QUANTITY_STALE", "CHANGE_FROM_QUANTITY_REQUIRED")
    ]
    schema["directives"] = [*schema["directives"], _IDEMPOTENT_DIRECTIVE]
    # 2025-10: one ``uri`` for every kind of endpoint replaces ``callbackUrl`` and
    # ``endpoint`` (https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces).
    uri_doc = "The URI to which the webhook subscription will send events."
    types["WebhookSubscription"]["fields"].append(
        {
            "name": "uri",
            "description": uri_doc,
            "args": [],
            "type": _non_null(_named("SCALAR", "String")),
            "isDeprecated": False,
            "deprecationReason": None,
        }
    )
    types["WebhookSubscriptionInput"]["inputFields"].append(
        {
            "name": "uri",
            "description": uri_doc,
            "type": _named("SCALAR", "String"),
            "defaultValue": None,
        }
    )
    for query in types["QueryRoot"]["fields"]:
        if query["name"] == "webhookSubscriptions":
            query["args"].append(
                {
                    "name": "uri",
                    "description": uri_doc,
                    "type": _named("SCALAR", "String"),
                    "defaultValue": None,
                }
            )
    # 2026-01: ``bulkOperation(id:)`` reads one operation by id; with up to five bulk
    # queries running at once, ``currentBulkOperation`` (the most recent) no longer names
    # the one a client started (https://shopify.dev/changelog/new-queries-for-bulk-operations).
    types["QueryRoot"]["fields"].append(
        {
            "name": "bulkOperation",
            "description": "Returns a BulkOperation resource by ID.",
            "args": [
                {
                    "name": "id",
                    "description": "The ID of the BulkOperation to return.",
                    "type": _non_null(_named("SCALAR", "ID")),
                    "defaultValue": None,
                }
            ],
            "type": _named("OBJECT", "BulkOperation"),
            "isDeprecated": False,
            "deprecationReason": None,
        }
    )
    _undeprecate_implementations(types)
    return {"__schema": schema}


def _undeprecate_implementations(types: Mapping[str, dict[str, Any]]) -> None:
    """graphql-core 3.3 refuses a schema where a type deprecates a field its interface does
    not (a rule newer than Shopify's schema); such fields are kept, undeprecated."""
    for kind in types.values():
        for interface in kind.get("interfaces") or ():
            parent = {f["name"]: f for f in types[interface["name"]].get("fields") or ()}
            for own in kind.get("fields") or ():
                inherited = parent.get(own["name"])
                if own.get("isDeprecated") and inherited and not inherited.get("isDeprecated"):
                    own["isDeprecated"], own["deprecationReason"] = False, None


_IDEMPOTENT_DIRECTIVE: dict[str, Any] = {
    "name": "idempotent",
    "description": "Makes a mutation idempotent: a request replayed with the same key returns "
    "the original result.",
    "locations": ["FIELD"],
    "args": [
        {
            "name": "key",
            "description": "A unique key, e.g. a UUID.",
            "type": _non_null(_named("SCALAR", "String")),
            "defaultValue": None,
        }
    ],
    "isRepeatable": False,
}


@functools.cache
def admin_schema() -> GraphQLSchema:
    """The Admin API schema the emulator validates every document against (built once)."""
    raw = resources.files("sellable.emulators").joinpath("data", SCHEMA_RESOURCE).read_bytes()
    introspection = json.loads(gzip.decompress(raw))["data"]
    return build_client_schema(cast(Any, amend_2026(introspection)))


# -- state ---------------------------------------------------------------------------------------


@dataclass
class Level:
    available: int = 0
    committed: int = 0
    updated_at: datetime | None = None

    @property
    def on_hand(self) -> int:
        return self.available + self.committed


@dataclass
class Variant:
    number: int
    product: int
    sku: str | None
    title: str
    item: int  # inventory item number
    levels: dict[int, Level] = field(default_factory=dict)  # location number -> level
    mutable: bool = True  # False: NON_MUTABLE_INVENTORY_ITEM (e.g. a bundle parent)
    inventory_policy: str = "DENY"  # CONTINUE: sold when out of stock
    price: Decimal = Decimal("10.00")


@dataclass
class LineItem:
    number: int
    variant: int
    sku: str | None
    quantity: int
    location: int
    current: int = 0  # currentQuantity: after removals and refunds
    fulfilled: int = 0
    unit_price: Decimal = Decimal("10.00")
    discount: Decimal = Decimal(0)  # the order-level discount allocated to the line
    tax: Decimal = Decimal(0)  # on the discounted amount


@dataclass
class Order:
    number: int
    name: str
    created_at: datetime
    updated_at: datetime
    lines: list[LineItem]
    cancelled_at: datetime | None = None
    closed: bool = False
    taxes_included: bool = False
    discount_code: str | None = None
    discount_percent: Decimal = Decimal(0)
    #: The MailingAddress fields of ``shippingAddress`` (None: the order ships nowhere).
    shipping_address: dict[str, str] | None = None
    email: str | None = None


#: The MailingAddress fields an order's ``shippingAddress`` is given by (the schema's).
_MAILING_FIELDS = (
    "name",
    "firstName",
    "lastName",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "provinceCode",
    "zip",
    "country",
    "countryCodeV2",
    "phone",
)


def _mailing_address(given: dict[str, str] | None, number: int) -> dict[str, str]:
    """An order's shipping address: ``given`` (unknown fields refused), or a made-up one."""
    if given is None:
        given = {
            "firstName": "Customer",
            "lastName": str(number),
            "address1": f"{number} Main Street",
            "city": "Springfield",
            "province": "Illinois",
            "provinceCode": "IL",
            "zip": "62701",
            "country": "United States",
            "countryCodeV2": "US",
        }
    unknown = sorted(set(given) - set(_MAILING_FIELDS))
    if unknown:
        raise ValueError(f"unknown MailingAddress field(s) {unknown} (known: {_MAILING_FIELDS})")
    address = dict(given)
    if "name" not in address:
        address["name"] = " ".join(
            part for part in (address.get("firstName"), address.get("lastName")) if part
        )
    return address


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: Any, kind: str) -> int | None:
    prefix = f"gid://shopify/{kind}/"
    if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :].isdigit():
        return int(value[len(prefix) :])
    return None


def _cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _uncursor(value: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError as err:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {value}") from err
    if not isinstance(key, list):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {value}")
    return key


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


SEARCH_TERM = re.compile(r"(?P<field>\w+):(?P<op>>=|<=|>|<|)'?(?P<value>[^'\s]+)'?")


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise GraphQLError(f"invalid date in search query: {value!r}") from err


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == ">=":
        return bool(left >= right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    if op == "<":
        return bool(left < right)
    return bool(left == right)


class Bucket:
    """Shopify's leaky bucket of query cost: ``take`` the requested cost before running,
    ``refund`` what the query did not use."""

    def __init__(self, maximum: float, restore_rate: float, clock: Clock) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.clock = clock
        self._points = maximum
        self._at = clock.monotonic()
        self._lock = threading.Lock()

    def _restore(self) -> None:
        now = self.clock.monotonic()
        self._points = min(self.maximum, self._points + (now - self._at) * self.restore_rate)
        self._at = now

    def available(self) -> float:
        with self._lock:
            self._restore()
            return self._points

    def take(self, cost: float) -> bool:
        with self._lock:
            self._restore()
            if self._points + 1e-9 < cost:
                return False
            self._points -= cost
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._restore()
            self._points = min(self.maximum, self._points + points)

    def set(self, points: float) -> None:
        """Set what is left (tests and benchmarks start from a drained bucket)."""
        with self._lock:
            self._restore()
            self._points = max(0.0, min(self.maximum, points))

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": float(int(self.available())),
            "restoreRate": float(self.restore_rate),
        }


# -- cost ----------------------------------------------------------------------------------------


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    data: Mapping[str, Any] | None = None,
) -> int:
    """Requested cost (``data`` None: connections sized by ``first``/``last``) or actual cost
    (sized by what ``data`` holds) under Shopify's published method: scalar and enum 0,
    object 1, connection 2 plus its objects, interface/union the maximum of its types,
    mutation 10 (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if operation.operation is OperationType.MUTATION:
        return MUTATION_COST * sum(1 for _ in _fields(operation.selection_set, fragments))
    root = schema.query_type
    assert root is not None
    return _selection_cost(schema, root, operation.selection_set, fragments, variables, data)


def arguments(
    definitions: Mapping[str, GraphQLArgument],
    node: FieldNode | DirectiveNode,
    variables: Mapping[str, Any],
) -> dict[str, Any]:
    """The arguments of a field or directive with the request's variables filled in."""
    found: dict[str, Any] = {}
    for argument in node.arguments or ():
        definition = definitions.get(argument.name.value)
        if definition is None:
            continue
        if isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            if name in variables:
                found[argument.name.value] = variables[name]
            continue
        found[argument.name.value] = value_from_ast(
            argument.value, definition.type, dict(variables)
        )
    return found


def _fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterable[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _selection_cost(
    schema: GraphQLSchema,
    parent: GraphQLObjectType | GraphQLInterfaceType,
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    data: Any,
) -> int:
    total = 0
    for node in _fields(selection_set, fragments):
        name = node.name.value
        if name.startswith("__") or name not in parent.fields:
            continue
        definition = parent.fields[name]
        target = get_named_type(definition.type)
        if is_leaf_type(target) or node.selection_set is None:
            continue
        key = node.alias.value if node.alias else name
        value = data.get(key) if isinstance(data, Mapping) else None
        if isinstance(target, GraphQLUnionType):
            candidates: list[GraphQLObjectType | GraphQLInterfaceType] = list(target.types)
        elif isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
            candidates = [target]
        else:  # pragma: no cover - leaf types were skipped
            continue

        def child(
            selection: SelectionSetNode,
            value: Any,
            candidates: list[GraphQLObjectType | GraphQLInterfaceType] = candidates,
        ) -> int:
            return max(
                _selection_cost(schema, c, selection, fragments, variables, value)
                for c in candidates
            )

        if target.name.endswith("Connection") and isinstance(target, GraphQLObjectType):
            args = arguments(definition.args, node, variables)
            size = int(args.get("first") or args.get("last") or 0)
            total += 2 + _connection_items(schema, target, node, fragments, variables, value, size)
        elif isinstance(value, list):
            total += sum(1 + child(node.selection_set, item) for item in value)
        else:
            total += 1 + child(node.selection_set, value)
    return total


def _connection_items(
    schema: GraphQLSchema,
    connection: GraphQLObjectType,
    node: FieldNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    value: Any,
    size: int,
) -> int:
    """What a connection's objects cost: ``size`` of them when requested, or those in
    ``value`` (the answer) when actual; ``pageInfo`` is part of the connection's 2 points."""
    assert node.selection_set is not None
    best = 0
    for sub in _fields(node.selection_set, fragments):
        name = sub.name.value
        if name not in ("nodes", "edges") or sub.selection_set is None:
            continue
        key = sub.alias.value if sub.alias else name
        item_type = get_named_type(connection.fields[name].type)
        assert isinstance(item_type, GraphQLObjectType)
        if name == "edges":  # an edge is free; its node is the object
            inner = next(
                (f for f in _fields(sub.selection_set, fragments) if f.name.value == "node"), None
            )
            node_type = get_named_type(item_type.fields["node"].type)
            selection, node_key = (
                (inner.selection_set, inner.alias.value if inner.alias else "node")
                if inner is not None and inner.selection_set is not None
                else (None, "node")
            )
        else:
            node_type, selection, node_key = item_type, sub.selection_set, ""
        if selection is None:
            continue
        assert isinstance(node_type, GraphQLObjectType | GraphQLInterfaceType)
        if isinstance(value, Mapping):
            items = value.get(key) or []
            if node_key:
                items = [i.get(node_key) if isinstance(i, Mapping) else None for i in items]
            cost = sum(
                1 + _selection_cost(schema, node_type, selection, fragments, variables, item)
                for item in items
            )
        elif value is None and size:
            one = 1 + _selection_cost(schema, node_type, selection, fragments, variables, None)
            cost = size * one
        else:
            cost = 0
        best = max(best, cost)
    return best


# -- bulk operations -----------------------------------------------------------------------------

#: "In API versions 2026-01 and higher, you can run up to five bulk query operations at a time
#: per shop" (before: one); https://shopify.dev/docs/api/usage/bulk-operations/queries.
BULK_QUERIES_AT_ONCE = 5
#: "url and partialDataUrl values expire after seven days" (BulkOperation object).
BULK_URL_LIFE = 7 * 24 * 3600.0
#: The emulator's bulk-operation speed, objects (JSONL lines) per second of its clock.
#: Shopify publishes no such figure; benchmarks state the one they ran at.
BULK_SPEED = 5000.0
#: "Maximum of five total connections in the query", "maximum of two levels deep for
#: nested connections" (bulk operations guide, "Operation restrictions").
BULK_MAX_CONNECTIONS = 5
BULK_MAX_DEPTH = 2
#: Bulk operations (and their files) the emulator remembers, the newest.
BULK_RUNS_KEPT = 20
#: Root objects the emulator executes per window of a bulk query.
BULK_WINDOW = 2500
BULK_PATH = re.compile(
    r"^/bulk-results/(?P<number>\d+)/(?P<token>[0-9a-f]+)(?P<part>-partial)?\.jsonl$"
)
RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


#: One window of a bulk query's result: its JSONL lines, which are root objects, whether last.
_Window = tuple[list[bytes], list[bool], bool]


@dataclass
class BulkRun:
    """One bulk query operation: its result computed when it is created, revealed at the
    emulator's bulk speed."""

    number: int
    query: str
    created_at: datetime
    started: float  # the emulator clock's monotonic reading at creation
    lines: list[bytes]
    roots: list[bool]  # per line: a root object (no __parentId)
    speed: float
    token: str
    fail: tuple[str, int] | None = None  # (errorCode, objects done when it fails)
    canceled_at: float | None = None
    downloads: int = 0
    finished: bool = False  # every window has been run

    def done_at(self) -> float:
        """When it ends on the emulator's clock (infinity while windows remain to run)."""
        if self.fail is not None and self.fail[1] <= len(self.lines):
            return self.started + self.fail[1] / self.speed
        if not self.finished:
            return float("inf")
        return self.started + len(self.lines) / self.speed

    def body(self, partial: bool) -> bytes:
        count = min(self.fail[1], len(self.lines)) if partial and self.fail else len(self.lines)
        return b"".join(self.lines[:count])


# -- the emulator --------------------------------------------------------------------------------


@dataclass
class _Prepared:
    document: DocumentNode | None
    errors: list[dict[str, Any]]


class ShopifyEmulator(EmulatorServer):
    """A stateful Shopify shop on loopback (see the module docstring).

    Options: ``access_token``, ``locations`` (names; the first is primary),
    ``maximum_available`` (1000) and ``restore_rate`` (50): the standard-plan figures of
    the rate-limits page, ``api_version`` of :meth:`connector_settings`.
    """

    name: ClassVar[str] = "shopify"
    connector: ClassVar[str] = "shopify"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        access_token: str = DEFAULT_TOKEN,
        locations: Sequence[str] = ("Main warehouse",),
        maximum_available: float = 1000,
        restore_rate: float = 50,
        api_version: str = DEFAULT_VERSION,
        currency: str = "USD",
        tax_rate: str | Decimal = "0",
        taxes_included: bool = False,
        presentment_currency: str | None = None,
        presentment_rate: str | Decimal = "1",
        client_secret: str = DEFAULT_CLIENT_SECRET,
        bulk_speed: float = BULK_SPEED,
        bulk_queries_at_once: int = BULK_QUERIES_AT_ONCE,
        bulk_url_life: float = BULK_URL_LIFE,
        **options: Any,
    ) -> None:
        if options:
            raise TypeError(f"unknown ShopifyEmulator options: {', '.join(sorted(options))}")
        super().__init__(port=port, clock=clock)
        self.currency = currency
        self.tax_rate = Decimal(str(tax_rate))
        self.taxes_included = taxes_included
        #: The customer's currency and how many of it one unit of the shop's buys.
        self.presentment_currency = presentment_currency or currency
        self.presentment_rate = Decimal(str(presentment_rate))
        self.access_token = access_token
        self.api_version = api_version
        self.schema = admin_schema()
        self.bucket = Bucket(maximum_available, restore_rate, self.clock)
        self.locations: dict[int, str] = {n + 1: name for n, name in enumerate(locations)}
        self.primary_location = 1
        self.variants: dict[int, Variant] = {}
        self.orders: dict[int, Order] = {}
        self._numbers = {
            "product": 0,
            "variant": 0,
            "item": 0,
            "order": 0,
            "line": 0,
            "group": 0,
            "webhook": 0,
            "bulk": 0,
        }
        self._items: dict[int, int] = {}  # inventory item number -> variant number
        # Keys remembered, oldest first (Shopify keeps them for a window; we keep a count).
        self._idempotent: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._documents: OrderedDict[str, _Prepared] = OrderedDict()
        self.mutations_applied = 0  # inventorySetQuantities calls that changed state
        self.stale_answers = 0  # CHANGE_FROM_QUANTITY_STALE errors given
        self.throttled_graphql = 0  # THROTTLED answers (HTTP 200)
        #: Called with each mutation's variables before it runs (tests move stock there).
        self.before_mutation: Callable[[dict[str, Any]], None] | None = None
        #: The app's client secret: webhooks are signed with it (X-Shopify-Hmac-Sha256).
        self.client_secret = client_secret
        #: The app's webhook subscriptions (number -> topic, uri, created) and what they
        #: send (``self.webhooks.flush()`` in tests, ``self.webhooks.start()`` live).
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.webhooks = WebhookSender("X-Shopify-Hmac-Sha256", on_result=self._delivered)
        #: Bulk query operations by number; see :meth:`set_bulk_speed`, :meth:`fail_next_bulk`.
        self.bulk_runs: dict[int, BulkRun] = {}
        self.bulk_speed = float(bulk_speed)
        self.bulk_queries_at_once = bulk_queries_at_once
        self.bulk_url_life = float(bulk_url_life)
        self._bulk_fail: tuple[str, int] | None = None
        self._bulk_files: dict[tuple[int, bool], bytes] = {}
        #: Result downloads that carried the access token (a pre-signed URL needs none).
        self.bulk_downloads_with_token = 0

    # -- demo hooks -------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._numbers[kind] += 1
        return self._numbers[kind]

    def add_listing(
        self, sku: str, quantity: int = 0, title: str | None = None, *, price: str = "10.00"
    ) -> str:
        """A product with one variant of ``sku`` at ``price``, stocked at every location,
        ``quantity`` available at the primary one; returns the variant's gid."""
        return self.add_variant(sku, {self.primary_location: quantity}, title=title, price=price)

    def add_variant(
        self,
        sku: str | None,
        available: Mapping[int, int] | None = None,
        *,
        title: str | None = None,
        stocked_at: Iterable[int] | None = None,
        product: int | None = None,
        price: str = "10.00",
    ) -> str:
        """A variant stocked at ``stocked_at`` (default: every location) with ``available``
        per location number; returns its gid."""
        with self.lock:
            product_number = product if product is not None else self._next("product")
            variant = Variant(
                number=self._next("variant"),
                product=product_number,
                sku=sku,
                title=title or sku or "Untitled",
                item=self._next("item"),
                price=Decimal(str(price)),
            )
            now = self.clock.now()
            for location in stocked_at if stocked_at is not None else self.locations:
                variant.levels[location] = Level((available or {}).get(location, 0), 0, now)
            self.variants[variant.number] = variant
            self._items[variant.item] = variant.number
            return gid("ProductVariant", variant.number)

    def variant_by_sku(self, sku: str) -> Variant:
        with self.lock:
            for variant in self.variants.values():
                if variant.sku == sku:
                    return variant
        raise ValueError(f"no variant with SKU {sku!r}")

    def set_available(self, sku: str, quantity: int, location: int | None = None) -> None:
        """Set a level as a merchant would in the admin (the channel moving under us)."""
        with self.lock:
            level = self.variant_by_sku(sku).levels[location or self.primary_location]
            level.available = quantity
            level.updated_at = self.clock.now()

    def place_order(
        self,
        lines: list[tuple[str, int]],
        location: int | None = None,
        *,
        discount_percent: str | Decimal = "0",
        shipping_address: dict[str, str] | None = None,
        email: str | None = None,
    ) -> str:
        """A customer's order: each line takes stock from ``location`` (default: the first
        location, primary first, with enough available), moving it to committed.
        ``discount_percent``: an order-level discount code of that percentage.
        ``shipping_address``: MailingAddress fields (firstName, address1, countryCodeV2 ...;
        the others null); None: a made-up address per order."""
        with self.lock:
            now = self.clock.now()
            items: list[LineItem] = []
            for sku, quantity in lines:
                if quantity <= 0:
                    raise ValueError(f"quantity must be positive, got {quantity}")
                variant = self.variant_by_sku(sku)
                where = [location] if location else sorted(variant.levels, key=self._by_primary)
                chosen = next(
                    (
                        n
                        for n in where
                        if n in variant.levels and variant.levels[n].available >= quantity
                    ),
                    None,
                )
                if chosen is None and variant.inventory_policy == "CONTINUE":
                    chosen = next((n for n in where if n in variant.levels), None)
                if chosen is None:
                    raise ValueError(f"not enough {sku!r} available to order {quantity}")
                original = variant.price * quantity
                discount = _cents(original * Decimal(str(discount_percent)) / 100)
                rate = self.tax_rate
                taxed = original - discount
                tax = _cents(taxed * rate / (1 + rate) if self.taxes_included else taxed * rate)
                items.append(
                    LineItem(
                        self._next("line"),
                        variant.number,
                        sku,
                        quantity,
                        chosen,
                        quantity,
                        unit_price=variant.price,
                        discount=discount,
                        tax=tax,
                    )
                )
            for line in items:
                level = self.variants[line.variant].levels[line.location]
                level.available -= line.quantity
                level.committed += line.quantity
                level.updated_at = now
            number = self._next("order")
            percent = Decimal(str(discount_percent))
            self.orders[number] = Order(
                number,
                f"#{1000 + number}",
                now,
                now,
                items,
                taxes_included=self.taxes_included,
                discount_code=f"SAVE{percent.normalize():f}" if percent else None,
                discount_percent=percent,
                shipping_address=_mailing_address(shipping_address, number),
                email=email if email is not None else f"customer{number}@example.com",
            )
            self._order_event(self.orders[number], "orders/create")
            return gid("Order", number)

    def _by_primary(self, location: int) -> tuple[bool, int]:
        return (location != self.primary_location, location)

    def _order(self, order_id: str) -> Order:
        number = gid_number(order_id, "Order")
        if number is None or number not in self.orders:
            raise ValueError(f"no order {order_id!r}")
        return self.orders[number]

    def cancel_order(self, order_id: str, restock: bool = True) -> None:
        """Cancel and restock what was not fulfilled (``updatedAt`` moves)."""
        with self.lock:
            order = self._order(order_id)
            if order.cancelled_at is not None:
                return
            now = self.clock.now()
            for line in order.lines:
                open_quantity = line.current - line.fulfilled
                level = self.variants[line.variant].levels[line.location]
                level.committed -= open_quantity
                if restock:
                    level.available += open_quantity
                level.updated_at = now
                line.current = line.fulfilled
            order.cancelled_at = order.updated_at = now
            order.closed = True
            self._order_event(order, "orders/cancelled", "orders/updated")

    def fulfill_order(self, order_id: str) -> None:
        """Ship every open unit: committed and on hand go down (``updatedAt`` moves)."""
        with self.lock:
            order = self._order(order_id)
            now = self.clock.now()
            for line in order.lines:
                shipped = line.current - line.fulfilled
                self.variants[line.variant].levels[line.location].committed -= shipped
                line.fulfilled = line.current
            order.updated_at = now
            self._order_event(order, "orders/fulfilled", "orders/updated")

    def order_name(self, order_id: str) -> str:
        """The order number the shop shows (``#1001``), for the GID ``order_id``."""
        with self.lock:
            return self._order(order_id).name

    def remove_units(self, order_id: str, line_index: int, units: int) -> None:
        """An order edit removing ``units`` of a line and restocking them."""
        with self.lock:
            order = self._order(order_id)
            line = order.lines[line_index]
            units = min(units, line.current - line.fulfilled)
            level = self.variants[line.variant].levels[line.location]
            level.committed -= units
            level.available += units
            line.current -= units
            order.updated_at = self.clock.now()
            self._order_event(order, "orders/edited", "orders/updated")

    def quantities(self) -> dict[str, int]:
        with self.lock:
            found: dict[str, int] = {}
            for variant in self.variants.values():
                if variant.sku is not None:
                    found[variant.sku] = found.get(variant.sku, 0) + sum(
                        level.available for level in variant.levels.values()
                    )
            return found

    def available(self, sku: str, location: int | None = None) -> int:
        with self.lock:
            return self.variant_by_sku(sku).levels[location or self.primary_location].available

    def connector_settings(self) -> dict[str, Any]:
        return {
            "shop_url": self.url,
            "access_token": self.access_token,
            "api_version": self.api_version,
        }

    # -- HTTP -------------------------------------------------------------------------------

    def throttled(self, request: Request, retry_after: float = 2.0) -> Response:
        # The REST-style 429 Shopify sends for bursts of calls (rate-limits docs: "429 Too
        # Many Requests" with Retry-After in seconds, e.g. "2.0").
        return Response(
            429,
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                "resume uninterrupted service."
            },
            {"Retry-After": f"{max(1.0, retry_after):.1f}"},
        )

    def handle(self, request: Request) -> Response:
        download = BULK_PATH.match(request.path)
        if download is not None:
            return self._bulk_download(request, download)
        if PATH.match(request.path) is None:
            raise HttpError(404, {"errors": "Not Found"})
        if request.method != "POST":
            raise HttpError(405, {"errors": "Method Not Allowed"})
        if request.headers.get("x-shopify-access-token") != self.access_token:
            raise HttpError(
                401,
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
            )
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise HttpError(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            raise HttpError(400, {"errors": {"variables": "must be an object"}})
        return Response(200, self.graphql(body["query"], variables, body.get("operationName")))

    def _prepare(self, query: str) -> _Prepared:
        """Parse and validate once per distinct document (the schema never changes)."""
        with self.lock:
            prepared = self._documents.get(query)
            if prepared is not None:
                self._documents.move_to_end(query)
                return prepared
        try:
            document: DocumentNode | None = parse(query)
            assert document is not None
            errors = [_shopify_words(_error(e)) for e in validate(self.schema, document)]
        except GraphQLError as err:
            document, errors = None, [_error(err)]
        prepared = _Prepared(document, errors)
        with self.lock:
            self._documents[query] = prepared
            while len(self._documents) > 256:
                self._documents.popitem(last=False)
        return prepared

    def graphql(
        self, query: str, variables: dict[str, Any], operation_name: str | None = None
    ) -> dict[str, Any]:
        """The answer to one GraphQL request (always HTTP 200, as Shopify does)."""
        prepared = self._prepare(query)
        if prepared.errors or prepared.document is None:
            return {"errors": prepared.errors}
        document = prepared.document
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is not None:
            operations = [o for o in operations if o.name and o.name.value == operation_name]
        if len(operations) != 1:
            return {"errors": [{"message": "An operation name is required"}]}
        operation = operations[0]
        try:
            requested = query_cost(self.schema, document, operation, variables)
        except GraphQLError:  # variables that do not fit: the executor words the error
            requested = 1
        # "The maximum cost of a single query is 1,000 points", whatever the bucket's size.
        maximum = min(MAX_QUERY_COST, self.bucket.maximum)
        if requested > maximum:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query "
                        f"max cost limit ({int(maximum)}).\n\nSee https://shopify.dev/concepts/"
                        "about-apis/rate-limits for more information on how the\ncost of a "
                        "query is calculated.\n\nTo query larger amounts of data with fewer "
                        "limits, bulk operations should be used instead.\nSee https://shopify."
                        "dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": int(maximum),
                        },
                    }
                ],
                "extensions": {"cost": self._cost(requested, None)},
            }
        if not self.bucket.take(requested):
            with self.lock:
                self.throttled_count += 1
                self.throttled_graphql += 1
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": self._cost(requested, None)},
            }
        if operation.operation is OperationType.MUTATION:
            answer = self._mutate(document, operation, variables)
            actual = requested
        else:
            with self.lock:
                result = self._execute(document, operation, variables)
            answer = _formatted(result)
            actual = (
                query_cost(self.schema, document, operation, variables, result.data)
                if result.data is not None
                else requested
            )
        self.bucket.refund(max(0, requested - actual))
        answer["extensions"] = {"cost": self._cost(requested, actual)}
        return answer

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status(),
        }

    def _execute(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> ExecutionResult:
        result = execute(
            self.schema,
            document,
            root_value=self._root(),
            variable_values=variables,
            operation_name=operation.name.value if operation.name else None,
            field_resolver=_resolve,
        )
        assert isinstance(result, ExecutionResult)
        return result

    def _mutate(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> dict[str, Any]:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        directive = self.schema.get_directive("idempotent")
        assert directive is not None
        keys: list[str] = []
        for node in _fields(operation.selection_set, fragments):
            used = next((d for d in node.directives or () if d.name.value == "idempotent"), None)
            values = arguments(directive.args, used, variables) if used else {}
            if node.name.value in IDEMPOTENT_MUTATIONS:
                if values.get("key") is None:
                    # 2026-04: "calling these mutations without an idempotency directive will
                    # result in an error at runtime" (making-idempotency-mandatory changelog).
                    return {
                        "errors": [
                            {
                                "message": f"The @idempotent directive is required for "
                                f"{node.name.value}.",
                                "locations": [_location(node)],
                                "path": [node.alias.value if node.alias else node.name.value],
                                "extensions": {"code": "BAD_REQUEST"},
                            }
                        ]
                    }
                keys.append(str(values["key"]))
        digest = hashlib.sha256(
            json.dumps(
                [document.loc.source.body if document.loc else "", variables], sort_keys=True
            ).encode()
        ).hexdigest()
        with self.lock:
            for key in keys:
                seen = self._idempotent.get(key)
                if seen is not None:
                    if seen[0] != digest:
                        return {
                            "errors": [
                                {
                                    "message": "The idempotency key was already used with "
                                    "different parameters.",
                                    "extensions": {"code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"},
                                }
                            ]
                        }
                    return copy.deepcopy(
                        seen[1]
                    )  # a replay: the original result, not applied again
            if self.before_mutation is not None:
                self.before_mutation(variables)
            answer = _formatted(self._execute(document, operation, variables))
            for key in keys:
                self._idempotent[key] = (digest, copy.deepcopy(answer))
            while len(self._idempotent) > IDEMPOTENCY_KEYS_KEPT:
                self._idempotent.popitem(last=False)
            return answer

    # -- resolvers --------------------------------------------------------------------------

    def _root(self) -> dict[str, Any]:
        return {
            "productVariants": self._product_variants,
            "productVariant": lambda _info, id: self._variant_node(
                self.variants.get(gid_number(id, "ProductVariant") or 0)
            ),
            "inventoryItem": lambda _info, id: self._item_node(
                self.variants.get(self._items.get(gid_number(id, "InventoryItem") or 0, 0))
            ),
            "location": self._location_field,
            "locations": self._locations,
            "orders": self._orders,
            "order": lambda _info, id: self._order_node(
                self.orders.get(gid_number(id, "Order") or 0)
            ),
            "shop": {"name": "Sellable emulator", "id": "gid://shopify/Shop/1"},
            "inventorySetQuantities": self._set_quantities,
            "productVariantsBulkUpdate": self._bulk_update_variants,
            "webhookSubscriptions": self._webhook_subscriptions,
            "webhookSubscriptionCreate": self._webhook_create,
            "webhookSubscriptionDelete": self._webhook_delete,
            "productVariantsCount": lambda _info, **_args: {
                "count": len(self.variants),
                "precision": "EXACT",
            },
            "bulkOperationRunQuery": self._bulk_run_query,
            "bulkOperationCancel": self._bulk_cancel,
            "currentBulkOperation": self._current_bulk,
            "bulkOperation": lambda _info, id: self._bulk_node(
                self.bulk_runs.get(gid_number(id, "BulkOperation") or 0)
            ),
        }

    # -- bulk operations --------------------------------------------------------------------

    def set_bulk_speed(self, objects_per_second: float) -> None:
        """How many objects (JSONL lines) a bulk query processes per second of the
        emulator's clock, from now on (operations already created keep theirs)."""
        if objects_per_second <= 0:
            raise ValueError(f"bulk speed must be > 0, got {objects_per_second}")
        with self.lock:
            self.bulk_speed = float(objects_per_second)

    def fail_next_bulk(
        self, error_code: str = "INTERNAL_SERVER_ERROR", after_objects: int = 0
    ) -> None:
        """The next bulk query fails with ``error_code`` (BulkOperationErrorCode: TIMEOUT,
        INTERNAL_SERVER_ERROR, ACCESS_DENIED) once it has processed ``after_objects``
        objects, which its ``partialDataUrl`` then serves (null when none)."""
        if error_code not in ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT"):
            raise ValueError(f"unknown BulkOperationErrorCode {error_code!r}")
        if after_objects < 0:
            raise ValueError(f"after_objects must be >= 0, got {after_objects}")
        with self.lock:
            self._bulk_fail = (error_code, after_objects)

    def _control(self, request: Request) -> Response:
        """``POST /_emulator/bulk`` ``{"speed": 2000}`` (objects per second of the emulator's
        clock) and/or ``{"fail": "TIMEOUT", "after": 500}`` (the next bulk query fails after
        500 objects); other actions are the base emulator's."""
        if request.path.rstrip("/") != "/_emulator/bulk" or request.method != "POST":
            return super()._control(request)
        try:
            raw = request.json()
            if not isinstance(raw, dict):
                raise TypeError("expected a JSON object")
            if raw.get("speed") is not None:
                self.set_bulk_speed(float(raw["speed"]))
            if raw.get("fail") is not None:
                self.fail_next_bulk(str(raw["fail"]), int(raw.get("after", 0)))
        except (TypeError, ValueError) as err:
            return Response(400, {"error": f"bad control request: {err!r}"})
        return Response(
            200, {"speed": self.bulk_speed, "fail_next": list(self._bulk_fail or ()) or None}
        )

    def _bulk_run_query(self, _info: Info, query: str, **_args: Any) -> dict[str, Any]:
        def refuse(code: str, message: str) -> dict[str, Any]:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["query"], "message": message, "code": code}],
            }

        now = self.clock.monotonic()
        running = [r for r in self.bulk_runs.values() if self._bulk_state(r, now)[0] in _ACTIVE]
        if len(running) >= self.bulk_queries_at_once:
            # The wording of Shopify's answer (community reports of the OPERATION_IN_PROGRESS
            # userError).
            return refuse(
                "OPERATION_IN_PROGRESS",
                "A bulk query operation for this app and shop is already in progress: "
                + ", ".join(gid("BulkOperation", r.number) for r in running)
                + ".",
            )
        try:
            windows = iter(self._bulk_windows(query)())
            lines, roots, last = next(windows)
        except GraphQLError as err:
            return refuse("INVALID", f"Invalid bulk query: {err.message}")
        number = self._next("bulk")
        fail, self._bulk_fail = self._bulk_fail, None
        run = BulkRun(
            number,
            query,
            self.clock.now(),
            now,
            lines,
            roots,
            self.bulk_speed,
            secrets.token_hex(16),
            fail,
        )
        self.bulk_runs[number] = run
        for old in sorted(self.bulk_runs)[:-BULK_RUNS_KEPT]:  # a long `sellable emulate`
            if self._bulk_state(self.bulk_runs[old], now)[0] not in _ACTIVE:
                del self.bulk_runs[old]
                for partial in (False, True):
                    self._bulk_files.pop((old, partial), None)
        # The first window is run now (a small shop's whole answer: deterministic in
        # tests); the others in a thread, as the operation runs.
        run.finished = last
        if not last:
            threading.Thread(
                target=self._bulk_continue,
                args=(run, windows),
                name="emulator-bulk",
                daemon=True,
            ).start()
        return {"bulkOperation": self._bulk_node(run), "userErrors": []}

    def _bulk_continue(self, run: BulkRun, windows: Iterable[_Window]) -> None:
        for lines, roots, _last in windows:
            with self.lock:
                run.lines.extend(lines)
                run.roots.extend(roots)
            if run.canceled_at is not None:
                break
        with self.lock:
            run.finished = True

    def _bulk_windows(
        self, query: str
    ) -> Callable[[], Iterable[tuple[list[bytes], list[bool], bool]]]:
        """Check a bulk query (GraphQLError for what Shopify's operation restrictions
        refuse) and return what runs it over the whole shop: windows of
        :data:`BULK_WINDOW` root objects, each as its JSONL lines (every object of a
        connection on a line of its own, nested connections' objects with ``__parentId``)
        and which of them are root objects, and whether it was the last."""
        prepared = self._prepare(query)
        if prepared.errors or prepared.document is None:
            raise GraphQLError("; ".join(str(e.get("message")) for e in prepared.errors))
        document = prepared.document
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
            raise GraphQLError("a bulk query must be one query operation")
        operation = operations[0]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        roots = list(_fields(operation.selection_set, fragments))
        root_type = self.schema.query_type
        assert root_type is not None
        if len(roots) != 1 or roots[0].name.value in ("node", "nodes"):
            raise GraphQLError("a bulk query selects one top-level connection field")
        root = roots[0]
        definition = root_type.fields.get(root.name.value)
        connection = get_named_type(definition.type) if definition else None
        if not isinstance(connection, GraphQLObjectType) or not connection.name.endswith(
            "Connection"
        ):
            raise GraphQLError("Bulk queries must contain at least one connection.")
        count, depth = _connections(self.schema, root_type, root, fragments)
        if count > BULK_MAX_CONNECTIONS:
            raise GraphQLError(
                f"Queries cannot contain more than {BULK_MAX_CONNECTIONS} connections."
            )
        if depth > BULK_MAX_DEPTH:
            raise GraphQLError(
                f"Queries cannot contain connections nested more than {BULK_MAX_DEPTH} levels deep."
            )
        key = root.alias.value if root.alias else root.name.value

        def windows() -> Iterable[_Window]:
            window = _BulkWindow(BULK_WINDOW)
            while True:
                lines: list[bytes] = []
                flags: list[bool] = []
                window.root_done = False
                token = _BULK.set(window)
                try:
                    with self.lock:
                        data = _bulk_execute(
                            root_type, operation.selection_set, self._root(), fragments
                        )
                finally:
                    _BULK.reset(token)
                for node_type, selection, node in _connection_nodes(
                    connection, root, fragments, data.get(key)
                ):
                    _bulk_emit(node_type, selection, node, None, fragments, lines, flags)
                yield lines, flags, not window.more
                if not window.more:
                    return
                window.after = window.end

        return windows

    def _bulk_state(
        self, run: BulkRun, now: float
    ) -> tuple[str, int, str | None, str | None, str | None]:
        """(status, objectCount, url, partialDataUrl, errorCode) at ``now``."""
        total = len(run.lines)
        base = f"{self.url}/bulk-results/{run.number}/{run.token}"
        if run.canceled_at is not None:
            done = min(total, int((run.canceled_at - run.started) * run.speed))
            return "CANCELED", done, None, None, None
        processed = min(total, int((now - run.started) * run.speed + 1e-9))
        expired = now >= run.done_at() + self.bulk_url_life
        if run.fail is not None and (run.finished or run.fail[1] <= total):
            limit = min(run.fail[1], total)
            if processed >= limit:
                partial = f"{base}-partial.jsonl" if limit and not expired else None
                return "FAILED", limit, None, partial, run.fail[0]
        elif run.finished and processed >= total:
            if expired:
                return "EXPIRED", total, None, None, None
            # No object, no file: the url is null.
            return "COMPLETED", total, f"{base}.jsonl" if total else None, None, None
        return ("CREATED" if processed == 0 else "RUNNING"), processed, None, None, None

    def _bulk_node(self, run: BulkRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        status, count, url, partial, error = self._bulk_state(run, self.clock.monotonic())
        completed = None
        if status in ("COMPLETED", "EXPIRED"):
            completed = run.created_at + timedelta(seconds=run.done_at() - run.started)
        size = len(self._bulk_file(run, partial=False)) if url else None
        return {
            "id": gid("BulkOperation", run.number),
            "status": status,
            "errorCode": error,
            "type": "QUERY",
            "query": run.query,
            "createdAt": _iso(run.created_at),
            "completedAt": _iso(completed),
            # UnsignedInt64 is a string on the wire.
            "objectCount": str(count),
            "rootObjectCount": str(sum(run.roots[:count])),
            "fileSize": None if size is None else str(size),
            "url": url,
            "partialDataUrl": partial,
        }

    def _current_bulk(self, _info: Info, type: str = "QUERY") -> dict[str, Any] | None:
        """The app's most recent bulk operation of ``type`` (only queries are emulated)."""
        if type != "QUERY" or not self.bulk_runs:
            return None
        return self._bulk_node(self.bulk_runs[max(self.bulk_runs)])

    def _bulk_cancel(self, _info: Info, id: str) -> dict[str, Any]:
        run = self.bulk_runs.get(gid_number(id, "BulkOperation") or 0)
        if run is None:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
            }
        now = self.clock.monotonic()
        status = self._bulk_state(run, now)[0]
        if status not in _ACTIVE:
            return {
                "bulkOperation": self._bulk_node(run),
                "userErrors": [
                    {
                        "field": None,
                        "message": "A bulk operation cannot be canceled when it is "
                        + status.lower(),
                    }
                ],
            }
        run.canceled_at = now
        return {"bulkOperation": self._bulk_node(run), "userErrors": []}

    def _bulk_file(self, run: BulkRun, partial: bool) -> bytes:
        key = (run.number, partial)
        body = self._bulk_files.get(key)
        if body is None:
            body = self._bulk_files[key] = run.body(partial)
        return body

    def _bulk_download(self, request: Request, match: re.Match[str]) -> Response:
        """A result file at its pre-signed URL (Shopify's are on Google Cloud Storage): no
        credentials needed, 403 once it expired, ``Range`` honoured (206)."""
        if request.method not in ("GET", "HEAD"):
            raise HttpError(405, {"errors": "Method Not Allowed"})
        with self.lock:
            if "x-shopify-access-token" in request.headers:
                self.bulk_downloads_with_token += 1
            run = self.bulk_runs.get(int(match["number"]))
            if run is None or not hmac.compare_digest(run.token, match["token"]):
                raise HttpError(404, b"<Error><Code>NoSuchKey</Code></Error>")
            partial = match["part"] is not None
            status, _count, url, partial_url, _error = self._bulk_state(run, self.clock.monotonic())
            if (
                self.clock.monotonic() >= run.done_at() + self.bulk_url_life
                and status != "CANCELED"
            ):
                raise HttpError(
                    403,
                    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
                    b"<Message>The provided token has expired.</Message></Error>",
                    {"Content-Type": "application/xml; charset=UTF-8"},
                )
            if (partial_url if partial else url) is None:
                raise HttpError(404, b"<Error><Code>NoSuchKey</Code></Error>")
            run.downloads += 1
            body = self._bulk_file(run, partial)
        headers = {"Content-Type": "application/jsonl", "Accept-Ranges": "bytes"}
        wanted = RANGE.match(request.headers.get("range", "").strip())
        if wanted is None:
            return Response(200, body, headers)
        start = int(wanted["start"])
        end = min(len(body) - 1, int(wanted["end"])) if wanted["end"] else len(body) - 1
        if start >= len(body):
            raise HttpError(416, b"", {"Content-Range": f"bytes */{len(body)}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        return Response(206, body[start : end + 1], headers)

    # -- webhooks ---------------------------------------------------------------------------

    def _webhook_node(self, number: int) -> dict[str, Any]:
        row = self.subscriptions[number]
        return {
            "id": gid("WebhookSubscription", number),
            "legacyResourceId": str(number),
            "topic": row["topic"],
            "uri": row["uri"],
            "callbackUrl": row["uri"],
            "format": "JSON",
            "includeFields": [],
            "metafieldNamespaces": [],
            "createdAt": _iso(row["created"]),
            "updatedAt": _iso(row["created"]),
        }

    def _webhook_subscriptions(self, _info: Info, **args: Any) -> dict[str, Any]:
        topics = args.get("topics")
        uri = args.get("uri") or args.get("callbackUrl")
        rows = [
            ([number], self._webhook_node(number))
            for number, row in self.subscriptions.items()
            if (not topics or row["topic"] in topics) and (not uri or row["uri"] == uri)
        ]
        return _connection(rows, args)

    def _webhook_create(
        self, _info: Info, topic: str, webhookSubscription: dict[str, Any]
    ) -> dict[str, Any]:
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri:
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {"field": ["webhookSubscription", "uri"], "message": "Address can't be blank"}
                ],
            }
        for row in self.subscriptions.values():
            if row["topic"] == topic and row["uri"] == uri:
                return {
                    "webhookSubscription": None,
                    "userErrors": [
                        {
                            "field": ["webhookSubscription", "callbackUrl"],
                            "message": "Address for this topic has already been taken",
                        }
                    ],
                }
        number = self._next("webhook")
        self.subscriptions[number] = {
            "topic": topic,
            "uri": uri,
            "created": self.clock.now(),
            "failures": 0,
        }
        return {"webhookSubscription": self._webhook_node(number), "userErrors": []}

    def _webhook_delete(self, _info: Info, id: str) -> dict[str, Any]:
        number = gid_number(id, "WebhookSubscription")
        if number is None or number not in self.subscriptions:
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        del self.subscriptions[number]
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}

    def _order_event(self, order: Order, *topics: str) -> None:
        """Queue a delivery of the order to every subscription of each topic (REST-style
        order JSON, as Shopify's webhooks send it)."""
        wanted = {t.upper().replace("/", "_"): t for t in topics}
        rows = [(n, r) for n, r in self.subscriptions.items() if r["topic"] in wanted]
        if not rows:
            return
        body = json.dumps(
            {
                "id": order.number,
                "admin_graphql_api_id": gid("Order", order.number),
                "name": order.name,
                "created_at": _iso(order.created_at),
                "updated_at": _iso(order.updated_at),
                "cancelled_at": _iso(order.cancelled_at),
                "line_items": [
                    {
                        "id": line.number,
                        "variant_id": line.variant,
                        "sku": line.sku,
                        "quantity": line.current,
                    }
                    for line in order.lines
                ],
            }
        ).encode()
        signature = base64.b64encode(
            hmac.new(self.client_secret.encode(), body, hashlib.sha256).digest()
        ).decode()
        for number, row in rows:
            self.webhooks.enqueue(
                Delivery(
                    row["uri"],
                    {
                        "Content-Type": "application/json",
                        "X-Shopify-Topic": wanted[row["topic"]],
                        "X-Shopify-Hmac-Sha256": signature,
                        "X-Shopify-Shop-Domain": "sellable-emulator.myshopify.com",
                        "X-Shopify-API-Version": self.api_version,
                        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                        "X-Shopify-Event-Id": str(uuid.uuid4()),
                        "X-Shopify-Triggered-At": _iso(self.clock.now()) or "",
                    },
                    body,
                    number,
                )
            )

    def _delivered(self, delivery: Delivery, status: int | None) -> bool:
        """A 2xx answer within the timeout is a success; a failure is retried (the same
        X-Shopify-Webhook-Id) until WEBHOOK_ATTEMPTS, then the subscription is deleted."""
        with self.lock:
            row = self.subscriptions.get(delivery.subscription)
            if row is None:
                return False
            if status is not None and 200 <= status < 300:
                row["failures"] = 0
                return False
            row["failures"] += 1
            if delivery.attempts >= WEBHOOK_ATTEMPTS:
                del self.subscriptions[delivery.subscription]
                return False
            return True

    def _location_node(self, number: int | None) -> dict[str, Any] | None:
        if number is None or number not in self.locations:
            return None
        return {
            "id": gid("Location", number),
            "legacyResourceId": str(number),
            "name": self.locations[number],
            "isActive": True,
            "isPrimary": number == self.primary_location,
            "fulfillsOnlineOrders": True,
            "shipsInventory": True,
            "hasActiveInventory": True,
        }

    def _location_field(self, _info: Info, id: str | None = None) -> Any:
        if id is None:  # "If no ID is provided, the primary location of the Shop is returned."
            return self._location_node(self.primary_location)
        return self._location_node(gid_number(id, "Location"))

    def _locations(self, _info: Info, **args: Any) -> dict[str, Any]:
        nodes = [(n, self._location_node(n)) for n in sorted(self.locations)]
        return _connection([([n], node) for n, node in nodes], args)

    def _variant_node(self, variant: Variant | None) -> dict[str, Any] | None:
        if variant is None:
            return None
        return {
            "id": gid("ProductVariant", variant.number),
            "legacyResourceId": str(variant.number),
            "sku": variant.sku,
            "title": variant.title,
            "displayName": variant.title,
            "inventoryQuantity": sum(level.available for level in variant.levels.values()),
            "inventoryPolicy": variant.inventory_policy,
            "product": {"id": gid("Product", variant.product), "title": variant.title},
            "inventoryItem": lambda _info: self._item_node(variant),
        }

    def _item_node(self, variant: Variant | None) -> dict[str, Any] | None:
        if variant is None:
            return None

        def level(_info: Info, locationId: str) -> Any:
            number = gid_number(locationId, "Location")
            if number is None or number not in variant.levels:
                return None
            return self._level_node(variant, number)

        def levels(_info: Info, **args: Any) -> dict[str, Any]:
            return _connection(
                [([n], self._level_node(variant, n)) for n in sorted(variant.levels)], args
            )

        return {
            "id": gid("InventoryItem", variant.item),
            "legacyResourceId": str(variant.item),
            "sku": variant.sku,
            "tracked": True,
            "requiresShipping": True,
            "variant": lambda _info: self._variant_node(variant),
            "inventoryLevel": level,
            "inventoryLevels": levels,
        }

    def _level_node(self, variant: Variant, location: int) -> dict[str, Any]:
        state = variant.levels[location]

        def quantities(_info: Info, names: list[str]) -> list[dict[str, Any]]:
            values = {"available": state.available, "committed": state.committed}
            values["on_hand"] = state.on_hand
            return [
                {
                    "id": f"gid://shopify/InventoryQuantity/{variant.item}-{location}-{name}",
                    "name": name,
                    "quantity": values.get(name, 0),
                    "updatedAt": _iso(state.updated_at),
                }
                for name in names
                if name in QUANTITY_NAMES
            ]

        return {
            "id": f"gid://shopify/InventoryLevel/{variant.item}{location:04d}"
            f"?inventory_item_id={variant.item}",
            "location": self._location_node(location),
            "item": lambda _info: self._item_node(variant),
            "quantities": quantities,
            "updatedAt": _iso(state.updated_at),
            "createdAt": _iso(state.updated_at),
        }

    def _product_variants(self, _info: Info, **args: Any) -> dict[str, Any]:
        sort = args.get("sortKey") or "ID"
        if sort not in ("ID", "SKU"):
            raise GraphQLError(f"sortKey {sort} is not supported by the emulator")
        match = _search(args.get("query"), {"sku": lambda v: v.sku, "id": lambda v: v.number})
        rows = []
        for variant in self.variants.values():
            if not match(variant):
                continue
            key: list[Any] = (
                [variant.sku or "", variant.number] if sort == "SKU" else [variant.number]
            )
            rows.append((key, variant))
        return _connection(rows, args, self._variant_node)

    def _order_node(self, order: Order | None) -> dict[str, Any] | None:
        if order is None:
            return None
        open_units = sum(line.current - line.fulfilled for line in order.lines)
        shipped = sum(line.fulfilled for line in order.lines)
        if shipped and not open_units:
            status = "FULFILLED"
        elif shipped:
            status = "PARTIALLY_FULFILLED"
        else:
            status = "UNFULFILLED"

        def line_items(_info: Info, **args: Any) -> dict[str, Any]:
            return _connection(
                [([line.number], self._line_node(line, order)) for line in order.lines], args
            )

        def fulfillment_orders(_info: Info, **args: Any) -> dict[str, Any]:
            # One fulfilment order per location the order's lines were assigned to.
            locations = sorted({line.location for line in order.lines}, key=self._by_primary)
            return _connection(
                [
                    (
                        [n],
                        {
                            "id": f"gid://shopify/FulfillmentOrder/{order.number}{n:03d}",
                            "status": "CLOSED" if order.cancelled_at else "OPEN",
                            "assignedLocation": {
                                "name": self.locations[n],
                                "location": self._location_node(n),
                            },
                        },
                    )
                    for n in locations
                ],
                args,
            )

        return {
            "id": gid("Order", order.number),
            "legacyResourceId": str(order.number),
            "fulfillmentOrders": fulfillment_orders,
            "name": order.name,
            "createdAt": _iso(order.created_at),
            "processedAt": _iso(order.created_at),
            "updatedAt": _iso(order.updated_at),
            "cancelledAt": _iso(order.cancelled_at),
            "closed": order.closed,
            "test": False,
            "displayFulfillmentStatus": status,
            "displayFinancialStatus": "PAID",
            "lineItems": line_items,
            "currencyCode": self.currency,
            "presentmentCurrencyCode": self.presentment_currency,
            "taxesIncluded": order.taxes_included,
            "email": order.email,
            "shippingAddress": None
            if order.shipping_address is None
            else {
                **dict.fromkeys(_MAILING_FIELDS),
                "id": f"gid://shopify/MailingAddress/{order.number}",
                **order.shipping_address,
            },
        }

    def _money_bag(self, amount: Decimal) -> dict[str, Any]:
        """A MoneyBag: the amount in the shop currency and in the customer's."""
        shown = _cents(amount * self.presentment_rate)
        return {
            "shopMoney": {"amount": f"{amount:.2f}", "currencyCode": self.currency},
            "presentmentMoney": {
                "amount": f"{shown:.2f}",
                "currencyCode": self.presentment_currency,
            },
        }

    def _line_money(self, order: Order, line: LineItem) -> dict[str, Any]:
        original = line.unit_price * line.quantity
        allocations = []
        if line.discount:
            allocations.append(
                {
                    "allocatedAmountSet": self._money_bag(line.discount),
                    "discountApplication": {
                        "__typename": "DiscountCodeApplication",
                        "code": order.discount_code,
                        "allocationMethod": "ACROSS",
                        "targetSelection": "ALL",
                        "targetType": "LINE_ITEM",
                        "index": 0,
                        "value": {
                            "__typename": "PricingPercentageValue",
                            "percentage": float(order.discount_percent),
                        },
                    },
                }
            )
        taxes = []
        if line.tax:
            taxes.append(
                {
                    "title": "Tax",
                    "rate": float(self.tax_rate),
                    "ratePercentage": float(self.tax_rate * 100),
                    "priceSet": self._money_bag(line.tax),
                    "channelLiable": False,
                }
            )
        return {
            "originalUnitPriceSet": self._money_bag(line.unit_price),
            "originalTotalSet": self._money_bag(original),
            # Line-level discounts only: the order-level code is not in these.
            "discountedUnitPriceSet": self._money_bag(line.unit_price),
            "discountedTotalSet": self._money_bag(original),
            "totalDiscountSet": self._money_bag(Decimal(0)),
            "discountAllocations": allocations,
            "taxLines": taxes,
            "taxable": bool(self.tax_rate),
        }

    def _line_node(self, line: LineItem, order: Order) -> dict[str, Any]:
        return {
            **self._line_money(order, line),
            "id": gid("LineItem", line.number),
            "sku": line.sku,
            "name": line.sku,
            "title": line.sku,
            "quantity": line.quantity,
            "currentQuantity": line.current,
            "unfulfilledQuantity": line.current - line.fulfilled,
            "fulfillableQuantity": line.current - line.fulfilled,
            "variant": lambda _info: self._variant_node(self.variants.get(line.variant)),
        }

    def _orders(self, _info: Info, **args: Any) -> dict[str, Any]:
        sort = args.get("sortKey") or "PROCESSED_AT"  # Shopify's default sort key
        fields: dict[str, Callable[[Order], Any]] = {
            "updated_at": lambda o: o.updated_at,
            "created_at": lambda o: o.created_at,
            "processed_at": lambda o: o.created_at,
            "id": lambda o: o.number,
        }
        match = _search(args.get("query"), fields)
        sort_value: dict[str, Callable[[Order], Any]] = {
            "UPDATED_AT": lambda o: _iso(o.updated_at),
            "CREATED_AT": lambda o: _iso(o.created_at),
            "PROCESSED_AT": lambda o: _iso(o.created_at),
            "ID": lambda o: o.number,
        }
        if sort not in sort_value:
            raise GraphQLError(f"sortKey {sort} is not supported by the emulator")
        rows = [
            ([sort_value[sort](order), order.number], self._order_node(order))
            for order in self.orders.values()
            if match(order)
        ]
        return _connection(rows, args)

    def _bulk_update_variants(
        self,
        _info: Info,
        productId: str,
        variants: list[dict[str, Any]],
        allowPartialUpdates: bool | None = None,
        **others: Any,
    ) -> dict[str, Any]:
        """``productVariantsBulkUpdate`` of ``inventoryPolicy`` (the GraphQL layer already
        refused a value other than DENY or CONTINUE). Errors name ``variants.<index>``; without
        ``allowPartialUpdates`` one refused variant leaves the product unchanged."""
        if others:
            raise GraphQLError(f"the emulator does not model {', '.join(sorted(others))}")
        if len(variants) > MAX_INPUT_ARRAY:
            raise GraphQLError(
                f"The input array size of {len(variants)} is greater than the maximum "
                f"allowed of {MAX_INPUT_ARRAY}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        product = gid_number(productId, "Product")
        if product is None or not any(v.product == product for v in self.variants.values()):
            return {
                "product": None,
                "productVariants": None,
                "userErrors": [
                    {
                        "code": "PRODUCT_DOES_NOT_EXIST",
                        "field": ["productId"],
                        "message": "Product does not exist",
                    }
                ],
            }
        errors: list[dict[str, Any]] = []
        changes: list[tuple[Variant, str | None]] = []
        for index, update in enumerate(variants):
            at = ["variants", str(index)]
            unknown = sorted(set(update) - {"id", "inventoryPolicy"})
            if unknown:
                raise GraphQLError(f"the emulator does not model {', '.join(unknown)}")
            if not update.get("id"):
                errors.append(
                    {
                        "code": "PRODUCT_VARIANT_ID_MISSING",
                        "field": [*at, "id"],
                        "message": "Product variant is missing ID attribute",
                    }
                )
                continue
            variant = self.variants.get(gid_number(update["id"], "ProductVariant") or 0)
            if variant is None or variant.product != product:
                errors.append(
                    {
                        "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
                        "field": [*at, "id"],
                        "message": "Product variant does not exist",
                    }
                )
                continue
            changes.append((variant, update.get("inventoryPolicy")))
        if errors and not allowPartialUpdates:
            return {"product": None, "productVariants": None, "userErrors": errors}
        for variant, policy in changes:
            if policy is not None:
                variant.inventory_policy = policy
        return {
            "product": {"id": productId},
            "productVariants": [self._variant_node(variant) for variant, _ in changes],
            "userErrors": errors,
        }

    def _set_quantities(self, _info: Info, input: dict[str, Any]) -> dict[str, Any]:
        quantities: list[dict[str, Any]] = input["quantities"]
        if len(quantities) > MAX_INPUT_ARRAY:
            raise GraphQLError(
                f"The input array size of {len(quantities)} is greater than the maximum "
                f"allowed of {MAX_INPUT_ARRAY}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        errors: list[dict[str, Any]] = []

        def refuse(code: str, message: str, *path: str) -> None:
            errors.append({"code": code, "field": ["input", *path], "message": message})

        if input["name"] not in ("available", "on_hand"):
            refuse(
                "INVALID_NAME", "The quantity name must be either 'available' or 'on_hand'.", "name"
            )
        if input["reason"] not in REASONS:
            refuse("INVALID_REASON", "The specified reason is invalid.", "reason")
        targets: list[tuple[Variant, int, int, Level]] = []
        seen: set[tuple[str, str]] = set()
        for index, quantity in enumerate(quantities):
            at = ("quantities", str(index))
            pair = (quantity["inventoryItemId"], quantity["locationId"])
            variant = self.variants.get(
                self._items.get(gid_number(pair[0], "InventoryItem") or 0, 0)
            )
            location = gid_number(pair[1], "Location")
            if pair in seen:
                refuse(
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    "The combination of inventoryItemId and locationId must be unique.",
                    *at,
                )
                continue
            seen.add(pair)
            if variant is None:
                refuse(
                    "INVALID_INVENTORY_ITEM",
                    "The specified inventory item could not be found.",
                    *at,
                    "inventoryItemId",
                )
                continue
            if location is None or location not in self.locations:
                refuse(
                    "INVALID_LOCATION",
                    "The specified location could not be found.",
                    *at,
                    "locationId",
                )
                continue
            level = variant.levels.get(location)
            if level is None:
                refuse(
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                    "The specified inventory item is not stocked at the location.",
                    *at,
                    "locationId",
                )
                continue
            if not variant.mutable:
                refuse(
                    "NON_MUTABLE_INVENTORY_ITEM",
                    "The specified inventory item is not allowed to be adjusted via API.",
                    *at,
                    "inventoryItemId",
                )
                continue
            if quantity["quantity"] < 0 and input["name"] == "on_hand":
                refuse(
                    "INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.", *at, "quantity"
                )
                continue
            if quantity["quantity"] > 1_000_000_000:
                refuse(
                    "INVALID_QUANTITY_TOO_HIGH",
                    "The quantity can't be higher than 1,000,000,000.",
                    *at,
                    "quantity",
                )
                continue
            if "changeFromQuantity" not in quantity:
                refuse(
                    "CHANGE_FROM_QUANTITY_REQUIRED",
                    "changeFromQuantity is required; pass null to opt out of the check.",
                    *at,
                    "changeFromQuantity",
                )
                continue
            current = level.available if input["name"] == "available" else level.on_hand
            expected = quantity["changeFromQuantity"]
            if expected is not None and expected != current:
                self.stale_answers += 1
                refuse(
                    "CHANGE_FROM_QUANTITY_STALE",
                    "The specified compare quantity does not match the current quantity.",
                    *at,
                    "changeFromQuantity",
                )
                continue
            targets.append((variant, location, quantity["quantity"], level))
        if errors:  # one refused quantity refuses the whole call: nothing is applied
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        now = self.clock.now()
        changes: list[dict[str, Any]] = []
        for variant, location, value, level in targets:
            delta = value - (level.available if input["name"] == "available" else level.on_hand)
            level.available += delta  # setting available moves on_hand by the same delta
            level.updated_at = now
            for name, after in (("available", level.available), ("on_hand", level.on_hand)):
                changes.append(
                    {
                        "name": name,
                        "delta": delta,
                        "quantityAfterChange": after,
                        "item": self._item_node(variant),
                        "location": self._location_node(location),
                        "ledgerDocumentUri": None,
                    }
                )
        self.mutations_applied += 1
        group_id = self._next("group")
        return {
            "inventoryAdjustmentGroup": {
                "id": f"gid://shopify/InventoryAdjustmentGroup/{group_id}",
                "createdAt": _iso(now),
                "reason": input["reason"],
                "referenceDocumentUri": input.get("referenceDocumentUri"),
                "changes": lambda _info, **_args: changes,
            },
            "userErrors": [],
        }


IDEMPOTENT_MUTATIONS = frozenset(
    {
        "inventorySetQuantities",
        "inventoryAdjustQuantities",
        "inventorySetOnHandQuantities",
        "inventoryMoveQuantities",
        "refundCreate",
    }
)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _resolve(source: Any, info: Info, **args: Any) -> Any:
    """Dicts of values or of callables ``(info, **arguments)``: the state's views."""
    value = source.get(info.field_name) if isinstance(source, Mapping) else None
    if callable(value):
        return value(info, **args)
    return value


def _search(query: str | None, fields: Mapping[str, Callable[[Any], Any]]) -> Callable[[Any], bool]:
    """Shopify's search syntax, the part connectors use: ``field:value``,
    ``field:>=value`` (also ``>``, ``<=``, ``<``), terms joined by spaces or ``AND``."""
    tests: list[Callable[[Any], bool]] = []
    for term in SEARCH_TERM.finditer(query or ""):
        name, op, raw = term["field"], term["op"], term["value"]
        getter = fields.get(name)
        if getter is None:
            continue  # Shopify ignores search fields it does not know
        value: Any = raw
        if name.endswith("_at"):
            value = _parse_time(raw)
        elif name == "id":
            value = int(raw) if raw.isdigit() else gid_number(raw, "Order")

        def test(
            item: Any, getter: Callable[[Any], Any] = getter, op: str = op, value: Any = value
        ) -> bool:
            left = getter(item)
            return left is not None and _compare(left, op, value)

        tests.append(test)
    return lambda item: all(t(item) for t in tests)


@dataclass
class _BulkWindow:
    """While a bulk query runs: the root connection reads ``first`` objects after
    ``after`` (the emulator executes the query in windows), nested connections read
    everything, as a bulk query's connections take no ``first``."""

    first: int
    after: str | None = None
    root_done: bool = False
    end: str | None = None
    more: bool = False


_BULK: ContextVar[_BulkWindow | None] = ContextVar("_BULK", default=None)


def _connection(
    rows: list[tuple[list[Any], Any]],
    args: Mapping[str, Any],
    build: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """A Relay connection over ``rows`` (sort key, node) with opaque keyset cursors;
    ``build`` makes the node of a row that made the page (instead of every row's)."""
    window = _BULK.get()
    root = window is not None and not window.root_done
    if window is not None:
        window.root_done = True
        args = {
            **args,
            "first": window.first if root else len(rows),
            "after": window.after if root else None,
            "last": None,
            "before": None,
        }
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for value in (first, last):
        if window is None and value is not None and not 0 <= value <= 250:
            raise GraphQLError("The first/last argument must be between 0 and 250.")
    rows = sorted(rows, key=lambda r: r[0], reverse=bool(args.get("reverse")))
    after, before = args.get("after"), args.get("before")
    if after is not None:
        mark = _uncursor(after)
        rows = [r for r in rows if (r[0] < mark if args.get("reverse") else r[0] > mark)]
    if before is not None:
        mark = _uncursor(before)
        rows = [r for r in rows if (r[0] > mark if args.get("reverse") else r[0] < mark)]
    has_next = has_previous = False
    if first is not None:
        has_next = len(rows) > first
        rows = rows[:first]
        has_previous = after is not None
    elif last is not None:
        has_previous = len(rows) > last
        rows = rows[-last:] if last else []
        has_next = before is not None
    if build is not None:
        rows = [(key, build(item)) for key, item in rows]
    if root and window is not None:
        window.end = _cursor(rows[-1][0]) if rows else None
        window.more = has_next
    return {
        "nodes": [node for _key, node in rows],
        "edges": [{"cursor": _cursor(key), "node": node} for key, node in rows],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": _cursor(rows[0][0]) if rows else None,
            "endCursor": _cursor(rows[-1][0]) if rows else None,
        },
    }


_ACTIVE = ("CREATED", "RUNNING")


def _connection_nodes(
    connection: GraphQLObjectType,
    field: FieldNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    value: Any,
) -> Iterable[tuple[GraphQLObjectType | GraphQLInterfaceType, SelectionSetNode, Any]]:
    """The objects of a connection's answer, whether selected by ``nodes`` or
    ``edges { node }``: (type, selection, value) each."""
    if not isinstance(value, Mapping) or field.selection_set is None:
        return
    for sub in _fields(field.selection_set, fragments):
        key = sub.alias.value if sub.alias else sub.name.value
        if sub.selection_set is None or sub.name.value not in ("nodes", "edges"):
            continue
        item_type = get_named_type(connection.fields[sub.name.value].type)
        if sub.name.value == "nodes":
            assert isinstance(item_type, GraphQLObjectType | GraphQLInterfaceType)
            for item in value.get(key) or ():
                yield item_type, sub.selection_set, item
            continue
        assert isinstance(item_type, GraphQLObjectType)
        node_type = get_named_type(item_type.fields["node"].type)
        assert isinstance(node_type, GraphQLObjectType | GraphQLInterfaceType)
        for inner in _fields(sub.selection_set, fragments):
            if inner.name.value != "node" or inner.selection_set is None:
                continue
            inner_key = inner.alias.value if inner.alias else "node"
            for edge in value.get(key) or ():
                if isinstance(edge, Mapping):
                    yield node_type, inner.selection_set, edge.get(inner_key)


def _connections(
    schema: GraphQLSchema,
    parent: GraphQLObjectType | GraphQLInterfaceType,
    field: FieldNode,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> tuple[int, int]:
    """(connections, deepest nesting of connections) under ``field`` of ``parent``,
    itself included when it is one."""
    definition = parent.fields.get(field.name.value)
    if definition is None:
        return 0, 0
    target = get_named_type(definition.type)
    own = int(target.name.endswith("Connection"))
    count, depth = own, 0
    if field.selection_set is not None and isinstance(
        target, GraphQLObjectType | GraphQLInterfaceType
    ):
        for sub in _fields(field.selection_set, fragments):
            more, deeper = _connections(schema, target, sub, fragments)
            count += more
            depth = max(depth, deeper)
    return count, depth + own


def _bulk_execute(
    kind: GraphQLObjectType | GraphQLInterfaceType,
    selection: SelectionSetNode,
    source: Any,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> dict[str, Any]:
    """A validated document's answer over the resolvers of :meth:`ShopifyEmulator._root`,
    without graphql-core's executor (a bulk query reads the whole shop: its per-field
    bookkeeping made a 100,000-variant query take a minute)."""
    found: dict[str, Any] = {}
    for sub in _fields(selection, fragments):
        name = sub.name.value
        key = sub.alias.value if sub.alias else name
        if name == "__typename":
            found[key] = kind.name
            continue
        definition = kind.fields[name]
        value = source.get(name) if isinstance(source, Mapping) else None
        if callable(value):
            value = value(None, **arguments(definition.args, sub, {}))
        target = get_named_type(definition.type)
        if (
            value is None
            or sub.selection_set is None
            or not isinstance(target, GraphQLObjectType | GraphQLInterfaceType)
        ):
            found[key] = value
        elif isinstance(value, list):
            found[key] = [
                None if item is None else _bulk_execute(target, sub.selection_set, item, fragments)
                for item in value
            ]
        else:
            found[key] = _bulk_execute(target, sub.selection_set, value, fragments)
    return found


def _bulk_emit(
    node_type: GraphQLObjectType | GraphQLInterfaceType,
    selection: SelectionSetNode,
    node: Any,
    parent: str | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    lines: list[bytes],
    roots: list[bool],
) -> None:
    """One connection object as a JSONL line, then its nested connections' objects, each
    with ``__parentId`` = this object's id."""
    if not isinstance(node, Mapping):
        return
    children: list[tuple[GraphQLObjectType, FieldNode, Any]] = []
    line = _bulk_object(node_type, selection, node, fragments, children)
    if parent is not None:
        line["__parentId"] = parent
    lines.append(json.dumps(line, separators=(",", ":")).encode() + b"\n")
    roots.append(parent is None)
    own = line.get("id")
    for connection, owner, value in children:
        for child_type, child_selection, child in _connection_nodes(
            connection, owner, fragments, value
        ):
            _bulk_emit(child_type, child_selection, child, str(own), fragments, lines, roots)


def _bulk_object(
    kind: GraphQLObjectType | GraphQLInterfaceType,
    selection: SelectionSetNode,
    value: Mapping[str, Any],
    fragments: Mapping[str, FragmentDefinitionNode],
    children: list[tuple[GraphQLObjectType, FieldNode, Any]],
) -> dict[str, Any]:
    """``value`` without its connections (collected in ``children``): the line's object."""
    found: dict[str, Any] = {}
    for sub in _fields(selection, fragments):
        key = sub.alias.value if sub.alias else sub.name.value
        if key not in value:
            continue
        definition = kind.fields.get(sub.name.value)
        target = get_named_type(definition.type) if definition else None
        item = value[key]
        if (
            isinstance(target, GraphQLObjectType)
            and target.name.endswith("Connection")
            and sub.selection_set is not None
        ):
            children.append((target, sub, item))
        elif (
            isinstance(target, GraphQLObjectType | GraphQLInterfaceType)
            and sub.selection_set is not None
            and item is not None
        ):
            if isinstance(item, list):
                found[key] = [
                    _bulk_object(target, sub.selection_set, x, fragments, children) for x in item
                ]
            else:
                found[key] = _bulk_object(target, sub.selection_set, item, fragments, children)
        else:
            found[key] = item
    return found


def _location(node: FieldNode) -> dict[str, int]:
    if node.loc is None:
        return {"line": 1, "column": 1}
    source = node.loc.source.body[: node.loc.start]
    return {"line": source.count("\n") + 1, "column": node.loc.start - source.rfind("\n")}


def _error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": x.line, "column": x.column} for x in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    if error.extensions:
        formatted["extensions"] = dict(error.extensions)
    return formatted


UNDEFINED_FIELD = re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'\.")
UNKNOWN_ARGUMENT = re.compile(r"^Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\.")
MISSING_ARGUMENT = re.compile(r"^Argument '(\w+)\.(\w+)\((\w+):\)' of type '([^']+)' is required")


def _shopify_words(error: dict[str, Any]) -> dict[str, Any]:
    """graphql-core's validation messages in the words of Shopify's server (graphql-ruby),
    for the mistakes a connector makes most; others keep graphql-core's wording."""
    message = error["message"]
    if found := UNDEFINED_FIELD.match(message):
        field, kind = found.groups()
        error["message"] = f"Field '{field}' doesn't exist on type '{kind}'"
        error["extensions"] = {"code": "undefinedField", "typeName": kind, "fieldName": field}
    elif found := UNKNOWN_ARGUMENT.match(message):
        argument, _kind, field = found.groups()
        error["message"] = f"Field '{field}' doesn't accept argument '{argument}'"
        error["extensions"] = {
            "code": "argumentNotAccepted",
            "name": field,
            "typeName": "Field",
            "argumentName": argument,
        }
    elif found := MISSING_ARGUMENT.match(message):
        _kind, field, argument, _type = found.groups()
        error["message"] = f"Field '{field}' is missing required arguments: {argument}"
        error["extensions"] = {
            "code": "missingRequiredArguments",
            "className": "Field",
            "name": field,
            "arguments": argument,
        }
    return error


def _formatted(result: ExecutionResult) -> dict[str, Any]:
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [_error(e) for e in result.errors]
    return answer


__all__ = ["Bucket", "ShopifyEmulator", "admin_schema", "amend_2026", "query_cost"]
