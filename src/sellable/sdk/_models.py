"""The plain data a connector returns and receives (private; import from sellable.sdk)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from sellable.errors import ChannelPayloadError, OrderPayloadError
from sellable.orders.model import OrderStatus
from sellable.sdk._fulfilment import ShippingAddress


def whole_quantity(value: Any, field: str = "quantity") -> int:
    """``value`` if it is a whole number of units, 0 or more; else an
    :class:`OrderPayloadError` naming ``field``. Nothing is converted: ``"2"``, ``1.5``
    and ``True`` are refused, not read as 2, 1 and 1 (a cut quantity allocates the wrong
    stock silently)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrderPayloadError(field, f"{_shown(value)} is not a whole number")
    if value < 0:
        raise OrderPayloadError(field, f"{value} is negative")
    return value


def money_amount(value: Any, field: str = "revenue") -> Decimal:
    """``value`` (a Decimal, an int or decimal text such as ``"19.90"``) as a Decimal, 0 or
    more; else an :class:`OrderPayloadError` naming ``field``. Floats are refused: a float
    price has already lost its cents' exactness (pass ``str(value)`` from JSON)."""
    if isinstance(value, bool | float):
        raise OrderPayloadError(field, f"{_shown(value)} is not an exact amount (give text)")
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise OrderPayloadError(field, f"{_shown(value)} is not an amount") from None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise OrderPayloadError(field, f"{_shown(value)} is not an amount")
    if value < 0:
        raise OrderPayloadError(field, f"{value} is negative")
    if abs(value) >= Decimal("1e12"):
        raise OrderPayloadError(field, f"{value} is out of range")
    return value


def currency_code(value: Any, field: str = "currency") -> str:
    """``value`` as an ISO 4217 code (three letters, upper-cased); else an
    :class:`OrderPayloadError` naming ``field``."""
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise OrderPayloadError(field, f"{_shown(value)} is not a three-letter currency code")
    return value.strip().upper()


def order_time(raw: Any, key: str) -> datetime:
    """The ISO 8601 time in ``raw[key]`` (``Z`` or an offset; none is read as UTC), or an
    :class:`OrderPayloadError` naming ``key`` (missing, not text, or not a date)."""
    value = raw.get(key) if hasattr(raw, "get") else None
    if not isinstance(value, str):
        raise OrderPayloadError(
            key, "missing" if value is None else f"{_shown(value)} is not a date"
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise OrderPayloadError(key, f"{value[:60]!r} is not an ISO 8601 date") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, field: str, order_id: str | None = None, *, empty: bool = False) -> None:
    if not isinstance(value, str) or (not empty and not value.strip()):
        wanted = "text" if empty else "non-empty text"
        raise OrderPayloadError(field, f"{_shown(value)} is not {wanted}", order_id=order_id)


