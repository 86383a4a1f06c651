"""Orders sent out to be shipped by a fulfilment provider (a 3PL), as connectors see them
(private; import from sellable.sdk).

A connector with :attr:`Capability.FULFIL_ORDERS` serves warehouses of ``kind = "3pl"``.
The framework finds the order lines allocated in those warehouses, whichever channel the
order came from, and hands the connector one :class:`FulfilmentRequest` per (order,
warehouse). Exactly once is the framework's job with the connector's help:

- the framework records the request (status pending) *before* the connector sends it;
- :meth:`Connector.fulfil_orders` answers :attr:`SubmitOutcome.CREATED`, or
  :attr:`SubmitOutcome.EXISTED` when the provider already holds that reference (a 422 for a
  duplicate reference), or :attr:`SubmitOutcome.UNKNOWN` when no answer came (a timeout);
- a pending request whose answer was lost (a timeout, a crash between sending and
  recording) is looked up by its reference with :meth:`Connector.find_fulfilments` before
  it is ever sent again.

Shipments come back through :meth:`Connector.pull_fulfilments` (polling by last update)
and, where the provider signs webhooks, as pokes of that poll
(:attr:`WebhookKind.FULFILMENTS`).

A shipping address is personal data: it is stored, handed to the fulfilment connector, and
never logged (its ``repr`` hides it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sellable.errors import OrderPayloadError


@dataclass(frozen=True, slots=True, repr=False)
class ShippingAddress:
    """Where an order goes, as the storefront gives it. ``country`` is ISO 3166-1 alpha-2
    where the channel gives one. Never logged: ``repr`` and ``str`` hide the fields."""

    name: str
    address1: str
    city: str
    country: str
    address2: str | None = None
    state: str | None = None
    zip_code: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        for name in ("name", "address1", "city", "country"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise OrderPayloadError(f"shipping_address.{name}", "is not text")
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is not None and not isinstance(value, str):
                raise OrderPayloadError(f"shipping_address.{spec.name}", "is not text")

    def __repr__(self) -> str:
        return "ShippingAddress(<hidden>)"

    __str__ = __repr__

    @property
    def missing(self) -> list[str]:
        """The required fields that are empty (a provider refuses such an order)."""
        return [
            name
            for name in ("name", "address1", "city", "country")
            if not getattr(self, name).strip()
        ]

    def to_dict(self) -> dict[str, str]:
        """The fields that are set, for storage (JSON)."""
        return {
            spec.name: getattr(self, spec.name)
            for spec in fields(self)
            if getattr(self, spec.name) is not None
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippingAddress:
        known = {spec.name for spec in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class FulfilmentLine:
    """One order line of a :class:`FulfilmentRequest`: ``quantity`` units of ``sku`` (the
    SKU ordered). ``components`` is what our allocation took for it in the request's
    warehouse, per SKU: ``((sku, units), ...)`` — the SKU itself for prepackaged units, a
    kit's components (exploded, recursively) for the rest. A connector sends either the
    ordered SKU (the provider explodes bundles) or the components, per its settings."""

    line_id: str
    sku: str
    quantity: int
    components: tuple[tuple[str, int], ...] = ()
    name: str | None = None


@dataclass(frozen=True, slots=True)
class FulfilmentRequest:
    """Ship these lines of one order from one warehouse.

    ``reference`` is unique per fulfilment channel and stable across restarts:
    ``"<order channel>:<order id>"``, plus ``":<n>"`` when one order goes to two of the
    provider's warehouses. The provider keeps it (ShipBob's ``reference_id``), and it is
    what :meth:`Connector.find_fulfilments` looks up."""

    reference: str
    order_channel: str
    order_id: str
    warehouse: str
    recipient: ShippingAddress
    lines: tuple[FulfilmentLine, ...]
    created_at: datetime | None = None


class SubmitOutcome(StrEnum):
    #: The provider created the order now.
    CREATED = "created"
    #: The provider already held an order with this reference (sent before): recorded, never
    #: sent twice.
    EXISTED = "existed"
    #: The provider refused it for a reason that retrying will not cure (a bad address, an
    #: unknown SKU): the order is flagged for the operator with ``message``.
    REFUSED = "refused"
    #: No answer (a timeout, a 5xx after retries): it may or may not exist; looked up by
    #: reference before it is sent again.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    reference: str
    outcome: SubmitOutcome
    remote_id: str | None = None
    message: str | None = None


class ShipmentStatus(StrEnum):
    PROCESSING = "processing"
    #: Shipped: ``items`` are sold.
    COMPLETED = "completed"
    #: The provider cancelled the shipment: its units are released.
    CANCELLED = "cancelled"
    #: Stuck at the provider (out of stock, a bundle problem): flagged with ``reason``.
    EXCEPTION = "exception"
    #: Held by the provider (address, payment, customs): flagged with ``reason``.
    ON_HOLD = "on_hold"


@dataclass(frozen=True, slots=True)
class Shipment:
    """One shipment of a provider's order. ``items`` are the units it carries, per SKU, as
    the provider picks them (a bundle the provider exploded gives its components)."""

    shipment_id: str
    status: ShipmentStatus
    items: tuple[tuple[str, int], ...] = ()
    tracking: tuple[str, ...] = ()
    carrier: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FulfilmentUpdate:
    """A provider's order as it is now: what :meth:`Connector.pull_fulfilments` and
    :meth:`Connector.find_fulfilments` return. ``reference`` is the request's;
    ``cancelled`` says the whole order is cancelled at the provider."""

    reference: str
    remote_id: str
    status: str
    updated_at: datetime
    shipments: tuple[Shipment, ...] = ()
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class FulfilmentPage:
    """One page of provider orders changed since the poll's start time; ``next_cursor``
    None ends. Orders whose reference is not ours (sent by another integration) are left
    out by the connector or ignored by the framework."""

    updates: Sequence[FulfilmentUpdate]
    next_cursor: str | None = None


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    #: The provider refused (already picked or shipped): the order is flagged.
    REFUSED = "refused"
    #: The provider does not know the order (never arrived): nothing to cancel.
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class CancelResult:
    remote_id: str
    outcome: CancelOutcome
    message: str | None = None


__all__ = [
    "CancelOutcome",
    "CancelResult",
    "FulfilmentLine",
    "FulfilmentPage",
    "FulfilmentRequest",
    "FulfilmentUpdate",
    "Shipment",
    "ShipmentStatus",
    "ShippingAddress",
    "SubmitOutcome",
    "SubmitResult",
]
