"""Orders as channels and CSV files give them to the order book."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from sellable.core import SkuWarehouse

if TYPE_CHECKING:  # the SDK imports this module: no import of it at run time
    from sellable.sdk._fulfilment import ShippingAddress


class OrderKey(NamedTuple):
    """An order's identity: (channel code, the channel's order id)."""

    channel: str
    external_id: str


class OrderStatus(StrEnum):
    OPEN = "open"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class LineStatus(StrEnum):
    ALLOCATED = "allocated"
    HELD = "held"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


UNKNOWN_SKU = "unknown SKU"


@dataclass(frozen=True, slots=True)
class OrderLineIn:
    """One line: ``quantity`` of ``sku``. ``line_id`` is unique within the order.

    ``status`` is the line's own status where the channel gives one (partly shipped
    orders): on an open order a shipped line is sold and a cancelled line holds nothing;
    None follows the order. An order that is shipped or cancelled is so for all its lines."""

    line_id: str
    sku: str
    quantity: int
    status: OrderStatus | None = None
    #: The options the customer chose, as (slot name, option SKU) pairs: the line takes
    #: exactly those. Empty: the planner chooses (the option with the most available).
    options: tuple[tuple[str, str], ...] = ()
    #: What the line earned (its total after discounts, excluding tax) in ``currency``;
    #: None: not known. Costing splits it across a kit's components.
    revenue: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class OrderIn:
    """The channel's current view of an order. Re-sending it updates the stored order."""

    channel: str
    order_id: str
    warehouse: str
    status: OrderStatus
    lines: tuple[OrderLineIn, ...]
    created_at: datetime | None = None
    #: The warehouses a line may be routed among, in order: the first that can allocate all
    #: of it, else split across them in order, else held in the first. Empty: ``warehouse``
    #: only (the channel chose it: Amazon AFN, a Shopify location). When given,
    #: ``warehouse`` is its first.
    route: tuple[str, ...] = ()
    #: Where the order ships to (a fulfilment provider needs it); stored, never logged.
    shipping_address: ShippingAddress | None = None

    @property
    def warehouses(self) -> tuple[str, ...]:
        """Where this order's lines may be booked, in order."""
        return self.route or (self.warehouse,)

    @property
    def key(self) -> OrderKey:
        return OrderKey(self.channel, self.order_id)

    @property
    def reference(self) -> str:
        return f"order {self.channel}:{self.order_id}"


@dataclass(slots=True)
class OrderImportResult:
    """What applying a set of orders did."""

    orders_created: int = 0
    orders_updated: int = 0
    orders_unchanged: int = 0
    lines_allocated: int = 0
    lines_held: int = 0
    lines_shipped: int = 0
    lines_cancelled: int = 0
    assembly_orders: int = 0
    movements: int = 0
    changed_pairs: set[SkuWarehouse] = field(default_factory=set)
    held: list[tuple[str, str, str]] = field(default_factory=list)  # (order ref, line, reason)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (order ref, reason)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: OrderImportResult) -> None:
        for name in (
            "orders_created",
            "orders_updated",
            "orders_unchanged",
            "lines_allocated",
            "lines_held",
            "lines_shipped",
            "lines_cancelled",
            "assembly_orders",
            "movements",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.changed_pairs |= other.changed_pairs
        self.held.extend(other.held)
        self.rejected.extend(other.rejected)
        self.notes.extend(other.notes)

    def to_dict(self) -> dict[str, object]:
        return {
            "orders_created": self.orders_created,
            "orders_updated": self.orders_updated,
            "orders_unchanged": self.orders_unchanged,
            "lines_allocated": self.lines_allocated,
            "lines_held": self.lines_held,
            "lines_shipped": self.lines_shipped,
            "lines_cancelled": self.lines_cancelled,
            "assembly_orders": self.assembly_orders,
            "movements": self.movements,
            "changed_sellable": [
                {"sku": sku, "warehouse": wh} for sku, wh in sorted(self.changed_pairs)
            ],
            "held": [
                {"order": order, "line": line, "reason": reason}
                for order, line, reason in self.held
            ],
            "rejected": [{"order": order, "reason": reason} for order, reason in self.rejected],
            "notes": self.notes,
        }