def _moment(value: Any, field: str, order_id: str | None) -> datetime:
    """A channel time; one without a zone is UTC (as the cursor reads it)."""
    if not isinstance(value, datetime):
        raise OrderPayloadError(field, f"{_shown(value)} is not a datetime", order_id=order_id)
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ChannelOrderLine:
    """One line of a :class:`ChannelOrder`. ``status``, when the channel knows it per line,
    says a line of an open order is already shipped (sold) or cancelled (holds nothing); the
    order's own shipped or cancelled status applies to every line whatever this says."""

    line_id: str
    sku: str
    quantity: int
    status: OrderStatus | None = None
    #: The options the customer chose, as (slot name, option SKU) pairs, where the channel
    #: carries them: the line then takes exactly those. Empty: the planner chooses.
    options: tuple[tuple[str, str], ...] = ()
    #: What the line earned, from the channel's own fields: the line's total after
    #: discounts, excluding tax, in ``currency`` (ISO 4217). None: the channel did not say.
    revenue: Decimal | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        # The order's id is not known here: collect_orders (or ChannelOrder's caller) adds
        # it. A quantity of 0 is a line with nothing left (refunded, edited away).
        _text(self.line_id, "line_id")
        where = f"lines[{self.line_id}]"
        _text(self.sku, f"{where}.sku", empty=True)
        whole_quantity(self.quantity, f"{where}.quantity")
        if self.status is not None and not isinstance(self.status, OrderStatus):
            raise OrderPayloadError(f"{where}.status", f"{_shown(self.status)} is not a status")
        object.__setattr__(self, "options", tuple(self.options))
        for pair in self.options:
            if len(pair) != 2 or not all(isinstance(part, str) and part for part in pair):
                raise OrderPayloadError(
                    f"{where}.options", f"{_shown(pair)} is not a (slot, SKU) pair"
                )
        if self.revenue is not None:
            object.__setattr__(self, "revenue", money_amount(self.revenue, f"{where}.revenue"))
        if self.currency is not None:
            object.__setattr__(self, "currency", currency_code(self.currency, f"{where}.currency"))


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """An order as the channel shows it now. ``warehouse`` is a warehouse the channel itself
    chose (Amazon orders fulfilled by Amazon, the location Shopify assigned): the lines are
    booked there. None: each line is routed across the channel's warehouses in order."""

    order_id: str
    status: OrderStatus
    updated_at: datetime
    lines: tuple[ChannelOrderLine, ...]
    created_at: datetime | None = None
    warehouse: str | None = None
    #: Where the order ships to, where the channel gives it: stored for a fulfilment
    #: provider (a 3PL ships the order), never logged.
    shipping_address: ShippingAddress | None = None

    def __post_init__(self) -> None:
        """Refuse what the order book could not use, with an :class:`OrderPayloadError`
        naming the order and the field (see :func:`collect_orders`)."""
        _text(self.order_id, "order_id")
        order_id = self.order_id
        if not isinstance(self.status, OrderStatus):
            raise OrderPayloadError(
                "status", f"{_shown(self.status)} is not a status", order_id=order_id
            )
        object.__setattr__(self, "updated_at", _moment(self.updated_at, "updated_at", order_id))
        if self.created_at is not None:
            created = _moment(self.created_at, "created_at", order_id)
            object.__setattr__(self, "created_at", created)
        if isinstance(self.lines, (str, bytes)) or not isinstance(self.lines, Sequence):
            raise OrderPayloadError(
                "lines", f"{_shown(self.lines)} is not a list of lines", order_id=order_id
            )
        object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            if not isinstance(line, ChannelOrderLine):
                raise OrderPayloadError(
                    "lines", f"{_shown(line)} is not a ChannelOrderLine", order_id=order_id
                )
        if self.warehouse is not None:
            _text(self.warehouse, "warehouse", order_id)
        if self.shipping_address is not None and not isinstance(
            self.shipping_address, ShippingAddress
        ):
            raise OrderPayloadError(
                "shipping_address", "is not a ShippingAddress", order_id=order_id
            )


@dataclass(frozen=True, slots=True)
class RejectedOrder:
    """An order of a page that could not be read: refused by ``order_id``, naming the
    ``field`` (in the channel's terms) and the ``reason``. ``updated_at`` is the order's
    modification time when it could be read: the framework's cursor waits for it."""

    order_id: str
    field: str
    reason: str
    updated_at: datetime | None = None

    def describe(self) -> str:
        return f"order {self.order_id}: {self.field}: {self.reason}"


Raw = TypeVar("Raw")
Parsed = TypeVar("Parsed")


def collect_orders(
    raws: Iterable[Raw],
    parse: Callable[[Raw], Parsed],
    *,
    order_id: Callable[[Raw], object],
    updated_at: Callable[[Raw], datetime | None] | None = None,
) -> tuple[list[Parsed], list[RejectedOrder]]:
    """Each raw order of a page parsed by ``parse``, or refused by id: one bad order is
    that order's problem alone.

    ``parse`` raises :class:`OrderPayloadError` (naming the field) for what it cannot
    read; a ``ChannelPayloadError``, ``KeyError``, ``TypeError`` or ``ValueError`` out of
    it refuses the order too, with what the error says. ``parse`` usually returns a
    :class:`ChannelOrder`, or a client's own order type. ``order_id`` reads the raw
    order's id for the refusal, ``updated_at`` its modification time when readable (the
    framework's cursor waits for a refused order that has one). Usage::

        orders, rejected = collect_orders(data["orders"], self._order, order_id=lambda r: r["id"])
        return OrderPage(orders, next_cursor, rejected)
    """
    orders: list[Parsed] = []
    rejected: list[RejectedOrder] = []
    for position, raw in enumerate(raws):
        try:
            orders.append(parse(raw))
            continue
        except OrderPayloadError as err:
            field, reason, known = err.field, err.reason, err.order_id
        except ChannelPayloadError as err:
            field, reason, known = "order", str(err), None
        except KeyError as err:
            field, reason, known = str(err.args[0]) if err.args else "?", "missing", None
        except (TypeError, ValueError) as err:
            field, reason, known = "order", f"{type(err).__name__}: {err}", None
        rejected.append(
            RejectedOrder(
                known or _raw_id(raw, order_id, position),
                field,
                reason[:300],
                _raw_time(raw, updated_at),
            )
        )
    return orders, rejected


