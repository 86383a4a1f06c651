"""Everything a connector author imports. See docs/writing-a-connector.md.

A connector is a class registered under the entry-point group ``sellable.connectors``.
It declares what it can do (:class:`Capability`), a pydantic model of its settings, and
implements small hooks; the framework owns the schedule, retries, rate limits, cursors,
the listing map, the stock arithmetic and the database. Connectors never sleep, retry,
schedule or touch the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from sellable.errors import (
    AuthenticationError,
    ChannelError,
    ChannelPayloadError,
    TemporaryChannelError,
)
from sellable.orders.model import OrderStatus

if TYPE_CHECKING:
    from sellable.sync.http import ChannelHttp


class Capability(StrEnum):
    PULL_ORDERS = "pull_orders"
    PULL_STOCK = "pull_stock"
    PUSH_QUANTITIES = "push_quantities"
    LIST_LISTINGS = "list_listings"
    READ_QUANTITIES = "read_quantities"


class ConnectorSettings(BaseModel):
    """Base of a connector's settings model (``[channels.settings]``). Unknown keys are
    errors; use ``SecretStr`` for secrets so that they never reach a log."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second on average, bursts up to ``burst``."""

    rate: float
    burst: int = 1


@dataclass(frozen=True, slots=True)
class ChannelOrderLine:
    """One line of a :class:`ChannelOrder`. ``status``, when the channel knows it per line,
    says a line of an open order is already shipped (sold) or cancelled (holds nothing); the
    order's own shipped or cancelled status applies to every line whatever this says."""

    line_id: str
    sku: str
    quantity: int
    status: OrderStatus | None = None


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """An order as the channel shows it now. ``warehouse`` overrides the channel's first
    warehouse (e.g. Amazon orders fulfilled by Amazon)."""

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
    the channel holds (read or confirmed), for compare-and-swap APIs."""

    listing: Listing
    quantity: int
    previous: int | None = None


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


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the framework hands a connector: its channel code, warehouses and HTTP client."""

    channel: str
    warehouses: tuple[str, ...]
    http: ChannelHttp


class Connector:
    """Base class of every connector.

    Usage::

        class MyShop(Connector):
            name = "myshop"
            capabilities = frozenset({Capability.PULL_ORDERS, Capability.PUSH_QUANTITIES})
            Settings = MyShopSettings
            rate_limit = RateLimit(rate=2, burst=10)

            def push_quantities(self, items): ...
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    #: Published request rate of the channel's API; the framework paces requests by it.
    rate_limit: ClassVar[RateLimit | None] = None
    #: Most items one push_quantities call may carry.
    max_push_batch: ClassVar[int] = 100

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context
        self.http = context.http

    # Hooks: override those your capabilities name. -------------------------------------------

    def base_url(self) -> str:
        """The URL every request path is relative to. Called once, before any request."""
        return ""

    def authenticate(self, request_headers: dict[str, str]) -> None:
        """Add credentials to the headers of every request (called per request)."""

    def pull_orders(self, since: datetime, cursor: str | None) -> OrderPage:
        """One page of orders updated at or after ``since``; ``cursor`` is the previous
        page's ``next_cursor`` (None for the first page)."""
        raise NotImplementedError

    def list_listings(self, cursor: str | None) -> ListingPage:
        """One page of the channel's listings."""
        raise NotImplementedError

    def push_quantities(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Set the quantities; one result per item, in any order."""
        raise NotImplementedError

    def read_quantities(self, listings: Sequence[Listing]) -> dict[str, int]:
        """The channel's current quantity per listing id (for reconcile)."""
        raise NotImplementedError

    def pull_stock(self) -> list[StockCount]:
        """The warehouse's counts, for a warehouse connector."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the connector holds; the HTTP client is closed by the framework."""


__all__ = [
    "AuthenticationError",
    "Capability",
    "ChannelError",
    "ChannelOrder",
    "ChannelOrderLine",
    "ChannelPayloadError",
    "Connector",
    "ConnectorContext",
    "ConnectorSettings",
    "Listing",
    "ListingPage",
    "OrderPage",
    "OrderStatus",
    "PushItem",
    "PushResult",
    "PushStatus",
    "RateLimit",
    "StockCount",
    "TemporaryChannelError",
]
