"""A thin typed client of Vendure's Admin GraphQL API, on top of the channel's ChannelHttp.

It knows the documents the connector sends and turns Vendure's answers into frozen
dataclasses; it holds no business rule. Usage::

    client = VendureAdminClient(http, "sync-user", SecretStr("..."))
    page = client.variants(skip=0, take=100)

Errors: a refused login or a session Vendure no longer accepts (after one fresh login)
raise :class:`~sellable.sdk.AuthenticationError`; any other GraphQL error raises
:class:`~sellable.sdk.ChannelError`; an answer without the fields asked for raises
:class:`~sellable.sdk.ChannelPayloadError`. Transport errors, 429 and 5xx are retried by
ChannelHttp before they reach here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from sellable.sdk import (
    AuthenticationError,
    ChannelError,
    ChannelHttp,
    ChannelPayloadError,
    OrderPayloadError,
    RejectedOrder,
    ShippingAddress,
    collect_orders,
    currency_code,
    money_amount,
    order_time,
    whole_quantity,
)

#: The response header carrying the session token after ``login``. Vendure sends it only
#: when ``authOptions.tokenMethod`` includes ``'bearer'`` (the default is ``'cookie'``):
#: https://docs.vendure.io/current/framework/reference/typescript-api/auth/auth-options
AUTH_TOKEN_HEADER = "vendure-auth-token"

#: GraphQL error codes Vendure gives, inside HTTP 200, when the session is missing, expired
#: or lacks a permission: ForbiddenError and UnauthorizedError in @vendure/core's
#: packages/core/src/common/error/errors.ts (seen on 3.7.3: an unauthenticated
#: ``productVariants`` answers HTTP 200 with ``extensions.code == "FORBIDDEN"``).
AUTH_ERROR_CODES = frozenset({"FORBIDDEN", "UNAUTHORIZED"})

LOGIN = """
mutation SellableLogin($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    __typename
    ... on CurrentUser { id identifier }
    ... on ErrorResult { errorCode message }
  }
}
"""

VARIANT_FIELDS = """
fragment SellableVariant on ProductVariant {
  id productId sku name enabled trackInventory
  outOfStockThreshold useGlobalOutOfStockThreshold
  stockLevels { stockLocationId stockOnHand stockAllocated }
}
"""

LISTING_PAGE = (
    """
query SellableVariants($options: ProductVariantListOptions) {
  productVariants(options: $options) { totalItems items { ...SellableVariant } }
  stockLocations(options: {sort: {createdAt: ASC}, take: 100}) {
    totalItems items { id name }
  }
  globalSettings { outOfStockThreshold trackInventory }
}
"""
    + VARIANT_FIELDS
)

VARIANTS_BY_ID = (
    """
query SellableVariantsById($options: ProductVariantListOptions) {
  productVariants(options: $options) { totalItems items { ...SellableVariant } }
  globalSettings { outOfStockThreshold trackInventory }
}
"""
    + VARIANT_FIELDS
)

#: ``proratedLinePrice``: "The actual line price, taking into account both item discounts
#: _and_ prorated (proportionally-distributed) Order-level discounts. This value is the true
#: economic value of the OrderLine" (OrderLine in @vendure/core's
#: ``api/schema/common/order.type.graphql``), excluding tax (``proratedLinePriceWithTax``
#: has it); ``discountedLinePrice`` leaves order-level discounts out. Money is an Int of
#: minor units at the server's ``moneyStrategyPrecision`` decimals (MoneyStrategy.precision,
#: default 2, one for every currency), read in the same query.
ORDERS = """
query SellableOrders($options: OrderListOptions) {
  orders(options: $options) {
    totalItems
    items {
      id code state active createdAt updatedAt orderPlacedAt currencyCode
      lines { id quantity proratedLinePrice productVariant { id sku } }
      fulfillments { id state lines { orderLineId quantity } }
      shippingAddress {
        fullName company streetLine1 streetLine2 city province postalCode countryCode
        phoneNumber
      }
      customer { emailAddress }
    }
  }
  globalSettings { serverConfig { moneyStrategyPrecision } }
}
"""

#: Vendure's DefaultMoneyStrategy precision, when the server does not say.
DEFAULT_MONEY_PRECISION = 2


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A variant's stock at one stock location."""

    location_id: str
    on_hand: int
    allocated: int


