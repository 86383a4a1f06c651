"""The tables. Alembic migrations under ``migrations/`` create exactly these."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

_MICROS = Decimal(1_000_000)


class Money(TypeDecorator[Decimal]):
    """Exact money: a BIGINT of millionths of a currency unit, read back as a Decimal to 6
    places. Exact on every database, SQLite included (whose NUMERIC is a float), and summed
    exactly by SQL. Writers that bypass SQLAlchemy's types (COPY, driver executemany) pass
    :func:`micros`."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else micros(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else from_micros(value)


def micros(value: Decimal | int | str) -> int:
    """``value`` in millionths (half up): what a :class:`Money` column stores."""
    return int((Decimal(value) * _MICROS).to_integral_value(ROUND_HALF_UP))


def from_micros(value: int | Decimal) -> Decimal:
    return (Decimal(value) / _MICROS).quantize(Decimal("0.000001"))


warehouses = Table(
    "warehouses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("use_component_inventory", Boolean, nullable=False),
    Column("assembly_on_demand", Boolean, nullable=False),
)

skus = Table(
    "skus",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(255), nullable=False, unique=True),
    Column("name", String(500), nullable=False, default=""),
    Column("kind", String(16), nullable=False),
    Column("allow_backorder", Boolean, nullable=False, default=False),
    Column("price", Numeric(14, 4), nullable=True),
    # Added to a built unit's cost (base currency, per unit): seed 000's "component costs,
    # labour, and packaging separately".
    Column("labour_cost", Money, nullable=True),
    Column("packaging_cost", Money, nullable=True),
    # NULL: follow the warehouse's assembly_on_demand; true/false overrides it for this SKU.
    Column("assembly_on_demand", Boolean, nullable=True),
    # NULL: follow the warehouse's use_component_inventory; false: sold only from assembled
    # (prepackaged) units, whatever the warehouse says.
    Column("use_component_inventory", Boolean, nullable=True),
    # Seed 004's reorder dashboard: at or below this available quantity (per warehouse) the
    # SKU is listed to reorder (or, an assembly, to build); NULL: not watched.
    Column("reorder_point", BigInteger, nullable=True),
    Column("reorder_quantity", BigInteger, nullable=True),
    CheckConstraint("kind IN ('simple', 'kit', 'assembly', 'package', 'bundle')", name="kind"),
)