def _raw_id(raw: Raw, order_id: Callable[[Raw], object], position: int) -> str:
    try:
        value = order_id(raw)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        value = None
    if isinstance(value, bool) or value is None or not str(value).strip():
        return f"(no id: order {position + 1} of its page)"
    return str(value)[:200]


def _raw_time(raw: Raw, updated_at: Callable[[Raw], datetime | None] | None) -> datetime | None:
    if updated_at is None:
        return None
    try:
        moment = updated_at(raw)
    except (ChannelPayloadError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        return None
    return moment


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of orders changed since the pull's start time; ``next_cursor`` None ends.

    ``rejected`` are the orders of the page that could not be read (see
    :func:`collect_orders`): each is refused and reported by id, the others are imported."""

    orders: Sequence[ChannelOrder]
    next_cursor: str | None = None
    rejected: Sequence[RejectedOrder] = ()


@dataclass(frozen=True, slots=True)
class Listing:
    """Something on the channel whose quantity we set.

    ``listing_id`` is unique on the channel (for a per-location quantity, make it unique
    per location); ``sku`` is matched to our catalog; ``warehouses`` limits which of the
    channel's warehouses its quantity comes from (None: all of them); ``quantity`` is the
    channel's current figure when the listing call returns it.
    """

    listing_id: str
    sku: str | None
    parent_id: str | None = None
    warehouses: tuple[str, ...] | None = None
    quantity: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListingPage:
    listings: Sequence[Listing]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PushItem:
    """Set ``listing``'s quantity to ``quantity``. ``previous`` is the last value we know
    the channel holds (read or confirmed), for compare-and-swap APIs.

    ``backorders`` True asks the channel to keep selling the listing once it reaches 0
    (its own flag: WooCommerce ``backorders``, Shopify's ``inventoryPolicy``, ...);
    ``previous_backorders`` is the flag as the channel last confirmed it from us. A
    connector with :attr:`Connector.supports_backorders` sends the flag only when the two
    differ, so that a flag set by the merchant is left alone until we set one; others
    never get ``backorders`` True."""

    listing: Listing
    quantity: int
    previous: int | None = None
    backorders: bool = False
    previous_backorders: bool = False

    @property
    def backorders_changed(self) -> bool:
        """Whether the channel's keep-selling flag must be sent with this item."""
        return self.backorders != self.previous_backorders


class PushStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the channel refused this item; retried next cycle, reported
    RETRY = "retry"  # not applied yet (throttled, queued): try again later


@dataclass(frozen=True, slots=True)
class PushResult:
    listing_id: str
    status: PushStatus
    message: str | None = None

    @classmethod
    def ok(cls, listing_id: str) -> PushResult:
        return cls(listing_id, PushStatus.OK)

    @classmethod
    def failed(cls, listing_id: str, message: str) -> PushResult:
        return cls(listing_id, PushStatus.FAILED, message)

    @classmethod
    def retry(cls, listing_id: str, message: str) -> PushResult:
        return cls(listing_id, PushStatus.RETRY, message)


@dataclass(frozen=True, slots=True)
class PushesInFlight:
    """What a connector whose pushes are confirmed later knows of them
    (:meth:`Connector.pushes_in_flight`): ``settled``, the outcomes learned since the last
    call, each with the quantity it is about (OK: the channel shows it; FAILED: refused);
    ``waiting``, listing id -> quantity submitted and not confirmed yet."""

    settled: Sequence[tuple[PushResult, int]] = ()
    waiting: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StockCount:
    """A warehouse connector's count: ``on_hand`` units of ``sku``, ``reserved`` of them
    already promised to the channel's own orders (not to be allocated twice)."""

    sku: str
    on_hand: int
    reserved: int = 0
    #: The warehouse counted; None: the channel's first warehouse.
    warehouse: str | None = None
    #: Units of ``on_hand`` the warehouse has committed to orders, ours included (a 3PL's
    #: committed quantity): what exceeds our own allocations there is locked (orders that
    #: reached the warehouse some other way). None: the warehouse does not say.
    committed: int | None = None