@dataclass(frozen=True, slots=True)
class Variant:
    """A product variant with what decides its saleable stock."""

    id: str
    product_id: str
    sku: str
    name: str
    enabled: bool
    track_inventory: str  # GlobalFlag: TRUE, FALSE or INHERIT
    out_of_stock_threshold: int
    use_global_out_of_stock_threshold: bool
    stock_levels: tuple[StockLevel, ...]

    def level(self, location_id: str) -> StockLevel:
        """The stock at ``location_id``; a location without a row holds nothing yet."""
        for level in self.stock_levels:
            if level.location_id == location_id:
                return level
        return StockLevel(location_id, 0, 0)


@dataclass(frozen=True, slots=True)
class StockLocation:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class GlobalStockSettings:
    out_of_stock_threshold: int
    track_inventory: bool


@dataclass(frozen=True, slots=True)
class VariantPage:
    """One page of variants, the channel's stock locations oldest first, and the global
    stock settings."""

    variants: tuple[Variant, ...]
    total: int
    stock_locations: tuple[StockLocation, ...]
    stock_settings: GlobalStockSettings


@dataclass(frozen=True, slots=True)
class OrderLine:
    id: str
    variant_id: str
    sku: str
    quantity: int
    #: ``proratedLinePrice`` in major units (None: absent or not an amount).
    revenue: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentLine:
    order_line_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Fulfillment:
    id: str
    state: str
    lines: tuple[FulfillmentLine, ...]


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    code: str
    state: str
    active: bool
    created_at: datetime
    updated_at: datetime
    placed_at: datetime | None
    lines: tuple[OrderLine, ...]
    fulfillments: tuple[Fulfillment, ...]
    #: ``currencyCode`` (None: absent or not a currency code).
    currency: str | None = None
    #: ``shippingAddress`` (an OrderAddress) with the customer's email; None: none set.
    shipping: ShippingAddress | None = None


@dataclass(frozen=True, slots=True)
class OrderPage:
    """``orders`` read, ``rejected`` those that could not be, ``size`` how many the page
    held (both together)."""

    orders: tuple[Order, ...]
    total: int
    rejected: tuple[RejectedOrder, ...] = ()

    @property
    def size(self) -> int:
        return len(self.orders) + len(self.rejected)


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """Set ``variant_id``'s ``stockOnHand`` at each (stock location id, quantity), and its own
    ``outOfStockThreshold`` (``useGlobalOutOfStockThreshold`` false) unless ``threshold`` is
    None."""

    variant_id: str
    levels: tuple[tuple[str, int], ...]
    threshold: int | None = None


@dataclass(frozen=True, slots=True)
class StockUpdateOutcome:
    """What Vendure did with one :class:`StockUpdate`: the on-hand figures it now holds per
    location (None when it was not applied) or the error it gave."""

    variant_id: str
    on_hand: Mapping[str, int] | None
    error: str | None = None
    #: The variant's own threshold after the update, when the update set one.
    threshold: int | None = None