bom_lines = Table(
    "bom_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("parent_id", Id, ForeignKey("skus.id", ondelete="CASCADE"), nullable=False),
    # NULL: the row is a slot of its own; rows sharing a slot name are options of one slot.
    Column("slot", String(255), nullable=True),
    Column("component_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price_offset", Numeric(14, 4), nullable=True),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_bom_lines_parent", "parent_id"),
    Index("ix_bom_lines_component", "component_id"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku_id", Id, ForeignKey("skus.id"), primary_key=True),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), primary_key=True),
    Column("on_hand", BigInteger, nullable=False, default=0),
    Column("locked", BigInteger, nullable=False, default=0),
    Column("allocated", BigInteger, nullable=False, default=0),
    # Units claimed by held lines (their whole demand, exploded as it would be allocated):
    # not offered to anyone else. available = on_hand - locked - allocated - held.
    Column("held", BigInteger, nullable=False, default=0, server_default="0"),
    # Units of lots past their expiry date: still on hand (until a count or write-off takes
    # them), never sellable. available = on_hand - locked - allocated - held - expired.
    Column("expired", BigInteger, nullable=False, default=0, server_default="0"),
)

movements = Table(
    "movements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    # Receipt, Adjustment, Allocation, Release, Sale, AssemblyBuild
    Column("type", String(32), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    # The stock row equals the sum of these three columns over its movements.
    Column("on_hand_change", BigInteger, nullable=False, default=0),
    Column("locked_change", BigInteger, nullable=False, default=0),
    Column("allocated_change", BigInteger, nullable=False, default=0),
    Column("held_change", BigInteger, nullable=False, default=0, server_default="0"),
    Column("expired_change", BigInteger, nullable=False, default=0, server_default="0"),
    Column("reference", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    # The lot(s) the units came from or went into (comma-separated), and their cost in the
    # base currency (signed like on_hand_change); NULL when no unit moved in or out.
    Column("lot", String(500), nullable=True),
    Column("value", Money, nullable=True),
    Index("ix_movements_sku_warehouse", "sku_id", "warehouse_id", "id"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("status", String(16), nullable=False),  # open | shipped | cancelled
    Column("created_at", DateTime(timezone=True), nullable=True),  # as the channel says
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The warehouses a line is routed among, in order (comma-separated codes); NULL: only
    # the order's own warehouse (the channel chose it).
    Column("route", String(1000), nullable=True),
    # Where the order ships to (ShippingAddress.to_dict as JSON), for a fulfilment provider;
    # personal data: stored, never logged. NULL: the channel gave none (0010).
    Column("shipping_address", Text, nullable=True),
    UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
    CheckConstraint("status IN ('open', 'shipped', 'cancelled')", name="status"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line_key", String(255), nullable=False),
    Column("sku", String(255), nullable=False),  # as the channel sent it
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=True),  # NULL: unknown SKU
    Column("quantity", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # allocated | held | shipped | cancelled
    Column("hold_reason", String(500), nullable=True),
    Column("options", String(1000), nullable=True),  # the customer's choice, "slot=SKU;..."
    # What the line earned (after discounts, excluding tax) in ``currency``; NULL: unknown.
    Column("revenue", Money, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("allocated_in", String(1000), nullable=True),  # line units per warehouse, "main=3;..."
    UniqueConstraint("order_id", "line_key", name="uq_order_lines_order_id_line_key"),
    CheckConstraint("status IN ('allocated', 'held', 'shipped', 'cancelled')", name="status"),
)

# What each line holds: its own SKU's prepackaged units, or a kit's components.
line_allocations = Table(
    "line_allocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    # The (SKU, warehouse) of the layers the line consumed, not checked again (0009).
    Column("sku_id", Id, nullable=False),
    Column("warehouse_id", Id, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Index("ix_line_allocations_line", "line_id"),
)

# What each held line claims (not offered to anyone else while it waits): its demand
# exploded the way it would be allocated. Summed into stock.held.
line_holds = Table(
    "line_holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    # The (SKU, warehouse) of the layers the line consumed, not checked again (0009).
    Column("sku_id", Id, nullable=False),
    Column("warehouse_id", Id, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Index("ix_line_holds_line", "line_id"),
)

assembly_orders = Table(
    "assembly_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("origin", String(16), nullable=False),  # manual | on-demand
    Column("reference", String(255), nullable=True),  # the order it was built for
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The built lot and its cost: components consumed, labour and packaging (totals).
    Column("lot", String(255), nullable=True),
    Column("expires_on", Date, nullable=True),
    Column("components_cost", Money, nullable=True),
    Column("labour_cost", Money, nullable=True),
    Column("packaging_cost", Money, nullable=True),
)

assembly_order_components = Table(
    "assembly_order_components",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "assembly_order_id",
        Id,
        ForeignKey("assembly_orders.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Index("ix_assembly_order_components_order", "assembly_order_id"),
)

#: A fulfilment request's life: written ``pending`` before it is sent; ``sent`` once the
#: provider holds it; then shipped (``partially_shipped`` on the way), ``cancelled``, or
#: flagged for the operator (FLAGGED_FULFILMENTS).
FULFILMENT_STATUSES = (
    "pending",
    "sent",
    "shipped",
    "partially_shipped",
    "cancelled",
    "cancel_requested",
    "cancel_refused",
    "exception",
    "on_hold",
    "refused",
)
FLAGGED_FULFILMENTS = ("exception", "on_hold", "cancel_refused", "refused")

# Orders sent out to be shipped by a fulfilment channel (a 3PL), one row per (order,
# warehouse) request (migration 0010). ``reference`` is what the provider keeps and what
# recovery looks up; the row is written before the request is sent (exactly once).
fulfilments = Table(
    "fulfilments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),  # the fulfilment channel
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("reference", String(255), nullable=False),
    Column("remote_id", String(255), nullable=True),  # the provider's order id
    Column("status", String(24), nullable=False),
    Column("reason", String(1000), nullable=True),  # the provider's, for a flagged status
    Column("tracking", Text, nullable=True),  # JSON list of tracking numbers
    # JSON: the lines sent, [{"line_id", "sku", "quantity", "components": [[sku, n]],
    # "shipped": bool}], as written when the request was made.
    Column("lines", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The provider's last update applied: an older one arriving later is ignored.
    Column("remote_updated_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("channel", "reference", name="uq_fulfilments_channel_reference"),
    Index("ix_fulfilments_order", "order_id"),
    Index("ix_fulfilments_channel_status", "channel", "status"),
    Index("ix_fulfilments_channel_updated", "channel", "updated_at"),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{x}'" for x in FULFILMENT_STATUSES) + ")", name="status"
    ),
)

# -- costing and traceability ---------------------------------------------------------------

# Every arriving unit opens a layer; units leave earliest expiry first, then oldest first.
# Per (SKU, warehouse) the remaining units add up to on hand. A layer with a negative
# remaining is a deficit: units sold past stock at an estimated cost (``estimated``), which
# the next arrival settles. ``value`` is the exact cost of the remaining units.
cost_layers = Table(
    "cost_layers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("quantity", BigInteger, nullable=False),  # units it opened with
    Column("remaining", BigInteger, nullable=False),
    Column("value", Money, nullable=False),  # of the remaining units, base currency
    Column("unit_cost", Money, nullable=True),  # base currency; NULL: uncosted
    Column("currency", String(3), nullable=True),
    Column("original_unit_cost", Money, nullable=True),
    Column("rate", Numeric(20, 10), nullable=True),
    Column("lot", String(255), nullable=True),
    Column("expires_on", Date, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # receipt | build | transfer | count | opening | deficit
    Column("source", String(16), nullable=False),
    Column("reference", String(255), nullable=True),
    Column("expired", Boolean, nullable=False, default=False),  # counted in stock.expired
    Column("estimated", Boolean, nullable=False, default=False),
    Column("line_id", Id, nullable=True),  # a deficit's order line
    # Not on ``remaining``: every take changes it, and a changed indexed column makes
    # PostgreSQL write a new entry in every index of the table (no heap-only update).
    Index("ix_cost_layers_sku_warehouse", "warehouse_id", "sku_id"),
    Index("ix_cost_layers_lot", "lot"),
    # A SKU's last known unit cost (counts, selling past stock): its newest layer.
    Index("ix_cost_layers_sku_received", "sku_id", "received_at"),
    Index("ix_cost_layers_expiry", "expired", "expires_on"),
    # Room on each page for the updated versions of its layers (migration 0009).
    postgresql_with={"fillfactor": 80},
)

# What moved into and out of each layer, with its value: the costing ledger. The layers'
# value is the sum of their flows, which `valuation --check` proves.
layer_flows = Table(
    "layer_flows",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("layer_id", Id, ForeignKey("cost_layers.id"), nullable=False),
    # The layer's (SKU, warehouse), not checked again row by row (migration 0009).
    Column("sku_id", Id, nullable=False),
    Column("warehouse_id", Id, nullable=False),
    # receipt | count | opening | build_in | transfer_in | sale | build_out | transfer_out
    # | writeoff | settle
    Column("kind", String(16), nullable=False),
    Column("quantity", BigInteger, nullable=False),  # signed: + into the layer
    Column("value", Money, nullable=False),  # signed, base currency
    Column("line_id", Id, nullable=True),
    Column("assembly_order_id", Id, nullable=True),
    Column("reference", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_layer_flows_layer", "layer_id"),
    Index("ix_layer_flows_line", "line_id"),
    Index("ix_layer_flows_assembly_order", "assembly_order_id"),
)

# What each shipped line cost, per SKU whose units it consumed (a kit: its components), and
# its share of the line's revenue. ``adjustment``: settled differences of estimated costs.
line_costs = Table(
    "line_costs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    # The (SKU, warehouse) of the layers the line consumed, not checked again (0009).
    Column("sku_id", Id, nullable=False),
    Column("warehouse_id", Id, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("cost", Money, nullable=False),
    Column("adjustment", Money, nullable=False, default=0, server_default="0"),
    Column("estimated", Integer, nullable=False, default=0, server_default="0"),  # units
    Column("uncosted", Integer, nullable=False, default=0, server_default="0"),  # units
    Column("revenue", Money, nullable=True),  # base currency
    Column("shipped_at", DateTime(timezone=True), nullable=False),
    Index("ix_line_costs_line", "line_id"),
)

exchange_rates = Table(
    "exchange_rates",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("rate", Numeric(20, 10), nullable=False),  # base units one unit buys
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("from_warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("to_warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("lot", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Outbox for the sync layer: (SKU, warehouse) pairs whose sellable changed, in order.
sellable_changes = Table(
    "sellable_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# -- the sync layer's state: cursors, listing map, last confirmed pushes, run history ----------

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

channel_cursors = Table(
    "channel_cursors",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("job", String(32), primary_key=True),
    Column("value", String(500), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Orders a channel sent that could not be read, by id: refused and reported until a pull
# reads them whole (then imported and forgotten). ``updated_at`` is the channel's
# modification time when it could be read; the order cursor waits for it (sync/jobs/orders.py).
refused_orders = Table(
    "refused_orders",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("field", String(255), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("first_refused_at", DateTime(timezone=True), nullable=False),
    Column("last_refused_at", DateTime(timezone=True), nullable=False),
)

listings = Table(
    "listings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("listing_id", String(255), nullable=False),
    Column("parent_id", String(255), nullable=True),
    Column("channel_sku", String(255), nullable=True),
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=True),  # NULL: unmatched
    Column("warehouses", String(500), nullable=True),  # comma list; NULL: the channel's
    Column("extra", Text, nullable=True),  # connector's JSON, e.g. a product type
    Column("present", Boolean, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("channel_quantity", BigInteger, nullable=True),  # last read from the channel
    Column("last_pushed", BigInteger, nullable=True),  # last quantity the channel confirmed
    Column("last_pushed_at", DateTime(timezone=True), nullable=True),
    Column("push_failures", Integer, nullable=False, default=0),
    Column("last_error", String(1000), nullable=True),
    UniqueConstraint("channel", "listing_id", name="uq_listings_channel_listing_id"),
    Index("ix_listings_channel_sku", "channel", "sku_id"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("job", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("ok", Boolean, nullable=True),
    Column("summary", Text, nullable=True),  # JSON counts
    Column("error", Text, nullable=True),
    # HTTP 429 answers the run met (each retried or given up on); 0 for older runs.
    Column("throttled", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_job_runs_channel_job", "channel", "job", "id"),
)

__all__ = [
    "assembly_order_components",
    "assembly_orders",
    "bom_lines",
    "channel_cursors",
    "cost_layers",
    "exchange_rates",
    "fulfilments",
    "job_runs",
    "layer_flows",
    "line_allocations",
    "line_costs",
    "listings",
    "meta",
    "metadata",
    "movements",
    "order_lines",
    "orders",
    "refused_orders",
    "sellable_changes",
    "skus",
    "stock",
    "transfers",
    "warehouses",
]
