"""The plain data a connector returns and receives (private; import from sellable.sdk)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sellable.orders.model import OrderStatus


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


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of orders changed since the pull's start time; ``next_cursor`` None ends."""

    orders: Sequence[ChannelOrder]
    next_cursor: str | None = None


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
class StockCount:
    """A warehouse connector's count: ``on_hand`` units of ``sku``, ``reserved`` of them
    already promised to the channel's own orders (not to be allocated twice)."""

    sku: str
    on_hand: int
    reserved: int = 0
    #: The warehouse counted; None: the channel's first warehouse.
    warehouse: str | None = None