class VendureAdminClient:
    """Vendure's Admin API over ``http``: logs in with ``username``/``password`` on the first
    call, sends the session token as ``Authorization: Bearer``, and logs in again once when
    Vendure stops accepting it."""

    def __init__(self, http: ChannelHttp, username: str, password: SecretStr) -> None:
        self.http = http
        self.username = username
        self._password = password
        self._token: str | None = None
        self.logins = 0

    # -- session --------------------------------------------------------------------------------

    def authenticate(self, request_headers: dict[str, str]) -> None:
        """ChannelHttp's per-request hook: the session token, once there is one."""
        if self._token is not None:
            request_headers["Authorization"] = f"Bearer {self._token}"

    def login(self) -> None:
        """The ``login`` mutation; keeps the token from the ``vendure-auth-token`` header
        (see :data:`AUTH_TOKEN_HEADER`)."""
        self._token = None
        self.logins += 1
        variables = {"username": self.username, "password": self._password.get_secret_value()}
        response, body = self.http.request_json(
            "POST", "", json={"query": LOGIN, "variables": variables}
        )
        if not isinstance(body, dict):
            raise ChannelPayloadError(
                f"Vendure answered login with a JSON {type(body).__name__}, not an object",
                channel=self.http.channel,
            )
        errors = _errors(body)
        if errors:
            raise AuthenticationError(
                f"Vendure refused the login of {self.username!r}: {_describe(errors)}",
                channel=self.http.channel,
            )
        result = _field(_data(body, "login"), "login")
        if result.get("__typename") != "CurrentUser":
            raise AuthenticationError(
                f"Vendure refused the login of {self.username!r}: "
                f"{result.get('errorCode')}: {result.get('message')}",
                channel=self.http.channel,
            )
        token = response.headers.get(AUTH_TOKEN_HEADER)
        if not token:
            raise AuthenticationError(
                f"Vendure accepted the login of {self.username!r} but sent no "
                f"{AUTH_TOKEN_HEADER!r} header: set authOptions.tokenMethod to "
                "['bearer', 'cookie'] in the Vendure config",
                channel=self.http.channel,
            )
        self._token = token

    # -- GraphQL --------------------------------------------------------------------------------

    def execute(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Send ``document``; returns ``(data, errors)`` as Vendure gave them, after logging in
        (again) when the session is missing or refused."""
        if self._token is None:
            self.login()
        body = self._post(document, variables)
        if _is_auth_failure(body):
            # The session expired or was revoked (sessionDuration, logout elsewhere): log in
            # once more. A second refusal is a missing permission, not a stale session.
            self.login()
            body = self._post(document, variables)
            if _is_auth_failure(body):
                raise AuthenticationError(
                    f"Vendure refused the request of {self.username!r} after a fresh login: "
                    f"{_describe(_errors(body))} (see the permissions in "
                    "docs/connectors/vendure.md)",
                    channel=self.http.channel,
                )
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            raise ChannelPayloadError(
                f"Vendure answered with data of type {type(data).__name__}",
                channel=self.http.channel,
            )
        return data, _errors(body)

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`execute`, raising ChannelError on any GraphQL error."""
        data, errors = self.execute(document, variables)
        if errors:
            raise ChannelError(f"Vendure: {_describe(errors)}", channel=self.http.channel)
        if data is None:
            raise ChannelPayloadError("Vendure answered without data", channel=self.http.channel)
        return data

    def _post(self, document: str, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        try:
            _, body = self.http.request_json(
                "POST", "", json={"query": document, "variables": dict(variables or {})}
            )
        except AuthenticationError:
            # A proxy in front of Vendure may answer 401/403 itself; treat it like a
            # refused session so that a fresh login is tried once.
            return {"errors": [{"message": "HTTP 401/403", "extensions": {"code": "FORBIDDEN"}}]}
        if not isinstance(body, dict):
            raise ChannelPayloadError(
                f"Vendure answered with a JSON {type(body).__name__}, not an object",
                channel=self.http.channel,
            )
        return body

    # -- operations -----------------------------------------------------------------------------

    def variants(self, skip: int, take: int) -> VariantPage:
        """One page of every variant of the channel, by id, with the stock locations."""
        options = {"skip": skip, "take": take, "sort": {"id": "ASC"}}
        data = self.query(LISTING_PAGE, {"options": options})
        try:
            variants = _field(data, "productVariants")
            locations = _field(data, "stockLocations")
            return VariantPage(
                variants=tuple(_variant(item) for item in variants["items"]),
                total=int(variants["totalItems"]),
                stock_locations=tuple(
                    StockLocation(str(item["id"]), str(item["name"])) for item in locations["items"]
                ),
                stock_settings=_stock_settings(_field(data, "globalSettings")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise self._payload("productVariants", err) from err

    def variants_by_id(
        self, variant_ids: Sequence[str]
    ) -> tuple[dict[str, Variant], GlobalStockSettings]:
        """The variants with these ids that still exist, and the global stock settings."""
        if not variant_ids:
            raise ValueError("variants_by_id needs at least one id (take 0 lists everything)")
        options = {"filter": {"id": {"in": list(variant_ids)}}, "take": len(variant_ids)}
        data = self.query(VARIANTS_BY_ID, {"options": options})
        try:
            found = {
                variant.id: variant
                for variant in (_variant(item) for item in data["productVariants"]["items"])
            }
            return found, _stock_settings(_field(data, "globalSettings"))
        except (KeyError, TypeError, ValueError) as err:
            raise self._payload("productVariants", err) from err

    def orders(
        self, filter_: Mapping[str, Any], sort: Mapping[str, str], skip: int, take: int
    ) -> OrderPage:
        options = {"filter": dict(filter_), "sort": dict(sort), "skip": skip, "take": take}
        data = self.query(ORDERS, {"options": options})
        try:
            orders = _field(data, "orders")
            precision = _money_precision(data.get("globalSettings"))
            # One order we cannot read is refused by its code; the others are imported.
            parsed, rejected = collect_orders(
                orders["items"],
                lambda item: _order(item, precision),
                order_id=lambda item: item["code"],
                updated_at=lambda item: order_time(item, "updatedAt"),
            )
            return OrderPage(tuple(parsed), int(orders["totalItems"]), tuple(rejected))
        except (KeyError, TypeError, ValueError) as err:
            raise self._payload("orders", err) from err

    def set_stock_levels(self, updates: Sequence[StockUpdate]) -> list[StockUpdateOutcome]:
        """``updateProductVariants`` with absolute ``stockLevels``: all of ``updates`` in one
        field first, and only if Vendure refuses that, one aliased field per variant.

        One field with a list of inputs is one transaction in Vendure (its resolver is
        ``@Transaction()``): either every variant is updated or, on an error, none is. On
        Vendure 3.7.3 it is about 1.8 times as fast as the same variants as aliased fields,
        each of which is a transaction of its own (benchmarks/bench_vendure_100k.py).
        When it fails (a variant deleted since it was read, a refused value), nothing was
        applied, and the same updates are sent again as aliased fields
        (:meth:`set_stock_levels_one_by_one`), so that each variant gets its own result.
        """
        if not updates:
            return []
        document, variables = _stock_mutation_together(updates)
        data, errors = self.execute(document, variables)
        if errors or data is None:
            return self.set_stock_levels_one_by_one(updates)
        answers = data.get("updateProductVariants")
        by_id: dict[str, Any] = {}
        if isinstance(answers, list):
            for answer in answers:
                if isinstance(answer, dict) and "id" in answer:
                    by_id[str(answer["id"])] = answer
        return [_applied(update, [by_id.get(update.variant_id)]) for update in updates]

    def set_stock_levels_one_by_one(
        self, updates: Sequence[StockUpdate]
    ) -> list[StockUpdateOutcome]:
        """``updateProductVariants`` with absolute ``stockLevels``, one aliased field per
        variant in one request, so that each variant gets its own result.

        Vendure runs each mutation field in its own transaction, and GraphQL runs mutation
        fields one after the other; but ``updateProductVariants`` returns a non-null list, so
        one failing field nulls the whole ``data`` and the fields after it are not run
        (https://spec.graphql.org/October2021/#sec-Normal-and-Serial-Execution,
        https://spec.graphql.org/October2021/#sec-Handling-Field-Errors). The fields before
        the failing one were applied; the ones after it are sent again in a new request.
        """
        outcomes: list[StockUpdateOutcome] = []
        remaining = list(updates)
        while remaining:
            document, variables = _stock_mutation(remaining)
            data, errors = self.execute(document, variables)
            if not errors and data is not None:
                outcomes.extend(
                    _applied(update, data.get(f"v{i}")) for i, update in enumerate(remaining)
                )
                return outcomes
            failed_at = _failed_alias(errors, len(remaining))
            if failed_at is None:
                # An error that names no field (a document Vendure rejects): nothing ran.
                reason = _describe(errors) or "Vendure answered without data"
                outcomes.extend(StockUpdateOutcome(u.variant_id, None, reason) for u in remaining)
                return outcomes
            for update in remaining[:failed_at]:
                # Applied: these fields ran before the failing one (see the docstring).
                outcomes.append(
                    StockUpdateOutcome(
                        update.variant_id, dict(update.levels), threshold=update.threshold
                    )
                )
            failing = remaining[failed_at]
            reason = _describe([e for e in errors if _alias_index(e) == failed_at])
            outcomes.append(StockUpdateOutcome(failing.variant_id, None, reason))
            remaining = remaining[failed_at + 1 :]
        return outcomes

    def _payload(self, what: str, err: Exception) -> ChannelPayloadError:
        return ChannelPayloadError(
            f"unexpected Vendure {what} payload: {err!r}", channel=self.http.channel
        )


# -- helpers --------------------------------------------------------------------------------------


#: The fields read back after a stock update (the threshold's when some update sets it).
STOCK_ANSWER = "id stockLevels { stockLocationId stockOnHand }"
THRESHOLD_ANSWER = " outOfStockThreshold useGlobalOutOfStockThreshold"


def _stock_mutation_together(updates: Sequence[StockUpdate]) -> tuple[str, dict[str, Any]]:
    answer = STOCK_ANSWER + (
        THRESHOLD_ANSWER if any(u.threshold is not None for u in updates) else ""
    )
    document = (
        "mutation SellableSetStockTogether($input: [UpdateProductVariantInput!]!) {\n"
        f"  updateProductVariants(input: $input) {{ {answer} }}\n}}"
    )
    return document, {"input": [_variant_input(update) for update in updates]}


def _stock_mutation(updates: Sequence[StockUpdate]) -> tuple[str, dict[str, Any]]:
    params = ", ".join(f"$v{i}: [UpdateProductVariantInput!]!" for i in range(len(updates)))
    fields = "\n".join(
        f"  v{i}: updateProductVariants(input: $v{i}) "
        "{ id stockLevels { stockLocationId stockOnHand }"
        + (
            " outOfStockThreshold useGlobalOutOfStockThreshold"
            if update.threshold is not None
            else ""
        )
        + " }"
        for i, update in enumerate(updates)
    )
    variables = {f"v{i}": [_variant_input(update)] for i, update in enumerate(updates)}
    return f"mutation SellableSetStock({params}) {{\n{fields}\n}}", variables


def _variant_input(update: StockUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": update.variant_id,
        "stockLevels": [
            {"stockLocationId": location, "stockOnHand": quantity}
            for location, quantity in update.levels
        ],
    }
    if update.threshold is not None:
        values["outOfStockThreshold"] = update.threshold
        values["useGlobalOutOfStockThreshold"] = False
    return values


def _applied(update: StockUpdate, answer: Any) -> StockUpdateOutcome:
    try:
        (variant,) = answer
        on_hand = {
            str(level["stockLocationId"]): int(level["stockOnHand"])
            for level in variant["stockLevels"]
        }
        threshold = None
        if update.threshold is not None:
            own = not variant["useGlobalOutOfStockThreshold"]
            threshold = int(variant["outOfStockThreshold"]) if own else None
    except (KeyError, TypeError, ValueError):
        return StockUpdateOutcome(
            update.variant_id, None, f"unexpected answer to updateProductVariants: {answer!r}"
        )
    return StockUpdateOutcome(update.variant_id, on_hand, threshold=threshold)


def _alias_index(error: Mapping[str, Any]) -> int | None:
    path = error.get("path")
    if not isinstance(path, list) or not path:
        return None
    alias = path[0]
    if isinstance(alias, str) and alias.startswith("v") and alias[1:].isdigit():
        return int(alias[1:])
    return None


def _failed_alias(errors: Sequence[Mapping[str, Any]], count: int) -> int | None:
    found = [i for i in (_alias_index(e) for e in errors) if i is not None and i < count]
    return min(found) if found else None


def _errors(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors")
    if not errors:
        return []
    if not isinstance(errors, list):
        return [{"message": str(errors)}]
    return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]


def _is_auth_failure(body: Mapping[str, Any]) -> bool:
    return any(
        isinstance(e.get("extensions"), dict) and e["extensions"].get("code") in AUTH_ERROR_CODES
        for e in _errors(body)
    )


def _describe(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for error in errors:
        extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, dict) else None
        path = error.get("path")
        where = f" at {'.'.join(str(p) for p in path)}" if isinstance(path, list) else ""
        parts.append(f"{code + ': ' if code else ''}{error.get('message')}{where}")
    return "; ".join(parts)


def _data(body: Mapping[str, Any], what: str) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise ChannelPayloadError(f"Vendure answered {what} without data")
    return data


def _field(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise ChannelPayloadError(f"Vendure answered without {name!r}: {value!r}")
    return value


def parse_time(value: str) -> datetime:
    """A Vendure DateTime (ISO 8601 in UTC, e.g. ``2026-11-23T04:27:03.097Z``)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """A DateTime for a Vendure filter: UTC, milliseconds, ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _stock_settings(item: Mapping[str, Any]) -> GlobalStockSettings:
    return GlobalStockSettings(
        out_of_stock_threshold=int(item["outOfStockThreshold"]),
        track_inventory=bool(item["trackInventory"]),
    )


def _variant(item: Mapping[str, Any]) -> Variant:
    return Variant(
        id=str(item["id"]),
        product_id=str(item["productId"]),
        sku=str(item["sku"]),
        name=str(item["name"]),
        enabled=bool(item["enabled"]),
        track_inventory=str(item["trackInventory"]),
        out_of_stock_threshold=int(item["outOfStockThreshold"]),
        use_global_out_of_stock_threshold=bool(item["useGlobalOutOfStockThreshold"]),
        stock_levels=tuple(
            StockLevel(
                str(level["stockLocationId"]),
                int(level["stockOnHand"]),
                int(level["stockAllocated"]),
            )
            for level in item["stockLevels"]
        ),
    )


def _money_precision(settings: Any) -> int:
    """``globalSettings.serverConfig.moneyStrategyPrecision``: how many of an amount's
    digits are decimals; Vendure's default (2) when the answer lacks it."""
    config = settings.get("serverConfig") if isinstance(settings, Mapping) else None
    value = config.get("moneyStrategyPrecision") if isinstance(config, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        return DEFAULT_MONEY_PRECISION
    return value


def _minor_units(value: Any, precision: int, field: str) -> Decimal | None:
    """An Int of minor units as an exact Decimal (``1999`` at precision 2 is ``19.99``);
    None when absent or not a whole number: revenue is advisory, the order still imports."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return money_amount(Decimal(value).scaleb(-precision), field)
    except OrderPayloadError:
        return None


def _currency(value: Any) -> str | None:
    try:
        return None if value is None else currency_code(value, "currencyCode")
    except OrderPayloadError:
        return None


def _order(item: Mapping[str, Any], precision: int = DEFAULT_MONEY_PRECISION) -> Order:
    placed = item.get("orderPlacedAt")
    lines = item.get("lines")
    if not isinstance(lines, list):
        raise OrderPayloadError("lines", "missing" if lines is None else "not a list")
    return Order(
        id=str(item["id"]),
        code=str(item["code"]),
        state=str(item["state"]),
        active=bool(item["active"]),
        created_at=order_time(item, "createdAt"),
        updated_at=order_time(item, "updatedAt"),
        placed_at=order_time(item, "orderPlacedAt") if placed else None,
        lines=tuple(
            OrderLine(
                id=str(line["id"]),
                variant_id=str(line["productVariant"]["id"]),
                sku=str(line["productVariant"]["sku"]),
                quantity=whole_quantity(line.get("quantity"), f"lines[{position}].quantity"),
                revenue=_minor_units(
                    line.get("proratedLinePrice"),
                    precision,
                    f"lines[{position}].proratedLinePrice",
                ),
            )
            for position, line in enumerate(lines)
        ),
        fulfillments=tuple(
            Fulfillment(
                id=str(fulfillment["id"]),
                state=str(fulfillment["state"]),
                lines=tuple(
                    FulfillmentLine(str(line["orderLineId"]), int(line["quantity"]))
                    for line in fulfillment["lines"]
                ),
            )
            for fulfillment in item["fulfillments"]
        ),
        currency=_currency(item.get("currencyCode")),
        shipping=_shipping(item),
    )


def _shipping(item: Mapping[str, Any]) -> ShippingAddress | None:
    """The order's ``shippingAddress`` (OrderAddress: fullName, streetLine1, city,
    province, postalCode, countryCode as ISO 3166-1 alpha-2, phoneNumber) with its
    customer's ``emailAddress``; None when it has none (Vendure answers an empty object for
    an order whose address was never set). A field of the wrong type is treated as absent:
    the address never stops the order's stock allocation."""
    address = item.get("shippingAddress")
    if not isinstance(address, Mapping):
        return None

    def text(name: str, source: Mapping[str, Any] = address) -> str | None:
        value = source.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    if not (text("fullName") or text("streetLine1") or text("city")):
        return None
    customer = item.get("customer")
    return ShippingAddress(
        name=text("fullName") or text("company") or "",
        address1=text("streetLine1") or "",
        city=text("city") or "",
        country=(text("countryCode") or "").upper(),
        address2=text("streetLine2"),
        state=text("province"),
        zip_code=text("postalCode"),
        company=text("company"),
        phone=text("phoneNumber"),
        email=text("emailAddress", customer) if isinstance(customer, Mapping) else None,
    )
