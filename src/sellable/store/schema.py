"""The tables. Alembic migrations under ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
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
    # NULL: follow the warehouse's assembly_on_demand; true/false overrides it for this SKU.
    Column("assembly_on_demand", Boolean, nullable=True),
    # NULL: follow the warehouse's use_component_inventory; false: sold only from assembled
    # (prepackaged) units, whatever the warehouse says.
    Column("use_component_inventory", Boolean, nullable=True),
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
    Column("reference", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
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
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
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
    Column("sku_id", Id, ForeignKey("skus.id"), nullable=False),
    Column("warehouse_id", Id, ForeignKey("warehouses.id"), nullable=False),
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
    Index("ix_job_runs_channel_job", "channel", "job", "id"),
)

__all__ = [
    "assembly_order_components",
    "assembly_orders",
    "bom_lines",
    "channel_cursors",
    "job_runs",
    "line_allocations",
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
    "warehouses",
]
